"""One simulated tick: the systems in their documented order.

1. actions (option navigator or primitives), chats
2. queues hand free objects to waiters, who start their affordance
3. running affordances tick (per-tick effects, completion effects, hand-back)
4. queue conflicts (long waits raise rivalry; holders are never preempted)
5. needs decay
6. employment (arrival, wages, lateness, absence)
   (steps 3-6 run as one compiled call; their events and hooks follow in Python)
7. economy (daily restock, exit counter)
8. relationship decay
9. lifecycle: terminations (faint, capped evictions), then new identities into seats
   whose respawn delay has passed
10. the clock advances
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import lifecycle, options, queues
from townlet_env.world.systems.affordances import advance, after_finish, try_start
from townlet_env.world.systems.economy import step_economy
from townlet_env.world.systems.employment import ShiftOutcome, emit_shift_events, shift_kernel
from townlet_env.world.systems.lifecycle import pending_counts
from townlet_env.world.systems.needs import decay
from townlet_env.world.systems.option_mask import option_mask
from townlet_env.world.systems.primitives import primitive_mask, step_primitives
from townlet_env.world.systems.queues import age_waiters
from townlet_env.world.systems.relationships import decay_ties

_NONE = np.zeros(0, dtype=np.int64)


class TickOutcome(NamedTuple):
    """What one tick produced, per seat, for rewards, KPIs and infos."""

    shift: ShiftOutcome
    chat_partner: np.ndarray | None  # int32[N], -1 when the seat had no successful chat; None: no chat at all
    finished: np.ndarray  # seats whose affordance completed this tick
    finished_affordances: np.ndarray
    reasons: np.ndarray  # int8[N] termination reason (lifecycle.FAINT / EVICTED)
    ended: list[int]  # seats whose identity ended this tick (the nonzero reasons)
    respawned: np.ndarray  # seats refilled this tick


def action_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, A] for the config's action mode."""
    if rules.config.action_mode == "option":
        return option_mask(state, rules)
    return primitive_mask(state, rules)


def _bookkeeping(state: WorldState, rules: Rules, shift: ShiftOutcome) -> tuple[np.ndarray, np.ndarray, bool, int, int]:
    """Steps 4-7 in one compiled call; Python handles only what they report (events, hooks).

    Also counts identities that may end this tick and vacant seats due a new identity, so
    the lifecycle step is skipped entirely on the (common) ticks with neither.
    """
    cfg = rules.config
    return _bookkeeping_kernel(
        state.tick, state.tick + cfg.queues.cooldown_ticks, state.running, state.remaining, state.using, state.needs,
        state.stock, state.cooldown_until, state.holder, state.wait_age, state.last_ok, state.waiting,
        state.conflict_flag, state.joined_tick, state.alive, state.zero_ticks, state.job, state.wallet, state.arrived,
        state.late, state.absent, state.on_time_ticks, state.shifts, state.late_shifts, state.attendance,
        state.exit_pending, state.respawn_at, shift.wage, shift.on_time, shift.late, shift.absent,
        *rules.bookkeeping_constants,
    )  # fmt: skip


@njit(cache=True)
def _bookkeeping_kernel(
    tick, cooldown_end, running, remaining, using, needs, stock, cooldown_until, holder, wait_age, last_ok,
    waiting, conflict_flag, joined_tick, alive, zero_ticks, job, wallet, arrived, late_flag, absent_flag,
    on_time_ticks, shifts, late_shifts, attendance, exit_pending, respawn_at, wage, on_time, late, absent,
    per_tick, effects, produces, produce_target, aff_type, type_capacity, conflict_limit, decay_rates, job_start,
    job_end, job_wage, job_aff, late_penalty, absence_penalty, grace, absent_after, faint_after,
):  # fmt: skip
    done = advance(
        running, remaining, using, needs, stock, cooldown_until, holder, wait_age, last_ok, per_tick, effects,
        produces, produce_target, aff_type, type_capacity, cooldown_end,
    )  # fmt: skip
    over = age_waiters(waiting, wait_age, conflict_flag, joined_tick, tick, conflict_limit)
    decay(needs, decay_rates, alive, zero_ticks)
    events = False
    if job_start.shape[0] > 0:
        events = shift_kernel(
            tick, alive, job, running, wallet, arrived, late_flag, absent_flag, on_time_ticks, shifts, late_shifts,
            attendance, job_start, job_end, job_wage, job_aff, late_penalty, absence_penalty, grace, absent_after,
            wage, on_time, late, absent,
        )  # fmt: skip
    ending, due = pending_counts(alive, zero_ticks, exit_pending, respawn_at, faint_after, tick)
    return done, over, events, ending, due


def step_world(state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog) -> TickOutcome:
    """Advance the world one tick given one action per seat and the mask they were chosen under."""
    log.start_tick(state.tick)
    if rules.option_mode:
        partner = options.step_options(state, rules, actions, mask, log)
    else:
        partner = step_primitives(state, rules, actions, mask, log)
    winners, objs = queues.assign(state)
    if winners.size:
        started = try_start(state, rules, winners, objs, state.request[winners], log)
        options.complete_failed_starts(state, winners[~started])
    shift = ShiftOutcome(np.zeros(state.n_agents, np.float32), *np.zeros((3, state.n_agents), dtype=bool))
    done, over, shift_events, ending, due = _bookkeeping(state, rules, shift)
    finished, finished_affs = _NONE, _NONE
    if done.shape[0]:
        finished, finished_affs = after_finish(state, rules, done, log)
        if rules.option_mode:
            options.complete_finished(state, rules, finished)
    if over.shape[0]:
        queues.raise_conflicts(state, rules, over, log)
    if shift_events:
        emit_shift_events(state, rules, shift.on_time, shift.late, shift.absent, log)
    minute = state.tick % TICKS_PER_DAY
    if minute in rules.economy_minutes:
        step_economy(state, rules, log)
    if state.tick % rules.config.relationships.decay_interval == 0:
        decay_ties(state, rules)
    if ending or shift_events:  # shift events may have queued an eviction
        reasons = lifecycle.terminate(state, rules, log)
        ended = np.flatnonzero(reasons).tolist()
    else:
        reasons, ended = np.zeros(state.n_agents, dtype=np.int8), []
    respawned = lifecycle.respawn_due(state, rules, log) if due else _NONE
    state.tick += 1
    return TickOutcome(shift, partner, finished, finished_affs, reasons, ended, respawned)
