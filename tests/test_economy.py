"""The economy works: wages cover the basket in every shipped config; charges, restock, cooking.

Shipped configs are the town configs under ``townlet_env/data`` and ``experiments`` (a YAML
mapping with a ``config_id``, or a ``town:`` block of overrides anywhere in an experiment).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import DATA_DIR, TICKS_PER_DAY, TownConfig, load_config
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.events import EventKind
from townlet_env.world.rules import build_rules
from townlet_env.world.systems.economy import daily_wage

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 1.1


def _town_blocks(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every mapping under a ``town`` key, at any depth."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "town" and isinstance(value, Mapping):
                yield value
            yield from _town_blocks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _town_blocks(value)


def shipped_configs() -> list[tuple[str, TownConfig]]:
    out = []
    files = sorted(DATA_DIR.rglob("*.yaml")) + sorted((ROOT / "experiments").rglob("*.yaml"))
    for path in files:
        data = yaml.safe_load(path.read_text())
        name = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        if isinstance(data, Mapping) and "config_id" in data:
            out.append((name, load_config(path)))
        for k, block in enumerate(_town_blocks(data)):
            fields = {key: v for key, v in block.items() if key not in ("config", "render_mode")}
            out.append((f"{name}#town{k}", load_config(block.get("config"), **fields)))
    return out


CONFIGS = shipped_configs()


def test_the_default_config_is_among_the_shipped_ones() -> None:
    assert any(cfg.config_id == "townlet-default-v1" for _, cfg in CONFIGS)


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[name for name, _ in CONFIGS])
def test_a_full_shift_pays_at_least_110_percent_of_the_daily_basket(name: str, config: TownConfig) -> None:
    rules = build_rules(config)
    basket = rules.daily_basket()
    assert basket > 0, f"{name}: the basket is free"
    assert daily_wage(rules) >= MARGIN * basket, f"{name}: wage {daily_wage(rules):.2f} < {MARGIN} x {basket:.2f}"


def test_the_listed_wage_is_what_a_punctual_worker_actually_earns() -> None:
    """A day of the expert's work pays the formula's wage (no gaps between uses, no lost ticks)."""
    env = townlet_env.parallel_env(max_ticks=2 * TICKS_PER_DAY)
    env.reset(seed=0)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules)
    income = np.zeros(len(env.possible_agents))
    while env.agents:
        before = town.world.wallet.copy()
        env.step(expert.act_dict(env))
        if town.world.tick > TICKS_PER_DAY:  # day 1: a whole day in the routine
            income += np.maximum(town.world.wallet - before, 0.0)
    assert income.min() >= MARGIN * town.rules.daily_basket()
    assert income.min() >= 0.97 * daily_wage(town.rules)  # a chat break costs a tick now and then


def _one_agent(**overrides: Any) -> tuple[Any, Any]:
    env = townlet_env.parallel_env(num_agents=1, max_ticks=2 * TICKS_PER_DAY, **overrides)
    env.reset(seed=0)
    town = env.unwrapped
    town.world.tick = 600  # mid-morning of day 0, no shift for a while
    town.world.job[:] = -1
    town.world.wallet[:] = 10.0
    town.world.needs[:] = 0.9
    return env, town


def _run_until_finish(env: Any, town: Any, option: Option, affordance: int, limit: int = 400) -> None:
    for _ in range(limit):
        env.step({"agent_0": int(option)})
        if any(e.kind == EventKind.AFFORDANCE_FINISH and e.value == affordance for e in town.last_events):
            return
    raise AssertionError(f"{option.name} did not finish within {limit} ticks")


def _fridges(town: Any) -> np.ndarray:
    rules = town.rules
    return np.flatnonzero(rules.town.obj_type == rules.aff_type[rules.opt_eat])


def test_one_meal_costs_exactly_the_meal_price_once() -> None:
    env, town = _one_agent()
    rules, state = town.rules, town.world
    state.needs[0, 0] = 0.3
    price, meals = float(rules.aff_price[rules.opt_eat]), state.stock[_fridges(town)].sum()
    wallet = float(state.wallet[0])
    _run_until_finish(env, town, Option.EAT, rules.opt_eat)
    assert float(state.wallet[0]) == pytest.approx(wallet - price, abs=1e-5)
    assert state.stock[_fridges(town)].sum() == meals - 1
    assert state.needs[0, 0] > 0.3 + 0.9 * float(rules.aff_effects[rules.opt_eat, 0]) - 0.1
    for _ in range(30):  # nothing more is charged afterwards
        env.step({"agent_0": int(Option.WAIT)})
    assert float(state.wallet[0]) == pytest.approx(wallet - price, abs=1e-5)


def test_the_daily_restock_refills_every_fridge() -> None:
    env, town = _one_agent()
    rules, state = town.rules, town.world
    fridges = _fridges(town)
    state.stock[fridges] = 0
    state.tick = rules.config.economy.restock_minute + TICKS_PER_DAY
    env.step({"agent_0": int(Option.WAIT)})
    level = rules.type_restock[rules.town.obj_type[fridges]]
    assert (level > 0).any()
    assert (state.stock[fridges] == level).all()
    restocked = {e.obj for e in town.last_events if e.kind == EventKind.RESTOCK}
    assert restocked == set(fridges.tolist())


def test_cooked_meals_land_in_a_fridge_and_can_be_eaten() -> None:
    env, town = _one_agent()
    rules, state = town.rules, town.world
    fridges = _fridges(town)
    state.stock[fridges] = 0
    state.needs[0, 0] = 0.35
    env.step({"agent_0": int(Option.WAIT)})  # a fresh mask: no meal to buy anywhere
    assert town.action_masks()[0, Option.EAT] == 0 and town.action_masks()[0, Option.COOK] == 1
    wallet = float(state.wallet[0])
    _run_until_finish(env, town, Option.COOK, rules.opt_cook)
    assert float(state.wallet[0]) == pytest.approx(wallet - float(rules.aff_price[rules.opt_cook]), abs=1e-5)
    produced = int(rules.aff_produces[rules.opt_cook].sum())
    assert produced > 0 and state.stock[fridges].sum() == produced
    env.step({"agent_0": int(Option.WAIT)})
    assert town.action_masks()[0, Option.EAT] == 1
    hunger = float(state.needs[0, 0])
    _run_until_finish(env, town, Option.EAT, rules.opt_eat)
    assert state.stock[fridges].sum() == produced - 1
    assert float(state.needs[0, 0]) > hunger + 0.3


def test_the_last_coins_buy_a_whole_meal() -> None:
    env, town = _one_agent()
    rules, state = town.rules, town.world
    price = float(rules.aff_price[rules.opt_eat])
    state.wallet[0] = price
    state.needs[0, 0] = 0.3
    _run_until_finish(env, town, Option.EAT, rules.opt_eat, limit=120)
    assert state.needs[0, 0] > 0.6
