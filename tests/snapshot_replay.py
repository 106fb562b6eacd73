"""Save-then-resume-in-a-fresh-process cases for the snapshot tests.

A case runs a town uninterrupted from ``reset(seed)``, snapshots it at the first tick where
its condition holds (mid-affordance, mid-queue, mid-shift, during a respawn delay), runs on
``ticks`` more ticks and records per tick the world digest, an observation hash and a
reward hash. ``python -m tests.snapshot_replay cases.json out.json`` (run from the
repository root, in a fresh process) loads each case's snapshot and records the same
trace; the test compares the two. Actions never depend on history: random valid actions
come from an RNG seeded by (seed, tick), and the scripted expert travels in the snapshot
as an attachment (its RNG state included).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import townlet_env
from townlet_env.config import TICKS_PER_DAY
from townlet_env.scripted import ScriptedExpert

# Crowded, so queues and deaths come early; episodes of 800 ticks, so most runs cross a reset
# (the episode RNG carries on); a small per-episode cap, so rewards depend on the guard's state.
TOWN = {"map": "small", "num_agents": 12, "max_ticks": 800, "rewards": {"clip": {"per_episode": 1.0}}}
CONDITIONS = ("affordance", "queue", "shift", "respawn")
POLICIES = (("option", "random"), ("option", "expert"), ("primitive", "random"))
STARVE_AT = 60  # the expert keeps everybody alive, so its respawn case starves seat 0 from here


@dataclass(frozen=True)
class Case:
    seed: int
    mode: str
    policy: str
    condition: str
    ticks: int
    snapshot: str = ""

    @property
    def name(self) -> str:
        return f"{self.mode}-{self.policy}-{self.condition}-s{self.seed}"


def _on_shift(town: Any) -> bool:
    w, r = town.world, town.rules
    job = np.maximum(w.job.astype(np.int64), 0)
    minute = w.tick % TICKS_PER_DAY
    shift = (minute - r.job_start[job]) % TICKS_PER_DAY < r.job_end[job] - r.job_start[job]
    return bool((w.alive & (w.job >= 0) & w.arrived & shift).any())


HOLDS: dict[str, Callable[[Any], bool]] = {
    "affordance": lambda town: bool(((town.world.running >= 0) & town.world.alive).any()),
    "queue": lambda town: bool((town.world.waiting >= 0).any()),
    "shift": _on_shift,
    "respawn": lambda town: bool((town.world.respawn_at >= 0).any()),
}


def actions(env: Any, case: Case) -> dict[str, int]:
    """This tick's actions: the attached expert's, or random valid ones seeded by (seed, tick)."""
    town = env.unwrapped
    if case.policy == "expert":
        return town.attachments.get("expert").act_dict(env)
    mask = town.action_masks()
    rng = np.random.default_rng([case.seed, int(town.world.tick)])
    choice = np.where(mask > 0, rng.random(mask.shape), -1.0).argmax(axis=1).tolist()
    return {a: choice[town.seat_index[a]] for a in env.agents}


def trace(env: Any, case: Case) -> list[list[str]]:
    """``case.ticks`` ticks from here: per tick the world digest, observation and reward hashes."""
    rows = []
    for _ in range(case.ticks):
        if not env.agents:
            env.reset()  # the episode RNG carries on, as it does for the uninterrupted run
        obs, rewards, *_ = env.step(actions(env, case))
        h = hashlib.sha256()
        for agent in sorted(obs):
            h.update(agent.encode())
            h.update(obs[agent]["observation"].tobytes())
            h.update(obs[agent]["action_mask"].tobytes())
        reward = hashlib.sha256(json.dumps(sorted(rewards.items())).encode()).hexdigest()
        rows.append([env.unwrapped.world.digest(), h.hexdigest(), reward])
    return rows


def record(case: Case, folder: Path, min_tick: int = 100) -> tuple[Case, int, list[list[str]]]:
    """Run ``case`` uninterrupted: snapshot at the first step >= ``min_tick`` where its
    condition holds, then trace. Returns the case (with its snapshot path), that step, the trace.
    """
    env = townlet_env.parallel_env(action_mode=case.mode, seed=case.seed, **TOWN)
    town = env.unwrapped
    if case.policy == "expert":
        town.attachments.attach("expert", ScriptedExpert(town.rules, seed=case.seed))
    env.reset(seed=case.seed)
    starve = case.policy == "expert" and case.condition == "respawn"
    for step in range(20 * TICKS_PER_DAY):
        if step >= min_tick and HOLDS[case.condition](town):
            break
        if starve and step >= STARVE_AT and town.world.alive[0]:
            town.world.needs[0] = 0.0  # an operator's kill, between ticks
            town.refresh_action_masks()
        if not env.agents:
            env.reset()
        env.step(actions(env, case))
    else:
        raise AssertionError(f"{case.name}: condition {case.condition} never held")
    path = folder / f"{case.name}.npz"
    townlet_env.save_snapshot(env, path)
    return Case(**{**asdict(case), "snapshot": str(path)}), step, trace(env, case)


def resume(case: Case) -> list[list[str]]:
    """Load ``case.snapshot`` and trace; the expert, if any, resumes from the snapshot."""
    env = townlet_env.load_snapshot(case.snapshot)
    if case.policy == "expert":
        town = env.unwrapped
        town.attachments.attach("expert", ScriptedExpert(town.rules, seed=12345))  # state comes from the file
    return trace(env, case)


def main(argv: list[str]) -> None:
    cases = [Case(**c) for c in json.loads(Path(argv[0]).read_text())]
    out = {"townlet_env": townlet_env.__file__, "traces": {c.name: resume(c) for c in cases}}
    Path(argv[1]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
