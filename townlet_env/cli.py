"""The ``townlet`` command line.

Subcommands::

    townlet validate-manifest PATH [--config CONFIG.yaml]
    townlet validate-config PATH
    townlet town [--config PATH] [--days N] [--seed S] [--agents N]
    townlet run ...        (training pipeline; needs ``pip install -e .[train]``)
    townlet dataset ...    (dataset tools; needs ``pip install -e .[train]``)

Validation commands print a one-line summary and exit 0 when the file is valid, and print
one line per problem on stderr and exit 1 when it is not. ``run`` and ``dataset`` hand
their arguments to :func:`training.cli.main`, imported only when asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from townlet_env.config import ConfigError, load_config
from townlet_env.manifest import ManifestError, load_manifest

#: Subcommands that belong to the training package; their arguments are passed on as is.
TRAINING_COMMANDS = ("run", "dataset")
#: Top-level modules of the ``[train]`` extra; an ImportError naming one means it is missing.
TRAIN_EXTRA_MODULES = frozenset({"torch", "stable_baselines3", "sb3_contrib", "imitation", "wandb", "rich", "tqdm"})
INSTALL_HINT = "install the training extras with: pip install -e .[train]"


def _fail(message: str) -> int:
    """Print each line of ``message`` on stderr and return exit status 1."""
    for line in message.splitlines() or [message]:
        print(line, file=sys.stderr)
    return 1


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _validation_errors() -> tuple[type[Exception], ...]:
    """The errors that mean "your input is invalid" (imported late: world/ is heavy)."""
    from townlet_env.world.map import MapError
    from townlet_env.world.rules import RulesError

    return (ConfigError, ManifestError, RulesError, MapError)


def _validate_manifest(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        return _fail(str(exc))
    summary = (
        f"{path}: ok, {len(manifest.objects)} objects, {len(manifest.affordances)} affordances, "
        f"sha256 {manifest.sha256}"
    )
    if args.config is not None:
        from townlet_env.world.rules import build_rules

        # An absolute path, so the config takes this file rather than a shipped one.
        try:
            config = load_config(args.config, manifest=str(path.resolve()))
            build_rules(config)
        except _validation_errors() as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"{args.config}: cannot read the file: {exc.strerror or exc}")
        summary += f", consistent with config {config.config_id} ({args.config})"
    print(summary)
    return 0


def _validate_config(args: argparse.Namespace) -> int:
    from townlet_env.world.rules import build_rules

    path: Path = args.path
    try:
        config = load_config(path)
        rules = build_rules(config)
        identity = config.identity()
    except _validation_errors() as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{path}: cannot read the file: {exc.strerror or exc}")
    print(
        f"{path}: ok, config {config.config_id}, {config.num_agents} agents, map {config.map}, "
        f"{rules.n_affordances} affordances (manifest sha256 {rules.manifest.sha256[:12]}), "
        f"identity {identity[:12]}"
    )
    return 0


def _town(args: argparse.Namespace) -> int:
    from townlet_env.demo import format_report, run_town

    config = None if args.config is None else str(args.config)
    try:
        report = run_town(config, args.days, args.seed, args.agents)
    except _validation_errors() as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.config}: cannot read the file: {exc.strerror or exc}")
    print(format_report(report))
    return 0


def _missing_extra(exc: ImportError) -> str | None:
    """The ``[train]`` module whose absence caused ``exc``, or ``None`` for any other cause."""
    missing = (exc.name or "").split(".")[0]
    return missing if missing in TRAIN_EXTRA_MODULES else None


def _training(argv: list[str]) -> int:
    """Hand ``argv`` (``["run", ...]`` or ``["dataset", ...]``) to the training CLI."""
    command = argv[0]
    try:
        from training.cli import main as training_main
    except ImportError as exc:
        if missing := _missing_extra(exc):
            return _fail(f"townlet {command}: needs the training extras ({missing} is not installed); {INSTALL_HINT}")
        if (exc.name or "").split(".")[0] == "training":
            return _fail(f"townlet {command}: the training command line is not available ({exc}); {INSTALL_HINT}")
        raise
    try:
        return int(training_main(argv))
    except ImportError as exc:  # a stage that imports torch, SB3, ... only when it runs
        if missing := _missing_extra(exc):
            return _fail(f"townlet {command}: needs the training extras ({missing} is not installed); {INSTALL_HINT}")
        raise


def build_parser() -> argparse.ArgumentParser:
    """The ``townlet`` argument parser (``run`` and ``dataset`` are listed for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="townlet",
        description="Townlet: a small-town life simulation for multi-agent RL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate-manifest", help="check an affordance manifest (exit 1 on problems)")
    p.add_argument("path", type=Path, metavar="PATH", help="the manifest YAML file")
    p.add_argument(
        "--config",
        type=Path,
        metavar="CONFIG",
        help="also cross-check prices, options and jobs against this town config",
    )
    p.set_defaults(handler=_validate_manifest)

    p = sub.add_parser("validate-config", help="check a town config and the manifest and map it names")
    p.add_argument("path", type=Path, metavar="PATH", help="the config YAML file")
    p.set_defaults(handler=_validate_config)

    p = sub.add_parser("town", help="run a town with the scripted expert and print its KPIs")
    p.add_argument("--config", type=Path, default=None, help="town config YAML (default: the shipped town)")
    p.add_argument("--days", type=_positive_int, default=1, help="sim days to run (default 1)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="episode and expert seed (default 0)")
    p.add_argument("--agents", type=_positive_int, default=None, help="number of agents (default: the config's)")
    p.set_defaults(handler=_town)

    sub.add_parser("run", help="run an experiment pipeline (needs the [train] extra)", add_help=False)
    sub.add_parser("dataset", help="dataset tools, e.g. `dataset audit PATH` (needs the [train] extra)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``townlet`` command line.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when the input is invalid or a command failed.
        Usage errors exit with status 2 through :class:`SystemExit`, as argparse does.

    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The training commands own their arguments, options included: pass them on untouched.
    if args_list and args_list[0] in TRAINING_COMMANDS:
        return _training(args_list)
    args = build_parser().parse_args(args_list)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
