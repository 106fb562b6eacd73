"""The narrator's cost per tick, timed inside its own hook, and what its throttle let through.

The scripted expert plays the town once to record its actions; the actions are then
replayed with a narrator attached whose ``after_step`` is timed (the narrator never changes
the town, so the replay follows the recorded trajectory). Prints microseconds per tick
(mean and the 99th percentile), lines emitted and dropped by reason.

Run: ``python benchmarks/narration_overhead.py [--agents 8] [--ticks 1440] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import townlet_env
from townlet_env.narration.narrator import Narrator
from townlet_env.scripted import ScriptedExpert


class TimedNarrator(Narrator):
    """A narrator that records how long each ``after_step`` took."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.seconds: list[float] = []

    def after_step(self, env: Any) -> None:
        start = time.perf_counter()
        super().after_step(env)
        self.seconds.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=1440)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env = townlet_env.parallel_env(num_agents=args.agents, max_ticks=args.ticks)
    env.reset(seed=args.seed)
    expert = ScriptedExpert(env.unwrapped.rules, seed=args.seed)
    actions = []
    while env.agents:
        actions.append(expert.act_dict(env))
        env.step(actions[-1])
    env = townlet_env.parallel_env(num_agents=args.agents, max_ticks=args.ticks)
    narrator = TimedNarrator(env)
    env.reset(seed=args.seed)
    for act in actions:
        env.step(act)
    us = 1e6 * np.array(narrator.seconds)
    p99 = np.percentile(us, 99)
    print(f"{args.agents} agents, {len(actions)} ticks: narrator {us.mean():.1f} us/tick mean, p99 {p99:.1f}")
    print(f"  lines emitted {narrator.throttle.emitted}, dropped {narrator.throttle.dropped}")


if __name__ == "__main__":
    main()
