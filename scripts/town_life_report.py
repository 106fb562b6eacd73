"""Town-life report: whether contention happens, ties form and conflicts stay contained.

Runs the scripted expert on shipped configs (default: ``default`` and ``crowded``) for
``--days`` sim days (one episode of ``days * 1440`` ticks) on each seed and prints, per day,
the queue conflicts, the share of agents holding a tie with |trust| or rivalry > 0.3 and the
share of conflicts that escalate to repeated avoidance (definitions in
``townlet_env/town_life.py``), then the expert's KPIs over the run against their floors
(``tests/test_scripted.py``: self-sufficiency >= 0.9, lateness < 0.15, no faint, no stuck
reservation). Targets (DESIGN.md section 6), checked on the first config only (the default
town; ``crowded`` is a stress config whose figures are reported): conflicts > 0 every day,
tie share >= 0.6, escalation < 0.2, KPI floors hold. Exit status 1 when a target is missed.

    PYTHONPATH=. python scripts/town_life_report.py
    PYTHONPATH=. python scripts/town_life_report.py --configs crowded --seeds 0 --days 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import townlet_env
from townlet_env.config import TICKS_PER_DAY
from townlet_env.kpis import KpiReport, KpiTracker
from townlet_env.scripted import ScriptedExpert
from townlet_env.town_life import DayLife, TownLifeTracker

FLOORS = {"self_sufficiency": 0.9, "lateness": 0.15, "starvation_incidents": 0, "stuck_reservations": 0}


def run(config: str, seed: int, days: int) -> tuple[list[DayLife], KpiReport, int]:
    """Roll the expert on ``config`` for ``days``; return its days, KPIs and seat count."""
    env = townlet_env.parallel_env(config, max_ticks=days * TICKS_PER_DAY)
    env.reset(seed=seed)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=seed)
    kpis, life = KpiTracker(len(env.possible_agents)), TownLifeTracker()
    while env.agents:
        _, reward, _, _, _ = env.step(expert.act_dict(env))
        kpis.update(town.world, town.last_events, np.array([reward.get(a, 0.0) for a in env.possible_agents]))
        life.update(town.world, town.last_events)
    return life.days(), kpis.report(), len(env.possible_agents)


def kpi_misses(report: KpiReport) -> list[str]:
    """The KPI floors ``report`` misses, as readable lines."""
    misses = []
    if report.self_sufficiency < FLOORS["self_sufficiency"]:
        misses.append(f"self_sufficiency {report.self_sufficiency:.2f} < {FLOORS['self_sufficiency']}")
    if report.lateness >= FLOORS["lateness"]:
        misses.append(f"lateness {report.lateness:.2f} >= {FLOORS['lateness']}")
    if report.starvation_incidents or report.stuck_reservations:
        misses.append(f"faints {report.starvation_incidents}, stuck {report.stuck_reservations}")
    return misses


def life_misses(days: list[DayLife]) -> list[str]:
    """The town-life targets ``days`` miss, as readable lines."""
    misses = []
    for d in days:
        if d.conflicts == 0:
            misses.append(f"day {d.day}: no queue conflict")
        if d.tie_share < 0.6:
            misses.append(f"day {d.day}: tie share {d.tie_share:.2f} < 0.6")
        if d.escalation >= 0.2:
            misses.append(f"day {d.day}: escalation {d.escalation:.2f} >= 0.2")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["default", "crowded"], help="shipped config names or paths")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args(argv)
    failed = False
    for n, config in enumerate(args.configs):
        for seed in args.seeds:
            days, report, seats = run(config, seed, args.days)
            print(f"== {config}, {seats} agents, seed {seed}, {args.days} days")
            print("   day  conflicts  tie_share  escalated  escalation  avoidances")
            for d in days:
                print(
                    f"   {d.day:>3}  {d.conflicts:>9}  {d.tie_share:>9.2f}  {d.escalated:>9}  "
                    f"{d.escalation:>10.2f}  {d.avoidances:>10}"
                )
            print(
                f"   KPIs: self_sufficiency {report.self_sufficiency:.2f} (floor {FLOORS['self_sufficiency']}), "
                f"lateness {report.lateness:.2f} (< {FLOORS['lateness']}), faints {report.starvation_incidents}, "
                f"stuck {report.stuck_reservations}, mean daily return {report.mean_daily_return:.2f}"
            )
            misses = life_misses(days) + kpi_misses(report)
            for line in misses:
                print(f"   MISS: {line}" + ("" if n == 0 else " (stress config: reported, not a target)"))
            failed |= n == 0 and bool(misses)
    print("targets met on the default town" if not failed else "targets MISSED on the default town")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
