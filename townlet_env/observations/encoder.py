"""The one internal observation encoder; variants choose which of its blocks they emit.

Blocks, written for all seats by one compiled call (:func:`townlet_env.observations.blocks.encode`),
each by its own writer at columns looked up by feature name (:mod:`townlet_env.observations.features`):

* ``map``: egocentric ``w x w`` window per channel. Static channels (walls, objects) come
  from a padded buffer built once; ``agents`` marks tiles holding another living agent and
  ``occupied`` marks objects in use or queued for (held + queue length, / 3, capped at 1).
* ``self``: needs, money, time, shift, current option and activity, cooldowns, job and commute.
* ``landmarks``: first-step direction and path distance to the nearest object of each type,
  home, own bed and the current target, read from the precomputed navigation fields.
* ``social``: top friends (by trust + familiarity) and top rivals (by rivalry) with their
  relative position, then tie count, max trust and max rivalry.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

from townlet_env.jit import bind
from townlet_env.observations import blocks
from townlet_env.observations.blocks import AGENTS, OCCUPIED, STATIC
from townlet_env.observations.features import Columns, columns
from townlet_env.observations.layout import ObservationLayout
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


class StateArrays(NamedTuple):
    """The :class:`WorldState` arrays the encoder reads (same names), gathered once per state."""

    pos: np.ndarray
    alive: np.ndarray
    needs: np.ndarray
    wallet: np.ndarray
    job: np.ndarray
    home: np.ndarray
    option: np.ndarray
    commit_until: np.ndarray
    target: np.ndarray
    running: np.ndarray
    remaining: np.ndarray
    waiting: np.ndarray
    last_ok: np.ndarray
    arrived: np.ndarray
    late: np.ndarray
    absent: np.ndarray
    attendance: np.ndarray
    cooldown_until: np.ndarray
    holder: np.ndarray
    tie_other: np.ndarray
    tie_vals: np.ndarray


class TownArrays(NamedTuple):
    """Rules and town data the self and landmark writers read; fixed for an encoder."""

    max_ticks: int
    commit_ticks: int
    job_start: np.ndarray
    job_end: np.ndarray
    job_aff: np.ndarray
    job_type: np.ndarray
    aff_duration: np.ndarray
    dist: np.ndarray  # navigation fields: object types, then objects, then homes
    step: np.ndarray
    home_bed: np.ndarray
    n_types: int
    first_object_field: int
    first_home_field: int


class MapPlanes(NamedTuple):
    """The padded planes the map writer reads its windows from."""

    window: int  # 0: the variant has no map
    r: int  # padding on each side, window // 2
    static: np.ndarray  # float32[n_static, H + 2r, W + 2r]
    kinds: np.ndarray  # int8[C]: STATIC, AGENTS or OCCUPIED per channel
    plane: np.ndarray  # int64[C]: the channel's plane in ``static``
    agents: np.ndarray  # int32 scratch: living agents per tile, zero between calls
    busy: np.ndarray  # float32 scratch: object occupancy per tile, zero between calls
    obj_pos: np.ndarray


_gather = attrgetter(*StateArrays._fields)


def _map_planes(rules: Rules, map_channels: tuple[str, ...], window: int) -> MapPlanes:
    town = rules.town
    r = window // 2 if map_channels else 0
    h, w = town.shape
    types = rules.manifest.object_types
    static: list[np.ndarray] = []
    kinds, index = [], []
    for name in map_channels:
        plane = np.zeros((h + 2 * r, w + 2 * r), dtype=np.float32)
        if name == "blocked":
            plane[:] = 1.0
            plane[r : r + h, r : r + w] = ~town.walkable
        elif name == "objects":
            plane[town.obj_pos[:, 0] + r, town.obj_pos[:, 1] + r] = 1.0
        elif name.startswith("object_"):
            sel = town.obj_type == types.index(name.removeprefix("object_"))
            plane[town.obj_pos[sel, 0] + r, town.obj_pos[sel, 1] + r] = 1.0
        kinds.append({"agents": AGENTS, "occupied": OCCUPIED}.get(name, STATIC))
        index.append(len(static))
        static.append(plane)
    planes = np.stack(static) if static else np.zeros((1, 1, 1), dtype=np.float32)
    return MapPlanes(
        window=window if map_channels else 0,
        r=r,
        static=planes,
        kinds=np.array(kinds, dtype=np.int8),
        plane=np.array(index, dtype=np.int64),
        agents=np.zeros(planes.shape[1:], dtype=np.int32),
        busy=np.zeros(planes.shape[1:], dtype=np.float32),
        obj_pos=town.obj_pos,
    )


def _town_arrays(rules: Rules) -> TownArrays:
    town, cfg = rules.town, rules.config
    return TownArrays(
        max_ticks=cfg.max_ticks,
        commit_ticks=cfg.options.commit_ticks,
        job_start=rules.job_start,
        job_end=rules.job_end,
        job_aff=rules.job_affordance,
        job_type=rules.job_type,
        aff_duration=rules.aff_duration,
        dist=town.dist,
        step=town.step,
        home_bed=town.home_bed,
        n_types=town.n_types,
        first_object_field=town.first_object_field,
        first_home_field=town.first_home_field,
    )


class Encoder:
    """Encodes one layout's observation vectors from a :class:`WorldState`.

    Args:
        rules: The town's rules (and map).
        layout: The variant's published layout; every column is looked up in it by name.

    """

    def __init__(self, rules: Rules, layout: ObservationLayout) -> None:
        self.rules = rules
        self.layout = layout
        self.columns: Columns = columns(rules, layout)
        self._map = _map_planes(rules, layout.map_channels, layout.window)
        self._town = _town_arrays(rules)
        self._call: Callable[..., Any] = blocks.encode
        self._bound_to: WorldState | None = None
        self._state: StateArrays | None = None

    def encode(self, state: WorldState, out: np.ndarray) -> None:
        """Fill ``out`` (C-contiguous float32[N, size]) with every seat's observation."""
        if state is not self._bound_to:
            # Gathered and bound once per state: the kernel call is on the hot path, and the
            # state's arrays are written in place, never re-assigned (tests/test_simulation.py
            # checks that), so the record stays valid; a restored snapshot is a new state.
            # ``blocks.encode`` is looked up now, so a test that swaps the kernels for their
            # ``py_func`` is honoured.
            self._state = StateArrays(*_gather(state))
            self._call = bind(blocks.encode, out, state.tick, self._state, self._town, self._map, self.columns)
            self._bound_to = state
        self._call(out, state.tick, self._state, self._town, self._map, self.columns)
