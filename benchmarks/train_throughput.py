"""PPO ``learn`` throughput over the town, in agent-steps/s, and where the time goes.

Configurations (poc-like by default: the default town48, 8 agents, hybrid obs, K=8 towns,
so 64 learned seats per step; the network is ``training.policy.policy_kwargs(layout)``):

* ``maskable/TownVecEnv``: the project's path, sb3-contrib ``MaskablePPO`` over
  :class:`training.vec_env.TownVecEnv` (masks through ``env_method``, vacancy callback on).
* ``ppo/TownVecEnv``: plain SB3 ``PPO`` over the same VecEnv (no masks), the like-for-like
  baseline for SuperSuit, which cannot serve masks.
* ``ppo/SuperSuit``: ``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` (SuperSuit
  3.9.3), when it is importable. ``MaskablePPO`` and ``PPO(seed=...)`` are also tried on
  it and their failures reported (see DEPENDENCIES.md, traps).

Each run wraps the VecEnv in :class:`TimedVecEnv` (time in ``step``, ``reset`` and
``env_method``, i.e. the env, including mask and expert work) and a callback that times
rollout collection, so the wall time splits into env / policy inference in the rollout /
gradient updates. One warm-up rollout is learned before the clock starts.

Run: ``python benchmarks/train_throughput.py [--experiment experiments/poc.yaml] [--towns 8]
[--timesteps 8192] [--threads 1]`` (``--experiment`` takes the town, the number of towns, the
PPO rollout/batch/epoch sizes and the network from that experiment).
(SuperSuit is optional: ``pip install supersuit==3.9.3``, or put it on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import townlet_env
from training.policy import PolicyArch, policy_kwargs
from training.ppo import VacancyCallback
from training.vec_env import TownVecEnv


class TimedVecEnv(VecEnvWrapper):
    """Accumulates the seconds spent inside the wrapped VecEnv."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> Any:
        t = time.perf_counter()
        out = self.venv.reset()
        self.seconds += time.perf_counter() - t
        return out

    def step_async(self, actions: np.ndarray) -> None:
        t = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - t

    def step_wait(self) -> Any:
        t = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - t
        return out

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        t = time.perf_counter()
        out = self.venv.env_method(method_name, *args, indices=indices, **kwargs)
        self.seconds += time.perf_counter() - t
        return out


