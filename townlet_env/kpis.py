"""Product KPIs (how well a town lives: self-sufficiency, punctuality, returns), measured the same way by every caller.

One :class:`KpiTracker` serves the scripted demo, training evaluation and the promotion
gate. Call :meth:`KpiTracker.update` once per tick after ``step`` with the world state,
the tick's events (``env.unwrapped.last_events``) and the guarded rewards per seat, then
:meth:`KpiTracker.report` for a frozen, JSON-serialisable :class:`KpiReport`.

Definitions:

* **self_sufficiency**: share of identities (a seat's occupants, counted separately
  across respawns; only those alive for at least one tick) whose needs were *all* above
  ``need_floor`` (0.3) on at least ``ok_share`` (95 %) of the ticks they were alive.
* **shifts_scheduled**: shifts (seat, identity, sim day) with an ``SHIFT_ON_TIME``,
  ``SHIFT_LATE`` or ``SHIFT_ABSENT`` event. A shift whose holder died before it could be
  marked absent is not counted.
* **lateness**: share of scheduled shifts with a ``SHIFT_LATE`` or ``SHIFT_ABSENT`` event.
* **attendance**: share of scheduled shifts the identity arrived at (on time or late).
* **starvation_incidents** / **evictions**: ``FAINT`` / ``EVICTION`` events.
* **ties_over_0_3**: share of living seats, in the state last passed to ``update``, with a
  tie whose |trust| or rivalry exceeds ``tie_threshold`` (0.3).
* **mean_daily_return**: mean over seats of the seat's summed reward per sim day
  (``daily_return_per_seat`` lists each seat).
* **queue_conflicts**: ``QUEUE_CONFLICT`` events.
* **stuck_reservations**: object-ticks at which an object is held by a seat that is not
  alive or is not using that object (0 in a healthy town).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import Event, EventKind
from townlet_env.world.state import WorldState

_SHIFT_KINDS = (EventKind.SHIFT_ON_TIME, EventKind.SHIFT_LATE, EventKind.SHIFT_ABSENT)


@dataclass(frozen=True)
class KpiReport:
    """KPIs over the ticks seen by a :class:`KpiTracker` (``dataclasses.asdict`` -> JSON)."""

    days: float
    ticks: int
    identities: int
    self_sufficiency: float
    needs_ok_share: float  #: share of alive agent-ticks with every need above the floor
    shifts_scheduled: int
    lateness: float
    attendance: float
    starvation_incidents: int
    evictions: int
    ties_over_0_3: float
    mean_daily_return: float
    daily_return_per_seat: tuple[float, ...]
    queue_conflicts: int
    stuck_reservations: int


class KpiTracker:
    """Accumulates KPIs tick by tick over a fixed number of seats.

    Args:
        n_seats: seats in the town (``len(env.possible_agents)``).
        need_floor: a need at or below this counts as not self-sufficient.
        ok_share: share of alive ticks an identity must stay above the floor.
        tie_threshold: |trust| or rivalry a tie must exceed to count.

    """

    def __init__(self, n_seats: int, need_floor: float = 0.3, ok_share: float = 0.95, tie_threshold: float = 0.3):
        self.n_seats = n_seats
        self.need_floor = need_floor
        self.ok_share = ok_share
        self.tie_threshold = tie_threshold
        self.ticks = 0
        self._generation = np.zeros(n_seats, dtype=np.int64)
        self._alive_ticks = np.zeros(n_seats, dtype=np.int64)
        self._ok_ticks = np.zeros(n_seats, dtype=np.int64)
        self._ended: list[tuple[int, int]] = []  # (alive ticks, ok ticks) of past identities
        self._return = np.zeros(n_seats, dtype=np.float64)
        self._shifts: set[tuple[int, int, int]] = set()
        self._late: set[tuple[int, int, int]] = set()
        self._arrived: set[tuple[int, int, int]] = set()
        self._counts = dict.fromkeys((EventKind.FAINT, EventKind.EVICTION, EventKind.QUEUE_CONFLICT), 0)
        self._stuck = 0
        self._last: WorldState | None = None

    def update(self, state: WorldState, events: Iterable[Event], rewards: np.ndarray) -> None:
        """Account one tick: ``state`` after the step, its ``events`` and per-seat ``rewards``."""
        alive = state.alive
        changed = state.generation != self._generation
        if changed.any():
            for i in np.flatnonzero(changed).tolist():
                if self._alive_ticks[i]:
                    self._ended.append((int(self._alive_ticks[i]), int(self._ok_ticks[i])))
            self._alive_ticks[changed] = 0
            self._ok_ticks[changed] = 0
            self._generation[:] = state.generation
        self._alive_ticks += alive
        self._ok_ticks += alive & (state.needs > self.need_floor).all(axis=1)
        self._return += np.asarray(rewards, dtype=np.float64)
        held = np.flatnonzero(state.holder >= 0)
        if held.size:
            who = state.holder[held]
            self._stuck += int((~alive[who] | (state.using[who] != held)).sum())
        self.ticks += 1
        self._last = state
        for e in events:
            kind = e.kind
            if kind in self._counts:
                self._counts[kind] += 1
            elif kind in _SHIFT_KINDS:
                key = (e.agent, int(state.generation[e.agent]), e.tick // TICKS_PER_DAY)
                self._shifts.add(key)
                if kind == EventKind.SHIFT_ON_TIME:
                    self._arrived.add(key)
                else:
                    self._late.add(key)
                    if kind == EventKind.SHIFT_LATE:
                        self._arrived.add(key)

    def report(self) -> KpiReport:
        """The KPIs so far (rates are 0.0 when there is nothing to rate)."""
        alive_ticks = [*(a for a, _ in self._ended), *self._alive_ticks[self._alive_ticks > 0].tolist()]
        ok_ticks = [*(o for _, o in self._ended), *self._ok_ticks[self._alive_ticks > 0].tolist()]
        a = np.asarray(alive_ticks, dtype=np.float64)
        o = np.asarray(ok_ticks, dtype=np.float64)
        days = self.ticks / TICKS_PER_DAY
        daily = self._return / days if days else np.zeros(self.n_seats)
        n_shifts = len(self._shifts)
        return KpiReport(
            days=days,
            ticks=self.ticks,
            identities=len(a),
            self_sufficiency=float((o >= self.ok_share * a).mean()) if len(a) else 0.0,
            needs_ok_share=float(o.sum() / a.sum()) if a.sum() else 0.0,
            shifts_scheduled=n_shifts,
            lateness=len(self._late) / n_shifts if n_shifts else 0.0,
            attendance=len(self._arrived) / n_shifts if n_shifts else 0.0,
            starvation_incidents=self._counts[EventKind.FAINT],
            evictions=self._counts[EventKind.EVICTION],
            ties_over_0_3=self._ties_share(),
            mean_daily_return=float(daily.mean()) if self.n_seats else 0.0,
            daily_return_per_seat=tuple(float(v) for v in daily),
            queue_conflicts=self._counts[EventKind.QUEUE_CONFLICT],
            stuck_reservations=self._stuck,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything the tracker accumulated, as JSON values and arrays (for snapshots).

        The last state seen is not kept: the ties share is read from the next ``update``'s.
        """
        return {
            "ticks": self.ticks,
            "generation": self._generation.copy(),
            "alive_ticks": self._alive_ticks.copy(),
            "ok_ticks": self._ok_ticks.copy(),
            "ended": [list(e) for e in self._ended],
            "return": self._return.copy(),
            "shifts": sorted(list(k) for k in self._shifts),
            "late": sorted(list(k) for k in self._late),
            "arrived": sorted(list(k) for k in self._arrived),
            "counts": {kind.name: n for kind, n in self._counts.items()},
            "stuck": self._stuck,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output (seat counts must match)."""
        generation = np.asarray(state["generation"], dtype=np.int64)
        if generation.shape != self._generation.shape:
            raise ValueError(f"KPI state: {generation.shape[0]} seats saved, this tracker has {self.n_seats}")
        self.ticks = int(state["ticks"])
        self._generation[:] = generation
        self._alive_ticks[:] = np.asarray(state["alive_ticks"], dtype=np.int64)
        self._ok_ticks[:] = np.asarray(state["ok_ticks"], dtype=np.int64)
        self._ended = [(int(a), int(o)) for a, o in state["ended"]]
        self._return[:] = np.asarray(state["return"], dtype=np.float64)
        self._shifts = {(int(a), int(g), int(d)) for a, g, d in state["shifts"]}
        self._late = {(int(a), int(g), int(d)) for a, g, d in state["late"]}
        self._arrived = {(int(a), int(g), int(d)) for a, g, d in state["arrived"]}
        self._counts = {EventKind[name]: int(n) for name, n in state["counts"].items()}
        self._stuck = int(state["stuck"])

    def _ties_share(self) -> float:
        state = self._last
        if state is None or not state.alive.any():
            return 0.0
        vals = state.tie_vals
        strong = (state.tie_other >= 0) & (
            (np.abs(vals[..., 0]) > self.tie_threshold) | (vals[..., 2] > self.tie_threshold)
        )
        return float(strong.any(axis=1)[state.alive].mean())
