"""Needs: per-tick decay, clamping to [0, 1], and the count of ticks spent at zero."""

from __future__ import annotations

from numba import njit

from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


def step_needs(state: WorldState, rules: Rules) -> None:
    decay(state.needs, rules.decay, state.alive, state.zero_ticks)


@njit(cache=True)
def decay(needs, decay, alive, zero_ticks):
    for i in range(needs.shape[0]):
        starving = False
        for k in range(needs.shape[1]):
            v = min(1.0, max(0.0, needs[i, k] - decay[k]))
            needs[i, k] = v
            starving = starving or v <= 0.0
        zero_ticks[i] = zero_ticks[i] + 1 if (starving and alive[i]) else 0
