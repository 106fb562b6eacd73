"""ASCII town maps: terrain, object placement and precomputed navigation fields.

Glyphs: ``#`` wall, ``.`` floor, ``,`` street, ``+`` door, ``h`` home (a spawn spot),
``E`` entry (where newcomers arrive); every other glyph is an object type from the
manifest (``F`` fridge, ``K`` stove, ...). Objects block movement and are used from an
orthogonally adjacent tile.

Navigation is O(1) per agent: for every target (each object type, each home, each home's
bed) a breadth-first search gives the distance from every tile and the first step of a
shortest path, so the navigator and the observation landmarks are array lookups.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from townlet_env.manifest import Manifest

#: Direction codes used everywhere: 0 stay, 1 north, 2 south, 3 east, 4 west.
DY = np.array([0, -1, 1, 0, 0], dtype=np.int16)
DX = np.array([0, 0, 0, 1, -1], dtype=np.int16)
UNREACHABLE = 1 << 14
WALKABLE_GLYPHS = frozenset(".,+hE")


class MapError(ValueError):
    """The map file is malformed; the message names the file, line and column."""


@dataclass(frozen=True)
class TownMap:
    """A parsed map with its navigation fields. Positions are ``(y, x)``."""

    name: str
    walkable: np.ndarray  # bool[H, W]
    wall: np.ndarray  # bool[H, W]: not walkable and not an object
    obj_type: np.ndarray  # int16[M], index into manifest.object_types
    obj_pos: np.ndarray  # int16[M, 2]
    homes: np.ndarray  # int16[nH, 2]
    home_bed: np.ndarray  # int16[nH], object index of the bed assigned to each home (-1 none)
    entries: np.ndarray  # int16[nE, 2]
    dist: np.ndarray  # int16[F, H, W]: fields = object types, then objects, then homes
    step: np.ndarray  # int8[F, H, W]: first direction along a shortest path (0 at target)
    adjacent: np.ndarray  # int32[T, H, W]: an object of type t next to the tile, or -1
    n_types: int

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.walkable.shape
        return int(h), int(w)

    @property
    def first_object_field(self) -> int:
        """Field index of object 0; object ``m`` has field ``first_object_field + m``."""
        return self.n_types

    @property
    def first_home_field(self) -> int:
        return self.n_types + len(self.obj_type)


def _bfs(walkable: np.ndarray, sources: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Distances from ``sources`` and, per tile, the direction of the step that gets closer."""
    h, w = walkable.shape
    dist = np.full((h, w), UNREACHABLE, dtype=np.int16)
    step = np.zeros((h, w), dtype=np.int8)
    queue: deque[tuple[int, int]] = deque()
    for y, x in sources:
        if dist[y, x] != 0:
            dist[y, x] = 0
            queue.append((y, x))
    while queue:
        y, x = queue.popleft()
        d = dist[y, x] + 1
        for code in (1, 2, 3, 4):
            ny, nx = y + DY[code], x + DX[code]
            if 0 <= ny < h and 0 <= nx < w and walkable[ny, nx] and dist[ny, nx] > d:
                dist[ny, nx] = d
                # The neighbour reaches (y, x) by moving opposite to `code`.
                step[ny, nx] = {1: 2, 2: 1, 3: 4, 4: 3}[code]
                queue.append((int(ny), int(nx)))
    return dist, step


def _access_tiles(walkable: np.ndarray, positions: np.ndarray) -> list[tuple[int, int]]:
    h, w = walkable.shape
    out = []
    for y, x in positions:
        for code in (1, 2, 3, 4):
            ny, nx = int(y + DY[code]), int(x + DX[code])
            if 0 <= ny < h and 0 <= nx < w and walkable[ny, nx]:
                out.append((ny, nx))
    return out


def parse_map(path: Path, manifest: Manifest) -> TownMap:
    """Parse an ASCII map against the manifest's object glyphs."""
    glyphs = tuple(spec.glyph for spec in manifest.objects.values())
    bed = manifest.objects["bed"].glyph if "bed" in manifest.objects else None
    return _parse_cached(str(path), path.read_text(), glyphs, bed)


