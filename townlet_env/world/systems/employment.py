"""Employment: daily shifts, arrival on time / late / absent, wages, attendance.

An agent is *at work* while it runs its job's work affordance during the shift. Arrival
within ``grace_ticks`` of the start is on time; later is late (a one-off wallet penalty);
not arriving within ``absent_after_ticks`` marks the shift absent (a larger penalty and an
entry in the absence record that drives eviction). Wages are paid per tick at work.

Coworkers notice: an arrival greets those already at work (``coworker`` tie events); a late
arrival is helped by the on-time coworker it gets on best with (``COWORKER_HELPED``, a warm
tie event); an absent seat's shift is covered by the first coworker at work
(``SHIFT_COVERED``, a "took my shift" tie event that raises rivalry).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event, tie

WEEK = 7 * TICKS_PER_DAY


class ShiftOutcome(NamedTuple):
    """What employment did this tick, per seat (for rewards and KPIs)."""

    wage: np.ndarray  # float32[N] money earned this tick
    on_time: np.ndarray  # bool[N] arrived on time this tick
    late: np.ndarray  # bool[N] arrived late this tick
    absent: np.ndarray  # bool[N] marked absent this tick

    @classmethod
    def zeros(cls, n: int) -> ShiftOutcome:
        """Nothing earned, nobody arrived or absent, for ``n`` seats."""
        return cls(np.zeros(n, np.float32), *np.zeros((3, n), dtype=bool))


def emit_shift_events(
    state: WorldState, rules: Rules, on_time: np.ndarray, late: np.ndarray, absent: np.ndarray, log: EventLog
) -> None:
    """Events for arrivals and absences; absences also feed the eviction record."""
    since = state.tick % TICKS_PER_DAY - rules.job_start[np.maximum(state.job, 0)]
    for i in np.flatnonzero(on_time | late).tolist():
        log.emit(EventKind.SHIFT_ON_TIME if on_time[i] else EventKind.SHIFT_LATE, i, value=float(since[i]))
        # Arriving at work greets the coworkers already there (a tie event with each of them).
        present = _at_work(state, rules, i)
        for j in present.tolist():
            apply_event(state, rules, i, j, RelEvent.COWORKER, log)
        helpers = present[~state.late[present]]
        if late[i] and helpers.size:  # the on-time coworker it gets on best with shows it the ropes
            j = _closest(state, i, helpers)
            log.emit(EventKind.COWORKER_HELPED, j, other=i)
            apply_event(state, rules, j, i, RelEvent.COWORKER_HELPED, log)
    for i in np.flatnonzero(absent).tolist():
        cover = _at_work(state, rules, i)
        if cover.size:  # the first coworker at work takes over the absent seat's share
            j = int(cover[0])
            log.emit(EventKind.SHIFT_COVERED, j, other=i)
            apply_event(state, rules, j, i, RelEvent.SHIFT_COVERED, log)
        state.absences[i] = np.roll(state.absences[i], 1)
        state.absences[i, 0] = state.tick
        log.emit(EventKind.SHIFT_ABSENT, i)
        if state.absences[i].min() > state.tick - WEEK and not state.exit_pending[i]:
            state.exit_pending[i] = True
            log.emit(EventKind.EXIT_QUEUED, i)


def _at_work(state: WorldState, rules: Rules, i: int) -> np.ndarray:
    """The other seats of ``i``'s job at work now (arrived and running the job's affordance)."""
    job = state.job[i]
    present = np.flatnonzero((state.job == job) & state.arrived & (state.running == rules.job_affordance[job]))
    return present[present != i]


def _closest(state: WorldState, i: int, seats: np.ndarray) -> int:
    """Of ``seats``, the one ``i``'s tie rates best (trust + familiarity - rivalry); the lowest seat on a tie."""
    scores = [float(tie(state, i, int(j)) @ np.array([1.0, 1.0, -1.0], np.float32)) for j in seats]
    return int(seats[int(np.argmax(scores))])


@njit(cache=True)
def shift_kernel(s, r, tick, shift):
    """Advance every employed seat's shift; fill ``shift`` and return whether anyone arrived or was absent.

    ``s`` and ``r`` are the tick's state and rule records (``simulation.TickArrays`` and
    ``TickRules``); ``s.late``/``s.absent`` are the shift's flags, ``shift.late``/``shift.absent``
    what happened this tick.
    """
    alive, job, running, wallet, arrived = s.alive, s.job, s.running, s.wallet, s.arrived
    late_flag, absent_flag, on_time_ticks, attendance = s.late, s.absent, s.on_time_ticks, s.attendance
    shifts, late_shifts = s.shifts, s.late_shifts
    job_start, job_end, job_wage, job_aff = r.job_start, r.job_end, r.job_wage, r.job_affordance
    late_penalty, absence_penalty = r.job_late_penalty, r.job_absence_penalty
    grace, absent_after = r.grace_ticks, r.absent_after_ticks
    wage, on_time, late, absent = shift.wage, shift.on_time, shift.late, shift.absent
    minute = tick % TICKS_PER_DAY
    any_event = False
    for i in range(alive.shape[0]):
        j = job[i]
        if j < 0 or not alive[i]:
            continue
        start, end = job_start[j], job_end[j]
        if minute == start:
            arrived[i] = False
            late_flag[i] = False
            absent_flag[i] = False
            on_time_ticks[i] = 0
        if minute < start or minute >= end:
            continue
        since = minute - start
        if running[i] == job_aff[j]:
            if not arrived[i]:
                arrived[i] = True
                any_event = True
                if since <= grace:
                    on_time[i] = True
                elif not absent_flag[i]:
                    late[i] = True
                    late_flag[i] = True
                    wallet[i] -= late_penalty[j]
            if not late_flag[i] and not absent_flag[i]:
                on_time_ticks[i] += 1
            wage[i] = job_wage[j]
            wallet[i] += job_wage[j]
        elif not arrived[i] and not absent_flag[i] and since >= absent_after:
            absent_flag[i] = True
            absent[i] = True
            any_event = True
            wallet[i] -= absence_penalty[j]
        if minute == end - 1:
            shifts[i] += 1
            if late_flag[i] or absent_flag[i] or not arrived[i]:
                late_shifts[i] += 1
            # Exponential mean with weight 1/3: the last three shifts dominate.
            attendance[i] = (2.0 * attendance[i] + on_time_ticks[i] / max(end - start, 1)) / 3.0
        if wallet[i] < 0.0:
            wallet[i] = 0.0
    return any_event
