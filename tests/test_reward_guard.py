"""``RewardGuard``: per-tick clip, per-episode cap, death window, terminal penalties, NaN guard.

Most tests drive ``RewardGuard.guard(raw, town)`` directly on a real (small) town whose
state fields they set by hand, so each guard is checked in isolation with known inputs;
the last ones go through ``step`` with the reward engine monkeypatched.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.rewards.engine import T_NEEDS, T_SOCIAL, T_SURVIVAL, T_TERMINAL, T_WAGE, TERMS
from townlet_env.rewards.guard import RewardGuard, RewardGuardError
from townlet_env.world.systems.lifecycle import FAINT

# ``townlet_env.env`` the attribute is the AEC constructor; the module is what step() calls into.
env_module = importlib.import_module("townlet_env.env")

N = 3
PER_TICK = 0.1
WINDOW = 10


def _town(per_episode: float = 50.0) -> tuple[RewardGuard, Any]:
    """A reset 3-seat town with a known clip config, settled at tick 100 with nobody in a window."""
    clip = {"per_tick": PER_TICK, "per_episode": per_episode, "death_window_ticks": WINDOW}
    guard = townlet_env.parallel_env(num_agents=N, rewards={"clip": clip})
    guard.reset(seed=0)
    town = guard.unwrapped
    state = town.world
    state.tick = 100
    state.zero_ticks[:] = 0
    state.alive[:] = True
    state.generation[:] = 0
    state.born_tick[:] = 0
    town.last_termination_reasons[:] = 0
    return guard, town


def _raw(**per_seat: dict[int, float]) -> np.ndarray:
    """float32[N, T] with ``term={seat: value}`` entries, zeros elsewhere."""
    raw = np.zeros((N, len(TERMS)), dtype=np.float32)
    for term, values in per_seat.items():
        for seat, v in values.items():
            raw[seat, TERMS.index(term)] = v
    return raw


# --- per-tick clip ----------------------------------------------------------------------


def test_per_tick_clip_bounds_the_shaping_sum() -> None:
    guard, town = _town()
    raw = _raw(survival={0: 0.2, 1: 0.005, 2: 0.0}, wage={0: 0.3, 1: 0.01}, needs={2: -0.7})
    total, clipped = guard.guard(raw, town)
    assert total[0] == pytest.approx(PER_TICK), "0.5 of shaping is clipped to +per_tick"
    assert total[1] == pytest.approx(0.015), "a healthy reward passes untouched"
    assert total[2] == pytest.approx(-PER_TICK), "-0.7 of shaping is clipped to -per_tick"
    assert clipped.tolist() == [True, False, True]


def test_terminal_penalty_is_not_softened_by_the_clip() -> None:
    guard, town = _town()
    town.last_termination_reasons[1] = FAINT
    town.world.alive[1] = False
    raw = _raw(needs={1: -0.5}, terminal={1: -1.0})
    total, _ = guard.guard(raw, town)
    assert total[1] == pytest.approx(-PER_TICK - 1.0), "shaping clipped, the full death penalty kept"
    assert total[1] < -1.0
    assert [total[0], total[2]] == pytest.approx([0.0, 0.0])


# --- death window -----------------------------------------------------------------------


def test_no_positive_reward_while_a_need_sits_at_zero() -> None:
    guard, town = _town()
    town.world.zero_ticks[:] = [0, 4, 4]
    raw = _raw(survival={0: 0.05, 1: 0.05, 2: 0.005}, needs={2: -0.02})
    total, clipped = guard.guard(raw, town)
    assert total[0] == pytest.approx(0.05)
    assert total[1] == pytest.approx(0.0) and clipped[1], "the run-up to a faint pays nothing positive"
    assert total[2] == pytest.approx(-0.015), "negative rewards still flow in the window"
    assert not clipped[2]


def test_no_positive_reward_on_the_tick_an_identity_ends() -> None:
    guard, town = _town()
    town.last_termination_reasons[0] = FAINT
    raw = _raw(wage={0: 0.05, 1: 0.05})
    total, _ = guard.guard(raw, town)
    assert total.tolist()[:2] == pytest.approx([0.0, 0.05])


@pytest.mark.parametrize(
    ("generation", "age", "blocked"),
    [
        (1, 0, True),  # the respawn tick itself
        (1, WINDOW, True),  # last tick of the window
        (1, WINDOW + 1, False),  # window over
        (3, 2, True),  # any later generation too
        (0, 2, False),  # the first identity of a seat is not "after a death"
    ],
)
def test_no_positive_reward_within_the_window_after_a_respawn(generation: int, age: int, blocked: bool) -> None:
    guard, town = _town()
    state = town.world
    state.generation[2] = generation
    state.born_tick[2] = state.tick - age
    total, clipped = guard.guard(_raw(survival={1: 0.05, 2: 0.05}), town)
    assert total[1] == pytest.approx(0.05)
    assert bool(total[2] == pytest.approx(0.0)) is blocked and bool(clipped[2]) is blocked
    negative, _ = guard.guard(_raw(needs={2: -0.03}), town)
    assert negative[2] == pytest.approx(-0.03), "penalties are never suppressed by the window"


# --- per-episode cap --------------------------------------------------------------------


def test_per_episode_cap_on_the_running_return() -> None:
    guard, town = _town(per_episode=0.25)
    up = _raw(survival={0: 0.1}, needs={1: -0.1})
    paid = [guard.guard(up, town)[0] for _ in range(5)]
    assert [p[0] for p in paid] == pytest.approx([0.1, 0.1, 0.05, 0.0, 0.0])
    assert [p[1] for p in paid] == pytest.approx([-0.1, -0.1, -0.05, 0.0, 0.0])
    assert sum(p[0] for p in paid) == pytest.approx(0.25)
    back, _ = guard.guard(_raw(needs={0: -0.1}), town)
    assert back[0] == pytest.approx(-0.1), "coming down from the cap is not blocked"


def test_cap_restarts_for_a_new_identity_and_a_new_episode() -> None:
    guard, town = _town(per_episode=0.15)
    up = _raw(survival={0: 0.1, 1: 0.1})
    for _ in range(3):
        guard.guard(up, town)
    assert guard.guard(up, town)[0][:2] == pytest.approx([0.0, 0.0])
    # seat 0's identity ends: its running return is forgotten with it
    town.last_termination_reasons[0] = FAINT
    guard.guard(up, town)
    town.last_termination_reasons[0] = 0
    total, _ = guard.guard(up, town)
    assert [total[0], total[1]] == pytest.approx([0.1, 0.0])
    # a new episode starts every seat afresh
    guard.reset(seed=1)
    _, town = guard, guard.unwrapped
    town.world.tick = 100
    town.world.zero_ticks[:] = 0
    assert guard.guard(up, town)[0][:2] == pytest.approx([0.1, 0.1])


# --- NaN / inf guard --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("seat", "term"), [(1, "wage"), (2, "terminal"), (0, "survival")])
def test_non_finite_term_raises_naming_agent_tick_and_term(bad: float, seat: int, term: str) -> None:
    guard, town = _town()
    town.world.tick = 4321
    raw = _raw(survival={0: 0.005, 1: 0.005, 2: 0.005})
    raw[seat, TERMS.index(term)] = bad
    with pytest.raises(RewardGuardError) as info:
        guard.guard(raw, town)
    msg = str(info.value)
    assert f"agent_{seat}" in msg and repr(term) in msg and "4321" in msg


def test_nan_through_step_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    real = env_module.reward_terms

    def poisoned(state: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        terms, _ = real(state, *args, **kwargs)
        if state.tick >= 5:
            terms[2, T_NEEDS] = np.nan
        return terms, terms.sum(axis=1, dtype=np.float64)

    monkeypatch.setattr(env_module, "reward_terms", poisoned)
    guard = townlet_env.parallel_env(num_agents=N)
    obs, _ = guard.reset(seed=0)
    for _ in range(4):
        obs, *_ = guard.step(dict.fromkeys(obs, 0))
    with pytest.raises(RewardGuardError, match=r"'needs'.*agent_2.*tick 5"):
        guard.step(dict.fromkeys(obs, 0))


# --- end to end ---------------------------------------------------------------------------


def test_step_returns_guarded_rewards_and_raw_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``step``: rewards are clipped, ``clipped`` says so, ``reward_terms`` stays raw."""
    real = env_module.reward_terms

    def inflated(*args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        terms, _ = real(*args, **kwargs)
        terms[0, T_WAGE] += 0.5  # seat 0 earns far above the clip every tick
        return terms, terms.sum(axis=1, dtype=np.float64)

    monkeypatch.setattr(env_module, "reward_terms", inflated)
    guard = townlet_env.parallel_env(num_agents=N, rewards={"clip": {"per_tick": PER_TICK, "per_episode": 1.0}})
    obs, _ = guard.reset(seed=0)
    returns = dict.fromkeys(obs, 0.0)
    for tick in range(1, 31):
        obs, rewards, _, _, infos = guard.step(dict.fromkeys(obs, 0))
        raw = infos["agent_0"]["reward_terms"]
        assert raw[T_WAGE] >= 0.5, "infos keep the raw breakdown"
        assert infos["agent_0"]["clipped"]
        assert rewards["agent_0"] <= PER_TICK + 1e-6
        for a in obs:
            returns[a] += rewards[a]
            assert abs(returns[a]) <= 1.0 + 1e-6, f"tick {tick}: {a} beyond the episode cap"
            if not infos[a]["clipped"]:
                assert rewards[a] == pytest.approx(float(infos[a]["reward_terms"].sum()), abs=1e-6)
    assert returns["agent_0"] == pytest.approx(1.0), "the capped seat saturates at per_episode"
    assert returns["agent_1"] < 0.5


def test_terminal_penalty_reaches_the_learner_through_step() -> None:
    """A real faint: the seat's reward that tick carries the full faint penalty."""
    starving = {"decay": {"hunger": 0.05, "hygiene": 0.0004, "energy": 0.0005}}
    guard = townlet_env.parallel_env(num_agents=N, needs=starving)
    obs, _ = guard.reset(seed=0)
    penalty = guard.unwrapped.config.rewards.faint_penalty
    seen = 0
    for _ in range(100):
        obs, rewards, _, _, infos = guard.step(dict.fromkeys(obs, 0))
        for a, info in infos.items():
            if info["identity_ended"]:
                seen += 1
                assert info["reward_terms"][T_TERMINAL] == pytest.approx(penalty)
                assert rewards[a] <= penalty + 1e-6
    assert seen >= 1


def test_term_columns_follow_terms() -> None:
    columns = {T_SURVIVAL: "survival", T_NEEDS: "needs", T_WAGE: "wage", T_SOCIAL: "social", T_TERMINAL: "terminal"}
    assert all(TERMS[k] == name for k, name in columns.items())
