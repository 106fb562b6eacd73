"""Oracle test of the observation encoder: every named feature of every variant holds its value.

A world state is set by hand on the small map (needs, wallet, jobs, clock, options, commits,
a running affordance, a queue, cooldowns, ties, positions, a vacant seat). The expected
value of each feature is computed here in plain Python from the definitions in
docs/environment.md ("What the features mean"), with its own breadth-first search for the
landmark distances, and compared through ``layout.index(name)``. The whole egocentric map
of every seat is checked the same way. A feature without an oracle here fails the test.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.observations.variants import Variant
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState, new_state

MAX_TICKS = 3000
STEPS = {0: (0, 0), 1: (-1, 0), 2: (1, 0), 3: (0, 1), 4: (0, -1)}  # direction codes: stay, N, S, E, W
EMPTY_TIE = (-1, (0.9, 0.9, 0.9))  # an empty slot's stale values must be ignored
# Per seat: (other, (trust, familiarity, rivalry)) for each of the 6 tie slots.
TIES = [
    [(1, (0.5, 0.3, 0.0)), EMPTY_TIE, (2, (-0.2, 0.6, 0.7)), (3, (0.1, 0.1, 0.2)), EMPTY_TIE, EMPTY_TIE],
    [(0, (-0.5, 0.2, 0.0)), EMPTY_TIE, EMPTY_TIE, EMPTY_TIE, EMPTY_TIE, (2, (0.2, 0.2, 0.4))],
    [(0, (-0.3, 0.1, 0.0)), EMPTY_TIE, EMPTY_TIE, EMPTY_TIE, EMPTY_TIE, EMPTY_TIE],
    [EMPTY_TIE] * 6,
    [(k, (-0.1 * (k + 1), 0.05, 0.1 * k)) for k in (0, 1, 2, 3, 0, 1)],  # every slot held, all trust < 0
]
TIE_KEYS = ("trust", "familiarity", "rivalry", "dy", "dx", "present")


def _world(rules: Rules, tick: int) -> WorldState:
    """Five seats: one working at the cafe, two sharing a tile, one vacant, one at the fridge."""
    s = new_state(rules, 5, np.random.default_rng(0))
    s.tick = tick
    s.alive[:] = [True, True, True, False, True]
    s.pos[:] = [(7, 12), (2, 4), (2, 4), (5, 1), (2, 11)]  # cafe access; a shared tile; the entry; fridge access
    s.needs[:] = [(0.25, 0.5, 0.75), (0.1, 0.2, 0.3), (1.0, 0.0, 0.5), (0.6, 0.6, 0.6), (0.05, 0.9, 0.4)]
    s.wallet[:] = [12.5, 0.0, 3.0, 4.0, 0.7]
    s.job[:] = [0, 1, -1, 1, 0]  # cafe, office, unemployed, office, cafe
    s.home[:] = [1, 0, 1, 0, 0]
    s.option[:] = [Option.WORK, Option.GO_HOME, Option.CHAT, Option.WAIT, Option.EAT]
    s.target[:] = [7, 1, 0, -1, 2]  # the cafe at (7, 11); home 1; seat 0 (a chat); none; the fridge
    s.commit_until[:] = [tick + 6, tick - 3, tick + 40, 0, tick + 15]
    s.running[:] = [rules.job_affordance[0], -1, -1, -1, 0]
    s.remaining[:] = [100, 0, 0, 0, 5]
    s.waiting[:] = [-1, 2, 2, -1, -1]  # two in the fridge's queue
    s.holder[:] = -1
    s.holder[[2, 7]] = [4, 0]  # seat 4 holds the fridge, seat 0 the cafe
    s.last_ok[:] = [True, False, True, False, True]
    s.arrived[:] = [True, False, False, False, False]
    s.late[:] = [False, True, False, False, False]
    s.absent[:] = [False, False, False, True, False]
    s.attendance[:] = [1.0, 0.5, 1.0, 0.0, 0.75]
    s.cooldown_until[:] = 0
    s.cooldown_until[1, :2] = [tick + 1, tick]  # fridge cooling down, stove just free
    s.cooldown_until[2, 5] = tick + 100
    for i, ties in enumerate(TIES):
        for k, (other, vals) in enumerate(ties):
            s.tie_other[i, k] = other
            s.tie_vals[i, k] = vals
    return s


def _cell(yx: np.ndarray) -> tuple[int, int]:
    return int(yx[0]), int(yx[1])


def _bfs(walkable: np.ndarray, sources: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    dist = dict.fromkeys(sources, 0)
    queue = deque(sources)
    while queue:
        y, x = queue.popleft()
        for dy, dx in list(STEPS.values())[1:]:
            nxt = (y + dy, x + dx)
            if walkable[nxt] and nxt not in dist:
                dist[nxt] = dist[(y, x)] + 1
                queue.append(nxt)
    return dist


def _beside(walkable: np.ndarray, cells: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Walkable tiles orthogonally next to ``cells`` (objects are used from there)."""
    return [(y + dy, x + dx) for y, x in cells for dy, dx in list(STEPS.values())[1:] if walkable[y + dy, x + dx]]


