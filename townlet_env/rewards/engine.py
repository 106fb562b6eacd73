"""The reward engine: per-tick, per-seat reward terms (a breakdown, not yet guarded).

Terms (columns of :data:`TERMS`):

* ``survival``: ``rewards.survival`` per tick alive.
* ``needs``: ``-needs_scale * sum_i w_i (1 - need_i)^2 / sum_i w_i`` (homeostasis).
* ``wage``: money earned at work this tick times ``wage_scale``.
* ``punctuality`` / ``lateness``: one-offs at an on-time arrival / late arrival or absence.
* ``social``, staged by ``rewards.social_stage``: ``OFF`` never pays it; ``C1`` pays
  ``chat_base + chat_trust * trust + chat_familiarity * fam`` to both sides of a successful
  chat; ``C2`` adds ``avoid_bonus`` per ``RIVAL_AVOIDED`` event of the agent. Nothing is paid
  to an agent with any need deficit above 0.85 (a need below ``SOCIAL_NEED_FLOOR``).
* ``terminal``: ``faint_penalty`` or ``eviction_penalty`` on the tick an identity ends.

Healthy agents earn roughly +0.005..+0.015 per tick, well inside the default per-tick
clip of 0.1; a starving agent sits near -0.015.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from townlet_env.jit import bind
from townlet_env.world.events import Event, EventKind
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.employment import ShiftOutcome
from townlet_env.world.systems.lifecycle import EVICTED, FAINT
from townlet_env.world.systems.relationships import tie

TERMS = ("survival", "needs", "wage", "punctuality", "lateness", "social", "terminal")
# Column of each term in the breakdown (plain ints, so kernels read them as constants).
T_SURVIVAL = TERMS.index("survival")
T_NEEDS = TERMS.index("needs")
T_WAGE = TERMS.index("wage")
T_PUNCTUALITY = TERMS.index("punctuality")
T_LATENESS = TERMS.index("lateness")
T_SOCIAL = TERMS.index("social")
T_TERMINAL = TERMS.index("terminal")
SOCIAL_NEED_FLOOR = 0.15  # a need below this (a deficit above 0.85) pays no social reward


class RewardWeights(NamedTuple):
    """The reward config's per-tick weights as float32 (the precision the terms are kept in)."""

    survival: np.float32
    needs_scale: np.float32
    wage_scale: np.float32
    punctuality: np.float32
    lateness: np.float32
    faint: np.float32
    eviction: np.float32
    need_weights: np.ndarray  # float32[3] per need, in ``NEEDS`` order


def _build_weights(rules: Rules) -> RewardWeights:
    rw = rules.config.rewards
    f32 = np.float32
    return RewardWeights(
        survival=f32(rw.survival),
        needs_scale=f32(rw.needs_scale),
        wage_scale=f32(rw.wage_scale),
        punctuality=f32(rw.punctuality_bonus),
        lateness=f32(rw.lateness_penalty),
        faint=f32(rw.faint_penalty),
        eviction=f32(rw.eviction_penalty),
        need_weights=rules.need_weights,
    )


def reward_terms(
    state: WorldState,
    rules: Rules,
    shift: ShiftOutcome,
    chat_partner: np.ndarray | None,
    reasons: np.ndarray,
    events: Sequence[Event] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(float32[N, len(TERMS)] terms, float64[N] their sums) for this tick. Vacant seats get zeros.

    ``events`` are the tick's events (the ``C2`` stage reads its ``RIVAL_AVOIDED`` ones).
    """
    cfg = rules.config.rewards
    terms = np.empty((state.n_agents, len(TERMS)), dtype=np.float32)
    totals = np.empty(state.n_agents, dtype=np.float64)
    k = state.bound("reward_terms", rules, _bind_terms)
    k.kernel(terms, totals, k.weights, state.alive, reasons, state.needs, shift)
    if cfg.social_stage == "OFF":
        return terms, totals
    social = np.zeros(state.n_agents, dtype=np.float64)
    if chat_partner is not None:
        for i in np.flatnonzero(chat_partner >= 0).tolist():
            trust, fam, _ = tie(state, i, int(chat_partner[i])).tolist()
            social[i] += cfg.chat_base + cfg.chat_trust * trust + cfg.chat_familiarity * fam
    if cfg.social_stage == "C2":
        for e in events:
            if e.kind == EventKind.RIVAL_AVOIDED:
                social[e.agent] += cfg.avoid_bonus
    social[(state.needs < SOCIAL_NEED_FLOOR).any(axis=1) | ~state.alive] = 0.0
    paid = np.flatnonzero(social)
    terms[paid, T_SOCIAL] = social[paid]
    totals[paid] += terms[paid, T_SOCIAL]
    return terms, totals


class _Terms(NamedTuple):
    """The terms kernel bound to one world's types (kept in ``WorldState.kernels``)."""

    weights: RewardWeights
    kernel: Callable[..., Any]


def _bind_terms(state: WorldState, rules: Rules) -> _Terms:
    weights = _build_weights(rules)
    n = state.n_agents
    # The types every tick passes (float32 terms, the lifecycle's int8 reasons, employment's
    # ShiftOutcome); a call with another dtype raises TypeError. Looked up now, not at import.
    example = (np.zeros((n, len(TERMS)), np.float32), np.zeros(n), weights, state.alive, np.zeros(n, np.int8))
    kernel = bind(_terms, *example, state.needs, ShiftOutcome.zeros(n))
    return _Terms(weights, kernel)


@njit(cache=True)
def _terms(terms, totals, w, alive, reasons, needs, shift):
    weights = w.need_weights
    wage, on_time, late, absent = shift.wage, shift.on_time, shift.late, shift.absent
    w_sum = weights[0] + weights[1] + weights[2]
    for i in range(alive.shape[0]):
        counted = alive[i] or reasons[i] > 0
        penalty = 0.0
        for k in range(3):
            d = 1.0 - needs[i, k]
            penalty += weights[k] * d * d
        terms[i, T_SURVIVAL] = w.survival if alive[i] else 0.0
        terms[i, T_NEEDS] = -w.needs_scale * penalty / w_sum if counted else 0.0
        terms[i, T_WAGE] = w.wage_scale * wage[i]
        terms[i, T_PUNCTUALITY] = w.punctuality if on_time[i] else 0.0
        terms[i, T_LATENESS] = w.lateness if (late[i] or absent[i]) else 0.0
        terms[i, T_SOCIAL] = 0.0
        terms[i, T_TERMINAL] = w.faint if reasons[i] == FAINT else (w.eviction if reasons[i] == EVICTED else 0.0)
        total = 0.0
        for k in range(terms.shape[1]):
            total += terms[i, k]
        totals[i] = total
