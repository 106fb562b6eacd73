"""``save_snapshot`` and ``load_snapshot``: a town saved mid-episode and brought back bit for bit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from townlet_env.atomic import write_bytes_atomic
from townlet_env.config import TownConfig
from townlet_env.snapshots.format import FORMAT, SCHEMA_VERSION, SnapshotError, encode, join_tree, read, split_tree
from townlet_env.snapshots.migrations import SnapshotData, migration_from
from townlet_env.snapshots.state import world_from_state, world_state_dict

#: The snapshot root servers and the console pass as ``root=`` (relative to the working folder).
DEFAULT_ROOT = Path("snapshots")
#: Config keys ``load_snapshot`` may override: they change what is observed or when the
#: episode ends, never how the saved town moves. Anything else would not be the saved town.
LOAD_OVERRIDES = frozenset({"max_ticks", "obs_variant", "render_mode"})
PROVENANCE = "snapshot"  # the attachment that remembers loads and migrations


class Provenance:
    """Attachment ``"snapshot"``: where a loaded town came from and the migrations applied to it."""

    def __init__(self) -> None:
        self.loads: list[dict[str, Any]] = []
        self.migrations: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"loads": list(self.loads), "migrations": list(self.migrations)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loads = list(state.get("loads", []))
        self.migrations = list(state.get("migrations", []))


def resolve_path(path: str | Path, root: str | Path | None) -> Path:
    """``path`` resolved (symlinks included) and checked to lie inside ``root``.

    ``root=None`` confines the path to the folder it names itself, so only a symlink out
    of that folder is refused; pass ``root`` (e.g. :data:`DEFAULT_ROOT`) wherever a path
    comes from someone else. A relative ``path`` is taken inside ``root`` when one is given.

    Raises:
        SnapshotError: the path contains ``..`` or resolves outside the root.

    """
    given = Path(path)
    if ".." in given.parts:
        raise SnapshotError(f"{path}: '..' is not allowed in a snapshot path; name a file inside the snapshot root")
    if root is None:
        base, target = given.absolute().parent, given
    else:
        base, target = Path(root), (given if given.is_absolute() else Path(root) / given)
    base, resolved = base.resolve(), target.resolve()
    if not resolved.is_relative_to(base):
        raise SnapshotError(
            f"{path}: resolves to {resolved}, outside the snapshot root {base}; keep snapshots inside it"
        )
    return resolved


def save_snapshot(env: Any, path: str | Path, *, root: str | Path | None = None) -> Path:
    """Write ``env``'s whole state to ``path`` (an ``.npz``), atomically; return the resolved path.

    Call it between steps (or from an attachment's ``before_step``, as :class:`Autosaver`
    does): inside ``after_step`` the reward guard has not yet counted the tick.

    Args:
        env: a town from :func:`townlet_env.parallel_env` (or its ``unwrapped`` core), reset.
        path: the file to write; its folder is created if missing.
        root: confine ``path`` to this folder (see :func:`resolve_path`).

    Raises:
        SnapshotError: the path escapes the root, the env was never reset, or an
            attachment's state holds something that is not JSON or a numeric array.

    """
    from townlet_env import __version__

    target = resolve_path(path, root)
    town = env.unwrapped
    try:
        env_state = town.state_dict()
    except ValueError:
        raise SnapshotError(f"{path}: the env has no episode yet; call reset() before save_snapshot") from None
    guard = _guard_of(env)
    provenance = town.attachments.get(PROVENANCE)
    state = {
        "world": world_state_dict(town.world),
        "env": env_state,
        "guard": guard.state_dict() if guard is not None else None,
        "attachments": town.attachments.state_dicts(),
    }
    arrays: dict[str, Any] = {}
    header = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "townlet_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tick": int(town.world.tick),
        "config_id": town.config.config_id,
        "config_identity": town.config.identity(),
        "config": town.config.model_dump(mode="json"),
        "manifest_sha256": town.rules.manifest.sha256,
        "migrations": list(provenance.migrations) if provenance is not None else [],
        "state": split_tree(state, "state", arrays),
    }
    data = encode(header, arrays)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)
    return target


def load_snapshot(path: str | Path, *, root: str | Path | None = None, **overrides: Any) -> Any:
    """The town saved at ``path``, mid-episode and ready to ``step`` (a :class:`RewardGuard` env).

    The file is only read. Its attachments' states wait in ``env.unwrapped.attachments``
    and go to each component when one of that name attaches; the ``"snapshot"``
    attachment lists the loads and migrations behind the town.

    Args:
        path: a file written by :func:`save_snapshot`.
        root: confine ``path`` to this folder (see :func:`resolve_path`).
        **overrides: ``max_ticks`` (beyond the saved tick), ``obs_variant`` or ``render_mode``;
            other config keys would change the saved town and are refused.

    Raises:
        SnapshotError: one line naming the file and what to do: path outside the root,
            missing, truncated or corrupt file, newer schema, config identity that differs
            with no registered migration, or a refused override.

    """
    from townlet_env.env import TownletParallelEnv
    from townlet_env.rewards.guard import RewardGuard

    target = resolve_path(path, root)
    refused = sorted(set(overrides) - LOAD_OVERRIDES)
    if refused:
        raise SnapshotError(f"{path}: cannot override {refused} on load (it would not be the saved town); "
                            f"allowed: {sorted(LOAD_OVERRIDES)}")  # fmt: skip
    header, arrays = read(target)
    config, state, applied = _rebuild(target, header, arrays)
    render_mode = overrides.pop("render_mode", None)
    config = _with_overrides(target, config, int(header["tick"]), overrides)
    town = TownletParallelEnv(config, render_mode=render_mode)
    env = RewardGuard(town)
    try:
        town.world = world_from_state(state["world"], town.world)
        town.load_state_dict(state["env"])
        if state["guard"] is not None:
            env.load_state_dict(state["guard"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"{path}: the saved state does not fit its config ({exc}); the file is damaged") from None
    town.attachments.restore(state["attachments"])
    provenance = Provenance()
    town.attachments.attach(PROVENANCE, provenance)
    provenance.migrations.extend(applied)
    provenance.loads.append({"path": str(target), "tick": int(header["tick"]), "created": header.get("created")})
    return env


def _guard_of(env: Any) -> Any:
    """The :class:`RewardGuard` among ``env``'s wrappers, or ``None`` (a bare core env)."""
    from townlet_env.rewards.guard import RewardGuard

    while isinstance(env, RewardGuard) or hasattr(env, "env"):
        if isinstance(env, RewardGuard):
            return env
        env = env.env
    return None


