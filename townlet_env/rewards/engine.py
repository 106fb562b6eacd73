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

from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.employment import ShiftOutcome
from townlet_env.world.systems.lifecycle import EVICTED, FAINT
from townlet_env.world.systems.relationships import tie

TERMS = ("survival", "needs", "wage", "punctuality", "lateness", "social", "terminal")
TERMINAL = TERMS.index("terminal")
SOCIAL_NEED_FLOOR = 0.15


def reward_terms(
    state: WorldState,
    rules: Rules,
    shift: ShiftOutcome,
    chat_partner: np.ndarray,
    reasons: np.ndarray,
) -> np.ndarray:
    """float32[N, len(TERMS)] for this tick. Vacant seats get zeros."""
    cfg = rules.config.rewards
    counted = state.alive | (reasons > 0)
    terms = np.zeros((state.n_agents, len(TERMS)), dtype=np.float32)
    terms[:, 0] = cfg.survival * state.alive
    deficit = 1.0 - state.needs
    weights = rules.need_weights
    terms[:, 1] = -cfg.needs_scale * (deficit * deficit) @ weights / weights.sum() * counted
    terms[:, 2] = cfg.wage_scale * shift.wage
    terms[:, 3] = cfg.punctuality_bonus * shift.on_time
    terms[:, 4] = cfg.lateness_penalty * (shift.late | shift.absent)
    if rules.config.features.social_rewards:
        chatted = np.flatnonzero(chat_partner >= 0)
        for i in chatted.tolist():
            if state.needs[i].min() < SOCIAL_NEED_FLOOR:
                continue
            trust, fam, _ = tie(state, i, int(chat_partner[i])).tolist()
            terms[i, 5] = cfg.chat_base + cfg.chat_trust * trust + cfg.chat_familiarity * fam
    terms[:, TERMINAL] = np.where(
        reasons == FAINT, cfg.faint_penalty, np.where(reasons == EVICTED, cfg.eviction_penalty, 0.0)
    )
    return terms
