"""The anneal: move control of the town's seats from the scripted expert to the learned policy.

Entry point :func:`run_anneal`. For each stage of an :class:`AnnealSchedule` it builds a
:class:`~training.vec_env.TownVecEnv` whose learned seats follow the stage's assignment
(the other seats are driven by the scripted expert *inside* the VecEnv, so PPO only ever
trains on its own actions), resumes from the last good checkpoint, learns for the stage's
budget, saves a candidate and evaluates it on held-out seeds at the same mix. A
:class:`RollbackGuard` compares the candidate's KPIs with the last good stage's and with
the all-scripted baseline; a drop past tolerance restores the last good checkpoint and
holds the share for another attempt (at most ``max_holds`` in a row, then the run stops
as ``held``). Every attempt and its reasons go to ``anneal_results.json`` (atomic writes).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sb3_contrib import MaskablePPO

import townlet_env
from training.datasets import atomic_write_bytes
from training.evaluate import EvalConfig, EvalResult, LearnedController, ScriptedController, evaluate
from training.ppo import PPOConfig, learn, load_checkpoint, make_model, save_checkpoint, warm_up_critic
from training.vec_env import ExpertFactory, SeatChooser, TownVecEnv, scripted_expert

RESULTS_VERSION = 1
STAGE_SEED_STRIDE = 10_000  # training seeds of stage s, attempt a: seed + s*stride + a*1000 (+ towns, episodes)


@dataclasses.dataclass(frozen=True)
class AnnealSchedule:
    """Shares of seats under learned control, stage by stage (a pure value object).

    ``assignment`` is a function of the episode seed alone: the seats are the first
    ``round(share * n_seats)`` (at least 1) of a permutation drawn from the seed, so the
    same episode seed gives the same seats, and a later stage's seats include an earlier one's.
    """

    shares: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)

    def __post_init__(self) -> None:
        s = self.shares
        if not s or any(not 0.0 < x <= 1.0 for x in s) or any(b < a for a, b in itertools.pairwise(s)):
            raise ValueError(f"shares must be non-decreasing values in (0, 1], got {s}")

    @property
    def n_stages(self) -> int:
        return len(self.shares)

    def n_learned(self, stage: int, n_seats: int) -> int:
        return min(n_seats, max(1, int(np.floor(self.shares[stage] * n_seats + 0.5))))

    def assignment(self, stage: int, episode_seed: int, n_seats: int) -> tuple[int, ...]:
        """The learned seats (sorted) of an episode with ``episode_seed`` at ``stage``."""
        order = np.random.default_rng([episode_seed, n_seats]).permutation(n_seats)
        return tuple(sorted(int(i) for i in order[: self.n_learned(stage, n_seats)]))

    def chooser(self, stage: int) -> SeatChooser:
        """``assignment`` bound to ``stage``, as ``TownVecEnv`` and ``evaluate`` take it."""
        return functools.partial(self.assignment, stage)


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """How a KPI's drop is measured: ``(worse change) / max(|reference|, floor)``."""

    name: str
    higher_is_better: bool
    floor: float  #: keeps tiny references from turning noise into huge relative drops

    def drop(self, current: float, reference: float) -> float:
        worse = reference - current if self.higher_is_better else current - reference
        return worse / max(abs(reference), self.floor)


#: tolerance x floor is the absolute slack near a zero reference: lateness 0.15 (the KPI
#: band), starvation 0.3 incidents per episode, return 0.3 per seat-day.
DEFAULT_RULES = (
    MetricRule("self_sufficiency", True, 0.1),
    MetricRule("lateness", False, 0.5),
    MetricRule("mean_daily_return", True, 1.0),
    MetricRule("starvation_incidents", False, 1.0),
)


@dataclasses.dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    reasons: tuple[str, ...]
    drops: dict[str, dict[str, float]]


@dataclasses.dataclass(frozen=True)
class RollbackGuard:
    """Flags a stage whose KPIs drop past ``tolerance`` vs the last good stage, or past
    ``baseline_tolerance`` vs the scripted baseline (None: no baseline check).
    """

    tolerance: float = 0.3
    baseline_tolerance: float | None = 0.3
    rules: tuple[MetricRule, ...] = DEFAULT_RULES

    def check(self, current: dict[str, float], previous: dict[str, float], baseline: dict[str, float]) -> GuardVerdict:
        refs = [("previous stage", previous, self.tolerance)]
        if self.baseline_tolerance is not None:
            refs.append(("scripted baseline", baseline, self.baseline_tolerance))
        reasons, drops = [], {}
        for label, ref, tol in refs:
            drops[label] = {r.name: r.drop(current[r.name], ref[r.name]) for r in self.rules}
            reasons += [
                f"{r.name} worsened {drops[label][r.name]:.0%} vs {label} ({ref[r.name]:.4g} -> {current[r.name]:.4g}; "
                f"tolerance {tol:.0%})"
                for r in self.rules
                if drops[label][r.name] > tol
            ]
        return GuardVerdict(not reasons, tuple(reasons), drops)