def _build(config: dict[str, Any]) -> tuple[TownConfig | None, str]:
    """The config and its identity, or ``None`` and why it does not build here."""
    try:
        built = TownConfig.model_validate(config)
        return built, built.identity()
    except ValidationError as exc:
        return None, f"no longer validates ({exc.errors()[0]['loc']}: {exc.errors()[0]['msg']})"
    except OSError as exc:
        return None, f"names a map or manifest that cannot be read ({exc})"


def _rebuild(target: Path, header: dict[str, Any], arrays: dict[str, Any]) -> tuple[TownConfig, Any, list[Any]]:
    """The saved config (migrated if needed), the state tree and the migrations applied."""
    node = str(header["config_identity"])
    data = SnapshotData(config=header["config"], state=join_tree(header["state"], arrays))
    applied: list[dict[str, str]] = []
    while True:
        config, identity = _build(data.config)
        if config is not None and identity == node:
            return config, data.state, applied
        step = migration_from(node)
        if step is None or any(a["from"] == node for a in applied):
            now = f"builds identity {identity}" if config is not None else identity
            via = f" after migrations {[a['name'] for a in applied]}" if applied else ""
            raise SnapshotError(
                f"{target}: saved under config identity {node}, but its config{via} {now} (the map, manifest or "
                f"config changed); load it with the files it was saved with, or register a migration from {node}"
            )
        data = step.fn(data)
        applied.append({"from": node, "to": step.to_identity, "name": step.name})
        node = step.to_identity


def _with_overrides(target: Path, config: TownConfig, tick: int, overrides: dict[str, Any]) -> TownConfig:
    if not overrides:
        return config
    if "max_ticks" in overrides and not (isinstance(overrides["max_ticks"], int) and overrides["max_ticks"] > tick):
        raise SnapshotError(
            f"{target}: max_ticks={overrides['max_ticks']!r} must be an int above the saved tick {tick}"
        )
    try:
        return TownConfig.model_validate({**config.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SnapshotError(f"{target}: override {first['loc']}: {first['msg']}") from None
