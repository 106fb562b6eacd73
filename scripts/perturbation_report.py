"""Perturbation acceptance report: the scripted expert lives N sim days with perturbations on.

    PYTHONPATH=. python scripts/perturbation_report.py --days 30 --seed 0 [--json out.json]

One episode of ``--days`` sim days on the default town (8 agents) with the shipped
perturbation defaults switched on (``perturbations.enabled: true``), and the same episode
without perturbations as the baseline. It reports, and exits non-zero if any fails:

* each kind's starts against ``per_day x days`` (must lie within +-20 %);
* the Gini coefficient of targeting across seats (< 0.2) and whether a seat was ever
  targeted a second time while a living seat was still untouched (never);
* recovery after each outage: the share of living agents with every need above the KPI
  floor (0.3), averaged over the sim day after the outage ends, against the baseline
  episode's over the same ticks (recovered: at most 0.05 below it), plus exits in that day.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import townlet_env  # noqa: E402
from townlet_env.config import TICKS_PER_DAY  # noqa: E402
from townlet_env.perturbations.fairness import gini  # noqa: E402
from townlet_env.scripted import ScriptedExpert  # noqa: E402
from townlet_env.world.events import EventKind, PerturbationKind  # noqa: E402

FLOOR = 0.3  # the KPI tracker's need floor
OUTAGES = (PerturbationKind.POWER_OUTAGE, PerturbationKind.WATER_OUTAGE)


def run(days: int, seed: int, perturb: bool) -> dict[str, Any]:
    """One episode: per-tick needs-ok share, exits per tick, and the perturbation events."""
    env = townlet_env.parallel_env(max_ticks=days * TICKS_PER_DAY, perturbations={"enabled": perturb})
    env.reset(seed=seed)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=seed)
    ok_share, exits, events = [], [], []
    while env.agents:
        env.step(expert.act_dict(env))
        w = town.world
        alive = w.alive
        ok_share.append(float(((w.needs > FLOOR).all(axis=1) & alive).sum() / max(int(alive.sum()), 1)))
        exits.append(sum(e.kind in (EventKind.FAINT, EventKind.EVICTION) for e in town.last_events))
        events += [(e, w.alive.copy()) for e in town.last_events if e.kind in
                   (EventKind.PERTURBATION_START, EventKind.PERTURBATION_END)]  # fmt: skip
    return {"ok": np.array(ok_share), "exits": np.array(exits), "events": events, "town": town}


def fairness(events: list, n: int) -> dict[str, Any]:
    """Targeting counts per seat, their Gini, and violations of 'never twice while another is untouched'."""
    counts = np.zeros(n, np.int64)
    violations = []
    for e, alive in events:
        if e.kind != EventKind.PERTURBATION_START or e.agent < 0:
            continue
        for seat in (e.agent, e.other):
            if seat < 0:
                continue
            counts[seat] += 1
            if counts[seat] >= 2 and (counts[alive] == 0).any():
                violations.append({"tick": e.tick, "seat": seat, "counts": counts.tolist()})
    return {"targeted": counts.tolist(), "gini": round(gini(counts), 4), "violations": violations}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    pert, base = run(args.days, args.seed, True), run(args.days, args.seed, False)
    cfg = pert["town"].config.perturbations
    starts = [e for e, _ in pert["events"] if e.kind == EventKind.PERTURBATION_START]
    kinds = {}
    for name, sec in cfg.kinds().items():
        want = sec.per_day * args.days
        got = sum(int(e.value) == PerturbationKind[name.upper()] for e in starts)
        kinds[name] = {"expected": want, "fired": got, "ratio": round(got / want, 3) if want else None,
                       "ok": want == 0 or abs(got - want) <= 0.2 * want}  # fmt: skip
    fair = fairness(pert["events"], pert["town"].config.num_agents)
    recovery = []
    for e, _ in pert["events"]:
        if e.kind == EventKind.PERTURBATION_END and int(e.value) in OUTAGES:
            day = slice(e.tick + 1, min(e.tick + 1 + TICKS_PER_DAY, len(pert["ok"])))
            after, same = float(pert["ok"][day].mean()), float(base["ok"][day].mean())
            recovery.append({"kind": PerturbationKind(int(e.value)).name.lower(), "ended": e.tick,
                             "needs_ok_next_day": round(after, 4), "baseline_same_ticks": round(same, 4),
                             "exits_next_day": int(pert["exits"][day].sum()),
                             "recovered": after >= same - 0.05})  # fmt: skip
    sched = pert["town"].attachments.get("perturbations")
    report = {
        "days": args.days,
        "seed": args.seed,
        "kinds": kinds,
        "fairness": fair,
        "outage_recovery": recovery,
        "stats": sched.stats,
        "needs_ok_mean": {
            "perturbed": round(float(pert["ok"].mean()), 4),
            "baseline": round(float(base["ok"].mean()), 4),
        },
        "exits": {"perturbed": int(pert["exits"].sum()), "baseline": int(base["exits"].sum())},
    }
    passed = (
        all(k["ok"] for k in kinds.values())
        and fair["gini"] < 0.2
        and not fair["violations"]
        and all(r["recovered"] for r in recovery)
    )
    report["passed"] = passed
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
