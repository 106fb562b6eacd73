"""``townlet run EXPERIMENT.yaml``: capture -> bc -> anneal -> evaluate, with skip-if-unchanged.

Each stage writes its outputs and a ``manifest.json`` under ``runs/<name>/<stage>/``. The
manifest records a hash of the stage's inputs (its config section, the town config
identity, the townlet version and the digests of the upstream stages' outputs) and the
SHA-256 of every output file. A rerun skips a stage whose input hash matches and whose
outputs are intact, and reruns it (and, through the digests, everything downstream) when
anything it depends on changed. Everything is logged to W&B through one :class:`Tracker`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

import townlet_env
from training import anneal as anneal_lib
from training.bc import train_bc
from training.capture import capture
from training.datasets import atomic_write_bytes, sha256_file
from training.evaluate import Controller, LearnedController, ScriptedController, score_against_baselines
from training.experiment import ExperimentConfig, StageName, load_experiment
from training.ppo import learn, load_checkpoint
from training.tracking import Tracker
from training.vec_env import TownVecEnv

MANIFEST = "manifest.json"


class PipelineError(RuntimeError):
    """A stage's gate failed; the message says which and why."""


@dataclass(frozen=True)
class StageRecord:
    stage: str
    status: str  # "ran" or "skipped"
    input_hash: str
    outputs: dict[str, str]  # relative path -> sha256
    result: dict[str, Any]
    seconds: float

    @property
    def digest(self) -> str:
        return _sha(self.outputs)


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _hash_outputs(stage_dir: Path, paths: list[Path]) -> dict[str, str]:
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()})
    return {str(f.relative_to(stage_dir)): sha256_file(f) for f in files}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True, default=str).encode())


def _previous(stage_dir: Path, input_hash: str) -> StageRecord | None:
    """The stage's last record if its inputs match and its outputs are intact."""
    path = stage_dir / MANIFEST
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("input_hash") != input_hash:
        return None
    outputs = data.get("outputs", {})
    for rel, sha in outputs.items():
        target = stage_dir / rel
        if not target.is_file() or sha256_file(target) != sha:
            return None
    return StageRecord(data["stage"], "skipped", input_hash, outputs, data.get("result", {}), 0.0)


class _ToWandb(BaseCallback):
    """Adds the tracker's SB3 output to the model's logger when training starts."""

    def __init__(self, tracker: Tracker, prefix: str) -> None:
        super().__init__()
        self.writer = tracker.sb3_output(prefix)

    def _on_training_start(self) -> None:
        if self.writer not in self.model.logger.output_formats:
            self.model.logger.output_formats.append(self.writer)

    def _on_step(self) -> bool:
        return True


def _load_policy(cfg: ExperimentConfig, checkpoint: str | Path) -> Any:
    """Load a PPO checkpoint (its observation signature is checked against the town)."""
    make_town = functools.partial(townlet_env.parallel_env, **{**cfg.stage_town("anneal"), "max_ticks": 16})
    loader = TownVecEnv(make_town, 1, seed=0)
    try:
        return load_checkpoint(checkpoint, loader, device=cfg.anneal.ppo.device)
    finally:
        loader.close()


def _video(tracker: Tracker, cfg: ExperimentConfig, key: str, path: Path, controller: Controller, seed: int) -> None:
    """A short rollout of ``controller`` rendered with ``render_mode="rgb_array"``."""
    ticks = cfg.evaluate.video_ticks
    if ticks == 0 or not tracker.enabled or not tracker.cfg.videos:
        return
    env = townlet_env.parallel_env(**{**cfg.stage_town("anneal"), "max_ticks": ticks}, render_mode="rgb_array")
    core = env.unwrapped
    obs, _ = env.reset(seed=seed)
    controller.reset(core.rules, seed)
    frames = []
    while env.agents:
        batch = np.stack([obs[a]["observation"] for a in env.possible_agents])
        actions = controller.act(core.world, batch, core.action_masks())
        obs, *_ = env.step({a: int(actions[core.seat_index[a]]) for a in env.agents})
        if core.world.tick % 3 == 0:
            frames.append(env.render())
    tracker.video(key, frames, path)