class AnnealConfig(BaseModel):
    """One anneal run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    town: dict[str, Any] = Field(default_factory=dict, description="overrides for townlet_env.parallel_env")
    n_towns: int = Field(2, ge=1)
    timesteps_per_stage: int = Field(50_000, ge=1)
    ppo: PPOConfig = PPOConfig()
    eval: EvalConfig = EvalConfig()
    tolerance: float = Field(0.3, gt=0)
    baseline_tolerance: float | None = Field(0.3, gt=0)
    max_holds: int = Field(2, ge=0, le=9, description="failed attempts in a row at one share before the run stops")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _held_out(self) -> AnnealConfig:
        AnnealSchedule(self.shares)
        top = self.seed + STAGE_SEED_STRIDE * (len(self.shares) + 1)
        if any(self.seed <= s < top for s in self.eval.seeds):
            raise ValueError(f"eval seeds must lie outside the training seed range [{self.seed}, {top})")
        return self


@dataclasses.dataclass(frozen=True)
class StageContext:
    stage: int
    share: float
    attempt: int
    timesteps: int
    log_dir: Path
    log_formats: tuple[str, ...]


StageTrainer = Callable[[MaskablePPO, TownVecEnv, StageContext], None]


def learn_stage(model: MaskablePPO, env: TownVecEnv, ctx: StageContext) -> None:
    """The default stage step: PPO for the stage's budget, logging under ``ctx.log_dir``."""
    learn(model, env, ctx.timesteps, log_dir=ctx.log_dir, log_formats=ctx.log_formats)


def run_anneal(
    config: AnnealConfig,
    out_dir: str | os.PathLike[str],
    *,
    bc_weights: str | os.PathLike[str] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    expert: ExpertFactory = scripted_expert,
    train_stage: StageTrainer = learn_stage,
) -> dict[str, Any]:
    """Run the anneal; return (and write to ``out_dir/anneal_results.json``) its record."""
    out = Path(out_dir)
    schedule = AnnealSchedule(config.shares)
    guard = RollbackGuard(config.tolerance, config.baseline_tolerance)
    make_town = functools.partial(townlet_env.parallel_env, **config.town)

    def stage_env(stage: int, attempt: int) -> TownVecEnv:
        seed = train_seed(config, stage, attempt)
        return TownVecEnv(make_town, config.n_towns, seed=seed, learned_seats=schedule.chooser(stage), expert=expert)

    def evaluate_mix(model: MaskablePPO, stage: int) -> EvalResult:
        learned = LearnedController(model)
        return evaluate(make_town, learned, config.eval, learned_seats=schedule.chooser(stage), expert=expert)

    record: dict[str, Any] = {"version": RESULTS_VERSION, "config": config.model_dump(mode="json"), "status": "running"}
    record["baseline"] = evaluate(make_town, ScriptedController(expert), config.eval, expert=expert).to_json()
    env = stage_env(0, 0)
    model = make_model(env, config.ppo, policy_kwargs=policy_kwargs, bc_weights=bc_weights)
    if bc_weights is not None and config.ppo.critic_warmup_timesteps:
        log_dir = out / "logs" / "critic_warmup"
        warm_up_critic(
            model, env, config.ppo.critic_warmup_timesteps, log_dir=log_dir, log_formats=config.ppo.log_formats
        )
    last_good = save_checkpoint(model, out / "checkpoints" / "initial.zip")
    last_eval = evaluate_mix(model, 0)
    record.update(initial=last_eval.to_json(), stages=[], last_good=str(last_good))
    _write_json(out / "anneal_results.json", record)

    stage, attempt = 0, 0
    while stage < schedule.n_stages:
        started = time.perf_counter()
        env = stage_env(stage, attempt)
        model = load_checkpoint(last_good, env, device=config.ppo.device)
        model.set_random_seed(train_seed(config, stage, attempt))  # torch, and the towns from seed + k
        log_dir = out / "logs" / f"stage{stage}_try{attempt}"
        train_stage(model, env, StageContext(stage, config.shares[stage], attempt, config.timesteps_per_stage,
                                             log_dir, config.ppo.log_formats))  # fmt: skip
        candidate = save_checkpoint(model, out / "checkpoints" / f"stage{stage}_try{attempt}.zip")
        result = evaluate_mix(model, stage)
        verdict = guard.check(result.kpis, last_eval.kpis, record["baseline"]["kpis"])
        entry = {
            "stage": stage,
            "share": config.shares[stage],
            "attempt": attempt,
            "learned_seats_per_town": env.n_learned,
            "timesteps": int(model.num_timesteps),
            "checkpoint": str(candidate),
            "eval": result.to_json(),
            "drops": verdict.drops,
            "reasons": list(verdict.reasons),
            "seconds": round(time.perf_counter() - started, 3),
        }
        env.close()
        if verdict.ok:
            entry["action"] = "advance"
            last_good, last_eval = candidate, result
            stage, attempt = stage + 1, 0
        else:
            entry.update(action="rollback", restored=str(last_good))
            attempt += 1
        record["stages"].append(entry)
        record["last_good"] = str(last_good)
        if attempt > config.max_holds:
            record["status"] = "held"
            record["held_at_share"] = config.shares[stage]
            break
        _write_json(out / "anneal_results.json", record)
    else:
        record["status"] = "complete"
    _write_json(out / "anneal_results.json", record)
    return record


def train_seed(config: AnnealConfig, stage: int, attempt: int) -> int:
    """The base training seed of an attempt (its towns start at this + k)."""
    return config.seed + STAGE_SEED_STRIDE * stage + 1_000 * attempt


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable).encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
