"""Admin commands that save and load snapshots, confined to the console's snapshot root.

``townlet_env.snapshots`` is imported when a command runs, not before: the console works
(and its other commands run) in a build without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field

from townlet_env.console.admin import Args, Plan
from townlet_env.console.errors import ConsoleError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SnapshotArgs(Args):
    name: str = Field(max_length=128)


def _path(console: Any, name: str, cmd: str) -> Path:
    root = console.snapshot_root
    if root is None:
        raise ConsoleError(
            "conflict", f"{cmd}: this console has no snapshot root; build it with Console(env, snapshot_root=...)"
        )
    if not NAME.match(name) or ".." in name:
        raise ConsoleError(
            "invalid_args", f"{cmd}: name={name!r} must be a plain file name (letters, digits, . _ -), no folders"
        )
    path = (root / name).resolve()
    if path.parent != root:  # belt and braces: the pattern already keeps it in the root
        raise ConsoleError("invalid_args", f"{cmd}: name={name!r} leaves the snapshot root")
    return path


def _module(cmd: str) -> Any:
    try:
        import townlet_env.snapshots as snapshots
    except ImportError:
        raise ConsoleError("conflict", f"{cmd}: this build has no townlet_env.snapshots; update townlet") from None
    return snapshots


def save_snapshot(env: Any, a: SnapshotArgs, console: Any) -> Plan:
    """Save the town (between two ticks) as ``<snapshot root>/<name>``."""
    path = _path(console, a.name, "save_snapshot")

    def apply() -> dict[str, Any]:
        _module("save_snapshot").save_snapshot(console.env, path)
        return {"path": str(path), "tick": int(env.world.tick), "bytes": path.stat().st_size}

    return Plan({"path": str(path), "overwrites": path.exists()}, apply)


def load_snapshot(env: Any, a: SnapshotArgs, console: Any) -> Plan:
    """Replace the town's state (world, other attachments, overrides) with a saved one of the same config."""
    path = _path(console, a.name, "load_snapshot")
    if not path.is_file():
        raise ConsoleError("not_found", f"load_snapshot: no snapshot {a.name!r} in the snapshot root")

    def apply() -> dict[str, Any]:
        snapshots = _module("load_snapshot")
        try:
            wrapper = snapshots.load_snapshot(path, root=console.snapshot_root)
        except ValueError as exc:  # the loader's refusals (corrupt, newer schema, other config) are ValueErrors
            raise ConsoleError("conflict", f"load_snapshot: {exc}") from None
        loaded = wrapper.unwrapped
        if loaded.config.identity() != env.config.identity():
            raise ConsoleError("conflict", f"load_snapshot: {a.name!r} is of another config; start a town from it")
        old_tick = int(env.world.tick)
        env.world = loaded.world
        _restore_env(console.env, wrapper)
        states = dict(loaded.attachments.state_dicts())
        mine = states.pop("console", None)
        for name, state in states.items():
            component = env.attachments.get(name)
            if component is not None:
                component.load_state_dict(state)
        console.adopt_overrides(mine)
        return {"path": str(path), "tick": f"{old_tick} -> {int(env.world.tick)}"}

    return Plan({"path": str(path), "replaces_tick": int(env.world.tick)}, apply)


def _restore_env(mine: Any, theirs: Any) -> None:
    """Give the town's env and each of its wrappers (the reward guard) the loaded town's state."""
    while True:
        if hasattr(mine, "load_state_dict") and hasattr(theirs, "state_dict"):
            mine.load_state_dict(theirs.state_dict())
        if mine is mine.unwrapped or not hasattr(mine, "env") or not hasattr(theirs, "env"):
            break
        mine, theirs = mine.env, theirs.env
    if not hasattr(mine.unwrapped, "load_state_dict"):  # an env without episode state: identities by hand
        core = mine.unwrapped
        core._identities = [core.identity(i) for i in range(len(core.possible_agents))]
