"""Environment throughput through the PettingZoo ParallelEnv API.

For each observation variant at 8 and 64 agents (option mode) it measures env-steps/s and
agent-steps/s with (a) uniformly random valid (masked) actions and (b) the scripted expert
choosing every action, plus peak memory, and the ratio to a no-op ParallelEnv floor with
the same agents and spaces whose ``step`` only builds the five dicts.

``env-steps/s`` times ``env.step`` (and resets) alone; ``loop steps/s`` also counts the
policy choosing the actions (the random sampler or the scripted expert).

Run: ``python benchmarks/throughput.py [--steps 3000] [--repeats 3]``. Numba kernels
run single-threaded; pin the process to one core with ``taskset -c 0`` for the
one-core figure. Medians over repeats are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

import townlet_env


class NoOpParallelEnv(ParallelEnv):
    """Same agents and spaces as a town, a trivial step: the cost of the API dicts alone."""

    metadata = {"name": "noop"}  # noqa: RUF012

    def __init__(self, template: Any) -> None:
        self.possible_agents = list(template.possible_agents)
        self._obs_space = template.observation_space(self.possible_agents[0])
        self._act_space = template.action_space(self.possible_agents[0])
        self._obs = self._obs_space.sample()
        self._mask = np.ones(self._act_space.n, dtype=np.int8)

    def observation_space(self, agent: str) -> Any:
        return self._obs_space

    def action_space(self, agent: str) -> Any:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        obs = {a: {"observation": self._obs["observation"], "action_mask": self._mask} for a in self.agents}
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        agents = self.agents
        obs = {a: {"observation": self._obs["observation"], "action_mask": self._mask} for a in agents}
        return (
            obs,
            dict.fromkeys(agents, 0.0),
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, False),
            {a: {} for a in agents},
        )


def random_policy(seed: int) -> Callable[[Any, dict], dict]:
    rng = np.random.default_rng(seed)

    def act(env: Any, obs: dict) -> dict:
        agents = list(obs)
        mask = np.stack([obs[a]["action_mask"] for a in agents])
        choice = np.argmax(rng.random(mask.shape) * mask, axis=1)
        return dict(zip(agents, choice.tolist(), strict=True))

    return act


def expert_policy(seed: int) -> Callable[[Any, dict], dict]:
    from townlet_env.scripted import ScriptedExpert

    expert: ScriptedExpert | None = None

    def act(env: Any, obs: dict) -> dict:
        nonlocal expert
        if expert is None:
            expert = ScriptedExpert(env.unwrapped.rules, seed=seed)
        return expert.act_dict(env)

    return act


def measure(env: Any, policy: Callable[[Any, dict], dict], steps: int) -> tuple[float, float]:
    """(env-steps/s counting only ``step``/``reset``, env-steps/s of the whole loop with the policy)."""
    obs, _ = env.reset(seed=0)
    for _ in range(200):  # warm-up: kernels compiled, caches hot
        obs, *_ = env.step(policy(env, obs))
        if not env.agents:
            obs, _ = env.reset()
    in_env = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        actions = policy(env, obs)
        t0 = time.perf_counter()
        obs, *_ = env.step(actions)
        if not env.agents:
            obs, _ = env.reset()
        in_env += time.perf_counter() - t0
    return steps / in_env, steps / (time.perf_counter() - start)


def peak_memory_mib(make: Callable[[], Any], steps: int) -> float:
    """Peak traced Python/numpy allocation while building the town (map parse included) and stepping."""
    from townlet_env.world.map import _parse_cached

    make().reset(seed=0)  # warm-up: imports and compiled kernels are not the town's memory
    _parse_cached.cache_clear()  # count the navigation fields every time, not only for the first town
    tracemalloc.start()
    env = make()
    policy = random_policy(0)
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        obs, *_ = env.step(policy(env, obs))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="full,hybrid,compact")
    parser.add_argument("--agents", default="8,64")
    parser.add_argument("--no-expert", action="store_true")
    args = parser.parse_args()
    header = (
        f"{'variant':8} {'agents':>6} {'policy':8} {'env-steps/s':>12} {'agent-steps/s':>14} {'loop steps/s':>13}"
        f" {'floor':>10} {'ratio':>6} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for n in (int(x) for x in args.agents.split(",")):
        for variant in args.variants.split(","):

            def make(variant: str = variant, n: int = n) -> Any:
                return townlet_env.parallel_env(obs_variant=variant, num_agents=n, max_ticks=100_000)

            env = make()
            floor = statistics.median(
                measure(NoOpParallelEnv(env), random_policy(0), args.steps)[0] for _ in range(args.repeats)
            )
            policies = {"random": random_policy}
            if not args.no_expert:
                policies["expert"] = expert_policy
            memory = peak_memory_mib(make, 300)
            for name, factory in policies.items():
                runs = [measure(env, factory(0), args.steps) for _ in range(args.repeats)]
                rate = statistics.median(r[0] for r in runs)
                loop = statistics.median(r[1] for r in runs)
                print(
                    f"{variant:8} {n:6d} {name:8} {rate:12,.0f} {rate * n:14,.0f} {loop:13,.0f} {floor:10,.0f}"
                    f" {rate / floor:6.3f} {memory:9.1f}"
                )


if __name__ == "__main__":
    main()
