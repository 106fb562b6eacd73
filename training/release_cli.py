"""``townlet promote | rollback | releases | drill``: the release half of the ``townlet`` CLI.

Registered through the ``townlet.commands`` entry points like ``run`` (see
:mod:`training.cli`). Exit status: 0 success (``promote``: PROMOTE); 1 bad input or a
refused operation; 2 usage; ``promote`` exits 3 on HOLD and 4 on FAIL
(:data:`training.gate.EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from training.cli import Command

if TYPE_CHECKING:  # the training stack loads inside each command, not when commands are listed
    from training.experiment import ExperimentConfig

DEFAULT_REGISTRY = Path("runs") / "registry"


def _registry_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", type=Path, default=None, help=f"registry folder (default: {DEFAULT_REGISTRY})")


def _run_parts(run_dir: Path) -> tuple[ExperimentConfig, Path]:
    """The run's experiment config and its final policy, or ValueError naming the missing file."""
    from training.experiment import ExperimentConfig
    from training.release_stages import EXPERIMENT_FILE

    config_file, anneal = run_dir / EXPERIMENT_FILE, run_dir / "anneal" / "manifest.json"
    for path in (config_file, anneal):
        if not path.is_file():
            raise ValueError(f"{path}: missing; RUN_DIR must be a finished `townlet run` folder (runs/<name>)")
    cfg = ExperimentConfig.model_validate(json.loads(config_file.read_text()))
    return cfg, Path(json.loads(anneal.read_text())["result"]["last_good"])


def promote_main(argv: Sequence[str]) -> int:
    """``townlet promote RUN_DIR``: gate the run's final policy and release it on PROMOTE."""
    from training.promotion import gate_candidate, release_candidate
    from training.registry import Registry, RegistryError
    from training.sequencing import SequencingError, check_base_release

    parser = argparse.ArgumentParser(prog="townlet promote", description="Gate a run's policy; release it on PROMOTE.")
    parser.add_argument("run_dir", type=Path, help="a finished run, e.g. runs/poc")
    _registry_arg(parser)
    parser.add_argument("--reason", default="townlet promote", help="recorded in the registry history")
    args = parser.parse_args(list(argv))
    try:
        cfg, policy = _run_parts(args.run_dir)
    except ValueError as exc:
        print(f"townlet promote: {exc}", file=sys.stderr)
        return 1
    registry = Registry(args.registry or args.run_dir.parent / cfg.promote.registry)
    try:
        import townlet_env

        town = townlet_env.make_config(**cfg.stage_town("anneal")).model_dump(mode="json")
        check_base_release(town, registry, cfg.name)
        outcome = gate_candidate(cfg, policy, args.run_dir, registry, args.run_dir / "promote_cli")
        print(f"candidate {outcome.candidate}: {outcome.decision.decision.value}")
        for reason in outcome.decision.reasons:
            print(f"  - {reason}")
        report = json.loads(outcome.report.read_text())
        if outcome.serving or outcome.decision.exit_code == 0:
            release = release_candidate(registry, outcome, report, args.reason)
            what = "recorded the windows of the serving release" if outcome.serving else "released"
            print(f"{what} {release} (registry {registry.root}; report {outcome.report})")
    except (SequencingError, RegistryError) as exc:
        print(f"townlet promote: {exc}", file=sys.stderr)
        return 4 if isinstance(exc, SequencingError) else 1
    return outcome.decision.exit_code


def rollback_main(argv: Sequence[str]) -> int:
    """``townlet rollback``: serve the previous release again."""
    from training.registry import Registry, RegistryError

    parser = argparse.ArgumentParser(prog="townlet rollback", description="Serve the previous release again.")
    _registry_arg(parser)
    parser.add_argument("--reason", default="townlet rollback", help="recorded in the registry history")
    args = parser.parse_args(list(argv))
    registry = Registry(args.registry or DEFAULT_REGISTRY)
    try:
        was = registry.current()
        now = registry.rollback(args.reason)
    except RegistryError as exc:
        print(f"townlet rollback: {exc}", file=sys.stderr)
        return 1
    print(f"rolled back: serving {now} (was {was})")
    return 0


def releases_main(argv: Sequence[str]) -> int:
    """``townlet releases``: the serving release and the history, oldest first."""
    from training.registry import Registry

    parser = argparse.ArgumentParser(prog="townlet releases", description="List the registry's history.")
    _registry_arg(parser)
    args = parser.parse_args(list(argv))
    registry = Registry(args.registry or DEFAULT_REGISTRY)
    for line in registry.repair():
        print(f"repaired: {line}")
    current = registry.current()
    print(f"registry {registry.root}: serving {current or 'nothing yet'}")
    for event in registry.history():
        windows = event.get("windows", [])
        greens = f", windows {''.join('G' if w.get('green') else 'r' for w in windows)}" if windows else ""
        where = f"{event['release']} (from {event['from']})"
        print(f"  #{event['seq']} {event['kind']:<8} {where}{greens}: {event['reason']}")
    if current:
        ident = registry.identity(current)
        print(f"serving {current}: policy {ident.policy_sha256[:12]}, experiment {ident.experiment}")
        print(f"  obs {ident.obs_variant}/{ident.obs_signature}, config {ident.config_id}, commit {ident.git_commit}")
    return 0


def drill_main(argv: Sequence[str]) -> int:
    """``townlet drill RUN_DIR``: release, promote and roll back on a scratch registry; exit 1 unless it passes."""
    from training.anneal import RESULTS_FILE, AnnealResult
    from training.drill import render, run_drill

    parser = argparse.ArgumentParser(prog="townlet drill", description="Rehearse promote and rollback.")
    parser.add_argument("run_dir", type=Path, help="a finished run with two accepted anneal stages, e.g. runs/tiny")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: RUN_DIR/drill)")
    args = parser.parse_args(list(argv))
    try:
        cfg, final = _run_parts(args.run_dir)
        record = AnnealResult.from_json(json.loads((args.run_dir / "anneal" / RESULTS_FILE).read_text()))
    except (ValueError, OSError) as exc:
        print(f"townlet drill: {exc}", file=sys.stderr)
        return 1
    older = [a.checkpoint for a in record.stages if a.advanced and Path(a.checkpoint) != final]
    if not older:
        print(f"townlet drill: {args.run_dir} has one accepted policy; the drill needs an older one", file=sys.stderr)
        return 1
    report = run_drill(cfg, older[0], final, args.out or args.run_dir / "drill")
    print(render(report), end="")
    return 0 if report["passed"] else 1


PROMOTE = Command("gate a run's policy, release it on PROMOTE; 3 HOLD, 4 FAIL (needs the [train] extra)", promote_main)
ROLLBACK = Command("serve the previous release again (needs the [train] extra)", rollback_main)
RELEASES = Command("list the release registry's history (needs the [train] extra)", releases_main)
DRILL = Command("rehearse promote -> rollback on a run's policies (needs the [train] extra)", drill_main)
