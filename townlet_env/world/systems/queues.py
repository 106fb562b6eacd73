"""Queues for single-occupancy objects: one holder, FIFO with a small age priority.

An agent joins an object's queue by standing next to it and asking to use it. When the
object is free, the waiter that joined first wins; among waiters that joined on the same
tick, the one that has waited longest since its last successful use wins ("age"), then
the lowest seat. A waiter stuck behind the same holder for ``conflict_wait_ticks`` raises
one conflict (rivalry towards the holder, an event), but a holder is never preempted:
it keeps the object until its affordance ends.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event


def join(state: WorldState, agents: np.ndarray, objs: np.ndarray, log: EventLog) -> None:
    """Put ``agents`` in the queues of ``objs`` (agents already queued are moved)."""
    state.waiting[agents] = objs
    state.joined_tick[agents] = state.tick
    state.conflict_flag[agents] = False
    for i, o in zip(agents.tolist(), objs.tolist(), strict=True):
        log.emit(EventKind.QUEUE_JOIN, i, obj=o)


def assign(state: WorldState) -> tuple[np.ndarray, np.ndarray]:
    """Give each free object to its best waiter; return (winners, objects)."""
    return _assign(state.waiting, state.holder, state.joined_tick, state.wait_age)


@njit(cache=True)
def _assign(waiting, holder, joined_tick, wait_age):
    """Best waiter per free object: earliest join, then longest wait age, then lowest seat."""
    n_obj = holder.shape[0]
    best = np.full(n_obj, -1, dtype=np.int64)
    for i in range(waiting.shape[0]):
        m = waiting[i]
        if m < 0 or holder[m] >= 0:
            continue
        b = best[m]
        if b < 0 or joined_tick[i] < joined_tick[b] or (joined_tick[i] == joined_tick[b] and wait_age[i] > wait_age[b]):
            best[m] = i
    count = 0
    for m in range(n_obj):
        if best[m] >= 0:
            count += 1
    winners = np.empty(count, dtype=np.int64)
    objs = np.empty(count, dtype=np.int64)
    k = 0
    for m in range(n_obj):
        i = best[m]
        if i >= 0:
            winners[k], objs[k] = i, m
            waiting[i] = -1
            holder[m] = i
            k += 1
    return winners, objs


def raise_conflicts(state: WorldState, rules: Rules, over: np.ndarray, log: EventLog) -> None:
    """Conflict events and rivalry for the waiters ``age_waiters`` flagged."""
    for i in over.tolist():
        obj = int(state.waiting[i])
        holder = int(state.holder[obj])
        if holder < 0:
            continue
        queue_len = int((state.waiting == obj).sum())
        intensity = 1.0 + 0.25 * (queue_len - 1)
        log.emit(EventKind.QUEUE_CONFLICT, i, other=holder, obj=obj, value=intensity)
        apply_event(state, rules, i, holder, RelEvent.QUEUE_CONFLICT, log, scale=intensity)


@njit(cache=True)
def age_waiters(s, r, tick):
    """Count waiting ticks; flag and return waiters whose wait just reached the conflict limit.

    ``s`` and ``r`` are the tick's state and rule records (``simulation.TickArrays`` and ``TickRules``).
    """
    waiting, wait_age, conflict_flag, joined_tick = s.waiting, s.wait_age, s.conflict_flag, s.joined_tick
    limit = r.conflict_wait_ticks
    over = np.empty(waiting.shape[0], dtype=np.int64)
    n = 0
    for i in range(waiting.shape[0]):
        if waiting[i] < 0:
            continue
        wait_age[i] += 1
        if not conflict_flag[i] and tick - joined_tick[i] >= limit:
            conflict_flag[i] = True
            over[n] = i
            n += 1
    return over[:n]
