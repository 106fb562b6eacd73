"""Exact snapshots of a running town: save it mid-episode, load it elsewhere, continue bit for bit.

* :func:`save_snapshot` / :func:`load_snapshot`: one ``.npz`` file, no pickle, written
  atomically; see :mod:`townlet_env.snapshots.format` for the layout.
* :func:`register_migration`: let snapshots of an older config identity load.
* :class:`Autosaver`: the ``"autosave"`` attachment (cadence and retention).

What a snapshot holds: every :class:`~townlet_env.world.state.WorldState` field (arrays,
``tick``, ``exits_today``, the world RNG's bit-generator state), the core env's
``state_dict()`` (seats in play, identities, last rewards, reward terms, termination
reasons and events, the action mask, the episode RNG and the action spaces' RNGs), the
reward guard's episode returns, and every attachment's ``state_dict()``. Not held: the
kernel cache (``WorldState.kernels``), rebuilt on first use.
"""

from townlet_env.snapshots.autosave import Autosaver
from townlet_env.snapshots.core import DEFAULT_ROOT, LOAD_OVERRIDES, Provenance, load_snapshot, save_snapshot
from townlet_env.snapshots.format import SCHEMA_VERSION, SnapshotError
from townlet_env.snapshots.migrations import Migration, SnapshotData, register_migration, unregister_migration

__all__ = [
    "DEFAULT_ROOT",
    "LOAD_OVERRIDES",
    "SCHEMA_VERSION",
    "Autosaver",
    "Migration",
    "Provenance",
    "SnapshotData",
    "SnapshotError",
    "load_snapshot",
    "register_migration",
    "save_snapshot",
    "unregister_migration",
]