class RolloutClock(BaseCallback):
    """Seconds spent collecting rollouts (the rest of ``learn`` is gradient updates)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._t = 0.0

    def _on_rollout_start(self) -> None:
        self._t = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.seconds += time.perf_counter() - self._t

    def _on_step(self) -> bool:
        return True


def timed_learn(model: Any, timed: TimedVecEnv, timesteps: int, callbacks: list[BaseCallback]) -> dict[str, float]:
    model.learn(model.n_steps * timed.num_envs, callback=list(callbacks))  # warm-up rollout
    clock = RolloutClock()
    timed.seconds = 0.0
    start_steps = model.num_timesteps
    t = time.perf_counter()
    model.learn(timesteps, callback=[*callbacks, clock], reset_num_timesteps=False)
    wall = time.perf_counter() - t
    steps = model.num_timesteps - start_steps
    return {
        "agent_steps": steps,
        "seconds": round(wall, 3),
        "agent_steps_per_s": round(steps / wall, 1),
        "env_share": round(timed.seconds / wall, 3),
        "inference_share": round((clock.seconds - timed.seconds) / wall, 3),
        "update_share": round((wall - clock.seconds) / wall, 3),
    }


def ppo_kwargs(args: argparse.Namespace, layout: Any) -> dict[str, Any]:
    return {
        "n_steps": args.n_steps,
        "batch_size": args.batch_size,
        "n_epochs": args.epochs,
        "policy_kwargs": policy_kwargs(layout, PolicyArch(**args.arch)),
        "device": "cpu",
    }


def bench_town(args: argparse.Namespace, masked: bool) -> dict[str, Any]:
    make = functools.partial(
        townlet_env.parallel_env, map=args.map, num_agents=args.agents, obs_variant=args.obs_variant
    )
    town = TownVecEnv(make, args.towns, seed=0)
    timed = TimedVecEnv(town)
    kwargs = ppo_kwargs(args, town.layout)
    if masked:
        model: Any = MaskablePPO("MultiInputPolicy", timed, seed=0, **kwargs)
        callbacks: list[BaseCallback] = [VacancyCallback(town.layout.index("present"))]
    else:
        model, callbacks = PPO("MultiInputPolicy", timed, seed=0, **kwargs), []
    out = timed_learn(model, timed, args.timesteps, callbacks)
    out["invalid_actions"] = town.invalid_actions
    return out


def bench_supersuit(args: argparse.Namespace) -> dict[str, Any]:
    try:
        import supersuit as ss
    except ImportError:
        return {"skipped": "supersuit is not installed (pip install supersuit==3.9.3)"}

    def build() -> Any:
        penv = townlet_env.parallel_env(map=args.map, num_agents=args.agents, obs_variant=args.obs_variant)
        vec = ss.pettingzoo_env_to_vec_env_v1(penv)
        return ss.concat_vec_envs_v1(vec, args.towns, num_cpus=1, base_class="stable_baselines3"), penv

    out: dict[str, Any] = {"version": ss.__version__, "failures": {}}
    vec, penv = build()
    kwargs = ppo_kwargs(args, penv.unwrapped.layout)
    try:
        MaskablePPO("MultiInputPolicy", vec, **kwargs).learn(args.n_steps * vec.num_envs)
    except (AttributeError, ValueError) as e:
        out["failures"]["MaskablePPO"] = f"{type(e).__name__}: {e}"
    try:
        PPO("MultiInputPolicy", vec, seed=0, **kwargs)
    except AttributeError as e:
        out["failures"]["PPO(seed=0)"] = f"{type(e).__name__}: {e}"
    vec, _ = build()
    vec.reset()
    _, _, dones, _ = vec.step(np.zeros(vec.num_envs, dtype=np.int64))
    out["dones_dtype"] = str(np.asarray(dones).dtype)
    timed = TimedVecEnv(vec)
    out.update(timed_learn(PPO("MultiInputPolicy", timed, **kwargs), timed, args.timesteps, []))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--map", default="town48")
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--towns", type=int, default=8)
    p.add_argument("--timesteps", type=int, default=8192, help="timed agent-steps (after one warm-up rollout)")
    p.add_argument("--n-steps", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--only", choices=["maskable", "ppo", "supersuit"], action="append")
    p.add_argument("--obs-variant", default="hybrid", choices=["full", "hybrid", "compact"])
    p.add_argument("--experiment", help="take town, towns, PPO sizes and the network from an experiment YAML")
    args = p.parse_args(argv)
    args.arch = {}
    if args.experiment:
        from training.experiment import load_experiment

        exp = load_experiment(args.experiment)
        town = exp.stage_town("anneal")
        args.map = town.get("map", args.map)
        args.agents = town.get("num_agents", args.agents)
        args.obs_variant = town.get("obs_variant", args.obs_variant)
        args.towns = exp.anneal.n_towns
        args.n_steps, args.batch_size, args.epochs = (
            exp.anneal.ppo.n_steps,
            exp.anneal.ppo.batch_size,
            exp.anneal.ppo.n_epochs,
        )
        args.arch = dict(exp.bc.arch)
    torch.set_num_threads(args.threads)
    runs = {
        "maskable/TownVecEnv": lambda: bench_town(args, masked=True),
        "ppo/TownVecEnv": lambda: bench_town(args, masked=False),
        "ppo/SuperSuit": lambda: bench_supersuit(args),
    }
    chosen = {"maskable": "maskable/TownVecEnv", "ppo": "ppo/TownVecEnv", "supersuit": "ppo/SuperSuit"}
    names = [chosen[o] for o in args.only] if args.only else list(runs)
    config = {k: v for k, v in vars(args).items() if k != "only"}
    print(json.dumps({"config": config, **{name: runs[name]() for name in names}}, indent=2))


if __name__ == "__main__":
    main()
