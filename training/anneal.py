"""The anneal: move control of the town's seats from the scripted expert to the learned policy.

Entry point :func:`run_anneal`. For each stage of an :class:`AnnealSchedule` it builds a
:class:`~training.vec_env.TownVecEnv` whose learned seats follow the stage's assignment
(the other seats are driven by the scripted expert *inside* the VecEnv, so PPO only ever
trains on its own actions), resumes from the last good checkpoint, learns for the stage's
budget, saves a candidate and evaluates it on held-out seeds at the same mix. A
:class:`RollbackGuard` compares the candidate's KPIs with the last good stage's and with
the all-scripted baseline; a drop past tolerance restores the last good checkpoint and
holds the share for another attempt (at most ``max_holds`` in a row, then the run stops
as ``held``). Every attempt and its reasons go to ``anneal_results.json`` (atomic writes),
which :class:`AnnealResult` writes and reads back.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sb3_contrib import MaskablePPO

import townlet_env
from townlet_env.atomic import write_json_atomic
from townlet_env.controllers import ExpertFactory, ScriptedController, scripted_expert
from training.evaluate import EvalConfig, EvalResult, evaluate
from training.guard import AnnealSchedule, GuardVerdict, RollbackGuard
from training.learned import LearnedController
from training.ppo import PPOConfig, learn, load_checkpoint, make_model, save_checkpoint, warm_up_critic
from training.vec_env import TownVecEnv

RESULTS_VERSION = 1
RESULTS_FILE = "anneal_results.json"
STAGE_SEED_STRIDE = 10_000  # training seeds of stage s, attempt a: seed + s*stride + a*1000 (+ towns, episodes)
AnnealStatus = Literal["running", "complete", "held"]


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


@dataclasses.dataclass(frozen=True)
class AnnealAttempt:
    """One attempt at one stage: what was trained, how it scored, and what the guard did."""

    stage: int
    share: float
    attempt: int
    learned_seats_per_town: int
    timesteps: int
    checkpoint: str
    eval: EvalResult
    verdict: GuardVerdict
    seconds: float
    restored: str | None = None  #: the checkpoint a rollback went back to (None: advanced)

    @property
    def advanced(self) -> bool:
        return self.verdict.ok

    def to_json(self) -> dict[str, Any]:
        """The attempt as ``anneal_results.json`` stores it (``restored`` only on a rollback)."""
        out: dict[str, Any] = {
            "stage": self.stage,
            "share": self.share,
            "attempt": self.attempt,
            "learned_seats_per_town": self.learned_seats_per_town,
            "timesteps": self.timesteps,
            "checkpoint": self.checkpoint,
            "eval": self.eval.to_json(),
            "drops": self.verdict.drops,
            "reasons": list(self.verdict.reasons),
            "seconds": self.seconds,
            "action": "advance" if self.advanced else "rollback",
        }
        if self.restored is not None:
            out["restored"] = self.restored
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnnealAttempt:
        reasons = tuple(data["reasons"])
        return cls(
            stage=int(data["stage"]),
            share=float(data["share"]),
            attempt=int(data["attempt"]),
            learned_seats_per_town=int(data["learned_seats_per_town"]),
            timesteps=int(data["timesteps"]),
            checkpoint=str(data["checkpoint"]),
            eval=EvalResult.from_json(data["eval"]),
            verdict=GuardVerdict(data["action"] == "advance", reasons, data["drops"]),
            seconds=float(data["seconds"]),
            restored=data.get("restored"),
        )


@dataclasses.dataclass(frozen=True)
class AnnealResult:
    """The anneal's record: the baseline, the initial policy's score and every attempt."""

    config: dict[str, Any]  #: the :class:`AnnealConfig` as JSON
    status: AnnealStatus
    baseline: EvalResult  #: all seats scripted
    initial: EvalResult  #: the starting policy at the first stage's mix
    last_good: str  #: the checkpoint of the last accepted stage (the initial one before any)
    stages: tuple[AnnealAttempt, ...] = ()
    held_at_share: float | None = None  #: the share the run stopped at when ``status == "held"``

    def to_json(self) -> dict[str, Any]:
        """The record as ``anneal_results.json`` stores it."""
        out: dict[str, Any] = {
            "version": RESULTS_VERSION,
            "config": self.config,
            "status": self.status,
            "baseline": self.baseline.to_json(),
            "initial": self.initial.to_json(),
            "last_good": self.last_good,
            "stages": [s.to_json() for s in self.stages],
        }
        if self.held_at_share is not None:
            out["held_at_share"] = self.held_at_share
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnnealResult:
        if data.get("version") != RESULTS_VERSION:
            raise ValueError(f"anneal results version {data.get('version')!r}; this townlet reads {RESULTS_VERSION}")
        return cls(
            config=dict(data["config"]),
            status=data["status"],
            baseline=EvalResult.from_json(data["baseline"]),
            initial=EvalResult.from_json(data["initial"]),
            last_good=str(data["last_good"]),
            stages=tuple(AnnealAttempt.from_json(s) for s in data["stages"]),
            held_at_share=data.get("held_at_share"),
        )

    def write(self, out_dir: Path) -> None:
        """Write (atomically) ``out_dir/anneal_results.json``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out_dir / RESULTS_FILE, self.to_json(), default=_jsonable)


def run_anneal(
    config: AnnealConfig,
    out_dir: str | os.PathLike[str],
    *,
    bc_weights: str | os.PathLike[str] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    expert: ExpertFactory = scripted_expert,
    train_stage: StageTrainer = learn_stage,
) -> AnnealResult:
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

    baseline = evaluate(make_town, ScriptedController(expert), config.eval, expert=expert)
    env = stage_env(0, 0)
    model = make_model(env, config.ppo, policy_kwargs=policy_kwargs, bc_weights=bc_weights)
    if bc_weights is not None and config.ppo.critic_warmup_timesteps:
        log_dir = out / "logs" / "critic_warmup"
        warm_up_critic(
            model, env, config.ppo.critic_warmup_timesteps, log_dir=log_dir, log_formats=config.ppo.log_formats
        )
    last_good = save_checkpoint(model, out / "checkpoints" / "initial.zip")
    last_eval = evaluate_mix(model, 0)
    record = AnnealResult(config.model_dump(mode="json"), "running", baseline, last_eval, str(last_good))
    record.write(out)

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
        verdict = guard.check(result.kpis, last_eval.kpis, baseline.kpis)
        entry = AnnealAttempt(
            stage=stage,
            share=config.shares[stage],
            attempt=attempt,
            learned_seats_per_town=env.n_learned,
            timesteps=int(model.num_timesteps),
            checkpoint=str(candidate),
            eval=result,
            verdict=verdict,
            seconds=round(time.perf_counter() - started, 3),
            restored=None if verdict.ok else str(last_good),
        )
        env.close()
        if verdict.ok:
            last_good, last_eval = candidate, result
            stage, attempt = stage + 1, 0
        else:
            attempt += 1
        record = dataclasses.replace(record, stages=(*record.stages, entry), last_good=str(last_good))
        if attempt > config.max_holds:
            record = dataclasses.replace(record, status="held", held_at_share=config.shares[stage])
            break
        record.write(out)
    else:
        record = dataclasses.replace(record, status="complete")
    record.write(out)
    return record


def train_seed(config: AnnealConfig, stage: int, attempt: int) -> int:
    """The base training seed of an attempt (its towns start at this + k)."""
    return config.seed + STAGE_SEED_STRIDE * stage + 1_000 * attempt


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