def _run_capture(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    dict[str, Any], list[Path]
]:  # fmt: skip
    dataset = capture(cfg.capture_config(), stage_dir / "dataset", overwrite=True)
    manifest = json.loads((dataset / "manifest.json").read_text())
    counts = manifest["counts"]
    tracker.table("capture/decision_actions", ["action", "count"], list(counts["decision_action_counts"].items()))
    tracker.log({f"capture/{k}": v for k, v in counts.items() if isinstance(v, int)})
    tracker.artifact(dataset, f"{cfg.name}-dataset", "dataset")
    result = {"dataset": str(dataset), **counts}
    return result, [dataset]


def _run_bc(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    dict[str, Any], list[Path]
]:  # fmt: skip
    result, _ = train_bc(records["capture"].result["dataset"], cfg.bc, out_dir=stage_dir)
    held = result.held_out
    tracker.log({"bc/held_out_accuracy": held.accuracy, "bc/train_accuracy": result.train_accuracy})
    rows = [[name, acc, held.support[name]] for name, acc in held.per_action.items()]
    tracker.table("bc/per_action_accuracy", ["action", "accuracy", "support"], rows)
    if not result.passed:
        raise PipelineError(f"BC gate failed (threshold {result.threshold}): {'; '.join(result.reasons)}")
    if result.checkpoint is None:  # train_bc saves whenever out_dir is given
        raise PipelineError(f"BC wrote no checkpoint under {stage_dir}")
    tracker.artifact(Path(result.checkpoint), f"{cfg.name}-bc-policy", "model")
    summary = {"checkpoint": result.checkpoint, "held_out_accuracy": held.accuracy, "per_action": held.per_action}
    return summary, [Path(result.checkpoint), stage_dir / "bc_result.json"]


def _run_anneal(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    dict[str, Any], list[Path]
]:  # fmt: skip
    bc_weights = records["bc"].result["checkpoint"] if "bc" in records else None

    def train_stage(model: Any, env: TownVecEnv, ctx: anneal_lib.StageContext) -> None:
        callback = _ToWandb(tracker, f"ppo/stage{ctx.stage}")
        learn(model, env, ctx.timesteps, callbacks=[callback], log_dir=ctx.log_dir, log_formats=ctx.log_formats)

    record = anneal_lib.run_anneal(cfg.anneal_config(), stage_dir, bc_weights=bc_weights, train_stage=train_stage)
    columns = ["stage", "share", "attempt", "action", "self_sufficiency", "lateness", "mean_daily_return", "reasons"]
    rows = []
    for e in record["stages"]:
        kpis = e["eval"]["kpis"]
        rows.append([e["stage"], e["share"], e["attempt"], e["action"], kpis.get("self_sufficiency"),
                     kpis.get("lateness"), kpis.get("mean_daily_return"), "; ".join(e["reasons"])])  # fmt: skip
    tracker.table("anneal/stages", columns, rows)
    for e in record["stages"]:  # a short rollout per accepted stage, all seats under that stage's policy
        if e["action"] == "advance":
            model = _load_policy(cfg, e["checkpoint"])
            seed = cfg.evaluate.eval.seeds[0]
            gif = stage_dir / f"stage{e['stage']}.gif"
            _video(tracker, cfg, f"anneal/video_stage{e['stage']}", gif, LearnedController(model), seed)
    last_good = Path(record["last_good"])
    tracker.artifact(last_good, f"{cfg.name}-policy", "model")
    summary = {"status": record["status"], "last_good": str(last_good), "stages": len(record["stages"])}
    return summary, [stage_dir / "anneal_results.json", last_good]


def _run_evaluate(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    dict[str, Any], list[Path]
]:  # fmt: skip
    make_town = functools.partial(townlet_env.parallel_env, **cfg.stage_town("anneal"))
    model = _load_policy(cfg, records["anneal"].result["last_good"])
    scores = score_against_baselines(make_town, LearnedController(model), cfg.evaluate.eval)
    tracker.log({f"eval/return_{k}": v for k, v in scores["returns"].items()})
    tracker.log({"eval/normalised_score": scores["normalised_score"]})
    names = sorted(scores["kpis"]["learned"])
    tracker.table("eval/kpis", ["kpi", *scores["kpis"]], [[k, *(v[k] for v in scores["kpis"].values())] for k in names])
    seed = cfg.evaluate.eval.seeds[0]
    _video(tracker, cfg, "eval/video_learned", stage_dir / "learned.gif", LearnedController(model), seed)
    _video(tracker, cfg, "eval/video_scripted", stage_dir / "scripted.gif", ScriptedController(), seed)
    _write_json(stage_dir / "evaluation.json", scores)
    return scores, [stage_dir / "evaluation.json"]


