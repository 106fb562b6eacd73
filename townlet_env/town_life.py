"""Town-life KPIs per sim day: queue conflicts, strong ties, and conflicts that escalate.

:class:`TownLifeTracker` is fed like :class:`~townlet_env.kpis.KpiTracker` (once per tick
after ``step``, with the world state and ``env.unwrapped.last_events``) and reports one
:class:`DayLife` per sim day. Definitions:

* **conflicts**: ``QUEUE_CONFLICT`` events during the day.
* **tie_share**: at the day's last tick seen, the share of living seats holding a tie whose
  |trust| or rivalry exceeds ``tie_threshold`` (0.3), as ``KpiReport.ties_over_0_3``.
* **escalated**: a conflict between waiter ``a`` and holder ``b`` at tick ``t`` *escalates to
  repeated avoidance* when the pair records at least ``repeats`` (2) avoidance events
  (``RIVAL_AVOIDED`` or ``CHAT_BLOCKED``, by either of them toward the other) in the ticks
  ``(t, t + 1440]`` (a conflict near the end of the run has only the ticks that were seen).
  **escalation** is the day's escalated conflicts over its conflicts (0.0 without conflicts).

Design targets (DESIGN.md, section 6): conflicts > 0 every day, tie share >= 0.6, escalation < 0.2.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import Event, EventKind
from townlet_env.world.state import WorldState

_AVOIDANCE = (EventKind.RIVAL_AVOIDED, EventKind.CHAT_BLOCKED)


@dataclass(frozen=True)
class DayLife:
    """One sim day's town-life figures (see the module docstring)."""

    day: int
    conflicts: int
    tie_share: float
    escalated: int
    escalation: float
    avoidances: int


def tie_share(state: WorldState, threshold: float = 0.3) -> float:
    """Share of living seats with a tie whose |trust| or rivalry exceeds ``threshold``."""
    if not state.alive.any():
        return 0.0
    vals = state.tie_vals
    strong = (state.tie_other >= 0) & ((np.abs(vals[..., 0]) > threshold) | (vals[..., 2] > threshold))
    return float(strong.any(axis=1)[state.alive].mean())


class TownLifeTracker:
    """Accumulates conflicts, avoidances and end-of-day tie shares.

    Args:
        tie_threshold: |trust| or rivalry a tie must exceed to count.
        repeats: avoidance events within a day after a conflict that make it escalate.

    """

    def __init__(self, tie_threshold: float = 0.3, repeats: int = 2) -> None:
        self.tie_threshold = tie_threshold
        self.repeats = repeats
        self._conflicts: list[tuple[int, int, int]] = []  # (tick, waiter, holder)
        self._avoid: dict[tuple[int, int], list[int]] = defaultdict(list)  # pair -> ticks
        self._ties: dict[int, float] = {}
        self._last_tick = -1

    def update(self, state: WorldState, events: Iterable[Event]) -> None:
        """Account one tick: ``state`` after the step and the tick's ``events``."""
        for e in events:
            if e.kind == EventKind.QUEUE_CONFLICT:
                self._conflicts.append((e.tick, e.agent, e.other))
            elif e.kind in _AVOIDANCE:
                self._avoid[_pair(e.agent, e.other)].append(e.tick)
        tick = state.tick - 1  # the tick just simulated
        self._last_tick = tick
        self._ties[tick // TICKS_PER_DAY] = tie_share(state, self.tie_threshold)

    def escalates(self, tick: int, a: int, b: int) -> bool:
        """Whether the conflict of ``a`` and ``b`` at ``tick`` escalated (module docstring)."""
        ticks = np.asarray(self._avoid.get(_pair(a, b), ()), dtype=np.int64)
        return int(((ticks > tick) & (ticks <= tick + TICKS_PER_DAY)).sum()) >= self.repeats

    def days(self) -> list[DayLife]:
        """One :class:`DayLife` per sim day seen, in order."""
        out = []
        for day in sorted(self._ties):
            today = [c for c in self._conflicts if c[0] // TICKS_PER_DAY == day]
            escalated = sum(self.escalates(*c) for c in today)
            avoid = sum(1 for ticks in self._avoid.values() for t in ticks if t // TICKS_PER_DAY == day)
            out.append(
                DayLife(
                    day=day,
                    conflicts=len(today),
                    tie_share=self._ties[day],
                    escalated=escalated,
                    escalation=escalated / len(today) if today else 0.0,
                    avoidances=avoid,
                )
            )
        return out


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)
