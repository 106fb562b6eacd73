"""``townlet dataset ...`` and ``townlet run ...``: the training half of the ``townlet`` CLI.

``townlet_env``'s CLI forwards these subcommands here as ``main(argv)`` with ``argv``
starting at the subcommand (``["dataset", "audit", PATH]``). Training imports stay
behind this boundary so the environment's CLI never loads torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: townlet {dataset,run} ...
  dataset audit PATH   verify a trajectory dataset
  run ...              run an experiment"""


def run_main(argv: Sequence[str]) -> int:
    """``townlet run EXPERIMENT.yaml [--runs-dir DIR] [--force]``: run or resume an experiment."""
    import argparse

    from townlet_env.config import ConfigError
    from training.pipeline import PipelineError, run_experiment, summary_rows

    parser = argparse.ArgumentParser(prog="townlet run", description="Run capture -> bc -> anneal -> evaluate.")
    parser.add_argument("experiment", help="experiment YAML, e.g. experiments/poc.yaml")
    parser.add_argument("--runs-dir", default="runs", help="where stage outputs go (default: runs/)")
    parser.add_argument("--force", action="store_true", help="rerun every stage even if its inputs are unchanged")
    args = parser.parse_args(list(argv))
    try:
        cfg, records = run_experiment(args.experiment, args.runs_dir, force=args.force)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``dataset`` and ``run``; exit status 2 on a usage error."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "dataset":
        from training.datasets import dataset_main

        return dataset_main(rest)
    if command == "run":
        return run_main(rest)
    print(f"townlet: unknown training command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
