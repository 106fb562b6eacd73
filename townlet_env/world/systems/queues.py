"""Queues for single-occupancy objects: one holder, FIFO with a small age priority, and manners.

The rules, in the order a tick applies them:

1. **Joining.** An agent joins an object's queue by standing next to it and asking to use it.
2. **The head.** When the object is free, the waiter that joined first is the head of the
   queue; among waiters that joined on the same tick, the one that has waited longest since
   its last successful use ("age") wins, then the lowest seat.
3. **Needier first.** A waiter whose need for the object (the need its affordance raises
   most) is lower than the head's by more than ``urgency_gap`` goes first (the neediest such
   waiter). If the head counts it a friend (trust + familiarity - rivalry at least
   ``handover_friendship``), the head hands its turn over politely (``QUEUE_HANDOVER`` by the
   head, a warming tie event); otherwise the needier waiter cuts in (``QUEUE_CUT_IN`` toward
   the head, a cooling tie event). The head keeps its place and is next.
4. **Blocking.** A winner that starts its affordance with that need at or above
   ``block_need`` while a waiter left behind needs the object more blocks it
   (``OBJECT_BLOCKED`` toward the neediest waiter left behind).
5. **Conflicts.** A waiter stuck behind the same holder for ``conflict_wait_ticks`` raises one
   conflict (``QUEUE_CONFLICT`` toward the holder and a rivalry-raising tie event). Its
   intensity grows with the wait and the queue: ``wait_age / conflict_wait_ticks * (1 + 0.25
   (queue length - 1))``, clamped to [0.1, ``max_intensity``], and scales the tie deltas.
   A holder is never preempted: it keeps the object until its affordance ends.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event, tie

QUEUE_LENGTH_BOOST = 0.25  # intensity added per extra agent in the queue (rule 5)


def join(state: WorldState, agents: np.ndarray, objs: np.ndarray, log: EventLog) -> None:
    """Put ``agents`` in the queues of ``objs`` (agents already queued are moved)."""
    state.waiting[agents] = objs
    state.joined_tick[agents] = state.tick
    state.conflict_flag[agents] = False
    for i, o in zip(agents.tolist(), objs.tolist(), strict=True):
        log.emit(EventKind.QUEUE_JOIN, i, obj=o)


def assign(state: WorldState, rules: Rules, log: EventLog) -> tuple[np.ndarray, np.ndarray]:
    """Give each free object to its best waiter (rules 2 and 3); return (winners, objects)."""
    front = _needier_first(state, rules, log)
    return _assign(state.waiting, state.holder, state.joined_tick, state.wait_age, front)


def _need_for(state: WorldState, rules: Rules, seats: np.ndarray) -> np.ndarray:
    """Each seat's level of the need its requested affordance serves (1.0: none served)."""
    col = rules.aff_need[state.request[seats]]
    return np.where(col >= 0, state.needs[seats, np.maximum(col, 0)], 1.0)


def _needier_first(state: WorldState, rules: Rules, log: EventLog) -> np.ndarray:
    """Rule 3: bool[N], the waiters moved to the front of their queue (with their events)."""
    front = np.zeros(state.n_agents, dtype=bool)
    queued = np.flatnonzero(state.waiting >= 0)
    if queued.size < 2:
        return front
    counts = np.bincount(state.waiting[queued], minlength=len(state.holder))
    cfg = rules.config.queues
    for m in np.flatnonzero((counts >= 2) & (state.holder < 0)).tolist():
        seats = queued[state.waiting[queued] == m]
        head = seats[np.lexsort((seats, -state.wait_age[seats], state.joined_tick[seats]))[0]]
        need = _need_for(state, rules, seats)
        need_head = need[seats == head][0]
        need = np.where(seats == head, np.inf, need)
        k = int(np.argmin(need))
        if need_head - need[k] <= cfg.urgency_gap:
            continue
        other = int(seats[k])
        front[other] = True
        trust, fam, riv = tie(state, int(head), other).tolist()
        if trust + fam - riv >= cfg.handover_friendship:
            log.emit(EventKind.QUEUE_HANDOVER, int(head), other=other, obj=m)
            apply_event(state, rules, int(head), other, RelEvent.QUEUE_HANDOVER, log)
        else:
            log.emit(EventKind.QUEUE_CUT_IN, other, other=int(head), obj=m)
            apply_event(state, rules, other, int(head), RelEvent.QUEUE_CUT_IN, log)
    return front


@njit(cache=True)
def _assign(waiting, holder, joined_tick, wait_age, front):
    """Best waiter per free object: a front waiter, then earliest join, longest wait age, lowest seat."""
    n_obj = holder.shape[0]
    best = np.full(n_obj, -1, dtype=np.int64)
    for i in range(waiting.shape[0]):
        m = waiting[i]
        if m < 0 or holder[m] >= 0:
            continue
        b = best[m]
        if b < 0 or (front[i] and not front[b]):
            best[m] = i
        elif front[b] and not front[i]:
            continue
        elif joined_tick[i] < joined_tick[b] or (joined_tick[i] == joined_tick[b] and wait_age[i] > wait_age[b]):
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


def note_blocking(state: WorldState, rules: Rules, winners: np.ndarray, objs: np.ndarray, log: EventLog) -> None:
    """Rule 4, for ``winners`` that just started at ``objs``."""
    if not (state.waiting >= 0).any():
        return
    mine = _need_for(state, rules, winners)
    for i, m, level in zip(winners.tolist(), objs.tolist(), mine.tolist(), strict=True):
        if level < rules.config.queues.block_need:
            continue
        left = np.flatnonzero(state.waiting == m)
        if left.size == 0:
            continue
        need = _need_for(state, rules, left)
        k = int(np.argmin(need))
        if need[k] < level:
            log.emit(EventKind.OBJECT_BLOCKED, i, other=int(left[k]), obj=m, value=float(level))
            apply_event(state, rules, i, int(left[k]), RelEvent.OBJECT_BLOCKED, log)


def raise_conflicts(state: WorldState, rules: Rules, over: np.ndarray, log: EventLog) -> None:
    """Rule 5: conflict events and rivalry for the waiters ``age_waiters`` flagged."""
    cfg = rules.config.queues
    for i in over.tolist():
        obj = int(state.waiting[i])
        holder = int(state.holder[obj])
        if holder < 0:
            continue
        queue_len = int((state.waiting == obj).sum())
        waited = state.wait_age[i] / cfg.conflict_wait_ticks
        intensity = min(cfg.max_intensity, max(0.1, waited * (1.0 + QUEUE_LENGTH_BOOST * (queue_len - 1))))
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
