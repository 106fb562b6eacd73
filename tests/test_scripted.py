"""The scripted expert: the 3-day acceptance on the default town, validity, determinism and rules.

The acceptance rolls the default town (8 agents) for 3 sim days on each of 3 seeds under
the expert and holds it to: >= 90 % self-sufficiency (``townlet_env.kpis`` definition),
lateness < 15 %, no faint, no stuck reservation; every action it picks is allowed by the
mask it was given. Town life on the same rollouts (``townlet_env.town_life``): queue
conflicts every day, >= 60 % of agents with a tie over 0.3 at the end of every day, and
fewer than 20 % of conflicts escalating to repeated avoidance.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.demo import format_report, run_town
from townlet_env.kpis import KpiReport, KpiTracker
from townlet_env.scripted import ExpertParams, ScriptedExpert
from townlet_env.town_life import DayLife, TownLifeTracker
from townlet_env.world.simulation import action_mask
from townlet_env.world.systems.navigation import chat_targets

DAYS = 3
SEEDS = (0, 1, 2)


def _roll(seed: int, days: int = DAYS, **overrides: Any) -> tuple[KpiReport, int, int, list[DayLife]]:
    """Run the expert; return its KPIs, the number of masked picks and of decisions made, and its days."""
    env = townlet_env.parallel_env(max_ticks=days * TICKS_PER_DAY, **overrides)
    env.reset(seed=seed)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=seed)
    tracker = KpiTracker(len(env.possible_agents))
    life = TownLifeTracker()
    rewards = np.zeros(len(env.possible_agents))
    masked = decisions = 0
    while env.agents:
        mask = town.action_masks()
        actions = expert.act(town.world, mask)
        masked += int((mask[np.arange(len(actions)), actions] == 0).sum())
        decisions += len(actions)
        _, reward, _, _, _ = env.step({a: int(actions[town.seat_index[a]]) for a in env.agents})
        rewards[:] = [reward.get(a, 0.0) for a in env.possible_agents]
        tracker.update(town.world, town.last_events, rewards)
        life.update(town.world, town.last_events)
    return tracker.report(), masked, decisions, life.days()


@pytest.fixture(scope="module", params=SEEDS)
def rollout(request: pytest.FixtureRequest) -> tuple[KpiReport, int, int, list[DayLife]]:
    return _roll(request.param)


def test_acceptance_kpis_over_three_days(rollout: tuple[KpiReport, int, int, list[DayLife]]) -> None:
    report, _, _, _ = rollout
    assert report.days == DAYS and report.identities >= 8
    assert report.self_sufficiency >= 0.9, report
    assert report.shifts_scheduled >= 8 * DAYS
    assert report.lateness < 0.15, report
    assert report.starvation_incidents == 0, report
    assert report.stuck_reservations == 0, report


def test_town_life_targets_every_day(rollout: tuple[KpiReport, int, int, list[DayLife]]) -> None:
    days = rollout[3]
    assert [d.day for d in days] == list(range(DAYS))
    for d in days:
        assert d.conflicts > 0, d
        assert d.tie_share >= 0.6, d
        assert d.escalation < 0.2, d


def test_never_picks_a_masked_action_in_a_rollout(rollout: tuple[KpiReport, int, int, list[DayLife]]) -> None:
    _, masked, decisions, _ = rollout
    assert decisions == 8 * DAYS * TICKS_PER_DAY
    assert masked == 0


def test_always_valid_on_arbitrary_states_and_masks() -> None:
    """Random needs, money, places, times, options and masks (each row allowing >= 1 action)."""
    env = townlet_env.parallel_env(num_agents=16)
    env.reset(seed=5)
    town = env.unwrapped
    state, rules = town.world, town.rules
    expert = ScriptedExpert(rules, seed=0, params=ExpertParams(chat_prob=0.5, chat_every=1))
    rng = np.random.default_rng(1)
    free_tiles = np.argwhere(rules.town.walkable)
    for _ in range(300):
        state.tick = int(rng.integers(0, 5 * TICKS_PER_DAY))
        state.needs[:] = rng.random(state.needs.shape)
        state.wallet[:] = rng.uniform(0, 3, state.n_agents)
        state.pos[:] = free_tiles[rng.integers(0, len(free_tiles), state.n_agents)]
        state.option[:] = rng.integers(0, len(Option), state.n_agents)
        state.alive[:] = rng.random(state.n_agents) < 0.9
        state.job[:] = rng.integers(-1, len(rules.job_names), state.n_agents)
        mask = (rng.random((state.n_agents, len(Option))) < 0.4).astype(np.int8)
        mask[np.arange(state.n_agents), rng.integers(0, len(Option), state.n_agents)] = 1
        actions = expert.act(state, mask)
        assert actions.dtype == np.int64 and actions.shape == (state.n_agents,)
        assert (mask[np.arange(state.n_agents), actions] == 1).all()


def test_a_committed_seat_takes_its_only_allowed_action() -> None:
    env = townlet_env.parallel_env(num_agents=4)
    env.reset(seed=0)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules)
    mask = np.zeros((4, len(Option)), dtype=np.int8)
    mask[np.arange(4), [Option.COOK, Option.CHAT, Option.WASH, Option.WAIT]] = 1
    assert expert.act(town.world, mask).tolist() == [Option.COOK, Option.CHAT, Option.WASH, Option.WAIT]


def test_deterministic_given_the_seed() -> None:
    def actions(seed: int) -> list[list[int]]:
        env = townlet_env.parallel_env(max_ticks=600)
        env.reset(seed=3)
        expert = ScriptedExpert(env.unwrapped.rules, seed=seed, params=ExpertParams(chat_prob=0.3))
        out = []
        while env.agents:
            chosen = expert.act_dict(env)
            out.append(list(chosen.values()))
            env.step(chosen)
        return out

    assert actions(7) == actions(7)
    assert actions(7) != actions(8)  # the seed drives the chat draws


def test_act_dict_covers_the_live_agents_with_ints() -> None:
    env = townlet_env.parallel_env(num_agents=3)
    env.reset(seed=0)
    chosen = ScriptedExpert(env.unwrapped.rules).act_dict(env)
    assert list(chosen) == env.agents
    assert all(type(v) is int for v in chosen.values())


# --- individual rules, on a reset town whose state is set by hand -----------------------


@pytest.fixture
def town() -> Any:
    env = townlet_env.parallel_env(num_agents=2)
    env.reset(seed=0)
    core = env.unwrapped
    core.world.needs[:] = 0.9
    core.world.wallet[:] = 10.0
    return core


def _choose(town: Any, minute: int) -> np.ndarray:
    state, rules = town.world, town.rules
    state.tick = TICKS_PER_DAY + minute
    return ScriptedExpert(rules).act(state, action_mask(state, rules))


def test_sleeps_at_night_and_goes_to_work_on_time(town: Any) -> None:
    start = int(town.rules.job_start[town.world.job[0]])
    assert _choose(town, start - 200)[0] == Option.SLEEP  # before the wake-up time
    assert _choose(town, start - 5)[0] == Option.WORK  # commute due: path length + margin
    assert _choose(town, start + 60)[0] == Option.WORK


def test_serves_the_lowest_need_first_in_free_time(town: Any) -> None:
    evening = int(town.rules.job_end[town.world.job[0]]) + 30
    town.world.needs[0] = (0.3, 0.2, 0.9)
    assert _choose(town, evening)[0] == Option.WASH
    town.world.needs[0] = (0.2, 0.3, 0.9)
    assert _choose(town, evening)[0] == Option.EAT


def test_critical_hunger_beats_work(town: Any) -> None:
    town.world.needs[0] = (0.05, 0.9, 0.9)
    start = int(town.rules.job_start[town.world.job[0]])
    assert _choose(town, start + 60)[0] == Option.EAT


def test_cooks_when_no_fridge_is_stocked(town: Any) -> None:
    rules = town.rules
    town.world.stock[rules.town.obj_type == rules.aff_type[rules.opt_eat]] = 0
    town.world.needs[0] = (0.2, 0.9, 0.9)
    assert _choose(town, int(rules.job_end[town.world.job[0]]) + 30)[0] == Option.COOK


def test_keeps_its_place_in_a_queue(town: Any) -> None:
    state = town.world
    state.needs[0] = (0.95, 0.9, 0.9)  # nothing due, but it is already on its way to wash
    state.option[0] = Option.WASH
    assert _choose(town, int(town.rules.job_end[state.job[0]]) + 30)[0] == Option.WASH


def test_does_not_chat_toward_a_rival(town: Any) -> None:
    state = town.world
    minute = int(town.rules.job_end[state.job[0]]) + 30
    state.pos[1] = state.pos[0]  # seat 1 is right here, seat 0's only tie
    state.option[:] = Option.WAIT
    state.tie_other[0, 0] = 1
    state.tie_vals[0, 0] = (0.5, 0.5, 0.0)
    assert _choose(town, minute)[0] == Option.CHAT
    state.tie_vals[0, 0] = (0.0, 0.2, 0.8)
    assert _choose(town, minute)[0] != Option.CHAT


def test_a_top_up_waits_while_rivals_hold_every_shower(town: Any) -> None:
    state, rules = town.world, town.rules
    state.option[:] = Option.WAIT
    state.needs[0] = (0.9, 0.5, 0.9)  # a shower is wanted ahead of the night, not needed yet
    end = int(rules.job_end[state.job[0]])
    minute = next(m for m in range(end, end + 600) if _choose(town, m)[0] == Option.WASH)
    showers = np.flatnonzero(rules.town.obj_type == rules.aff_type[rules.opt_wash])
    state.tie_other[0, 0] = 1
    state.tie_vals[0, 0] = (0.0, 0.0, 0.8)
    state.waiting[1] = showers[0]  # the rival queues at one shower: another will do
    assert _choose(town, minute)[0] == Option.WASH
    town_env = townlet_env.parallel_env(num_agents=len(showers) + 1)  # enough seats to fill every shower
    town_env.reset(seed=0)
    big = town_env.unwrapped
    big.world.needs[:] = 0.9
    big.world.wallet[:] = 10.0
    big.world.option[:] = Option.WAIT
    big.world.needs[0] = (0.9, 0.5, 0.9)
    for k, shower in enumerate(showers, start=1):
        big.world.tie_other[0, k - 1] = k
        big.world.tie_vals[0, k - 1] = (0.0, 0.0, 0.8)
        big.world.waiting[k] = shower
    assert _choose(big, minute)[0] == Option.WAIT, "rivals at every shower: the top-up waits"
    big.world.needs[0, 1] = 0.3  # a real need goes ahead anyway
    assert _choose(big, minute)[0] == Option.WASH


def test_chat_target_is_the_best_living_friend_else_the_nearest_agent() -> None:
    """The one chat-target rule the env's CHAT option and the expert both use."""
    env = townlet_env.parallel_env(num_agents=4)
    env.reset(seed=0)
    state = env.unwrapped.world
    state.pos[:] = state.pos[0]
    state.pos[2, 1] += 1  # seat 2 is the nearest to seat 0, seat 3 the farthest
    state.pos[1, 1] += 2
    state.pos[3, 1] += 3
    state.tie_other[:] = -1
    seat0 = np.array([0])

    def target() -> int:
        return int(chat_targets(seat0, state.tie_other, state.tie_vals, state.alive, state.pos)[0])

    assert target() == 2  # no friends: the nearest living agent
    state.tie_other[0, :2] = (1, 3)
    state.tie_vals[0, 0] = (0.2, 0.2, 0.0)
    state.tie_vals[0, 1] = (0.5, 0.5, 0.1)
    assert target() == 3  # the closest friend (trust + familiarity - rivalry), however far
    state.alive[3] = False
    assert target() == 1  # a friend who is gone does not count
    state.tie_vals[0, 0] = (0.0, 0.1, 0.5)
    assert target() == 2  # nor does a tie whose rivalry outweighs it
    state.alive[1:] = False
    assert target() == -1


# --- the demo behind ``townlet town`` -------------------------------------------------


def test_run_town_measures_the_requested_days() -> None:
    report = run_town(None, days=1, seed=0, num_agents=4)
    assert report.days == 1.0 and report.ticks == TICKS_PER_DAY and report.identities == 4
    assert report.starvation_incidents == 0 and report.shifts_scheduled == 4


@pytest.mark.parametrize("with_rich", [True, False])
def test_format_report_lists_every_kpi(with_rich: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)  # import rich... raises ImportError
        monkeypatch.setitem(sys.modules, "rich.console", None)
        monkeypatch.setitem(sys.modules, "rich.table", None)
    else:
        pytest.importorskip("rich")
    report = KpiTracker(2).report()
    text = format_report(report)
    for field in dataclasses.fields(report):
        assert field.name in text
