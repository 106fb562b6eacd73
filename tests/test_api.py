"""PettingZoo API conformance for every observation variant and action mode, plus the
error contract of the constructors and of ``step``, and the two render modes.
"""

from __future__ import annotations

import random
import re
import warnings
from typing import Any

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import townlet_env
from townlet_env import ConfigError
from townlet_env.actions import N_OPTIONS, N_PRIMITIVES, OPT_CHAT, OPT_GO_HOME, OPT_WAIT, OPT_WORK, Option, Primitive

VARIANTS = ("full", "hybrid", "compact")
MODES = ("option", "primitive")
GRID = [(v, m) for v in VARIANTS for m in MODES]


# api_test's static checks predate the masked-Dict observation convention that its own
# play_test enforces; these two warnings are about the Dict itself, nothing else.
MASKED_DICT_WARNINGS = (
    "Observation space for each agent probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
    "Observation is not a NumPy array",
)


def _run_without_warnings(check: Any, *args: Any, **kwargs: Any) -> None:
    """Run a PettingZoo checker and fail on any warning it raises (they flag API smells
    such as "Live agent was not given observation"), except the masked-Dict ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(*args, **kwargs)
    messages = {str(w.message) for w in caught} - set(MASKED_DICT_WARNINGS)
    assert not messages, f"{check.__name__} warned: {sorted(messages)}"


# max_ticks < num_cycles for half of the grid, so the truncation path (agents -> []) is
# walked by the checkers too; the other half runs num_cycles ticks without truncating.
def _ticks(variant: str, mode: str) -> tuple[int, int]:
    """(max_ticks, num_cycles) for a grid cell."""
    truncating = (VARIANTS.index(variant) + MODES.index(mode)) % 2 == 0
    return (150, 200) if truncating else (1440, 200)


@pytest.mark.parametrize(("variant", "mode"), GRID)
def test_parallel_api(variant: str, mode: str) -> None:
    random.seed(0)  # parallel_api_test samples with the global `random`
    max_ticks, cycles = _ticks(variant, mode)
    par = townlet_env.parallel_env(obs_variant=variant, action_mode=mode, max_ticks=max_ticks, num_agents=4)
    _run_without_warnings(parallel_api_test, par, num_cycles=cycles)


@pytest.mark.parametrize(("variant", "mode"), GRID)
def test_aec_api(variant: str, mode: str) -> None:
    max_ticks, cycles = _ticks(variant, mode)
    aec = townlet_env.env(obs_variant=variant, action_mode=mode, max_ticks=max_ticks, num_agents=4)
    _run_without_warnings(api_test, aec, num_cycles=cycles)


@pytest.mark.parametrize("mode", MODES)
def test_parallel_truncates_everyone_at_max_ticks(mode: str) -> None:
    par = townlet_env.parallel_env(action_mode=mode, max_ticks=7, num_agents=3)
    obs, _ = par.reset(seed=5)
    for tick in range(1, 8):
        obs, _, terms, truncs, _ = par.step(dict.fromkeys(obs, 0))
        expected = tick == 7
        assert set(truncs.values()) == {expected}, f"tick {tick}: {truncs}"
        assert not any(terms.values())
    assert par.agents == []


# Hunger empties in ~12 ticks, so identities faint within the first ~50 ticks.
STARVING = {"decay": {"hunger": 0.05, "hygiene": 0.0004, "energy": 0.0005}}


def test_parallel_api_with_terminations() -> None:
    """``lifecycle.respawn`` off: deaths are PettingZoo terminations and the checker walks them."""
    random.seed(0)
    par = townlet_env.parallel_env(num_agents=4, max_ticks=300, needs=STARVING, lifecycle={"respawn": False})
    _run_without_warnings(parallel_api_test, par, num_cycles=300)


def test_aec_api_with_terminations() -> None:
    aec = townlet_env.env(num_agents=4, max_ticks=300, needs=STARVING, lifecycle={"respawn": False})
    _run_without_warnings(api_test, aec, num_cycles=300)


def test_termination_removes_the_seat_when_respawn_is_off() -> None:
    par = townlet_env.parallel_env(num_agents=4, max_ticks=300, needs=STARVING, lifecycle={"respawn": False})
    par.reset(seed=0)
    gone: set[str] = set()
    for _ in range(200):
        if not par.agents:
            break
        before = list(par.agents)
        _, rewards, terms, truncs, infos = par.step(dict.fromkeys(before, 0))
        assert set(rewards) == set(terms) == set(truncs) == set(infos) == set(before)
        ended = {a for a in before if terms[a]}
        for a in ended:
            assert infos[a]["identity_ended"] and infos[a]["termination_reason"] == "faint"
            assert rewards[a] <= -0.9, "a faint costs its terminal penalty"
        assert set(par.agents) == set(before) - ended
        assert not ended & gone
        gone |= ended
    assert gone == set(par.possible_agents), "every starving agent terminated"


def test_respawn_keeps_the_seat_and_changes_identity() -> None:
    """``lifecycle.respawn`` on (default): a death is not a termination; the seat stays in
    ``agents``, is vacant (``present`` False, WAIT-only mask, zero reward), then refilled."""
    par = townlet_env.parallel_env(num_agents=4, max_ticks=300, needs=STARVING)
    obs, infos = par.reset(seed=0)
    first = {a: infos[a]["identity"] for a in par.agents}
    ended_at: dict[str, int] = {}
    refilled: dict[str, str] = {}
    for tick in range(1, 150):
        obs, rewards, terms, _, infos = par.step(dict.fromkeys(par.agents, 0))
        assert par.agents == par.possible_agents
        assert not any(terms.values())
        for a, info in infos.items():
            if info["identity_ended"] and a not in ended_at:
                ended_at[a] = tick
                assert info["identity"] == first[a] and info["termination_reason"] == "faint"
            elif a in ended_at and a not in refilled:
                if info["present"]:
                    refilled[a] = info["identity"]
                else:
                    assert rewards[a] == 0.0
                    assert obs[a]["action_mask"].tolist() == [1] + [0] * (len(obs[a]["action_mask"]) - 1)
    assert ended_at, "nobody fainted: the starvation config no longer bites"
    assert refilled, "no vacant seat was refilled"
    for a, identity in refilled.items():
        assert identity != first[a], f"{a} came back with the old identity {identity}"


# Note: PettingZoo 1.24.3's parallel_seed_test stops after one step (it breaks on
# ``any(terminations)``, which is true for any non-empty dict of agent names), so the long
# same-seed comparison lives in test_determinism.py.
@pytest.mark.parametrize("variant", VARIANTS)
def test_parallel_seed(variant: str) -> None:
    parallel_seed_test(
        lambda: townlet_env.parallel_env(obs_variant=variant, max_ticks=100, num_agents=4), num_cycles=30
    )


@pytest.mark.parametrize("mode", MODES)
def test_aec_seed(mode: str) -> None:
    seed_test(lambda: townlet_env.env(action_mode=mode, max_ticks=100, num_agents=4), num_cycles=30)


def test_reset_seed_overrides_config_seed() -> None:
    """``reset(seed=s)`` alone fixes the episode: towns built with different config seeds
    agree after the same reset seed; without a reset seed the config seed decides."""
    a = townlet_env.parallel_env(max_ticks=50, num_agents=4, seed=1)
    b = townlet_env.parallel_env(max_ticks=50, num_agents=4, seed=2)
    a.reset()
    b.reset()
    assert a.unwrapped.world.digest() != b.unwrapped.world.digest()
    a.reset(seed=9)
    b.reset(seed=9)
    assert a.unwrapped.world.digest() == b.unwrapped.world.digest()
    b.reset(seed=10)
    assert a.unwrapped.world.digest() != b.unwrapped.world.digest()


# --- constructor errors -----------------------------------------------------------------


def test_unknown_obs_variant_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"obs_variant") as info:
        townlet_env.parallel_env(obs_variant="tiny")
    assert "tiny" in str(info.value) or "full" in str(info.value)


def test_unknown_action_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"action_mode"):
        townlet_env.parallel_env(action_mode="joystick")


def test_unknown_render_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"render_mode.*'human'|'human'.*render_mode"):
        townlet_env.parallel_env(render_mode="human")


def test_unknown_override_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"max_tick\b"):
        townlet_env.parallel_env(max_tick=10)


# --- step() errors ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", [-1, 99, "eat", 1.5, None, "3"])
def test_a_bad_action_names_the_agent(mode: str, bad: object) -> None:
    """Out of range or not an integer at all: the same clear ValueError, and the world stays put."""
    par = townlet_env.parallel_env(action_mode=mode, num_agents=3)
    obs, _ = par.reset(seed=0)
    actions = dict.fromkeys(obs, 0)
    actions["agent_2"] = bad
    digest = par.unwrapped.world.digest()
    with pytest.raises(
        ValueError, match=rf"step\(\): action {re.escape(repr(bad))} for agent_2 is not an integer in Discrete"
    ):
        par.step(actions)
    assert par.unwrapped.world.digest() == digest, "a refused step must not advance the world"


def test_unknown_agent_in_step_names_it() -> None:
    par = townlet_env.parallel_env(num_agents=3)
    obs, _ = par.reset(seed=0)
    actions: dict[str, int] = dict.fromkeys(obs, 0)
    actions["agent_7"] = 0
    with pytest.raises(ValueError, match=r"agent_7"):
        par.step(actions)


# --- rendering --------------------------------------------------------------------------


def test_render_ansi_is_text_showing_the_map() -> None:
    par = townlet_env.parallel_env(render_mode="ansi", num_agents=4)
    par.reset(seed=0)
    frame = par.render()
    assert isinstance(frame, str)
    h, w = par.unwrapped.rules.town.shape
    lines = frame.splitlines()
    assert len(lines) >= h
    assert all(len(line) == w for line in lines[-h:]), "map rows must be as wide as the town"
    assert "#" in frame, "walls are drawn"


def test_render_rgb_array_is_uint8_hwc() -> None:
    par = townlet_env.parallel_env(render_mode="rgb_array", num_agents=4)
    obs, _ = par.reset(seed=0)
    frame = par.render()
    assert isinstance(frame, np.ndarray)
    assert frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    h, w = par.unwrapped.rules.town.shape
    assert frame.shape[0] % h == 0 and frame.shape[1] % w == 0
    assert frame.shape[0] // h == frame.shape[1] // w, "tiles are square"
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3, "floor, walls and agents differ"
    par.step(dict.fromkeys(obs, 0))
    assert par.render().shape == frame.shape


def test_render_without_mode_returns_none() -> None:
    par = townlet_env.parallel_env(num_agents=2)
    par.reset(seed=0)
    assert par.render() is None


def test_global_state_is_every_seat_observation_in_its_space() -> None:
    env = townlet_env.parallel_env(num_agents=3)
    obs, _ = env.reset(seed=0)
    state = env.state()
    assert env.unwrapped.state_space.contains(state)
    expected = np.concatenate([obs[a]["observation"] for a in env.possible_agents])
    np.testing.assert_array_equal(state, expected)


def test_a_config_keeps_its_variant_unless_one_is_asked_for() -> None:
    cfg = townlet_env.make_config(obs_variant="compact", action_mode="primitive")
    assert townlet_env.parallel_env(cfg).unwrapped.layout.variant == "compact"
    assert townlet_env.parallel_env(cfg).unwrapped.config.action_mode == "primitive"
    assert townlet_env.parallel_env(cfg, obs_variant="full").unwrapped.layout.variant == "full"
    assert townlet_env.parallel_env().unwrapped.layout.variant == "hybrid"


def test_plain_ids_are_the_enums() -> None:
    assert (len(Option), len(Primitive)) == (N_OPTIONS, N_PRIMITIVES)
    assert (OPT_WAIT, OPT_WORK, OPT_CHAT, OPT_GO_HOME) == (Option.WAIT, Option.WORK, Option.CHAT, Option.GO_HOME)
