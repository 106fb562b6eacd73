"""Reward health under the scripted expert on the default town, 3 sim days.

* the per-tick clip is not where healthy play lives: fewer than 5 % of agent-ticks have a
  shaping sum (every term but ``terminal``) at or beyond ``rewards.clip.per_tick``;
* healthy agents earn a positive return per sim day;
* an agent that starves (forced to WAIT forever) earns clearly less than every healthy one.
"""

from __future__ import annotations

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.kpis import KpiReport, KpiTracker
from townlet_env.scripted import ScriptedExpert

DAYS = 3
SEEDS = (0, 1, 2)
STARVING = "agent_0"


def _roll(seed: int, starve: bool = False) -> tuple[KpiReport, float]:
    """Run the expert (seat 0 forced to WAIT when ``starve``); return KPIs and clip saturation."""
    env = townlet_env.parallel_env(max_ticks=DAYS * TICKS_PER_DAY)
    env.reset(seed=seed)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=seed)
    tracker = KpiTracker(len(env.possible_agents))
    clip = town.config.rewards.clip.per_tick
    shaping = [i for i, name in enumerate(town.reward_terms_names) if name != "terminal"]
    at_clip = agent_ticks = 0
    while env.agents:
        actions = expert.act_dict(env)
        if starve:
            actions[STARVING] = int(Option.WAIT)
        _, rewards, _, _, infos = env.step(actions)
        present = [a for a in rewards if infos[a]["present"]]
        raw = np.array([infos[a]["reward_terms"] for a in present])
        at_clip += int((np.abs(raw[:, shaping].sum(axis=1)) >= clip).sum())
        agent_ticks += len(present)
        tracker.update(town.world, town.last_events, np.array([rewards[a] for a in env.possible_agents]))
    return tracker.report(), at_clip / agent_ticks


@pytest.fixture(scope="module", params=SEEDS)
def healthy(request: pytest.FixtureRequest) -> tuple[KpiReport, float]:
    return _roll(request.param)


@pytest.fixture(scope="module")
def starving() -> tuple[KpiReport, float]:
    return _roll(0, starve=True)


def test_healthy_play_does_not_sit_at_the_per_tick_clip(healthy: tuple[KpiReport, float]) -> None:
    _, saturation = healthy
    assert saturation < 0.05


def test_healthy_agents_earn_a_positive_daily_return(healthy: tuple[KpiReport, float]) -> None:
    report, _ = healthy
    assert report.starvation_incidents == 0
    assert min(report.daily_return_per_seat) > 0.0
    assert report.mean_daily_return > 0.0


def test_a_starving_agent_earns_clearly_less(starving: tuple[KpiReport, float]) -> None:
    report, saturation = starving
    returns = np.asarray(report.daily_return_per_seat)
    starver, others = returns[0], returns[1:]
    assert report.starvation_incidents >= 1  # the WAIT-only seat faints (and respawns)
    assert starver < 0.0 < others.min()
    assert others.min() - starver > 0.5 * others.mean()  # a wide gap, not a rounding error
    assert saturation < 0.05
