"""State trees of the parts that do not carry ``state_dict`` methods: RNGs and the world.

The world's arrays and scalars are taken from the :class:`WorldState` dataclass fields, so
a field added to the state travels in snapshots without a change here; ``kernels`` (a
derived cache, rebuilt on first use) and ``n_agents`` (derived) are left out.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from townlet_env.snapshots.format import SnapshotError
from townlet_env.world.state import WorldState

_BIT_GENERATORS = {cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox,
                                                 np.random.SFC64, np.random.MT19937)}  # fmt: skip
_DERIVED = {"kernels", "n_agents"}


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state (JSON ints, big ones included)."""
    return dict(rng.bit_generator.state)


def rng_from_state(state: Any, where: str) -> np.random.Generator:
    """A generator continuing exactly where the one that gave ``state`` stopped."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    cls = _BIT_GENERATORS.get(str(name))
    if cls is None:
        raise SnapshotError(f"{where}: unknown bit generator {name!r}; expected one of {sorted(_BIT_GENERATORS)}")
    bit_generator = cls()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise SnapshotError(f"{where}: bad RNG state ({exc})") from None
    return np.random.Generator(bit_generator)


def world_state_dict(world: WorldState) -> dict[str, Any]:
    """Every field of ``world`` (arrays copied), the RNG as its bit-generator state."""
    out: dict[str, Any] = {}
    for f in fields(world):
        if f.name in _DERIVED:
            continue
        value = getattr(world, f.name)
        if isinstance(value, np.random.Generator):
            out[f.name] = rng_state(value)
        elif isinstance(value, np.ndarray):
            out[f.name] = value.copy()
        else:
            out[f.name] = int(value)
    return out


def world_from_state(state: dict[str, Any], template: WorldState) -> WorldState:
    """A new :class:`WorldState` from ``state``; each array must match ``template``'s dtype and shape.

    ``template`` is a world of the same rules and seat count (a freshly built env's), so a
    snapshot whose arrays do not fit the config it names is refused rather than run.
    """
    values: dict[str, Any] = {}
    for f in fields(template):
        if f.name in _DERIVED:
            continue
        if f.name not in state:
            raise SnapshotError(f"world.{f.name}: missing from the snapshot; it was written by another townlet")
        saved, like = state[f.name], getattr(template, f.name)
        if isinstance(like, np.random.Generator):
            values[f.name] = rng_from_state(saved, f"world.{f.name}")
        elif isinstance(like, np.ndarray):
            if not isinstance(saved, np.ndarray) or saved.dtype != like.dtype or saved.shape != like.shape:
                got = f"{saved.dtype}{list(saved.shape)}" if isinstance(saved, np.ndarray) else type(saved).__name__
                raise SnapshotError(f"world.{f.name}: saved {got}, the config builds {like.dtype}{list(like.shape)}")
            values[f.name] = np.array(saved, copy=True)  # writable, owned: kernels write in place
        else:
            values[f.name] = int(saved)
    return WorldState(**values)
