"""Promote a trained policy: register it, run the gate (shadow included), release it.

Shared by the pipeline's ``promote`` and ``release`` stages and by ``townlet promote
RUN_DIR``. :func:`gate_candidate` builds the candidate's identity for the experiment's
town, checks parity (the checkpoint's observation signature against the town) and golden
sign-off (a changed layout, reward config or town against the serving release), plays the
gate windows and decides; :func:`release_candidate` then swaps the registry's pointer.
A candidate whose weights are the serving release's is a re-evaluation: its windows are
recorded for that release (what the sequencing rule reads) and nothing is swapped.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO

import townlet_env
from townlet_env.atomic import write_json_atomic
from townlet_env.observations.layout import ObservationSignatureError, check_signature
from training.experiment import ExperimentConfig
from training.gate import Decision, GateDecision, GateInputs, WindowObservation, decide
from training.gate_windows import Shadow, play_windows
from training.learned import LearnedController
from training.ppo import checkpoint_signature
from training.registry import Registry
from training.release_identity import Identity, identity_of, town_differences
from training.sequencing import golden_problems, golden_signoff

GATE_REPORT = "gate.json"


@dataclasses.dataclass(frozen=True)
class GateOutcome:
    """A gated candidate: its registry id and identity, the decision, the report's path."""

    candidate: str
    identity: Identity
    decision: GateDecision
    report: Path
    serving: bool  #: the candidate's weights are the serving release's (a re-evaluation)


def registry_for(cfg: ExperimentConfig, runs_dir: str | Path) -> Registry:
    """The experiment's registry (``promote.registry``, relative to the runs folder)."""
    return Registry(Path(runs_dir) / cfg.promote.registry)


def _parity(policy: Path, town: Any) -> list[str]:
    try:
        check_signature(checkpoint_signature(policy), town.unwrapped.layout)
    except ObservationSignatureError as exc:
        return [f"{policy}: {exc}"]
    return []


def gate_candidate(cfg: ExperimentConfig, policy: str | Path, run_dir: Path, registry: Registry, out_dir: Path) -> (
    GateOutcome
):  # fmt: skip
    """Register ``policy`` as a candidate and run the gate on it; write ``out_dir/gate.json``."""
    policy = Path(policy)
    make_town = functools.partial(townlet_env.parallel_env, **cfg.stage_town("anneal"))
    town = make_town(max_ticks=16)
    identity = identity_of(town, policy, cfg.name, run_dir / "capture" / "dataset" / "manifest.json")
    parity = _parity(policy, town)
    current = registry.current()
    serving_identity = registry.identity(current) if current else None
    golden = golden_problems(identity, serving_identity, golden_signoff(cfg.promote.golden_dir))
    candidate = registry.add_candidate(policy, identity)
    serving = serving_identity is not None and serving_identity.policy_sha256 == identity.policy_sha256
    shadow, notes = None, []
    (out_dir / "shadow_actions.npz").unlink(missing_ok=True)  # a stale log of an earlier gate
    windows: tuple[WindowObservation, ...] = ()
    streak = 0
    if not (parity or golden):  # otherwise nothing can be compared: do not spend the windows
        model = MaskablePPO.load(str(policy), device="cpu")
        if serving_identity is not None and town_differences(serving_identity, town):
            notes.append(f"release {current} was made for another town (golden sign-off given): no shadow, no bands")
        elif current is not None:
            served = registry.load_policy(town, current)
            shadow = Shadow(LearnedController(served), LearnedController(served, True), LearnedController(model, True))
        windows, streak = play_windows(make_town, LearnedController(model), cfg.promote, shadow, out_dir)
    town.close()
    inputs = GateInputs(tuple(windows), tuple(parity), tuple(golden), current, streak)
    decision = decide(inputs, cfg.promote)
    report = {
        "candidate": candidate,
        "policy": str(policy),
        "identity": identity.to_json(),
        "pass_streak": streak,
        "serving": serving,
        "notes": notes,
        **decision.to_json(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / GATE_REPORT, report, default=str)
    return GateOutcome(candidate, identity, decision, out_dir / GATE_REPORT, serving)


def release_candidate(registry: Registry, outcome: GateOutcome, report: dict[str, Any], reason: str) -> str:
    """Serve a PROMOTE'd candidate; return the release id.

    A candidate with the serving release's weights releases nothing: its windows (green or
    red) are recorded for the serving release, whatever the decision.

    Raises:
        ValueError: the gate did not say PROMOTE.

    """
    current = registry.current()
    if outcome.serving and current is not None:  # red windows count too: they break the green streak
        said = outcome.decision.decision.value
        registry.record_windows(current, report["windows"], f"re-evaluation ({said}): {reason}")
        return current
    if outcome.decision.decision is not Decision.PROMOTE:
        raise ValueError(f"candidate {outcome.candidate}: the gate said {outcome.decision.decision.value}")
    return registry.release(outcome.candidate, report, reason)
