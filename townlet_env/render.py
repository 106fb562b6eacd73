"""Rendering: ``ansi`` (the map as text) and ``rgb_array`` (an image for W&B videos)."""

from __future__ import annotations

import numpy as np

from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

TILE = 8  # pixels per tile in rgb_array frames
_FLOOR = np.array([235, 230, 215], dtype=np.uint8)
_WALL = np.array([60, 60, 70], dtype=np.uint8)
_OBJECT = np.array([70, 130, 180], dtype=np.uint8)
_BUSY = np.array([230, 140, 40], dtype=np.uint8)
_AGENT = np.array([200, 40, 60], dtype=np.uint8)
_LETTERS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def render_ansi(state: WorldState, rules: Rules) -> str:
    """The map as text: objects by glyph, agents by seat digit/letter, a status line."""
    town = rules.town
    grid = np.where(town.walkable, ".", "#").astype("<U1")
    glyphs = [spec.glyph for spec in rules.manifest.objects.values()]
    for m, (y, x) in enumerate(town.obj_pos):
        grid[y, x] = glyphs[town.obj_type[m]]
    for i in np.flatnonzero(state.alive):
        y, x = state.pos[i]
        grid[y, x] = _LETTERS[i % len(_LETTERS)]
    day, minute = divmod(state.tick, 1440)
    header = f"day {day} {minute // 60:02d}:{minute % 60:02d}  alive {int(state.alive.sum())}/{state.n_agents}"
    return header + "\n" + "\n".join("".join(row) for row in grid)


def render_rgb(state: WorldState, rules: Rules) -> np.ndarray:
    """uint8[H*TILE, W*TILE, 3]: floor, walls, objects (orange while held), agents."""
    town = rules.town
    img = np.where(town.walkable[..., None], _FLOOR, _WALL).astype(np.uint8)
    held = state.holder >= 0
    img[town.obj_pos[:, 0], town.obj_pos[:, 1]] = np.where(held[:, None], _BUSY, _OBJECT)
    live = state.pos[state.alive]
    img[live[:, 0], live[:, 1]] = _AGENT
    return np.repeat(np.repeat(img, TILE, axis=0), TILE, axis=1)