def _landmark(rules: Rules, field: int, sources: list[tuple[int, int]] | None, at: tuple[int, int]) -> list[float]:
    """(dy, dx, dist) toward ``sources``: (0, 0, 1) when missing or unreachable."""
    town = rules.town
    dist = _bfs(town.walkable, sources) if sources else {}
    if at not in dist:
        return [0.0, 0.0, 1.0]
    d = dist[at]
    dy, dx = STEPS[int(town.step[field, at[0], at[1]])]  # the navigation field's pick among shortest paths
    assert (d == 0 and (dy, dx) == (0, 0)) or dist.get((at[0] + dy, at[1] + dx)) == d - 1, "not a shortest step"
    return [float(dy), float(dx), min(1.0, d / 100)]


def _landmarks(rules: Rules, s: WorldState, i: int) -> dict[str, float]:
    town, types = rules.town, rules.manifest.object_types
    at = _cell(s.pos[i])

    def objects(ms: list[int]) -> list[tuple[int, int]]:
        return _beside(town.walkable, [_cell(town.obj_pos[m]) for m in ms])

    marks: dict[str, list[float]] = {}
    for t, name in enumerate(types):
        marks[name] = _landmark(rules, t, objects([m for m in range(len(town.obj_type)) if town.obj_type[m] == t]), at)
    home = int(s.home[i])
    marks["home"] = _landmark(rules, town.first_home_field + home, [_cell(town.homes[home])], at)
    bed = int(town.home_bed[home])
    marks["own_bed"] = _landmark(rules, town.first_object_field + bed, objects([bed]) if bed >= 0 else None, at)
    target, option = int(s.target[i]), int(s.option[i])
    if target < 0 or option in (Option.WAIT, Option.CHAT):
        marks["target"] = [0.0, 0.0, 1.0]
    elif option == Option.GO_HOME:
        marks["target"] = _landmark(rules, town.first_home_field + target, [_cell(town.homes[target])], at)
    else:
        marks["target"] = _landmark(rules, town.first_object_field + target, objects([target]), at)
    return {f"lm_{m}_{k}": v for m, vals in marks.items() for k, v in zip(("dy", "dx", "dist"), vals, strict=True)}


def _social(rules: Rules, s: WorldState, i: int) -> dict[str, float]:
    cfg = rules.config.observations
    ties = [(int(o), [float(v) for v in s.tie_vals[i, k]]) for k, o in enumerate(s.tie_other[i]) if o >= 0]
    # Highest score first, the lower tie slot on equal scores; a score must be positive.
    friends = sorted((t for t in ties if t[1][0] + t[1][1] > 0), key=lambda t: -(t[1][0] + t[1][1]))
    rivals = sorted((t for t in ties if t[1][2] > 0), key=lambda t: -t[1][2])
    slots = [(f"friend{k}", friends, k) for k in range(cfg.social_friends)]
    slots += [(f"rival{k}", rivals, k) for k in range(cfg.social_rivals)]
    out: dict[str, float] = {}
    for slot, pool, rank in slots:
        vals = [0.0] * 6
        if rank < len(pool):
            other, (trust, fam, riv) = pool[rank]
            rel = [max(-1.0, min(1.0, (int(s.pos[other, a]) - int(s.pos[i, a])) / 16)) for a in (0, 1)]
            vals = [trust, fam, riv, *rel, 1.0]
        out.update({f"{slot}_{k}": v for k, v in zip(TIE_KEYS, vals, strict=True)})
    k_max = s.tie_other.shape[1]
    out["ties"] = len(ties) / k_max
    empty = [0.0] if len(ties) < k_max else []  # an empty slot counts as a zero-valued tie
    out["trust_max"] = max([t[1][0] for t in ties] + empty)
    out["rivalry_max"] = max([t[1][2] for t in ties] + empty)
    return out


