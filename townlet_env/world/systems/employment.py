"""Employment: daily shifts, arrival on time / late / absent, wages, attendance.

An agent is *at work* while it runs its job's work affordance during the shift. Arrival
within ``grace_ticks`` of the start is on time; later is late (a one-off wallet penalty);
not arriving within ``absent_after_ticks`` marks the shift absent (a larger penalty and an
entry in the absence record that drives eviction). Wages are paid per tick at work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventKind, EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

WEEK = 7 * TICKS_PER_DAY


@dataclass(frozen=True)
class ShiftOutcome:
    """What employment did this tick, per seat (for rewards and KPIs)."""

    wage: np.ndarray  # float32[N] money earned this tick
    on_time: np.ndarray  # bool[N] arrived on time this tick
    late: np.ndarray  # bool[N] arrived late this tick
    absent: np.ndarray  # bool[N] marked absent this tick


def step_employment(state: WorldState, rules: Rules, log: EventLog) -> ShiftOutcome:
    n = state.n_agents
    if len(rules.job_start) == 0:
        zeros = np.zeros(n, dtype=bool)
        return ShiftOutcome(np.zeros(n, np.float32), zeros, zeros, zeros)
    cfg = rules.config.employment
    minute = state.tick % TICKS_PER_DAY
    has = (state.job >= 0) & state.alive
    j = np.where(has, state.job, 0)
    start, end = rules.job_start[j], rules.job_end[j]

    starting = has & (minute == start)
    if starting.any():
        state.arrived[starting] = False
        state.late[starting] = False
        state.absent[starting] = False
        state.on_time_ticks[starting] = 0

    in_shift = has & (minute >= start) & (minute < end)
    working = in_shift & (state.running == rules.job_affordance[j])
    since = minute - start
    newly = working & ~state.arrived
    on_time = newly & (since <= cfg.grace_ticks)
    late = newly & ~on_time & ~state.absent
    state.arrived |= newly
    state.late |= late
    state.on_time_ticks += working & ~state.late & ~state.absent
    wage = np.where(working, rules.job_wage[j], np.float32(0.0)).astype(np.float32)
    state.wallet += wage - np.where(late, rules.job_late_penalty[j], 0.0)

    absent = in_shift & ~state.arrived & ~state.absent & (since >= cfg.absent_after_ticks)
    if absent.any():
        state.absent |= absent
        state.wallet -= np.where(absent, rules.job_absence_penalty[j], 0.0)
        state.absences[absent] = np.roll(state.absences[absent], 1, axis=1)
        state.absences[absent, 0] = state.tick
        chronic = absent & (state.absences.min(axis=1) > state.tick - WEEK) & ~state.exit_pending
        state.exit_pending |= chronic
        for i in np.flatnonzero(absent).tolist():
            log.emit(EventKind.SHIFT_ABSENT, i)
        for i in np.flatnonzero(chronic).tolist():
            log.emit(EventKind.EXIT_QUEUED, i)
    for i in np.flatnonzero(newly).tolist():
        kind = EventKind.SHIFT_ON_TIME if on_time[i] else EventKind.SHIFT_LATE
        log.emit(kind, i, value=float(since[i]))

    ending = has & (minute == end - 1)
    if ending.any():
        state.shifts += ending
        state.late_shifts += ending & (state.late | state.absent | ~state.arrived)
        share = state.on_time_ticks / np.maximum(end - start, 1)
        # Exponential mean with weight 1/3: the last three shifts dominate.
        state.attendance = np.where(ending, (2 * state.attendance + share) / 3, state.attendance).astype(
            np.float32
        )
    np.maximum(state.wallet, 0.0, out=state.wallet)
    return ShiftOutcome(wage, on_time, late, absent)
