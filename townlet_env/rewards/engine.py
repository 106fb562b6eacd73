"""The reward engine: per-tick, per-seat reward terms (a breakdown, not yet guarded).

Terms (columns of :data:`TERMS`):

* ``survival``: ``rewards.survival`` per tick alive.
* ``needs``: ``-needs_scale * sum_i w_i (1 - need_i)^2 / sum_i w_i`` (homeostasis).
* ``wage``: money earned at work this tick times ``wage_scale``.
* ``punctuality`` / ``lateness``: one-offs at an on-time arrival / late arrival or absence.
* ``social``: C1 chat reward on a successful chat (``features.social_rewards`` only),
  ``chat_base + chat_trust * trust + chat_familiarity * fam``, skipped for an agent
  whose any need is below 0.15.
* ``terminal``: ``faint_penalty`` or ``eviction_penalty`` on the tick an identity ends.

Healthy agents earn roughly +0.005..+0.015 per tick, well inside the default per-tick
clip of 0.1; a starving agent sits near -0.015.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.employment import ShiftOutcome
from townlet_env.world.systems.lifecycle import EVICTED, FAINT
from townlet_env.world.systems.relationships import tie

TERMS = ("survival", "needs", "wage", "punctuality", "lateness", "social", "terminal")
TERMINAL = TERMS.index("terminal")
SOCIAL = TERMS.index("social")
SOCIAL_NEED_FLOOR = 0.15


def reward_terms(
    state: WorldState,
    rules: Rules,
    shift: ShiftOutcome,
    chat_partner: np.ndarray | None,
    reasons: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(float32[N, len(TERMS)] terms, float64[N] their sums) for this tick. Vacant seats get zeros."""
    cfg = rules.config.rewards
    terms = np.empty((state.n_agents, len(TERMS)), dtype=np.float32)
    totals = np.empty(state.n_agents, dtype=np.float64)
    _terms(terms, totals, rules.reward_consts, state.alive, reasons, state.needs, rules.need_weights, shift.wage,
           shift.on_time, shift.late, shift.absent)  # fmt: skip
    if chat_partner is not None and rules.config.features.social_rewards:
        for i in np.flatnonzero(chat_partner >= 0).tolist():
            if state.needs[i].min() < SOCIAL_NEED_FLOOR:
                continue
            trust, fam, _ = tie(state, i, int(chat_partner[i])).tolist()
            terms[i, SOCIAL] = cfg.chat_base + cfg.chat_trust * trust + cfg.chat_familiarity * fam
            totals[i] += terms[i, SOCIAL]
    return terms, totals


@njit(cache=True)
def _terms(terms, totals, consts, alive, reasons, needs, weights, wage, on_time, late, absent):
    survival, needs_scale, wage_scale, punctuality, lateness, faint, eviction = (
        consts[0], consts[1], consts[2], consts[3], consts[4], consts[5], consts[6],
    )  # fmt: skip
    w_sum = weights[0] + weights[1] + weights[2]
    for i in range(alive.shape[0]):
        counted = alive[i] or reasons[i] > 0
        penalty = 0.0
        for k in range(3):
            d = 1.0 - needs[i, k]
            penalty += weights[k] * d * d
        terms[i, 0] = survival if alive[i] else 0.0
        terms[i, 1] = -needs_scale * penalty / w_sum if counted else 0.0
        terms[i, 2] = wage_scale * wage[i]
        terms[i, 3] = punctuality if on_time[i] else 0.0
        terms[i, 4] = lateness if (late[i] or absent[i]) else 0.0
        terms[i, 5] = 0.0
        terms[i, 6] = faint if reasons[i] == FAINT else (eviction if reasons[i] == EVICTED else 0.0)
        total = 0.0
        for k in range(terms.shape[1]):
            total += terms[i, k]
        totals[i] = total
