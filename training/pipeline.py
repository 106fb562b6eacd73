"""``townlet run EXPERIMENT.yaml``: capture -> bc -> anneal -> evaluate -> promote -> release, skip-if-unchanged.

Each stage writes its outputs and a ``manifest.json`` under ``runs/<name>/<stage>/``. The
manifest records a hash of the stage's inputs (its config section, the town config
identity, the townlet version and the digests of the upstream stages' outputs) and the
SHA-256 of every output file. A rerun skips a stage whose input hash matches and whose
outputs are intact, and reruns it (and, through the digests, everything downstream) when
anything it depends on changed (``promote`` and ``release`` also rerun when the registry no
longer serves what they recorded). Everything is logged to W&B through one :class:`Tracker`.
Before any stage the sequencing rules may refuse the run (:func:`release_stages.preflight`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

import townlet_env
from townlet_env.atomic import write_json_atomic
from townlet_env.controllers import Controller, ScriptedController
from training import anneal as anneal_lib
from training.bc import train_bc
from training.capture import capture
from training.datasets import sha256_file
from training.determinism import seed_everything, stage_seed
from training.evaluate import Scores, score_against_baselines
from training.experiment import ExperimentConfig, StageName, load_experiment
from training.learned import LearnedController
from training.ppo import learn, load_checkpoint
from training.release_stages import RESULTS, STILL_VALID, preflight, run_promote, run_release
from training.stage_results import AnnealSummary, BCSummary, CaptureSummary, PipelineError, upstream_result
from training.tracking import Tracker
from training.vec_env import TownVecEnv

MANIFEST = "manifest.json"
StageResult = Any  # each stage's summary: a frozen dataclass with to_json, from_json and headline
#: Each stage's summary type (its ``result`` in the stage manifest).
RESULT_TYPES: dict[str, Any] = {
    "capture": CaptureSummary,
    "bc": BCSummary,
    "anneal": AnnealSummary,
    "evaluate": Scores,
    **RESULTS,
}


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """A stage's run (or skip): the stage manifest's contents."""

    stage: str
    status: str  # "ran" or "skipped"
    input_hash: str
    outputs: dict[str, str]  # relative path -> sha256
    result: StageResult
    seconds: float

    @property
    def digest(self) -> str:
        return _sha(self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "input_hash": self.input_hash,
            "outputs": self.outputs,
            "result": self.result.to_json(),
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], status: str) -> StageRecord:
        stage = str(data["stage"])
        result = RESULT_TYPES[stage].from_json(data["result"])
        return cls(stage, status, str(data["input_hash"]), dict(data["outputs"]), result, float(data["seconds"]))


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _hash_outputs(stage_dir: Path, paths: list[Path]) -> dict[str, str]:
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()})
    return {str(f.relative_to(stage_dir)): sha256_file(f) for f in files}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data, default=str)


def _previous(stage_dir: Path, input_hash: str) -> StageRecord | None:
    """The stage's last record if its inputs match and its outputs are intact."""
    path = stage_dir / MANIFEST
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("input_hash") != input_hash:
        return None
    for rel, sha in data.get("outputs", {}).items():
        target = stage_dir / rel
        if not target.is_file() or sha256_file(target) != sha:
            return None
    try:
        record = StageRecord.from_json(data, "skipped")
    except (KeyError, TypeError, ValueError):  # written by an older pipeline: rerun the stage
        return None
    return dataclasses.replace(record, seconds=0.0)


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
    CaptureSummary, list[Path]
]:  # fmt: skip
    dataset = capture(cfg.capture_config(), stage_dir / "dataset", overwrite=True)
    manifest = json.loads((dataset / "manifest.json").read_text())
    counts = manifest["counts"]
    tracker.table("capture/decision_actions", ["action", "count"], list(counts["decision_action_counts"].items()))
    tracker.log({f"capture/{k}": v for k, v in counts.items() if isinstance(v, int)})
    tracker.artifact(dataset, f"{cfg.name}-dataset", "dataset")
    return CaptureSummary.from_json({"dataset": str(dataset), **counts}), [dataset]


def _run_bc(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    BCSummary, list[Path]
]:  # fmt: skip
    captured = upstream_result(records, "capture", CaptureSummary)
    result, _ = train_bc(captured.dataset, cfg.bc, out_dir=stage_dir)
    held = result.held_out
    tracker.log({"bc/held_out_accuracy": held.accuracy, "bc/train_accuracy": result.train_accuracy})
    rows = [[name, acc, held.support[name]] for name, acc in held.per_action.items()]
    tracker.table("bc/per_action_accuracy", ["action", "accuracy", "support"], rows)
    if not result.passed:
        raise PipelineError(f"BC gate failed (threshold {result.threshold}): {'; '.join(result.reasons)}")
    if result.checkpoint is None:  # train_bc saves whenever out_dir is given
        raise PipelineError(f"BC wrote no checkpoint under {stage_dir}")
    tracker.artifact(Path(result.checkpoint), f"{cfg.name}-bc-policy", "model")
    summary = BCSummary(result.checkpoint, held.accuracy, held.per_action)
    return summary, [Path(result.checkpoint), stage_dir / "bc_result.json"]


