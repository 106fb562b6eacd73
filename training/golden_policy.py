"""Golden rollouts of a released policy: the actions and reward sums it was recorded with.

A recording (``POLICY.golden.json`` beside the checkpoint, or ``--recording``) keeps, per
episode seed, the policy's actions for every seat and tick (sampled as in evaluation, from a
generator seeded by the episode seed, so they are reproducible), its reward sums per
term and its action histogram, with the town it plays and the checkpoint's SHA-256. A check
loads the checkpoint fresh and:

* **action agreement**: replays the recorded actions and asks the policy at every tick and
  seat what it would do; the share that agree must be >= ``min_agreement`` (1.0 means the
  same weights on the same observations; lower tolerates float noise across machines);
* **reward sums**: plays the policy freely; every term's sum (over seats) must be within
  ``reward_rel`` x |recorded| + ``reward_abs`` of the recording.

Replaying the recording (instead of comparing two free runs) keeps one early disagreement
from counting as a disagreement on every later tick.
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import townlet_env
from townlet_env.actions import action_names
from townlet_env.atomic import write_json_atomic
from townlet_env.golden.store import GoldenError
from townlet_env.rewards.engine import TERMS
from training.datasets import sha256_file
from training.experiment import load_experiment
from training.learned import LearnedController
from training.ppo import load_checkpoint
from training.vec_env import TownVecEnv

SEEDS = (424_242, 424_243)
TICKS = 240


@dataclass(frozen=True)
class Tolerances:
    """How far a released policy may drift from its recording and still pass."""

    min_agreement: float = 0.99
    reward_rel: float = 0.05
    reward_abs: float = 0.5


@dataclass(frozen=True)
class PolicyCheck:
    """The outcome of :func:`check_policy`."""

    agreement: float
    first_disagreement: str | None  # "seed S, tick T, agent A: recorded X, now Y"
    reward_sums: dict[str, float]
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


def load_policy(path: Path, town: dict[str, Any]) -> Any:
    """The checkpoint's policy on ``town`` (its observation signature is checked)."""
    make_town = functools.partial(townlet_env.parallel_env, **{**town, "max_ticks": 16})
    loader = TownVecEnv(make_town, 1, seed=0)
    try:
        return load_checkpoint(path, loader).policy
    finally:
        loader.close()


def rollout(policy: Any, town: dict[str, Any], seed: int, ticks: int, forced: np.ndarray | None = None) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:  # fmt: skip
    """(policy actions int16[ticks, seats] (-1: absent), played actions, reward sums per term).

    With ``forced`` the town plays those actions while the policy's own are recorded.
    """
    par = townlet_env.parallel_env(**{**town, "max_ticks": ticks})
    core = par.unwrapped
    obs, _ = par.reset(seed=seed)
    controller = LearnedController(policy)
    controller.reset(core.rules, seed)
    names = list(par.possible_agents)
    chosen = np.full((ticks, len(names)), -1, dtype=np.int16)
    played = chosen.copy()
    sums = np.zeros(len(TERMS), dtype=np.float64)
    for t in range(ticks):
        if not par.agents:
            break
        batch = np.stack([obs[a]["observation"] for a in names])
        acts = controller.act(core.world, batch, core.action_masks())
        for a in par.agents:
            i = core.seat_index[a]
            chosen[t, i] = acts[i]
            played[t, i] = forced[t, i] if forced is not None else acts[i]
        obs, *_ = par.step({a: int(played[t, core.seat_index[a]]) for a in par.agents})
        sums += core.reward_terms.sum(axis=0)
    return chosen, played, sums


def _golden_path(policy: Path, recording: Path | None) -> Path:
    return recording if recording is not None else policy.with_name(policy.name + ".golden.json")


def record_policy(
    policy_path: Path, town: dict[str, Any], reason: str, out: Path, ticks: int = TICKS
) -> dict[str, Any]:
    """Record ``policy_path``'s golden episodes (``ticks`` long) to ``out``; return the document."""
    policy = load_policy(policy_path, town)
    names = action_names(townlet_env.make_config(**town).action_mode)
    episodes = {}
    for seed in SEEDS:
        chosen, _, sums = rollout(policy, town, seed, ticks)
        counts = np.bincount(chosen[chosen >= 0], minlength=len(names))
        episodes[str(seed)] = {"actions": chosen.tolist(), "reward_sums": dict(zip(TERMS, sums.tolist(), strict=True)),
                               "action_histogram": dict(zip(names, counts.tolist(), strict=True))}  # fmt: skip
    doc = {"reason": reason, "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "policy": str(policy_path), "policy_sha256": sha256_file(policy_path), "town": town,
           "ticks": ticks, "tolerances": asdict(Tolerances()), "episodes": episodes}  # fmt: skip
    write_json_atomic(out, doc)
    return doc


def check_policy(policy_path: Path, recording: dict[str, Any], tol: Tolerances | None = None) -> PolicyCheck:
    """Compare a freshly loaded ``policy_path`` with ``recording`` (see the module doc)."""
    tol = tol or Tolerances(**recording.get("tolerances", {}))
    town = recording["town"]
    policy = load_policy(policy_path, town)
    agree = total = 0
    first, reasons, sums_now = None, [], {}
    for seed_text, episode in recording["episodes"].items():
        seed, recorded = int(seed_text), np.array(episode["actions"], dtype=np.int16)
        chosen, _, _ = rollout(policy, town, seed, recording["ticks"], forced=recorded)
        present = recorded >= 0
        agree += int((chosen[present] == recorded[present]).sum())
        total += int(present.sum())
        off = np.argwhere(present & (chosen != recorded))
        if first is None and len(off):
            t, i = off[0]
            first = f"seed {seed}, tick {t + 1}, agent agent_{i}: recorded {recorded[t, i]}, now {chosen[t, i]}"
        _, _, sums = rollout(policy, town, seed, recording["ticks"])
        for term, value in zip(TERMS, sums.tolist(), strict=True):
            sums_now[f"{seed}/{term}"] = value
            old = float(episode["reward_sums"][term])
            if abs(value - old) > tol.reward_rel * abs(old) + tol.reward_abs:
                reasons.append(f"seed {seed}: reward sum {term} {value:.4f} vs recorded {old:.4f} "
                               f"(tolerance {tol.reward_rel:.0%} + {tol.reward_abs})")  # fmt: skip
    agreement = agree / max(total, 1)
    if agreement < tol.min_agreement:
        reasons.insert(0, f"action agreement {agreement:.4f} < {tol.min_agreement} (first: {first})")
    return PolicyCheck(agreement, first, sums_now, tuple(reasons))


def main(args: argparse.Namespace) -> int:
    """The ``--policy`` half of ``townlet golden`` (arguments parsed by ``training.golden``)."""
    out = _golden_path(args.policy, args.recording)
    if args.command == "record":
        town = load_experiment(args.experiment).stage_town("anneal") if args.experiment else {}
        record_policy(args.policy, town, args.reason.strip(), out)
        print(f"wrote {out}: {len(SEEDS)} episodes x {TICKS} ticks")
        return 0
    if not out.is_file():
        raise GoldenError(
            f"{out}: no policy recording; make one with: townlet golden record --policy {args.policy} ..."
        )
    result = check_policy(args.policy, json.loads(out.read_text()))
    print(f"action agreement {result.agreement:.4f}" + (f"; first disagreement: {result.first_disagreement}"
                                                        if result.first_disagreement else ""))  # fmt: skip
    for reason in result.reasons:
        print(f"FAIL {reason}")
    print("policy golden check passed" if result.passed else "policy golden check FAILED")
    return 0 if result.passed else 1