def _self(rules: Rules, s: WorldState, i: int) -> dict[str, float]:
    tick, minute = s.tick, s.tick % TICKS_PER_DAY
    j, running = int(s.job[i]), int(s.running[i])
    angle = 2 * math.pi * minute / TICKS_PER_DAY
    out = {"hunger": s.needs[i, 0], "hygiene": s.needs[i, 1], "energy": s.needs[i, 2], "wallet": s.wallet[i] / 10}
    out["time_sin"], out["time_cos"] = math.sin(angle), math.cos(angle)
    out["episode_progress"] = min(1.0, tick / MAX_TICKS)
    start, end = (int(rules.job_start[j]), int(rules.job_end[j])) if j >= 0 else (0, 0)
    on_shift = j >= 0 and start <= minute < end
    out["has_job"] = j >= 0
    out["work_window"] = j >= 0 and start - 120 <= minute < end  # WORK opens two hours before the shift
    out["on_shift"] = on_shift
    out["at_work"] = on_shift and running == rules.job_affordance[j]
    out["arrived"] = s.arrived[i]
    out["late"] = s.late[i] or s.absent[i]
    out["attendance"] = s.attendance[i]
    out["to_shift"] = ((start - minute) % TICKS_PER_DAY) / TICKS_PER_DAY if j >= 0 else 1.0
    out |= {f"option_{o.name.lower()}": s.option[i] == o for o in Option}
    out["committed"] = max(0.0, min(1.0, (int(s.commit_until[i]) - tick) / rules.config.options.commit_ticks))
    out["using"] = running >= 0
    out["use_progress"] = 1 - s.remaining[i] / rules.aff_duration[running] if running >= 0 else 0.0
    out["queued"] = s.waiting[i] >= 0
    out["last_ok"] = s.last_ok[i]
    out["present"] = s.alive[i]
    out |= {f"cooldown_{t}": s.cooldown_until[i, k] > tick for k, t in enumerate(rules.manifest.object_types)}
    out |= {f"job_{name}": j == k for k, name in enumerate(rules.job_names)}
    out["work_dist"] = out["work_slack"] = 1.0
    if j >= 0:
        town = rules.town
        workplaces = [(int(y), int(x)) for (y, x), t in zip(town.obj_pos, town.obj_type, strict=True)
                      if t == rules.job_type[j]]  # fmt: skip
        d = _bfs(town.walkable, _beside(town.walkable, workplaces))[(int(s.pos[i, 0]), int(s.pos[i, 1]))]
        out["work_dist"] = min(1.0, d / 100)
        slack = (start - minute - d) / 120 if minute < start else (-d / 120 if minute < end else 1.0)
        out["work_slack"] = max(-1.0, min(1.0, slack))
    return {k: float(v) for k, v in out.items()}


def _map(rules: Rules, s: WorldState, i: int, channels: tuple[str, ...], window: int) -> np.ndarray:
    """The expected (C, w, w) window around seat ``i``, centred on it."""
    town, types = rules.town, rules.manifest.object_types
    h, w = town.shape
    objects = {(int(y), int(x)): types[t] for (y, x), t in zip(town.obj_pos, town.obj_type, strict=True)}
    queue = {m: sum(1 for wt in s.waiting if wt == m) for m in range(len(town.obj_type))}
    load = {tuple(int(v) for v in town.obj_pos[m]): min(1.0, (queue[m] + (s.holder[m] >= 0)) / 3) for m in queue}
    grid = np.zeros((len(channels), window, window), dtype=np.float32)
    r = window // 2
    for dy in range(window):
        for dx in range(window):
            cell = (int(s.pos[i, 0]) - r + dy, int(s.pos[i, 1]) - r + dx)
            inside = 0 <= cell[0] < h and 0 <= cell[1] < w
            others = sum(1 for j in range(len(s.alive)) if s.alive[j] and j != i and tuple(s.pos[j]) == cell)
            for c, name in enumerate(channels):
                if name == "blocked":
                    value = not (inside and town.walkable[cell])
                elif name == "objects":
                    value = cell in objects
                elif name.startswith("object_"):
                    value = objects.get(cell) == name.removeprefix("object_")
                elif name == "agents":
                    value = others > 0
                else:
                    value = load.get(cell, 0.0)
                grid[c, dy, dx] = float(value)
    return grid