Runner = Callable[[ExperimentConfig, Path, dict[str, StageRecord], Tracker], tuple[dict[str, Any], list[Path]]]
RUNNERS: dict[str, Runner] = {
    "capture": _run_capture,
    "bc": _run_bc,
    "anneal": _run_anneal,
    "evaluate": _run_evaluate,
}


def _input_hash(cfg: ExperimentConfig, stage: StageName, records: dict[str, StageRecord]) -> str:
    section = {"capture": cfg.capture_config, "anneal": cfg.anneal_config}.get(stage)
    config = section().model_dump(mode="json") if section else getattr(cfg, stage).model_dump(mode="json")
    return _sha(
        {
            "stage": stage,
            "config": config,
            "town_identity": townlet_env.make_config(**cfg.stage_town(stage)).identity(),
            # The observation layout is code, not config: a new layout version must rerun capture.
            "layout": townlet_env.parallel_env(**cfg.stage_town(stage)).unwrapped.layout.signature()["hash"],
            "townlet": townlet_env.__version__,
            "upstream": {name: rec.digest for name, rec in records.items()},
        }
    )


def run_experiment(
    path: str | Path, runs_dir: str | Path = "runs", *, force: bool = False, echo: Callable[[str], None] = print
) -> tuple[ExperimentConfig, dict[str, StageRecord]]:
    """Run (or resume) an experiment; return its config and one record per stage."""
    cfg = load_experiment(path)
    run_dir = Path(runs_dir) / cfg.name
    tracker = Tracker(cfg.tracking, run_dir, cfg.name, cfg.model_dump(mode="json"))
    records: dict[str, StageRecord] = {}
    try:
        for stage in cfg.stages:
            stage_dir = run_dir / stage
            key = _input_hash(cfg, stage, records)
            previous = None if force else _previous(stage_dir, key)
            if previous is not None:
                records[stage] = previous
                echo(f"[{stage}] inputs unchanged: skipped")
                continue
            echo(f"[{stage}] running ...")
            started = time.perf_counter()
            result, outputs = RUNNERS[stage](cfg, stage_dir, records, tracker)
            record = StageRecord(stage, "ran", key, _hash_outputs(stage_dir, outputs), result,
                                 time.perf_counter() - started)  # fmt: skip
            _write_json(stage_dir / MANIFEST, asdict(record))
            records[stage] = record
            tracker.log({f"pipeline/{stage}_seconds": record.seconds})
            echo(f"[{stage}] done in {record.seconds:.1f}s")
    finally:
        tracker.finish()
    return cfg, records


def summary_rows(records: dict[str, StageRecord]) -> list[tuple[str, str, str, str]]:
    """(stage, status, seconds, headline) per stage, for the closing table."""
    rows = []
    for name, rec in records.items():
        r = rec.result
        if name == "capture":
            head = (
                f"{r.get('steps', 0):,} steps, {r.get('decision_points', 0):,} decisions, {r.get('shards', 0)} shards"
            )
        elif name == "bc":
            head = f"held-out accuracy {r.get('held_out_accuracy', float('nan')):.3f}"
        elif name == "anneal":
            head = f"{r.get('status')} after {r.get('stages')} stage attempts"
        else:
            learned = r.get("kpis", {}).get("learned", {})
            nan = float("nan")
            head = (
                f"normalised score {r.get('normalised_score', nan):.2f}, self-sufficiency "
                f"{learned.get('self_sufficiency', nan):.2f}, lateness {learned.get('lateness', nan):.2f}"
            )
        rows.append((name, rec.status, f"{rec.seconds:.1f}", head))
    return rows
