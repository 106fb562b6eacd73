"""Conformance of ``TownVecEnv`` with what SB3 / sb3-contrib expect of a ``VecEnv``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from pettingzoo.utils.wrappers import BaseParallelWrapper
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

import townlet_env
from training.vec_env import TownVecEnv

pytestmark = pytest.mark.train

SMALL: dict[str, Any] = {"map": "small", "num_agents": 4}
# Needs drain fast and faints come quickly: several deaths and respawns within 60 ticks.
HARSH: dict[str, Any] = {
    **SMALL,
    "needs": {"decay": {"hunger": 0.05, "hygiene": 0.001, "energy": 0.001}},
    "lifecycle": {"faint_after_ticks": 3, "respawn_delay": (4, 6)},
}


def town(**overrides: Any) -> Any:
    return functools.partial(townlet_env.parallel_env, **{**SMALL, **overrides})


def random_valid(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.random(masks.shape)
    noise[masks == 0] = -1.0
    return noise.argmax(axis=1)


def run(venv: TownVecEnv, steps: int, seed: int = 0) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        actions = random_valid(np.stack(venv.env_method("action_masks")), rng)
        out.append(venv.step(actions))
    return out


def test_spaces_shapes_dtypes() -> None:
    venv = TownVecEnv(town(max_ticks=20), n_towns=2, seed=0)
    assert venv.num_envs == 8
    obs = venv.reset()
    assert set(obs) == {"observation", "action_mask"}
    assert obs["observation"].shape == (8, venv.layout.size) and obs["observation"].dtype == np.float32
    assert obs["action_mask"].shape == (8, venv.layout.n_actions) and obs["action_mask"].dtype == np.int8
    for i in range(8):
        assert venv.observation_space.contains({k: v[i] for k, v in obs.items()})
    new_obs, rewards, dones, infos = venv.step(np.zeros(8, dtype=np.int64))
    assert rewards.shape == (8,) and rewards.dtype == np.float32
    assert dones.shape == (8,) and dones.dtype == np.bool_
    assert len(infos) == 8 and all(isinstance(i, dict) for i in infos)
    assert [i["seat"] for i in infos] == [f"agent_{j}" for j in range(4)] * 2
    assert new_obs["observation"] is not obs["observation"]


def test_action_masks_served_per_index() -> None:
    venv = TownVecEnv(town(max_ticks=30), n_towns=2, seed=1)
    obs = venv.reset()
    assert venv.has_attr("action_masks") and not venv.has_attr("no_such_attribute")
    assert is_masking_supported(venv)
    for _ in range(10):
        masks = get_action_masks(venv)
        np.testing.assert_array_equal(masks, obs["action_mask"])
        for k, core in enumerate(t.unwrapped for t in venv.towns):
            np.testing.assert_array_equal(masks[venv.town_rows(k)], core.action_masks()[venv.seats[k]])
        obs, *_ = venv.step(random_valid(masks, np.random.default_rng(0)))
    assert venv.env_method("action_masks", indices=[3])[0].shape == (venv.layout.n_actions,)


def test_truncation_reports_terminal_observation_and_resets_with_next_seed() -> None:
    venv = TownVecEnv(town(max_ticks=12), n_towns=2, seed=5)
    venv.reset()
    steps = run(venv, 12)
    for _obs, _, dones, _infos in steps[:-1]:
        assert not dones.any()
    obs, _, dones, infos = steps[-1]
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        term = info["terminal_observation"]
        assert term["observation"].shape == (venv.layout.size,) and term["action_mask"].dtype == np.int8
        assert info["episode"]["l"] == 12
    # Town k's second episode is seeded seed + k + K: the returned obs are that reset's.
    np.testing.assert_array_equal(venv.episode_seeds, [7, 8])
    for k in range(2):
        fresh = townlet_env.parallel_env(**SMALL, max_ticks=12)
        ref, _ = fresh.reset(seed=int(venv.episode_seeds[k]))
        want = np.stack([ref[f"agent_{j}"]["observation"] for j in range(4)])
        np.testing.assert_array_equal(obs["observation"][venv.town_rows(k)], want)
        assert not np.array_equal(infos[4 * k]["terminal_observation"]["observation"], want[0])


def test_seeding_is_per_town_and_reproducible() -> None:
    a = TownVecEnv(town(max_ticks=40), n_towns=2, seed=3)
    b = TownVecEnv(town(max_ticks=40), n_towns=2, seed=3)
    oa, ob = a.reset(), b.reset()
    np.testing.assert_array_equal(oa["observation"], ob["observation"])
    assert not np.array_equal(oa["observation"][:4], oa["observation"][4:]), "towns must differ"
    for (o1, r1, d1, _), (o2, r2, d2, _) in zip(run(a, 40), run(b, 40), strict=True):
        np.testing.assert_array_equal(o1["observation"], o2["observation"])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
    # seed() re-bases: the next reset replays a fresh env built with that seed.
    assert a.seed(11) == [11] * 4 + [12] * 4
    c = TownVecEnv(town(max_ticks=40), n_towns=2, seed=11)
    np.testing.assert_array_equal(a.reset()["observation"], c.reset()["observation"])


def test_identity_end_is_a_termination_and_vacancy_is_padding() -> None:
    venv = TownVecEnv(town(**HARSH, max_ticks=60), n_towns=1, seed=0)
    venv.reset()
    present_col = venv.layout.index("present")
    ended, vacant_steps, respawned = 0, 0, 0
    was_vacant = np.zeros(venv.num_envs, dtype=bool)
    for _ in range(59):
        obs, rewards, dones, infos = venv.step(np.zeros(venv.num_envs, dtype=np.int64))
        for i, info in enumerate(infos):
            present = obs["observation"][i, present_col] == 1.0
            assert present == info["present"] == venv.present[i]
            if dones[i]:
                ended += 1
                assert info["TimeLimit.truncated"] is False
                assert info["terminal_observation"]["observation"][present_col] == 0.0
                assert info["episode"]["l"] > 0
            if not present:
                vacant_steps += 1
                np.testing.assert_array_equal(obs["action_mask"][i], [1] + [0] * 7)
                if was_vacant[i]:
                    assert rewards[i] == 0.0 and not dones[i]
            elif was_vacant[i]:
                respawned += 1
                assert not dones[i], "a respawn is not a done: the new identity's episode began at the death"
            was_vacant[i] = not present
    assert ended >= 4 and vacant_steps >= 4 * ended and respawned >= 4


def test_without_respawn_a_terminated_seat_pads_until_the_town_ends() -> None:
    harsh = {**HARSH, "lifecycle": {**HARSH["lifecycle"], "respawn": False}}
    venv = TownVecEnv(town(**harsh, max_ticks=200), n_towns=1, seed=0)
    venv.reset()
    terminated = np.zeros(venv.num_envs, dtype=bool)
    for _ in range(199):
        obs, rewards, dones, infos = venv.step(np.zeros(venv.num_envs, dtype=np.int64))
        if dones.all():  # the last seat died: PettingZoo's episode is over, the town resets
            break
        for i in range(venv.num_envs):
            if terminated[i]:
                assert not dones[i] and rewards[i] == 0.0 and not infos[i]["present"]
                np.testing.assert_array_equal(obs["action_mask"][i], [1] + [0] * 7)
            elif dones[i]:
                assert infos[i]["TimeLimit.truncated"] is False and "episode" in infos[i]
                terminated[i] = True
    else:
        pytest.fail("the harsh town should empty before max_ticks")
    last = [i for i in range(venv.num_envs) if not terminated[i]]
    assert terminated.sum() >= 1 and last, "deaths come at different ticks"
    for i in range(venv.num_envs):
        assert ("episode" in infos[i]) == (i in last), "padding stretches are not episodes"
        assert infos[i]["TimeLimit.truncated"] is (i not in last)
    assert venv.present.all() and venv.episode_seeds[0] == 1


class Recorder(BaseParallelWrapper):
    """Keeps the action dicts a town receives."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.sent: list[dict[str, int]] = []

    def step(self, actions: dict) -> Any:
        self.sent.append(dict(actions))
        return self.env.step(actions)


