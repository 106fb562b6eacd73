"""Relationships: a sparse store of at most K ties per agent (trust, familiarity, rivalry).

Ties change only through events (chat, shared meal, queue conflict, coworking), applied to
both directions, and decay toward zero every ``decay_interval`` ticks. When an agent's K
slots are full, the weakest tie is evicted, where strength is the largest of |trust|,
|familiarity| and rivalry, so a strong rival is never mistaken for a weak tie.
"""

from __future__ import annotations

import numpy as np

from townlet_env.world.events import REL_EVENT_KEYS, EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

_LOW = np.array([-1.0, -1.0, 0.0], dtype=np.float32)
_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def _strength(vals: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(vals[..., 0]), np.maximum(np.abs(vals[..., 1]), vals[..., 2]))


def _update(state: WorldState, i: int, j: int, delta: np.ndarray) -> None:
    row = state.tie_other[i]
    slots = np.flatnonzero(row == j)
    if slots.size:
        k = int(slots[0])
    else:
        empty = np.flatnonzero(row < 0)
        k = int(empty[0]) if empty.size else int(np.argmin(_strength(state.tie_vals[i])))
        state.tie_other[i, k] = j
        state.tie_vals[i, k] = 0.0
    state.tie_vals[i, k] = np.clip(state.tie_vals[i, k] + delta, _LOW, _HIGH)


def apply_event(
    state: WorldState, rules: Rules, i: int, j: int, kind: RelEvent, log: EventLog, scale: float = 1.0
) -> None:
    """Apply relationship event ``kind`` between seats ``i`` and ``j`` (both directions)."""
    if i == j or not (state.alive[i] and state.alive[j]):
        return
    delta = np.asarray(rules.config.relationships.events[REL_EVENT_KEYS[kind]], dtype=np.float32) * scale
    _update(state, i, j, delta)
    _update(state, j, i, delta)
    log.emit(EventKind.RELATIONSHIP, i, other=j, value=int(kind))


def tie(state: WorldState, i: int, j: int) -> np.ndarray:
    """(trust, familiarity, rivalry) of ``i`` towards ``j``; zeros when there is no tie."""
    slots = np.flatnonzero(state.tie_other[i] == j)
    return state.tie_vals[i, slots[0]].copy() if slots.size else np.zeros(3, np.float32)


def set_tie(state: WorldState, i: int, j: int, values: np.ndarray) -> None:
    """Set the tie of ``i`` towards ``j`` to ``values`` (trust, familiarity, rivalry), clipped
    to their ranges; a new tie takes a free slot or evicts the weakest, as events do.
    """
    _update(state, i, j, np.asarray(values, dtype=np.float32) - tie(state, i, j))


def decay_ties(state: WorldState, rules: Rules) -> None:
    """Decay toward zero (the tick calls it every ``decay_interval`` ticks); ties that fade
    below ``drop_below`` are dropped.
    """
    cfg = rules.config.relationships
    state.tie_vals *= cfg.decay_factor
    faded = (state.tie_other >= 0) & (_strength(state.tie_vals) < cfg.drop_below)
    state.tie_other[faded] = -1
    state.tie_vals[faded] = 0.0


def clear_seat(state: WorldState, i: int) -> None:
    """Forget every tie of seat ``i``, in both directions (its identity is gone)."""
    state.tie_other[i] = -1
    state.tie_vals[i] = 0.0
    pointing = state.tie_other == i
    state.tie_other[pointing] = -1
    state.tie_vals[pointing] = 0.0
