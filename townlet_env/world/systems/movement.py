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
