"""Chat: a verbal exchange between agents on the same or adjacent tiles.

Success is drawn with probability ``chat_base_success * (1 + 0.3 trust) * (1 + 0.2 fam)``
(clipped to [0, 1]) from the speaker's tie to the listener. A chat from a speaker whose
rivalry toward the listener is at or above ``avoid_rivalry`` is blocked (``CHAT_BLOCKED``): no
draw, no tie change, the speaker's action fails. Conflict stays verbal.
"""

from __future__ import annotations

import numpy as np

from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event, tie


def attempt_chats(
    state: WorldState, rules: Rules, speakers: np.ndarray, listeners: np.ndarray, log: EventLog
) -> np.ndarray:
    """Resolve chats; return int32[N]: each successful side's partner seat, else -1."""
    cfg = rules.config.relationships
    partner = np.full(state.n_agents, -1, dtype=np.int32)
    avoid = float(np.float32(cfg.avoid_rivalry))  # ties are float32: compare at their precision
    for s, listener in zip(speakers.tolist(), listeners.tolist(), strict=True):
        state.chat_ready_at[s] = state.tick + cfg.chat_cooldown_ticks
        trust, fam, riv = tie(state, s, listener).tolist()
        if riv >= avoid:  # no words with a rival it avoids: blocked, nothing drawn
            log.emit(EventKind.CHAT_BLOCKED, s, other=listener, value=riv)
            state.last_ok[s] = False
            continue
        p = min(1.0, max(0.0, cfg.chat_base_success * (1 + 0.3 * trust) * (1 + 0.2 * fam)))
        if state.rng.random() < p:
            apply_event(state, rules, s, listener, RelEvent.CHAT_SUCCESS, log)
            log.emit(EventKind.CHAT_SUCCESS, s, other=listener)
            partner[s], partner[listener] = listener, s
            state.last_ok[s] = True
        else:
            apply_event(state, rules, s, listener, RelEvent.CHAT_FAILURE, log)
            log.emit(EventKind.CHAT_FAILURE, s, other=listener)
            state.last_ok[s] = False
    return partner


def nearest_other(state: WorldState, agents: np.ndarray) -> np.ndarray:
    """For each of ``agents``, the nearest other living seat by Manhattan distance (-1 none)."""
    alive = np.flatnonzero(state.alive)
    if agents.size == 0 or alive.size < 2:
        return np.full(agents.size, -1, dtype=np.int32)
    d = np.abs(state.pos[agents][:, None, :].astype(np.int32) - state.pos[alive][None, :, :]).sum(axis=2)
    d[agents[:, None] == alive[None, :]] = 1 << 20
    return alive[np.argmin(d, axis=1)].astype(np.int32)


def within_reach(state: WorldState, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether seats ``a[i]`` and ``b[i]`` stand on the same or adjacent tiles."""
    return np.abs(state.pos[a].astype(np.int32) - state.pos[b]).sum(axis=1) <= 1
