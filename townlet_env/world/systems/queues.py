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
    waiters = np.flatnonzero(state.waiting >= 0)
    if waiters.size == 0:
        return waiters, waiters
    cand = waiters[state.holder[state.waiting[waiters]] < 0]
    if cand.size == 0:
        return cand, cand
    objs = state.waiting[cand]
    order = np.lexsort((cand, -state.wait_age[cand], state.joined_tick[cand], objs))
    cand, objs = cand[order], objs[order]
    _, first = np.unique(objs, return_index=True)
    winners, won = cand[first], objs[first]
    state.waiting[winners] = -1
    state.holder[won] = winners
    return winners, won


def detect_conflicts(state: WorldState, rules: Rules, log: EventLog) -> None:
    """Age waiters and raise one conflict per long wait behind the same holder."""
    waiting = state.waiting >= 0
    if not waiting.any():
        return
    state.wait_age[waiting] += 1
    limit = rules.config.queues.conflict_wait_ticks
    over = np.flatnonzero(waiting & ~state.conflict_flag & (state.tick - state.joined_tick >= limit))
    for i in over.tolist():
        obj = int(state.waiting[i])
        holder = int(state.holder[obj])
        state.conflict_flag[i] = True
        if holder < 0:
            continue
        queue_len = int((state.waiting == obj).sum())
        intensity = 1.0 + 0.25 * (queue_len - 1)
        log.emit(EventKind.QUEUE_CONFLICT, i, other=holder, obj=obj, value=intensity)
        apply_event(state, rules, i, holder, RelEvent.QUEUE_CONFLICT, log, scale=intensity)


def queue_lengths(state: WorldState, n_objects: int) -> np.ndarray:
    """Waiters per object."""
    w = state.waiting[state.waiting >= 0]
    return np.bincount(w, minlength=n_objects)
