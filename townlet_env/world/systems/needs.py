"""Needs: per-tick decay, clamping to [0, 1], and the count of ticks spent at zero."""

from __future__ import annotations

import numpy as np

from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


def step_needs(state: WorldState, rules: Rules) -> None:
    state.needs -= rules.decay
    np.clip(state.needs, 0.0, 1.0, out=state.needs)
    starving = (state.needs <= 0.0).any(axis=1) & state.alive
    state.zero_ticks = np.where(starving, state.zero_ticks + 1, 0).astype(np.int32)
