"""The golden rollouts that pin the dynamics: fixed towns, seeds and policies.

Each case steps a public ``parallel_env`` (reward guard included) and records:

* ``digests``: ``WorldState.digest()`` at tick 0 and every ``EVERY`` ticks after;
* ``obs``: one running hash over every observation vector and action mask, per checkpoint;
* ``rewards``: one running hash over the guarded rewards and every reward term, per checkpoint.

``scripts/record_goldens.py`` writes the results to ``tests/golden/digests.json`` and
``tests/test_golden.py`` compares a fresh run against that file. Anything that changes what
the town does (a rule, a kernel, an RNG draw, the encoder, a reward term) changes a hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import townlet_env
from townlet_env.scripted import ScriptedExpert

GOLDEN_PATH = Path(__file__).with_name("digests.json")
EVERY = 100


@dataclass(frozen=True)
class Case:
    """One pinned rollout: env keyword arguments, a seed and a policy."""

    name: str
    seed: int
    ticks: int
    policy: str  # "random": seeded random valid actions; "expert": the scripted expert
    env_kwargs: tuple[tuple[str, Any], ...]


def _case(name: str, seed: int, ticks: int, policy: str, **kw: Any) -> Case:
    return Case(name, seed, ticks, policy, tuple(sorted(kw.items())))


CASES: tuple[Case, ...] = (
    _case("option-hybrid-random-s0", 0, 2_000, "random", action_mode="option", obs_variant="hybrid"),
    _case("option-hybrid-random-s1", 1, 2_000, "random", action_mode="option", obs_variant="hybrid"),
    _case("primitive-hybrid-random-s0", 0, 2_000, "random", action_mode="primitive", obs_variant="hybrid"),
    _case("primitive-hybrid-random-s1", 1, 2_000, "random", action_mode="primitive", obs_variant="hybrid"),
    _case("option-full-random-s2", 2, 600, "random", action_mode="option", obs_variant="full"),
    _case("option-compact-random-s2", 2, 600, "random", action_mode="option", obs_variant="compact"),
    _case("primitive-full-random-s2", 2, 600, "random", action_mode="primitive", obs_variant="full"),
    _case("primitive-compact-random-s2", 2, 600, "random", action_mode="primitive", obs_variant="compact"),
    _case("option-hybrid-expert-s3", 3, 2 * townlet_env.TICKS_PER_DAY, "expert", obs_variant="hybrid"),
    # A crowded small town with a short respawn: faints, evictions and respawns happen.
    _case("small-crowded-random-s4", 4, 3_000, "random", map="small", num_agents=12, obs_variant="full"),
)


def _update_obs(h: Any, obs: dict[str, dict[str, np.ndarray]]) -> None:
    for agent in sorted(obs):
        h.update(agent.encode())
        h.update(np.ascontiguousarray(obs[agent]["observation"]).tobytes())
        h.update(np.ascontiguousarray(obs[agent]["action_mask"]).tobytes())


def _update_rewards(h: Any, rewards: dict[str, float], infos: dict[str, dict[str, Any]]) -> None:
    for agent in sorted(rewards):
        h.update(agent.encode())
        h.update(np.float64(rewards[agent]).tobytes())
        h.update(np.asarray(infos[agent]["reward_terms"], dtype=np.float32).tobytes())


def run_case(case: Case) -> dict[str, list[str]]:
    """Roll ``case`` out and return its per-checkpoint digests and hashes."""
    par = townlet_env.parallel_env(max_ticks=case.ticks, **dict(case.env_kwargs))
    town = par.unwrapped
    obs, _ = par.reset(seed=case.seed)
    rng = np.random.default_rng(1_000 + case.seed)
    expert = ScriptedExpert(town.rules, seed=case.seed) if case.policy == "expert" else None
    h_obs, h_rew = hashlib.blake2b(digest_size=16), hashlib.blake2b(digest_size=16)
    _update_obs(h_obs, obs)
    out: dict[str, list[str]] = {"digests": [town.world.digest()], "obs": [h_obs.hexdigest()], "rewards": [""]}
    for tick in range(1, case.ticks + 1):
        if expert is not None:
            actions = expert.act_dict(par)
        else:
            masks = np.stack([obs[a]["action_mask"] for a in par.agents])
            scores = np.where(masks > 0, rng.random(masks.shape), -1.0)
            actions = dict(zip(par.agents, scores.argmax(axis=1).tolist(), strict=True))
        obs, rewards, _, _, infos = par.step(actions)
        _update_obs(h_obs, obs)
        _update_rewards(h_rew, rewards, infos)
        if tick % EVERY == 0 or tick == case.ticks:
            out["digests"].append(town.world.digest())
            out["obs"].append(h_obs.hexdigest())
            out["rewards"].append(h_rew.hexdigest())
    return out


def checkpoint_ticks(case: Case) -> list[int]:
    """The ticks at which ``run_case`` records, in order."""
    ticks = list(range(0, case.ticks + 1, EVERY))
    return ticks if ticks[-1] == case.ticks else [*ticks, case.ticks]
