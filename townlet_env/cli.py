"""The ``townlet`` command line.

Subcommands::

    townlet validate-manifest PATH [--config CONFIG.yaml]
    townlet validate-config PATH
    townlet town [--config PATH] [--days N] [--seed S] [--agents N] [--telemetry OUT.jsonl] [--narrate]
    townlet run ...        (training pipeline; needs ``pip install -e .[train]``)
    townlet dataset ...    (dataset tools; needs ``pip install -e .[train]``)
    townlet golden ...     (golden rollouts: record, check; needs ``pip install -e .[train]``)

Validation commands print a one-line summary and exit 0 when the file is valid, and print
one line per problem on stderr and exit 1 when it is not.

Other packages add commands through the ``townlet.commands`` entry-point group: each entry
point names a callable ``command(argv) -> exit status`` that takes the arguments after
the command name untouched (options included), with a one-line ``help`` attribute for
the listing. That is how ``run`` and ``dataset`` arrive from the training package, which
this package never imports by name: without the training extras installed they are
simply absent, and ``townlet --help`` says what to install.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from townlet_env import serve, soak
from townlet_env.config import ConfigError, load_config
from townlet_env.console import cli as console_cli
from townlet_env.manifest import ManifestError, load_manifest
from townlet_env.plugins import INSTALL_HINT
from townlet_env.plugins import missing_extra as _missing_extra

#: The entry-point group other packages register ``townlet`` subcommands in.
COMMAND_GROUP = "townlet.commands"
NO_PLUGINS = f"The training commands (townlet run, dataset, golden) are not installed; {INSTALL_HINT}"


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
    # Only pass telemetry when asked for, so run_town's plain signature stays the common call.
    extra: dict[str, Any] = {} if args.telemetry is None else {"telemetry": args.telemetry}
    if args.narrate:
        extra["narrate"] = print
    if args.telemetry is not None and not args.telemetry.parent.is_dir():
        return _fail(f"--telemetry {args.telemetry}: folder {args.telemetry.parent} does not exist; create it first")
    try:
        report = run_town(config, args.days, args.seed, args.agents, **extra)
    except _validation_errors() as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.config}: cannot read the file: {exc.strerror or exc}")
    print(format_report(report))
    return 0


def _entry_points() -> list[EntryPoint]:
    """The installed ``townlet.commands`` entry points (tests replace this lookup)."""
    return list(entry_points(group=COMMAND_GROUP))


def plugin_commands() -> dict[str, EntryPoint]:
    """Registered subcommands by name; a built-in command of the same name wins."""
    return {ep.name: ep for ep in _entry_points() if ep.name not in BUILTIN_COMMANDS}


def _plugin_help(entry: EntryPoint) -> str:
    """The command's one-line help; loading it imports only its (light) command module."""
    try:
        command = entry.load()
    except ImportError as exc:
        return f"unavailable ({exc}); {INSTALL_HINT}"
    return str(getattr(command, "help", None) or f"see `townlet {entry.name} --help`")


def _run_plugin(entry: EntryPoint, argv: list[str]) -> int:
    """Run a registered command on the arguments after its name."""
    name = entry.name
    try:
        command = entry.load()
        return int(command(argv))
    except ImportError as exc:  # the module, or a stage that imports torch, SB3, ... only when it runs
        if missing := _missing_extra(exc):
            return _fail(f"townlet {name}: needs the training extras ({missing} is not installed); {INSTALL_HINT}")
        if exc.name and entry.module.split(".")[0] == exc.name.split(".")[0]:  # its own package is gone
            return _fail(f"townlet {name}: {entry.value} cannot be imported ({exc}); {INSTALL_HINT}")
        raise


def build_parser(plugins: dict[str, EntryPoint] | None = None) -> argparse.ArgumentParser:
    """The ``townlet`` argument parser; registered commands are listed for ``--help``.

    Args:
        plugins: the registered commands; ``None`` looks them up.

    """
    plugins = plugin_commands() if plugins is None else plugins
    parser = argparse.ArgumentParser(
        prog="townlet",
        description="Townlet: a small-town life simulation for multi-agent RL.",
        epilog=None if plugins else NO_PLUGINS,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, handler, add_arguments) in BUILTIN_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        add_arguments(p)
        p.set_defaults(handler=handler)
    for name, entry in plugins.items():
        sub.add_parser(name, help=_plugin_help(entry), add_help=False)
    return parser


def _manifest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, metavar="PATH", help="the manifest YAML file")
    p.add_argument(
        "--config",
        type=Path,
        metavar="CONFIG",
        help="also cross-check prices, options and jobs against this town config",
    )


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, metavar="PATH", help="the config YAML file")


def _town_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="town config YAML (default: the shipped town)")
    p.add_argument("--days", type=_positive_int, default=1, help="sim days to run (default 1)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="episode and expert seed (default 0)")
    p.add_argument("--agents", type=_positive_int, default=None, help="number of agents (default: the config's)")
    p.add_argument(
        "--telemetry",
        type=Path,
        default=None,
        metavar="OUT.jsonl",
        help="record the telemetry stream (a snapshot, then per-tick diffs) to this JSONL file",
    )
    p.add_argument("--narrate", action="store_true", help="print the narration lines as the town lives them")


Handler = Callable[[argparse.Namespace], int]
#: name -> (help, handler, adds the command's arguments), in ``--help`` order.
BUILTIN_COMMANDS: dict[str, tuple[str, Handler, Callable[[argparse.ArgumentParser], None]]] = {
    "validate-manifest": ("check an affordance manifest (exit 1 on problems)", _validate_manifest, _manifest_arguments),
    "validate-config": (
        "check a town config and the manifest and map it names",
        _validate_config,
        _config_arguments,
    ),
    "town": ("run a town with the scripted expert and print its KPIs", _town, _town_arguments),
    "console": console_cli.COMMAND,
    "serve": serve.COMMAND,
    "soak": soak.COMMAND,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``townlet`` command line.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when the input is invalid or a command failed.
        Usage errors exit with status 2 through :class:`SystemExit`, as argparse does.

    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    plugins = plugin_commands()
    # A registered command owns its arguments, options included: pass them on untouched.
    if args_list and args_list[0] in plugins:
        return _run_plugin(plugins[args_list[0]], args_list[1:])
    if not plugins and args_list and args_list[0] not in BUILTIN_COMMANDS and not args_list[0].startswith("-"):
        return _fail(f"townlet {args_list[0]}: no such command. {NO_PLUGINS}")
    args = build_parser(plugins).parse_args(args_list)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
