"""Lifecycle: fainting, eviction through a capped exit queue, and respawn into the seat.

An identity faints when some need has sat at 0 for ``faint_after_ticks``; it is evicted
when ``max_absent_shifts`` absences fall within 7 days, but at most ``daily_exit_cap``
evictions execute per sim day (the rest wait in the exit queue, oldest first). Its seat is
then vacant for a delay drawn from ``respawn_delay`` and refilled by a new identity at an
entry tile (``lifecycle.respawn``), with the seat's job and home and fresh needs.

While a city event and its grace period hold exits (``WorldState.exits_held_until``, set
by the perturbation scheduler), nobody faints or is evicted: the counts carry on, and the
exits happen once the hold ends. Each ending emits ``DEPARTURE`` (value: the reason code)
beside ``FAINT``/``EVICTION``, and each new identity ``ARRIVAL`` beside ``RESPAWN``: the
lifecycle vignettes narration tells.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.world.events import EventKind, EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.affordances import cancel
from townlet_env.world.systems.relationships import clear_seat

FAINT, EVICTED = 1, 2


@njit(cache=True)
def pending_counts(s, r, tick):
    """(identities that may end this tick, vacant seats due a respawn) as counts.

    ``s`` and ``r`` are the tick's state and rule records (``simulation.TickArrays`` and ``TickRules``).
    """
    alive, zero_ticks, exit_pending, respawn_at = s.alive, s.zero_ticks, s.exit_pending, s.respawn_at
    faint_after = r.faint_after_ticks
    ending = due = 0
    for i in range(alive.shape[0]):
        if alive[i]:
            if zero_ticks[i] >= faint_after or exit_pending[i]:
                ending += 1
        elif 0 <= respawn_at[i] <= tick:
            due += 1
    return ending, due


def terminate(state: WorldState, rules: Rules, log: EventLog) -> np.ndarray:
    """End identities that fainted or are evicted; return reason codes per seat (0 none)."""
    cfg = rules.config.lifecycle
    reasons = np.zeros(state.n_agents, dtype=np.int8)
    if state.tick < state.exits_held_until:
        return reasons
    faint = state.alive & (state.zero_ticks >= cfg.faint_after_ticks)
    reasons[faint] = FAINT
    pending = np.flatnonzero(state.alive & state.exit_pending & ~faint)
    room = cfg.daily_exit_cap - state.exits_today
    if pending.size and room > 0:
        # Oldest entry in the exit queue first: the earliest latest absence.
        order = pending[np.argsort(state.absences[pending, 0], kind="stable")]
        evicted = order[:room]
        reasons[evicted] = EVICTED
        state.exits_today += len(evicted)
    dying = np.flatnonzero(reasons)
    if dying.size:
        end_identities(state, rules, dying, reasons, log)
    return reasons


def end_identities(state: WorldState, rules: Rules, dying: np.ndarray, reasons: np.ndarray, log: EventLog) -> None:
    """End the identities in seats ``dying`` for ``reasons[seat]`` (FAINT or EVICTED): drop
    what they were doing, forget their ties, and schedule the seat's respawn.
    """
    cfg = rules.config.lifecycle
    cancel(state, rules, dying, log)
    for i in dying.tolist():
        need = int(np.argmin(state.needs[i]))
        log.emit(EventKind.FAINT if reasons[i] == FAINT else EventKind.EVICTION, i, value=need)
        log.emit(EventKind.DEPARTURE, i, value=int(reasons[i]))
        clear_seat(state, i)
    state.alive[dying] = False
    state.exit_pending[dying] = False
    state.option[dying] = 0
    state.target[dying] = -1
    if cfg.respawn:
        lo, hi = cfg.respawn_delay
        state.respawn_at[dying] = state.tick + state.rng.integers(lo, hi + 1, size=dying.size)


def respawn_due(state: WorldState, rules: Rules, log: EventLog) -> np.ndarray:
    """Seat new identities whose delay has passed; return their seats."""
    due = np.flatnonzero(~state.alive & (state.respawn_at >= 0) & (state.respawn_at <= state.tick))
    if due.size == 0:
        return due
    cfg = rules.config
    entries = rules.town.entries
    state.alive[due] = True
    state.respawn_at[due] = -1
    state.generation[due] += 1
    state.born_tick[due] = state.tick
    state.pos[due] = entries[state.rng.integers(0, len(entries), size=due.size)]
    state.needs[due] = cfg.lifecycle.respawn_needs
    state.wallet[due] = cfg.economy.starting_wallet
    state.zero_ticks[due] = 0
    state.commit_until[due] = 0
    state.cooldown_until[due] = 0
    state.chat_ready_at[due] = 0
    state.arrived[due] = False
    state.late[due] = False
    state.absent[due] = False
    state.on_time_ticks[due] = 0
    state.attendance[due] = 1.0
    state.absences[due] = -(10**8)
    state.last_ok[due] = True
    for i in due.tolist():
        log.emit(EventKind.RESPAWN, i, value=int(state.generation[i]))
        log.emit(EventKind.ARRIVAL, i, value=int(state.generation[i]))
    return due
