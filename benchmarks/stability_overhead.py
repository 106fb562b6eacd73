"""The stability monitor's cost per tick: env-steps/s with and without it, in one run.

The scripted expert plays the default town once to record its actions; then the same
actions are replayed through ``env.step`` with the monitor attached and without it
(the monitor never changes the town, so both replays follow the same trajectory),
alternating over repeats. Only ``env.step`` is timed. Prints the median env-steps/s of
each (and the best, less exposed to a busy machine), their ratio and the monitor's
microseconds per tick.

Run: ``python benchmarks/stability_overhead.py [--agents 8] [--ticks 4320] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import townlet_env
from townlet_env.scripted import ScriptedExpert
from townlet_env.stability import StabilityMonitor


def record(agents: int, ticks: int, seed: int) -> list[dict[str, int]]:
    """The expert's actions for ``ticks`` ticks of a town of ``agents`` seats."""
    env = townlet_env.parallel_env(num_agents=agents, max_ticks=ticks)
    env.reset(seed=seed)
    expert = ScriptedExpert(env.unwrapped.rules, seed=seed)
    actions = []
    while env.agents:
        act = expert.act_dict(env)
        actions.append(act)
        env.step(act)
    return actions


def replay(agents: int, ticks: int, seed: int, actions: list[dict[str, int]], monitored: bool) -> float:
    """env-steps/s replaying ``actions`` (with the monitor attached when ``monitored``)."""
    env = townlet_env.parallel_env(num_agents=agents, max_ticks=ticks)
    if monitored:
        StabilityMonitor(env)
    env.reset(seed=seed)
    start = time.perf_counter()
    for act in actions:
        env.step(act)
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=4320)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    actions = record(args.agents, args.ticks, args.seed)
    replay(args.agents, 200, args.seed, actions[:200], True)  # warm up (numba caches, imports)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for monitored in (False, True):
            rates[monitored].append(replay(args.agents, args.ticks, args.seed, actions, monitored))
    print(f"{args.agents} agents, {len(actions)} ticks, {args.repeats} repeats (spread: max-min over median):")
    for label, pick in (("median", statistics.median), ("best", max)):
        off, on = pick(rates[False]), pick(rates[True])
        print(
            f"  {label:6s} monitor off {off:8,.0f} env-steps/s, on {on:8,.0f}: "
            f"ratio {on / off:.3f}, {1e6 * (1 / on - 1 / off):.1f} us/tick"
        )
    print(
        f"  spread off/on: {np.ptp(rates[False]) / statistics.median(rates[False]):.1%} / "
        f"{np.ptp(rates[True]) / statistics.median(rates[True]):.1%}"
    )


if __name__ == "__main__":
    main()
