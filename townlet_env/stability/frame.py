"""What the stability analyzers read: the finished tick as arrays, and rolling windows.

:func:`frame_of` turns the env after a step into a :class:`Frame` once per tick (the
event list becomes one float array and a count per event kind), so every analyzer works
on arrays; :class:`Ring` keeps the last ``size`` values of per-tick series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from townlet_env.world.events import EventKind

N_KINDS = max(EventKind) + 1
_NO_EVENTS = np.zeros((0, 6))
_NO_COUNTS = np.zeros(N_KINDS, np.int64)
_NO_EVENTS.flags.writeable = _NO_COUNTS.flags.writeable = False


class Frame(NamedTuple):
    """The finished tick as arrays (views of the env's, never copies; read only)."""

    tick: int
    alive: np.ndarray  # bool[N]
    needs: np.ndarray  # float32[N, 3]
    option: np.ndarray  # int8[N]
    rewards: np.ndarray  # float32[N] engine totals this tick
    reasons: np.ndarray  # int8[N] termination reason this tick, 0 none (an ended seat still earned a reward)
    waiting: np.ndarray  # int32[N] object queued for, -1 none
    joined_tick: np.ndarray  # int32[N]
    exit_pending: np.ndarray  # bool[N]
    tie_other: np.ndarray  # int32[N, K]
    tie_vals: np.ndarray  # float32[N, K, 3]
    events: np.ndarray  # float64[E, 6]: tick, kind, agent, other, obj, value
    counts: np.ndarray  # int64[N_KINDS] events of each kind this tick


def frame_of(town: Any) -> Frame:
    """The :class:`Frame` of ``town`` (a ``TownletParallelEnv``) after its last step."""
    w = town.world
    if town.last_events:
        events = np.array(town.last_events, dtype=np.float64)
        counts = np.bincount(events[:, 1].astype(np.int64), minlength=N_KINDS)
    else:  # the common quiet tick: shared empty arrays (read only)
        events, counts = _NO_EVENTS, _NO_COUNTS
    return Frame(
        w.tick, w.alive, w.needs, w.option, town.last_rewards, town.last_termination_reasons, w.waiting, w.joined_tick,
        w.exit_pending, w.tie_other, w.tie_vals, events, counts,
    )  # fmt: skip


class Ring:
    """The last ``size`` per-tick values of ``width`` series and their running totals.

    Rows are Python tuples in a list (cheaper to push than NumPy rows); ``push`` overwrites
    the oldest row and updates ``total`` by the difference, so a window's sum costs
    nothing to read. Integer series (``exact``) stay exact; float totals are recomputed
    with ``math.fsum`` each time the ring wraps, so rounding never accumulates past one
    lap. ``state()``/``load()`` carry rows, position and totals as arrays.
    """

    def __init__(self, size: int, width: int = 1, exact: bool = True) -> None:
        self.exact = exact
        self.dtype = np.int64 if exact else np.float64
        self.size, self.width = size, width
        self.rows: list[tuple[Any, ...]] = []
        self.pos = 0
        self.total: list[Any] = []
        self.reset()

    def push(self, *values: Any) -> None:
        """Append one tick's values (Python numbers, one per series)."""
        p = self.pos
        old = self.rows[p]
        self.rows[p] = values
        self.total = [t + v - o for t, v, o in zip(self.total, values, old, strict=True)]
        p += 1
        if p == self.size:
            p = 0
            if not self.exact:
                self.total = [math.fsum(column) for column in zip(*self.rows, strict=True)]
        self.pos = p

    def reset(self) -> None:
        zero = 0 if self.exact else 0.0
        self.rows = [(zero,) * self.width] * self.size
        self.pos = 0
        self.total = [zero] * self.width

    def state(self) -> dict[str, np.ndarray]:
        rows = np.array(self.rows, self.dtype).reshape(self.size, self.width)
        return {"buf": rows, "pos": np.array([self.pos]), "total": np.array(self.total, self.dtype)}

    def load(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state` (the caller has checked the shapes)."""
        self.rows = [tuple(row) for row in np.asarray(state["buf"], self.dtype).tolist()]
        self.pos = int(state["pos"][0])
        self.total = np.asarray(state["total"], self.dtype).tolist()