class GoHome:
    """A stand-in expert: GO_HOME (7) where allowed, else the first allowed option."""

    def __init__(self, rules: Any, seed: int) -> None:
        self.seed = seed

    def act(self, state: Any, mask: np.ndarray) -> np.ndarray:
        return np.where(mask[:, 7] == 1, 7, mask.argmax(axis=1)).astype(np.int64)


def test_scripted_seats_are_driven_inside_and_learned_seats_follow_the_chooser() -> None:
    def chooser(episode_seed: int, n_seats: int) -> list[int]:
        return [episode_seed % n_seats, (episode_seed + 2) % n_seats]

    venv = TownVecEnv(
        lambda: Recorder(townlet_env.parallel_env(**SMALL, max_ticks=5)),
        n_towns=2,
        seed=0,
        learned_seats=chooser,
        expert=GoHome,
    )
    assert venv.num_envs == 4
    venv.reset()
    np.testing.assert_array_equal(venv.seats, [[0, 2], [1, 3]])
    for _ in range(5):
        masks = np.stack(venv.env_method("action_masks"))
        actions = random_valid(masks, np.random.default_rng(1))
        before = [t.unwrapped.action_masks() for t in venv.towns]
        venv.step(actions)
        for k, t in enumerate(venv.towns):
            sent = np.array([t.sent[-1][f"agent_{j}"] for j in range(4)])
            learned = [[0, 2], [1, 3]][k]
            np.testing.assert_array_equal(sent[learned], actions[venv.town_rows(k)])
            scripted = np.setdiff1d(np.arange(4), learned)
            np.testing.assert_array_equal(sent[scripted], GoHome(None, 0).act(None, before[k])[scripted])
    # After the day ends each town is reseeded and its learned seats re-chosen from the new seed.
    np.testing.assert_array_equal(venv.episode_seeds, [2, 3])
    np.testing.assert_array_equal(venv.seats, [[0, 2], [1, 3]])
    assert venv.invalid_actions == 0


def test_bad_chooser_and_masked_actions_are_caught() -> None:
    with pytest.raises(ValueError, match="need"):
        TownVecEnv(town(), learned_seats=lambda s, n: [])
    flaky = TownVecEnv(town(max_ticks=3), learned_seats=lambda s, n: list(range(1 + s % 2)), expert=GoHome)
    flaky.reset()  # episode seed 0: one learned seat, as at construction
    flaky.seed(1)
    with pytest.raises(ValueError, match="every episode"):
        flaky.reset()  # episode seed 1 would give two
    venv = TownVecEnv(town(max_ticks=10), seed=0)
    masks = venv.reset()["action_mask"]
    masked = np.argmin(masks, axis=1)
    assert (masks[np.arange(4), masked] == 0).all()
    venv.step(masked)
    assert venv.invalid_actions == 4
