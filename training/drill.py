"""The release drill: promote, prove the new weights act, roll back, prove the old ones act again.

``townlet drill RUN_DIR`` rehearses a release on a scratch registry (``RUN_DIR/drill/``),
with two policies of the run: the first accepted anneal stage (the "old" release) and the
final policy (the candidate). Nothing is forced: both go through the real promotion gate,
and a HOLD or FAIL stops the drill with the gate's reasons. The proof that weights really
swap is behavioural: a fixed probe set of observations (a scripted town, seed
:data:`PROBE_SEED`) is answered by whatever the registry serves, loaded from disk after
each step, and compared with the answers recorded from each policy file:

1. release the old policy; the served answers equal the old file's;
2. promote the candidate; the served answers equal the candidate's and differ from the
   old release's on at least one observation;
3. roll back; the served answers equal the old release's again.

Answers are actions drawn with fixed uniform numbers per observation (common random
numbers), so two policies differ where their action distributions differ enough to move a
draw, and one policy always answers the same. The report goes to ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from sb3_contrib import MaskablePPO

import townlet_env
from townlet_env.atomic import write_json_atomic, write_text_atomic
from townlet_env.controllers import ScriptedController
from training.experiment import ExperimentConfig
from training.gate import Decision
from training.learned import action_probabilities
from training.promotion import gate_candidate, release_candidate
from training.registry import Registry

PROBE_SEED = 4_000_000
PROBE_TICKS = 120
PROBE_ROWS = 256


def probe_set(cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fixed observations and masks: every living seat of a scripted town, thinned to ``PROBE_ROWS``."""
    env = townlet_env.parallel_env(**cfg.stage_town("anneal"), max_ticks=PROBE_TICKS)
    core = env.unwrapped
    expert = ScriptedController()
    obs_dict, _ = env.reset(seed=PROBE_SEED)
    expert.reset(core.rules, PROBE_SEED)
    rows, masks = [], []
    while env.agents:
        obs = np.zeros((len(env.possible_agents), core.layout.size), dtype=np.float32)
        for agent, o in obs_dict.items():
            obs[core.seat_index[agent]] = o["observation"]
        mask = core.action_masks()
        seats = [core.seat_index[a] for a in env.agents]
        rows.append(obs[seats])
        masks.append(mask[seats])
        actions = expert.act(core.world, obs, mask)
        obs_dict, *_ = env.step({a: int(actions[core.seat_index[a]]) for a in env.agents})
    env.close()
    obs_all, mask_all = np.concatenate(rows), np.concatenate(masks)
    pick = np.linspace(0, len(obs_all) - 1, min(PROBE_ROWS, len(obs_all))).astype(np.int64)
    return obs_all[pick], mask_all[pick]


def answers(model: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """int64[M]: the policy's action per probe row, drawn with fixed uniforms (common random numbers)."""
    probs = action_probabilities(getattr(model, "policy", model), obs, mask)
    uniforms = np.random.default_rng(PROBE_SEED).random((len(probs), 1))
    pick = (probs.cumsum(axis=1) < uniforms).sum(axis=1)
    last_valid = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
    return np.minimum(pick, last_valid).astype(np.int64)


def _gate_and_release(cfg: ExperimentConfig, policy: Path, registry: Registry, out: Path, step: str) -> dict[str, Any]:
    outcome = gate_candidate(cfg, policy, out, registry, out / step)
    report = {"step": step, "policy": str(policy), "decision": outcome.decision.decision.value,
              "reasons": list(outcome.decision.reasons), "release": None}  # fmt: skip
    if outcome.decision.decision is Decision.PROMOTE:
        gate = json.loads(outcome.report.read_text())
        report["release"] = release_candidate(registry, outcome, gate, f"drill: {step}")
    return report


def run_drill(cfg: ExperimentConfig, old: str | Path, new: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Rehearse release -> promote -> rollback on a scratch registry; return (and write) the report."""
    out = Path(out_dir)
    shutil.rmtree(out / "registry", ignore_errors=True)  # the drill's own registry, fresh each time
    registry = Registry(out / "registry")
    obs, mask = probe_set(cfg)
    town = townlet_env.parallel_env(**cfg.stage_town("anneal"), max_ticks=16)
    recorded = {name: answers(MaskablePPO.load(str(path), device="cpu"), obs, mask)
                for name, path in (("old", old), ("new", new))}  # fmt: skip
    steps: list[dict[str, Any]] = []

    def served_step(step: dict[str, Any], expect: str, differ_from: str | None = None) -> bool:
        served = answers(registry.load_policy(town), obs, mask)  # read back from the registry's files
        step["serving"] = registry.current()
        step["matches_" + expect] = int((served == recorded[expect]).sum())
        ok = bool(np.array_equal(served, recorded[expect]))
        if differ_from is not None:
            step["differs_from_" + differ_from] = int((served != recorded[differ_from]).sum())
            ok = ok and step["differs_from_" + differ_from] > 0
        step["ok"] = ok
        steps.append(step)
        return ok

    ok = False
    for name, path, expect, differ in (("release_old", old, "old", None), ("promote_new", new, "new", "old")):
        step = _gate_and_release(cfg, Path(path), registry, out, name)
        if step["release"] is None:  # the gate held or failed it: the drill stops, nothing is forced
            steps.append({**step, "ok": False})
            break
        if not served_step(step, expect, differ):
            break
    else:
        ok = served_step({"step": "rollback", "release": registry.rollback("drill: rollback")}, "old", "new")
    town.close()
    report = {"passed": ok, "probe_rows": len(obs), "old": str(old), "new": str(new),
              "old_vs_new_differing_rows": int((recorded["old"] != recorded["new"]).sum()),
              "steps": steps, "history": registry.history()}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "report.json", report, default=str)
    write_text_atomic(out / "report.md", render(report))
    return report


def render(report: dict[str, Any]) -> str:
    """The drill report as Markdown (also what ``townlet drill`` prints)."""
    lines = [
        f"# Release drill: {'PASSED' if report['passed'] else 'FAILED'}",
        "",
        f"probe set: {report['probe_rows']} observations; old and new answer differently on "
        f"{report['old_vs_new_differing_rows']}",
        "",
        "| step | serving | result | detail |",
        "|---|---|---|---|",
    ]
    for s in report["steps"]:
        detail = ", ".join(f"{k} {v}" for k, v in s.items() if k.startswith(("matches_", "differs_from_")))
        if s.get("decision") and s["decision"] != "PROMOTE":
            detail = f"gate {s['decision']}: {'; '.join(s['reasons'])}"
        lines.append(f"| {s['step']} | {s.get('serving', '-')} | {'ok' if s['ok'] else 'FAILED'} | {detail} |")
    return "\n".join(lines) + "\n"
