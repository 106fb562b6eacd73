"""Targeted system rules: queue spreading, coworker ties, cooldown scope, continuing a paid option."""

from __future__ import annotations

import numpy as np

import townlet_env
from townlet_env.actions import Option
from townlet_env.world.events import EventKind, RelEvent


def _town(n: int, **overrides: object) -> tuple[object, object]:
    env = townlet_env.parallel_env(num_agents=n, max_ticks=100_000, **overrides)
    env.reset(seed=0)
    return env, env.unwrapped


def _step(env: object, actions: dict[str, int]) -> None:
    env.step(actions)  # type: ignore[attr-defined]


def test_agents_walking_to_a_shower_count_as_its_queue() -> None:
    env, town = _town(2)
    state = town.world
    state.pos[1] = state.pos[0]  # same spot: the same shower is nearest for both
    state.needs[:] = 0.5
    _step(env, {"agent_0": int(Option.WASH), "agent_1": 0})
    _step(env, {"agent_0": int(Option.WASH), "agent_1": int(Option.WASH)})
    first, second = int(state.target[0]), int(state.target[1])
    assert first >= 0 and second >= 0
    assert first != second, "the second agent should pick a free shower, not queue behind the first"


def test_arriving_at_work_greets_coworkers_already_there() -> None:
    env, town = _town(4)
    rules, state = town.rules, town.world
    office = rules.job_names.index("office")
    seats = np.flatnonzero(state.job == office)[:2]
    assert len(seats) == 2
    start = int(rules.job_start[office])
    state.tick = start - 1  # one tick before the shift; put both next to the office
    workplace = np.flatnonzero(rules.town.obj_type == rules.job_type[office])[0]
    field = rules.town.first_object_field + workplace
    access = np.argwhere(rules.town.dist[field] == 0)[0]
    state.pos[seats] = access
    coworker_events = []
    for _ in range(3):
        actions = {a: (int(Option.WORK) if i in seats else 0) for i, a in enumerate(env.agents)}
        _step(env, actions)
        coworker_events += [
            e for e in town.last_events if e.kind == EventKind.RELATIONSHIP and e.value == int(RelEvent.COWORKER)
        ]
    a, b = (int(s) for s in seats)
    assert {(e.agent, e.other) for e in coworker_events} & {(a, b), (b, a)}
    assert b in state.tie_other[a] and a in state.tie_other[b]


def test_no_cooldown_after_using_a_shared_workplace() -> None:
    env, town = _town(2)
    rules, state = town.rules, town.world
    work_type = int(rules.job_type[0])
    aff = int(rules.job_affordance[0])
    state.running[0] = aff
    state.remaining[0] = 1
    state.using[0] = np.flatnonzero(rules.town.obj_type == work_type)[0]
    _step(env, {"agent_0": 0, "agent_1": 0})
    assert state.running[0] == -1, "the work use should have completed"
    assert state.cooldown_until[0, work_type] <= state.tick


def test_a_running_option_stays_allowed_after_paying_for_it() -> None:
    env, town = _town(1)
    rules, state = town.rules, town.world
    state.wallet[0] = float(rules.aff_price[rules.opt_wash])  # exactly one shower
    state.needs[0] = 0.5
    for _ in range(200):
        _step(env, {"agent_0": int(Option.WASH)})
        if state.running[0] == rules.opt_wash:
            break
    assert state.running[0] == rules.opt_wash and state.wallet[0] < rules.aff_price[rules.opt_wash]
    mask = town.action_masks()[0]
    assert mask[Option.WASH] == 1, "the paid shower must remain choosable so it is not cancelled"
