"""Migrations: how a snapshot saved under one config identity loads under another.

A config identity (``TownConfig.identity()``) hashes the config, the map and the manifest,
so editing any of them (or a config field's default) makes older snapshots refuse to load.
When the change is known to be safe, or the saved state can be converted, register a
migration from the old identity to the new one::

    def add_comment(data: SnapshotData) -> SnapshotData:
        return data  # the manifest only gained a comment: nothing in the state changes

    register_migration(OLD_IDENTITY, NEW_IDENTITY, add_comment)

On load, migrations are chained from the saved identity (one registered per source
identity) until the config rebuilt from the (migrated) snapshot has the identity reached;
each applied step is recorded in the loaded town's provenance and in later snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class SnapshotData:
    """What a migration may change: the saved config (``model_dump``) and the state tree."""

    config: dict[str, Any]
    state: dict[str, Any]


@dataclass(frozen=True)
class Migration:
    """One registered step, ``from_identity`` to ``to_identity``."""

    from_identity: str
    to_identity: str
    fn: Callable[[SnapshotData], SnapshotData]
    name: str


_REGISTRY: dict[str, Migration] = {}


def register_migration(
    from_identity: str, to_identity: str, fn: Callable[[SnapshotData], SnapshotData], *, name: str | None = None
) -> Migration:
    """Register ``fn`` to carry snapshots saved under ``from_identity`` to ``to_identity``.

    Raises:
        ValueError: the two identities are equal, or a migration from ``from_identity``
            is already registered (unregister it first).

    """
    if from_identity == to_identity:
        raise ValueError(f"register_migration: from and to are both {from_identity[:12]}; a migration must change it")
    if from_identity in _REGISTRY:
        raise ValueError(
            f"register_migration: a migration from {from_identity[:12]} is registered "
            f"({_REGISTRY[from_identity].name}); call unregister_migration first"
        )
    label = name if name is not None else f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', fn)}"
    migration = Migration(from_identity, to_identity, fn, label)
    _REGISTRY[from_identity] = migration
    return migration


def unregister_migration(from_identity: str) -> None:
    """Forget the migration from ``from_identity`` (no error if there is none)."""
    _REGISTRY.pop(from_identity, None)


def migration_from(identity: str) -> Migration | None:
    """The migration registered from ``identity``, if any."""
    return _REGISTRY.get(identity)
