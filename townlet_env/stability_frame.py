"""What the stability analyzers read: the finished tick as arrays, and rolling windows.

:func:`frame_of` turns the env after a step into a :class:`Frame` once per tick (the
event list becomes one float array and a count per event kind), so every analyzer works
on arrays; :class:`Ring` keeps the last ``size`` values of per-tick series.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from townlet_env.world.events import EventKind

N_KINDS = max(EventKind) + 1


class Frame(NamedTuple):
    """The finished tick as arrays (views of the env's, never copies; read only)."""

    tick: int
    alive: np.ndarray  # bool[N]
    needs: np.ndarray  # float32[N, 3]
    option: np.ndarray  # int8[N]
    rewards: np.ndarray  # float32[N] engine totals this tick
    ended: np.ndarray  # bool[N] identity ended this tick (it still earned this tick's reward)
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
    events = np.array(town.last_events, dtype=np.float64).reshape(-1, 6)
    counts = np.bincount(events[:, 1].astype(np.int64), minlength=N_KINDS)
    ended = town.last_termination_reasons != 0
    return Frame(
        w.tick, w.alive, w.needs, w.option, town.last_rewards, ended, w.waiting, w.joined_tick,
        w.exit_pending, w.tie_other, w.tie_vals, events, counts,
    )  # fmt: skip


class Ring:
    """The last ``size`` per-tick values of ``width`` series: ``push`` overwrites the
    oldest slot, so ``totals()`` is always the window's sum. The buffer and position are
    arrays so an analyzer's state is arrays only.
    """

    def __init__(self, size: int, width: int = 1, dtype: Any = np.int64) -> None:
        self.buf = np.zeros((size, width), dtype=dtype)
        self.pos = np.zeros(1, np.int64)

    def push(self, *values: float) -> None:
        p = int(self.pos[0])
        self.buf[p] = values
        self.pos[0] = (p + 1) % len(self.buf)

    def totals(self) -> np.ndarray:
        return self.buf.sum(axis=0)
