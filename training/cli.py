"""``townlet run ...`` and ``townlet dataset ...``: the training half of the ``townlet`` CLI.

The release commands (``promote``, ``rollback``, ``releases``, ``drill``) are in
:mod:`training.release_cli`.

Training registers these commands with the ``townlet`` command line through the
``townlet.commands`` entry-point group (see ``pyproject.toml``); ``townlet_env`` finds them
with :mod:`importlib.metadata` and never imports this package itself. Each entry point is
a :class:`Command`: a one-line help for ``townlet --help`` and a function that takes the
arguments after the command name. Heavy imports (torch, SB3, W&B) happen only inside the
command, so listing the commands stays cheap.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """A ``townlet`` subcommand: ``Command(argv) -> exit status``, ``help`` for the listing."""

    help: str
    main: Callable[[Sequence[str]], int]

    def __call__(self, argv: Sequence[str]) -> int:
        return self.main(list(argv))


def run_main(argv: Sequence[str]) -> int:
    """``townlet run EXPERIMENT.yaml [--runs-dir DIR] [--force]``: run or resume an experiment."""
    from townlet_env.config import ConfigError
    from training.pipeline import PipelineError, run_experiment, summary_rows

    stages = "capture -> bc -> anneal -> evaluate -> promote -> release"
    parser = argparse.ArgumentParser(prog="townlet run", description=f"Run {stages}.")
    parser.add_argument("experiment", help="experiment YAML, e.g. experiments/poc.yaml")
    parser.add_argument("--runs-dir", default="runs", help="where stage outputs go (default: runs/)")
    parser.add_argument("--force", action="store_true", help="rerun every stage even if its inputs are unchanged")
    args = parser.parse_args(list(argv))
    try:
        # Flushed: a log file (CI) shows each stage as it starts, not when the buffer fills.
        echo = functools.partial(print, flush=True)
        cfg, records = run_experiment(args.experiment, args.runs_dir, force=args.force, echo=echo)
    except (ConfigError, PipelineError) as exc:
        print(f"townlet run: {exc}", file=sys.stderr)
        return 1
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is in the [train] extra; plain text otherwise
        for row in summary_rows(records):
            print(" | ".join(row))
        return 0
    table = Table(title=f"experiment {cfg.name}")
    for column in ("stage", "status", "seconds", "result"):
        table.add_column(column)
    for row in summary_rows(records):
        table.add_row(*row)
    Console().print(table)
    return 0


def dataset_main(argv: Sequence[str]) -> int:
    """``townlet dataset audit PATH``: print the audit and exit 1 on any problem (2: usage)."""
    from training.audit import audit

    parser = argparse.ArgumentParser(prog="townlet dataset", description="Inspect trajectory datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_audit = sub.add_parser("audit", help="verify hashes, shapes, dtypes, masks and the observation signature")
    p_audit.add_argument("path", type=Path)
    args = parser.parse_args(list(argv))
    report = audit(args.path)
    print(report.render())
    return 0 if report.ok else 1


def golden_main(argv: Sequence[str]) -> int:
    """``townlet golden record|check``: see :mod:`training.golden`."""
    from training.golden import main

    return main(argv)


#: The ``townlet.commands`` entry points (``pyproject.toml`` names these objects).
GOLDEN = Command(
    "golden rollouts: `golden record --reason TEXT`, `golden check` (needs the [train] extra)", golden_main
)
RUN = Command("run an experiment pipeline (needs the [train] extra)", run_main)
DATASET = Command("dataset tools, e.g. `dataset audit PATH` (needs the [train] extra)", dataset_main)