@pytest.fixture(scope="module")
def env() -> Any:
    return townlet_env.parallel_env(map="small", num_agents=4, max_ticks=MAX_TICKS).unwrapped


# Minute 450: the cafe shift runs, the office shift opens at 540. Minute 950: the cafe shift
# is over, the office one runs; past max_ticks, so the progress is clipped. Minute 420: the
# cafe shift starts and WORK for the office just became available (both boundaries).
@pytest.mark.parametrize("tick", [TICKS_PER_DAY + 450, 2 * TICKS_PER_DAY + 950, 420])
@pytest.mark.parametrize("variant", ["full", "hybrid", "compact"])
def test_every_feature_holds_its_value(env: Any, variant: str, tick: int) -> None:
    rules = env.rules
    state = _world(rules, tick)
    var = Variant(rules, variant, env.n_actions)
    layout = var.layout
    obs = var.encode(state)
    for i in range(state.n_agents):
        expected = _self(rules, state, i) | _social(rules, state, i)
        if variant != "full":
            expected |= _landmarks(rules, state, i)
        assert set(expected) == set(layout.feature_names), "a feature has no oracle (or an oracle no feature)"
        for name, value in expected.items():
            got = obs[i, layout.index(name)]
            assert got == pytest.approx(value, abs=1e-6), f"seat {i} {variant} {name}: {got} != {value}"
        grid = obs[i, layout.map_slice].reshape(layout.map_shape)
        want = _map(rules, state, i, layout.map_channels, layout.window)
        for c, name in enumerate(layout.map_channels):
            np.testing.assert_array_equal(grid[c], want[c], err_msg=f"seat {i} {variant} map channel {name}")


def test_the_state_exercises_every_branch(env: Any) -> None:
    """The hand-set state is not trivial: the cases above see each branch of the definitions."""
    rules = env.rules
    hybrid = Variant(rules, "hybrid", env.n_actions)
    for tick in (TICKS_PER_DAY + 450, 2 * TICKS_PER_DAY + 950):
        obs, layout = hybrid.encode(_world(rules, tick)), hybrid.layout
        at = {name: obs[:, layout.index(name)].tolist() for name in layout.feature_names}
        slack = at["work_slack"]
        if tick % TICKS_PER_DAY == 450:
            assert at["at_work"] == [1.0, 0.0, 0.0, 0.0, 0.0] and slack[0] == 0.0 and 0 < slack[1] < 1
        else:
            assert slack[0] == 1.0 and -1 < slack[1] < 0  # after the cafe shift; during the office one
    assert at["has_job"][2] == 0.0 and at["use_progress"][0] > 0 and at["cooldown_fridge"][1] == 1.0
    assert at["friend0_present"] == [1.0, 1.0, 0.0, 0.0, 0.0] and at["rival1_present"][0] == 1.0
    assert at["trust_max"][4] < 0 < at["trust_max"][0] and at["ties"][4] == 1.0
    assert 0 < at["lm_target_dist"][1] < 1 and at["lm_target_dist"][2] == 1.0  # go home; a chat has none
    assert at["lm_target_dist"][4] == 0.0 and at["lm_target_dist"][0] == 0.0  # at the fridge, at the cafe
    assert 0 < at["committed"][0] < 1 and at["committed"][1] == 0.0
    grid = obs[:, layout.map_slice].reshape(-1, *layout.map_shape)
    centre = layout.window // 2
    agents, occupied = layout.map_channels.index("agents"), layout.map_channels.index("occupied")
    assert grid[1, agents, centre, centre] == 1.0 and grid[0, agents, centre, centre] == 0.0  # a shared tile
    assert grid[4, occupied, centre - 1, centre] == 1.0  # the fridge: held, two queued