def _run_anneal(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    AnnealSummary, list[Path]
]:  # fmt: skip
    bc = records["bc"].result if "bc" in records else None
    bc_weights = bc.checkpoint if isinstance(bc, BCSummary) else None

    def train_stage(model: Any, env: TownVecEnv, ctx: anneal_lib.StageContext) -> None:
        callback = _ToWandb(tracker, f"ppo/stage{ctx.stage}")
        learn(model, env, ctx.timesteps, callbacks=[callback], log_dir=ctx.log_dir, log_formats=ctx.log_formats)

    record = anneal_lib.run_anneal(cfg.anneal_config(), stage_dir, bc_weights=bc_weights, train_stage=train_stage)
    columns = ["stage", "share", "attempt", "action", "self_sufficiency", "lateness", "mean_daily_return", "reasons"]
    rows = []
    for e in record.stages:
        kpis, action = e.eval.kpis, "advance" if e.advanced else "rollback"
        rows.append([e.stage, e.share, e.attempt, action, kpis.get("self_sufficiency"),
                     kpis.get("lateness"), kpis.get("mean_daily_return"), "; ".join(e.verdict.reasons)])  # fmt: skip
    tracker.table("anneal/stages", columns, rows)
    for e in record.stages:  # a short rollout per accepted stage, all seats under that stage's policy
        if e.advanced:
            model = _load_policy(cfg, e.checkpoint)
            seed = cfg.evaluate.eval.seeds[0]
            gif = stage_dir / f"stage{e.stage}.gif"
            _video(tracker, cfg, f"anneal/video_stage{e.stage}", gif, LearnedController(model), seed)
    last_good = Path(record.last_good)
    tracker.artifact(last_good, f"{cfg.name}-policy", "model")
    summary = AnnealSummary(record.status, str(last_good), len(record.stages))
    return summary, [stage_dir / anneal_lib.RESULTS_FILE, last_good]


def _run_evaluate(cfg: ExperimentConfig, stage_dir: Path, records: dict[str, StageRecord], tracker: Tracker) -> tuple[
    Scores, list[Path]
]:  # fmt: skip
    make_town = functools.partial(townlet_env.parallel_env, **cfg.stage_town("anneal"))
    anneal = upstream_result(records, "anneal", AnnealSummary)
    model = _load_policy(cfg, anneal.last_good)
    scores = score_against_baselines(make_town, LearnedController(model), cfg.evaluate.eval)
    tracker.log({f"eval/return_{k}": v for k, v in scores.returns.items()})
    tracker.log({"eval/normalised_score": scores.normalised_score})
    names = sorted(scores.kpis["learned"])
    tracker.table("eval/kpis", ["kpi", *scores.kpis], [[k, *(v[k] for v in scores.kpis.values())] for k in names])
    seed = cfg.evaluate.eval.seeds[0]
    _video(tracker, cfg, "eval/video_learned", stage_dir / "learned.gif", LearnedController(model), seed)
    _video(tracker, cfg, "eval/video_scripted", stage_dir / "scripted.gif", ScriptedController(), seed)
    _write_json(stage_dir / "evaluation.json", scores.to_json())
    return scores, [stage_dir / "evaluation.json"]


Runner = Callable[[ExperimentConfig, Path, dict[str, StageRecord], Tracker], tuple[StageResult, list[Path]]]
RUNNERS: dict[str, Runner] = {
    "capture": _run_capture,
    "bc": _run_bc,
    "anneal": _run_anneal,
    "evaluate": _run_evaluate,
    "promote": run_promote,
    "release": run_release,
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
            "determinism": [cfg.seed, cfg.torch_threads],
            "upstream": {name: rec.digest for name, rec in records.items()},
        }
    )


def run_experiment(
    path: str | Path, runs_dir: str | Path = "runs", *, force: bool = False, echo: Callable[[str], None] = print
) -> tuple[ExperimentConfig, dict[str, StageRecord]]:
    """Run (or resume) an experiment; return its config and one record per stage."""
    cfg = load_experiment(path)
    run_dir = Path(runs_dir) / cfg.name
    preflight(cfg, Path(runs_dir))  # the sequencing rules; writes runs/<name>/experiment.json
    tracker = Tracker(cfg.tracking, run_dir, cfg.name, cfg.model_dump(mode="json"))
    records: dict[str, StageRecord] = {}
    try:
        for stage in cfg.stages:
            stage_dir = run_dir / stage
            key = _input_hash(cfg, stage, records)
            previous = None if force else _previous(stage_dir, key)
            if previous and stage in STILL_VALID and not STILL_VALID[stage](cfg, Path(runs_dir), previous.result):
                previous = None
            if previous is not None:
                records[stage] = previous
                echo(f"[{stage}] inputs unchanged: skipped")
                continue
            echo(f"[{stage}] running ...")
            seed_everything(stage_seed(cfg.seed, stage), cfg.torch_threads)
            started = time.perf_counter()
            result, outputs = RUNNERS[stage](cfg, stage_dir, records, tracker)
            record = StageRecord(stage, "ran", key, _hash_outputs(stage_dir, outputs), result,
                                 time.perf_counter() - started)  # fmt: skip
            _write_json(stage_dir / MANIFEST, record.to_json())
            records[stage] = record
            tracker.log({f"pipeline/{stage}_seconds": record.seconds})
            echo(f"[{stage}] done in {record.seconds:.1f}s")
        if "release" in records:
            echo(f"released policy: {records['release'].result.headline()}")
    finally:
        tracker.finish()
    return cfg, records


def summary_rows(records: dict[str, StageRecord]) -> list[tuple[str, str, str, str]]:
    """(stage, status, seconds, headline) per stage, for the closing table."""
    return [(name, rec.status, f"{rec.seconds:.1f}", rec.result.headline()) for name, rec in records.items()]
