"""One simulated tick: ``step_world`` runs the phases of :data:`TICK_PHASES` in order.

:data:`TICK_PHASES` is the one list of the tick's phases; ``step_world``'s docstring numbers
it, and the comments in this module refer to phases by those numbers. Phases 3 to 6 run as
one compiled kernel over two typed records, :class:`TickArrays` (the state arrays they read
and write) and :class:`TickRules` (the rule arrays and scalars they read); the system
kernels they call take the same two records and read their fields by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit

from townlet_env.config import TICKS_PER_DAY
from townlet_env.jit import bind
from townlet_env.world.events import EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import lifecycle, options, queues
from townlet_env.world.systems.affordances import advance, after_finish, try_start
from townlet_env.world.systems.economy import reset_exit_counter, restock
from townlet_env.world.systems.employment import ShiftOutcome, emit_shift_events, shift_kernel
from townlet_env.world.systems.lifecycle import pending_counts
from townlet_env.world.systems.needs import decay
from townlet_env.world.systems.option_mask import option_mask
from townlet_env.world.systems.primitives import primitive_mask, step_primitives
from townlet_env.world.systems.queues import age_waiters
from townlet_env.world.systems.relationships import decay_ties

TICK_PHASES: tuple[str, ...] = (
    "actions: in option mode the navigator (a masked action continues the committed option, a new "
    "option cancels what was under way, targets are picked, agents walk and on arrival queue for a "
    "single-occupancy object or start at a shared one), in primitive mode moves and interactions "
    "(queue or start); in both, chats resolve here",
    "queues: each free single-occupancy object goes to its best waiter (the head of the queue, or a "
    "much needier waiter: a hand-over or a cut-in), who starts its affordance (precondition, price, "
    "stock); a failed start ends the waiter's option; a winner that did not need the object while a "
    "needier agent waits blocks it",
    "affordances: running affordances apply their per-tick effects and count down; those that end "
    "apply their completion effects and produce, free the object and start the cooldown of a "
    "single-occupancy type",
    "queue waits: waiters age; a wait that reaches conflict_wait_ticks raises one conflict "
    "(rivalry toward the holder, who is never preempted, scaled by the wait and the queue length)",
    "needs decay, clamped to [0, 1]; consecutive ticks with some need at 0 are counted",
    "employment: a shift's first minute clears the seat's shift record; arrival on time or late, "
    "wages per tick at work, absence after absent_after_ticks, attendance at the shift's last minute",
    "economy: at minute 0 the daily exit counter resets; at restock_minute objects restock",
    "relationships decay, every decay_interval ticks",
    "lifecycle: identities that fainted end, then evictions from the exit queue (oldest first, at "
    "most daily_exit_cap a day); then each vacant seat whose respawn delay has passed gets a new "
    "identity at a random entry tile (the delay is at least one tick, so a seat vacated in this "
    "phase stays vacant until a later tick)",
    "the clock advances one tick",
)

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


class TickArrays(NamedTuple):
    """The state arrays phases 3-6 read and write: one :class:`WorldState`'s own arrays, by name.

    Built once per state (the arrays are written in place, never re-assigned, so the
    references stay valid); the field names are the state's attribute names.
    """

    running: np.ndarray
    remaining: np.ndarray
    using: np.ndarray
    needs: np.ndarray
    stock: np.ndarray
    cooldown_until: np.ndarray
    holder: np.ndarray
    wait_age: np.ndarray
    last_ok: np.ndarray
    waiting: np.ndarray
    conflict_flag: np.ndarray
    joined_tick: np.ndarray
    alive: np.ndarray
    zero_ticks: np.ndarray
    job: np.ndarray
    wallet: np.ndarray
    arrived: np.ndarray
    late: np.ndarray
    absent: np.ndarray
    on_time_ticks: np.ndarray
    shifts: np.ndarray
    late_shifts: np.ndarray
    attendance: np.ndarray
    exit_pending: np.ndarray
    respawn_at: np.ndarray

    @classmethod
    def of(cls, state: WorldState) -> TickArrays:
        return cls(**{name: getattr(state, name) for name in cls._fields})


class TickRules(NamedTuple):
    """The rules phases 3-6 read: :class:`Rules` arrays (same names) and config scalars."""

    aff_per_tick: np.ndarray
    aff_effects: np.ndarray
    aff_produces: np.ndarray
    aff_produce_target: np.ndarray
    aff_type: np.ndarray
    type_capacity: np.ndarray
    decay: np.ndarray
    job_start: np.ndarray
    job_end: np.ndarray
    job_wage: np.ndarray
    job_affordance: np.ndarray
    job_late_penalty: np.ndarray
    job_absence_penalty: np.ndarray
    cooldown_ticks: int  # queues.cooldown_ticks
    conflict_wait_ticks: int  # queues.conflict_wait_ticks
    grace_ticks: int  # employment.grace_ticks
    absent_after_ticks: int  # employment.absent_after_ticks
    faint_after_ticks: int  # lifecycle.faint_after_ticks

    @classmethod
    def of(cls, rules: Rules) -> TickRules:
        cfg = rules.config
        return cls(
            aff_per_tick=rules.aff_per_tick,
            aff_effects=rules.aff_effects,
            aff_produces=rules.aff_produces,
            aff_produce_target=rules.aff_produce_target,
            aff_type=rules.aff_type,
            type_capacity=rules.type_capacity,
            decay=rules.decay,
            job_start=rules.job_start,
            job_end=rules.job_end,
            job_wage=rules.job_wage,
            job_affordance=rules.job_affordance,
            job_late_penalty=rules.job_late_penalty,
            job_absence_penalty=rules.job_absence_penalty,
            cooldown_ticks=cfg.queues.cooldown_ticks,
            conflict_wait_ticks=cfg.queues.conflict_wait_ticks,
            grace_ticks=cfg.employment.grace_ticks,
            absent_after_ticks=cfg.employment.absent_after_ticks,
            faint_after_ticks=cfg.lifecycle.faint_after_ticks,
        )


class _Bound(NamedTuple):
    """The compiled phases bound to one state's records (kept in ``WorldState.kernels``)."""

    arrays: TickArrays
    consts: TickRules
    shift: ShiftOutcome  # phase 6's outcome, refilled every tick (read within the tick only)
    run: Callable[[TickArrays, TickRules, int, ShiftOutcome], tuple[np.ndarray, np.ndarray, bool, int, int]]


