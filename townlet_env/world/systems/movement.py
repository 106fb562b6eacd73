"""Movement: one grid step per tick; walls and objects block, agents may share a tile.

Letting agents share tiles is deliberate: single-occupancy is enforced where it matters
(objects, through queues), and corridors can never deadlock on agents blocking each other.
"""

from __future__ import annotations

import numpy as np

from townlet_env.world.map import DX, DY
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


def move(state: WorldState, rules: Rules, agents: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Step ``agents`` in direction codes ``dirs``; return which moves succeeded."""
    pos = state.pos[agents]
    ny = pos[:, 0] + DY[dirs]
    nx = pos[:, 1] + DX[dirs]
    ok = rules.town.walkable[ny, nx]
    state.pos[agents[ok], 0] = ny[ok]
    state.pos[agents[ok], 1] = nx[ok]
    return ok


def step_toward(state: WorldState, rules: Rules, agents: np.ndarray, goal: np.ndarray) -> None:
    """Greedy step of ``agents`` toward positions ``goal`` (for moving targets like chat)."""
    d = goal.astype(np.int32) - state.pos[agents]
    vertical = np.where(d[:, 0] < 0, 1, np.where(d[:, 0] > 0, 2, 0))
    horizontal = np.where(d[:, 1] > 0, 3, np.where(d[:, 1] < 0, 4, 0))
    major_v = np.abs(d[:, 0]) >= np.abs(d[:, 1])
    first = np.where(major_v, vertical, horizontal)
    second = np.where(major_v, horizontal, vertical)
    ok = move(state, rules, agents, first) | (first == 0)
    if (~ok).any():
        move(state, rules, agents[~ok], second[~ok])
