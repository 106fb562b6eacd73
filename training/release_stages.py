"""The pipeline's ``promote`` and ``release`` stages (``townlet run`` ends with a released policy).

``promote`` gates the anneal's last good policy (:func:`training.promotion.gate_candidate`)
and logs the gate's windows and decision to W&B; anything but PROMOTE stops the run with
the gate's reasons (the report stays in ``runs/<name>/promote/gate.json``). ``release``
makes the candidate the registry's serving release. A skipped stage is only reused while
the registry still serves what it recorded (:data:`STILL_VALID`): after a rollback or
another release, both rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import townlet_env
from townlet_env.atomic import write_json_atomic
from training.experiment import ExperimentConfig
from training.gate import Decision, summary_metrics
from training.promotion import GateOutcome, gate_candidate, registry_for, release_candidate
from training.sequencing import SequencingError, check_base_release
from training.stage_results import AnnealSummary, PipelineError, PromoteSummary, ReleaseSummary, upstream_result
from training.tracking import Tracker

EXPERIMENT_FILE = "experiment.json"
#: The summary types of this module's stages.
RESULTS: dict[str, Any] = {"promote": PromoteSummary, "release": ReleaseSummary}


def preflight(cfg: ExperimentConfig, runs_dir: Path) -> None:
    """Before any stage: apply the sequencing rules, then write ``runs/<name>/experiment.json``.

    Raises:
        PipelineError: the experiment turns on social rewards or perturbations and the base
            release lacks its green windows (the message names them).

    """
    town = townlet_env.make_config(**cfg.stage_town("anneal")).model_dump(mode="json")
    try:
        check_base_release(town, registry_for(cfg, runs_dir), cfg.name)
    except SequencingError as exc:
        raise PipelineError(str(exc)) from None
    (runs_dir / cfg.name).mkdir(parents=True, exist_ok=True)
    write_json_atomic(runs_dir / cfg.name / EXPERIMENT_FILE, cfg.model_dump(mode="json"))


def _runs_dir(stage_dir: Path) -> Path:
    return stage_dir.parent.parent  # runs/<name>/<stage>


def run_promote(cfg: ExperimentConfig, stage_dir: Path, records: Mapping[str, Any], tracker: Tracker) -> tuple[
    PromoteSummary, list[Path]
]:  # fmt: skip
    anneal = upstream_result(records, "anneal", AnnealSummary)
    registry = registry_for(cfg, _runs_dir(stage_dir))
    outcome = gate_candidate(cfg, anneal.last_good, stage_dir.parent, registry, stage_dir)
    _log_gate(tracker, outcome)
    decision = outcome.decision
    if decision.decision is not Decision.PROMOTE and not outcome.serving:
        raise PipelineError(
            f"promotion gate said {decision.decision.value} (report {outcome.report}): " + "; ".join(decision.reasons)
        )
    summary = PromoteSummary(outcome.candidate, decision.decision.value, decision.release, decision.reasons,
                             str(outcome.report), outcome.serving)  # fmt: skip
    shadow_log = stage_dir / "shadow_actions.npz"
    return summary, [outcome.report, *([shadow_log] if shadow_log.exists() else [])]


def _log_gate(tracker: Tracker, outcome: GateOutcome) -> None:
    decision = outcome.decision
    tracker.log(summary_metrics(decision))
    names = sorted(decision.windows[0]["kpis"]) if decision.windows else []
    rows = [[w["index"] + 1, w["green"], w.get("agreement"), "; ".join(w["reasons"]), *(w["kpis"][k] for k in names)]
            for w in decision.windows]  # fmt: skip
    tracker.table("gate/windows", ["window", "green", "shadow_agreement", "reasons", *names], rows)
    tracker.summary({"gate/decision": decision.decision.value, "gate/reasons": " | ".join(decision.reasons)})


def run_release(cfg: ExperimentConfig, stage_dir: Path, records: Mapping[str, Any], tracker: Tracker) -> tuple[
    ReleaseSummary, list[Path]
]:  # fmt: skip
    promoted = upstream_result(records, "promote", PromoteSummary)
    registry = registry_for(cfg, _runs_dir(stage_dir))
    report = json.loads(Path(promoted.report).read_text())
    outcome = _outcome_of(promoted, report)
    previous = registry.current()
    release = release_candidate(registry, outcome, report, cfg.release.reason)
    summary = ReleaseSummary(release, promoted.candidate, report["identity"]["policy_sha256"],
                             previous if previous != release else None, str(registry.root))  # fmt: skip
    tracker.summary({"release/id": release, "release/policy_sha256": summary.policy_sha256})
    stage_dir.mkdir(parents=True, exist_ok=True)
    out = stage_dir / "release.json"
    write_json_atomic(out, summary.to_json())
    return summary, [out]


def _outcome_of(promoted: PromoteSummary, report: Mapping[str, Any]) -> GateOutcome:
    from training.gate import GateDecision
    from training.release_identity import Identity

    decision = GateDecision(Decision(report["decision"]), tuple(report["reasons"]), tuple(report["windows"]),
                            report["release"])  # fmt: skip
    return GateOutcome(promoted.candidate, Identity.from_json(report["identity"]), decision, Path(promoted.report),
                       promoted.serving)  # fmt: skip


def _promote_still_valid(cfg: ExperimentConfig, runs_dir: Path, result: Any) -> bool:
    serving = registry_for(cfg, runs_dir).current()
    return isinstance(result, PromoteSummary) and serving in (result.compared_with, _released(runs_dir / cfg.name))


def _release_still_valid(cfg: ExperimentConfig, runs_dir: Path, result: Any) -> bool:
    return isinstance(result, ReleaseSummary) and registry_for(cfg, runs_dir).current() == result.release


def _released(run_dir: Path) -> str | None:
    path = run_dir / "release" / "release.json"
    return json.loads(path.read_text())["release"] if path.exists() else None


#: Whether a skipped stage's record still holds, given the registry now (stage -> check).
STILL_VALID: dict[str, Callable[[ExperimentConfig, Path, Any], bool]] = {
    "promote": _promote_still_valid,
    "release": _release_still_valid,
}