def _bound(state: WorldState, rules: Rules) -> _Bound:
    """The bound phases 3-6 of ``state`` under ``rules``, built on the state's first tick."""
    return state.bound("tick", rules, _bind_phases)


def _bind_phases(state: WorldState, rules: Rules) -> _Bound:
    arrays, consts = TickArrays.of(state), TickRules.of(rules)
    # Looked up now, not at import: the py_func test swaps the module's kernels first.
    shift = ShiftOutcome.zeros(state.n_agents)
    run = bind(_compiled_phases, arrays, consts, state.tick, shift)
    return _Bound(arrays, consts, shift, run)


@njit(cache=True)
def _compiled_phases(s, r, tick, shift):
    """Phases 3-6 on the records ``s`` (:class:`TickArrays`) and ``r`` (:class:`TickRules`).

    Clears and fills ``shift`` (phase 6's outcome) and returns what Python must follow up: the
    (agent, object, affordance) rows that finished (phase 3), the waiters that reached the
    conflict limit (phase 4), whether phase 6 had arrivals or absences, and for phase 9 the
    counts of identities that may end this tick and of vacant seats due a new identity.
    """
    shift.wage[:] = 0.0
    shift.on_time[:] = False
    shift.late[:] = False
    shift.absent[:] = False
    done = advance(s, r, tick)
    over = age_waiters(s, r, tick)
    decay(s, r)
    events = False
    if r.job_start.shape[0] > 0:
        events = shift_kernel(s, r, tick, shift)
    ending, due = pending_counts(s, r, tick)
    return done, over, events, ending, due


def action_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, A] for the config's action mode."""
    if rules.option_mode:
        return option_mask(state, rules)
    return primitive_mask(state, rules)


def step_world(state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog) -> TickOutcome:
    # The docstring is built below from TICK_PHASES.
    log.start_tick(state.tick)
    # phase 1
    if rules.option_mode:
        partner = options.step_options(state, rules, actions, mask, log)
    else:
        partner = step_primitives(state, rules, actions, mask, log)
    # phase 2
    winners, objs = queues.assign(state, rules, log)
    if winners.size:
        started = try_start(state, rules, winners, objs, state.request[winners], log)
        options.complete_failed_starts(state, winners[~started])
        queues.note_blocking(state, rules, winners[started], objs[started], log)
    # phases 3-6, compiled; then their events and hooks, in phase order
    bound = _bound(state, rules)
    shift = bound.shift
    done, over, shift_events, ending, due = bound.run(bound.arrays, bound.consts, state.tick, shift)
    finished, finished_affs = _NONE, _NONE
    if done.shape[0]:  # phase 3
        finished, finished_affs = after_finish(state, rules, done, log)
        if rules.option_mode:
            options.complete_finished(state, rules, finished)
    if over.shape[0]:  # phase 4
        queues.raise_conflicts(state, rules, over, log)
    if shift_events:  # phase 6
        emit_shift_events(state, rules, shift.on_time, shift.late, shift.absent, log)
    # phase 7
    minute = state.tick % TICKS_PER_DAY
    if minute == 0:
        reset_exit_counter(state)
    if minute == rules.config.economy.restock_minute:
        restock(state, rules, log)
    # phase 8
    if state.tick % rules.config.relationships.decay_interval == 0:
        decay_ties(state, rules)
    # phase 9, skipped on the (common) ticks where the kernel counted nobody to end or seat
    if ending or shift_events:  # phase 6's events may have queued an eviction
        reasons = lifecycle.terminate(state, rules, log)
        ended = np.flatnonzero(reasons).tolist()
    else:
        reasons, ended = np.zeros(state.n_agents, dtype=np.int8), []
    respawned = lifecycle.respawn_due(state, rules, log) if due else _NONE
    # phase 10
    state.tick += 1
    return TickOutcome(shift, partner, finished, finished_affs, reasons, ended, respawned)


step_world.__doc__ = (
    "Advance the world one tick given one action per seat and the mask they were chosen under.\n\n"
    "The phases, in order (``TICK_PHASES``):\n\n"
    + "\n".join(f"{k}. {phase}" for k, phase in enumerate(TICK_PHASES, start=1))
    + "\n\nPhases 3-6 run as one compiled kernel; their events and hooks then follow in Python in "
    "phase order (finish events and ``after`` hooks, conflict events and rivalry, shift events: "
    "coworker ties and the absence record, which may queue an eviction for phase 9)."
)
