"""The operator console: authenticated commands against a live town.

``Console(env).submit({"cmd_id": "1", "cmd": "health", "token": "..."})`` answers a command;
``Console.handle_text`` serves the same over the telemetry WebSocket server's ``/console``
path; ``townlet console`` is the command-line client.

The names below load on first use, so ``townlet console`` (the client) starts without the
simulation's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Console": "townlet_env.console.console",
    "ConsoleError": "townlet_env.console.errors",
    "RateLimit": "townlet_env.console.auth",
    "COMMANDS": "townlet_env.console.commands",
    "VIEWER_COMMANDS": "townlet_env.console.commands",
    "ADMIN_COMMANDS": "townlet_env.console.commands",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'townlet_env.console' has no attribute {name!r}")
    return getattr(import_module(module), name)
