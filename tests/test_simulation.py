"""The tick's structure: one numbered phase list, and kernel records that stay bound to the state."""

from __future__ import annotations

import numpy as np
import pytest

import townlet_env
from townlet_env.world.simulation import TICK_PHASES, TickArrays, TickRules, step_world


def test_step_world_documents_every_phase_numbered_in_order() -> None:
    doc = step_world.__doc__
    assert doc is not None
    for k, phase in enumerate(TICK_PHASES, start=1):
        assert f"\n{k}. {phase}\n" in doc
    assert TICK_PHASES[-1] == "the clock advances one tick"


@pytest.mark.parametrize("action_mode", ["option", "primitive"])
def test_the_tick_records_stay_the_state_s_own_arrays(action_mode: str) -> None:
    """Nothing re-assigns a state array, so the records built on the first tick stay valid."""
    par = townlet_env.parallel_env(map="small", num_agents=6, action_mode=action_mode, max_ticks=400)
    obs, _ = par.reset(seed=3)
    town = par.unwrapped
    rng = np.random.default_rng(3)
    while par.agents:
        masks = np.stack([obs[a]["action_mask"] for a in par.agents])
        choice = np.where(masks > 0, rng.random(masks.shape), -1.0).argmax(axis=1)
        obs, *_ = par.step(dict(zip(par.agents, choice.tolist(), strict=True)))
    rules, bound = town.world.kernels["tick"]
    assert rules is town.rules
    for name in TickArrays._fields:
        assert getattr(bound.arrays, name) is getattr(town.world, name), f"state.{name} was re-assigned"
    encoded = town.variant.encoder._state  # the encoder's record, gathered on the state's first encode
    for name in encoded._fields:
        assert getattr(encoded, name) is getattr(town.world, name), f"state.{name} was re-assigned"
    fresh = TickRules.of(town.rules)
    for name, value, now in zip(TickRules._fields, bound.consts, fresh, strict=True):
        assert value is now if isinstance(value, np.ndarray) else value == now, name


def test_a_reset_binds_the_new_state() -> None:
    par = townlet_env.parallel_env(map="small", num_agents=2, max_ticks=10)
    par.reset(seed=0)
    par.step(dict.fromkeys(par.agents, 0))
    first = par.unwrapped.world
    par.reset(seed=1)
    par.step(dict.fromkeys(par.agents, 0))
    second = par.unwrapped.world
    assert second is not first
    assert second.kernels["tick"][1].arrays.needs is second.needs