@lru_cache(maxsize=16)
def _parse_cached(path: str, text: str, glyphs: tuple[str, ...], bed_glyph: str | None) -> TownMap:
    glyph_type = {glyph: i for i, glyph in enumerate(glyphs)}
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise MapError(f"{path}: map is empty")
    width = len(lines[0])
    for row, line in enumerate(lines, start=1):
        if len(line) != width:
            raise MapError(f"{path}: line {row} has {len(line)} columns, expected {width}")
    h = len(lines)
    walkable = np.zeros((h, width), dtype=bool)
    wall = np.zeros((h, width), dtype=bool)
    objects: list[tuple[int, int, int]] = []
    homes: list[tuple[int, int]] = []
    entries: list[tuple[int, int]] = []
    for y, line in enumerate(lines):
        for x, ch in enumerate(line):
            if ch in WALKABLE_GLYPHS:
                walkable[y, x] = True
                if ch == "h":
                    homes.append((y, x))
                elif ch == "E":
                    entries.append((y, x))
            elif ch == "#":
                wall[y, x] = True
            elif ch in glyph_type:
                objects.append((glyph_type[ch], y, x))
            else:
                raise MapError(f"{path}: line {y + 1} column {x + 1}: unknown glyph {ch!r}")
    border = np.concatenate([walkable[0], walkable[-1], walkable[:, 0], walkable[:, -1]])
    if border.any():
        raise MapError(f"{path}: the border must be walls or objects so agents stay on the map")
    if not homes:
        raise MapError(f"{path}: no home tiles ('h')")
    if not entries:
        raise MapError(f"{path}: no entry tiles ('E')")
    n_types = len(glyph_type)
    obj_type = np.array([o[0] for o in objects], dtype=np.int16)
    obj_pos = np.array([(o[1], o[2]) for o in objects], dtype=np.int16).reshape(-1, 2)
    home_arr = np.array(homes, dtype=np.int16)

    # Each home gets the nearest bed no other home has claimed yet (greedy, in map order).
    bed_type = glyph_type.get(bed_glyph) if bed_glyph is not None else None
    beds = [i for i, t in enumerate(obj_type) if t == bed_type]
    home_bed = np.full(len(homes), -1, dtype=np.int16)
    free = list(beds)
    for k, (hy, hx) in enumerate(homes):
        pool = free or beds
        if pool:
            best = min(pool, key=lambda b: abs(obj_pos[b, 0] - hy) + abs(obj_pos[b, 1] - hx))
            home_bed[k] = best
            if best in free:
                free.remove(best)

    sources: list[list[tuple[int, int]]] = []
    for t in range(n_types):
        sources.append(_access_tiles(walkable, obj_pos[obj_type == t]))
    sources.extend(_access_tiles(walkable, obj_pos[[m]]) for m in range(len(objects)))
    sources.extend([[(int(y), int(x))] for y, x in home_arr])
    fields = [_bfs(walkable, src) for src in sources]
    dist = np.stack([f[0] for f in fields])
    step = np.stack([f[1] for f in fields])

    adjacent = np.full((n_types, h, width), -1, dtype=np.int32)
    for i in range(len(objects) - 1, -1, -1):  # reverse so the first object in map order wins
        t, y, x = objects[i]
        for code in (1, 2, 3, 4):
            ny, nx = y + int(DY[code]), x + int(DX[code])
            if 0 <= ny < h and 0 <= nx < width and walkable[ny, nx]:
                adjacent[t, ny, nx] = i
    return TownMap(
        name=Path(path).stem,
        walkable=walkable,
        wall=wall,
        obj_type=obj_type,
        obj_pos=obj_pos,
        homes=home_arr,
        home_bed=home_bed,
        entries=np.array(entries, dtype=np.int16),
        dist=dist,
        step=step,
        adjacent=adjacent,
        n_types=n_types,
    )
