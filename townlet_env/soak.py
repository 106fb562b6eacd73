"""The soak harness: run a town for many sim days and watch it stay healthy (``townlet soak``).

A soak answers the operator's question "can this town run for a month?": it runs the town
under a policy with the whole ops stack attached (stability monitor, telemetry to a JSONL
file, autosaved snapshots) and reports, per sim day:

* throughput (env-steps/s of that day) and its drift over the soak,
* memory: the process's resident set (``/proc/self/statm``) at the day's end,
* the product KPIs of that day (self-sufficiency, lateness, starvation, stuck reservations)
  and whether they sit in their bands (``KPI_BANDS``),
* stability alerts raised that day, the telemetry bytes written and the newest snapshot's size.

The summary says whether memory stayed flat (within 10 % of day 1's after day 1), whether
throughput drift (last days against the first, :func:`summarise`) stayed under 10 % and
whether every day's KPIs were in band. The rows go
to a table on stdout and, with ``wandb_mode`` set, to a W&B run (wandb imported only then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np

import townlet_env
from townlet_env.config import TICKS_PER_DAY, ConfigError, ObsVariant
from townlet_env.controllers import drive
from townlet_env.kpis import KpiTracker
from townlet_env.policies import PolicyError, PolicyOptions, add_policy_arguments, make_controller

#: KPI bands a healthy town keeps every day (the product KPIs of the design).
KPI_BANDS: dict[str, tuple[float, float]] = {
    "self_sufficiency": (0.7, 1.0),
    "lateness": (0.0, 0.15),
    "starvation_incidents": (0, 0),
    "stuck_reservations": (0, 0),
}


@dataclass(frozen=True)
class SoakDay:
    """One sim day of a soak."""

    day: int
    env_steps_per_s: float
    rss_mib: float
    self_sufficiency: float
    lateness: float
    starvation_incidents: int
    stuck_reservations: int
    kpis_in_band: bool
    alerts: int
    telemetry_bytes: int
    snapshot_bytes: int


@dataclass(frozen=True)
class SoakReport:
    """The days of a soak and its verdicts."""

    days: tuple[SoakDay, ...]
    memory_growth: float  # max RSS after day 1 / RSS at the end of day 1, minus 1
    throughput_drift: float  # |median steps/s of the last third / median of the first third - 1|
    all_days_in_band: bool
    policy: str = "scripted"  # who played, e.g. "mixed (0.5 of seats) runs/ppo.zip"

    @property
    def healthy(self) -> bool:
        return self.memory_growth <= 0.10 and self.throughput_drift < 0.10 and self.all_days_in_band


def rss_mib() -> float:
    """The process's resident set size now, in MiB (Linux ``/proc``; 0.0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def in_band(values: dict[str, float]) -> bool:
    """Whether every KPI named in :data:`KPI_BANDS` lies in its band."""
    return all(lo <= values[name] <= hi for name, (lo, hi) in KPI_BANDS.items())


def run_soak(
    days: int,
    out_dir: str | Path,
    *,
    policy: str = "scripted",
    seed: int = 0,
    options: PolicyOptions | None = None,
    config: str | Path | None = None,
    **town: Any,
) -> SoakReport:
    """Run a town for ``days`` sim days with the ops stack attached and report each day.

    Args:
        days: sim days (one episode of ``days * 1440`` ticks).
        out_dir: where the telemetry stream (``telemetry.jsonl``) and the autosaved
            snapshots (``snapshots/``, one a day, the newest 3 kept) go.
        policy: a policy name (:func:`townlet_env.policies.policy_names`): ``"scripted"``,
            ``"random"``, or with the training extras ``"learned"`` or ``"mixed"``.
        seed: the episode's and the policy's seed (overrides ``options.seed``).
        options: the policy's checkpoint and learned fraction.
        config: a town config YAML (default: the shipped town).
        **town: config keys for :func:`townlet_env.parallel_env` (e.g. ``num_agents=16``).

    Returns:
        The :class:`SoakReport`.

    Raises:
        PolicyError: the policy cannot be built (unknown, extras missing, bad checkpoint).

    """
    from townlet_env.snapshots import Autosaver
    from townlet_env.stability import StabilityMonitor
    from townlet_env.telemetry.publisher import TelemetryPublisher
    from townlet_env.telemetry.transports import JsonlTransport

    options = replace(options or PolicyOptions(), seed=seed)
    env = townlet_env.parallel_env(None if config is None else str(config), max_ticks=days * TICKS_PER_DAY, **town)
    controller = make_controller(policy, env, options)  # before any file is touched: a bad policy fails fast
    out = Path(out_dir)
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    stream = out / "telemetry.jsonl"
    stream.unlink(missing_ok=True)
    monitor = StabilityMonitor(env)
    publisher = TelemetryPublisher(env, [JsonlTransport(stream)])
    # Saved by hand at each day's end (between steps), so the last day has its snapshot too.
    saver = Autosaver(env, out / "snapshots", every_ticks=(days + 1) * TICKS_PER_DAY, keep=3)
    obs, _ = env.reset(seed=seed)
    town_env = env.unwrapped
    rows: list[SoakDay] = []
    try:
        for day in range(days):
            tracker, alerts, busy = KpiTracker(len(env.possible_agents)), 0, 0.0
            for _ in range(TICKS_PER_DAY):
                actions = drive(controller, env, obs)
                t0 = time.perf_counter()
                obs, rewards, *_ = env.step(actions)
                busy += time.perf_counter() - t0
                tracker.update(
                    town_env.world, town_env.last_events, np.array([rewards.get(a, 0.0) for a in env.possible_agents])
                )
                alerts += len(monitor.alerts)
            publisher.flush()
            latest = saver.save_now()
            kpis = tracker.report()
            values = {k: float(getattr(kpis, k)) for k in KPI_BANDS}
            rows.append(
                SoakDay(
                    day=day + 1,
                    env_steps_per_s=TICKS_PER_DAY / busy,
                    rss_mib=rss_mib(),
                    self_sufficiency=kpis.self_sufficiency,
                    lateness=kpis.lateness,
                    starvation_incidents=kpis.starvation_incidents,
                    stuck_reservations=kpis.stuck_reservations,
                    kpis_in_band=in_band(values),
                    alerts=alerts,
                    telemetry_bytes=stream.stat().st_size,
                    snapshot_bytes=latest.stat().st_size,
                )
            )
    finally:
        publisher.close()
    return replace(summarise(rows), policy=describe_policy(policy, options))


def describe_policy(policy: str, options: PolicyOptions) -> str:
    """Who played, for the report: the name, the mixed share and the checkpoint."""
    share = f" ({options.learned_fraction:g} of seats)" if policy == "mixed" else ""
    return f"{policy}{share}" + (f" {options.checkpoint}" if options.checkpoint else "")


def summarise(rows: list[SoakDay]) -> SoakReport:
    """The verdicts over the days.

    Memory growth: the largest resident set after day 1 against day 1's. Throughput drift:
    the median steps/s of the last third of the days after day 1 against the median of the
    first third (day 1 pays for warming caches; a shared machine's speed moves by +-20 % from
    one sim day to the next, so single days would decide nothing).
    """
    first = rows[0]
    later = rows[1:] or rows
    growth = max(r.rss_mib for r in later) / first.rss_mib - 1 if first.rss_mib else 0.0
    third = max(1, len(later) // 3)
    start = statistics.median(r.env_steps_per_s for r in later[:third])
    end = statistics.median(r.env_steps_per_s for r in later[-third:])
    return SoakReport(tuple(rows), growth, abs(end / start - 1), all(r.kpis_in_band for r in rows))


def format_report(report: SoakReport) -> str:
    """The soak as a table, then its verdicts."""
    head = (
        f"{'day':>4} {'steps/s':>9} {'RSS MiB':>8} {'self-suff':>9} {'late':>6} {'starve':>6} {'stuck':>5}"
        f" {'band':>5} {'alerts':>6} {'telemetry':>11} {'snapshot':>9}"
    )
    lines = [f"policy: {report.policy}", head, "-" * len(head)]
    for r in report.days:
        lines.append(
            f"{r.day:4d} {r.env_steps_per_s:9,.0f} {r.rss_mib:8.1f} {r.self_sufficiency:9.3f} {r.lateness:6.3f}"
            f" {r.starvation_incidents:6d} {r.stuck_reservations:5d} {'ok' if r.kpis_in_band else 'OUT':>5}"
            f" {r.alerts:6d} {r.telemetry_bytes:11,d} {r.snapshot_bytes:9,d}"
        )
    lines.append(
        f"memory growth after day 1: {report.memory_growth:+.1%} (limit +10%); throughput drift: "
        f"{report.throughput_drift:.1%} (limit 10%); KPIs in band every day: {report.all_days_in_band}; "
        f"healthy: {report.healthy}"
    )
    return "\n".join(lines)


def log_to_wandb(report: SoakReport, *, mode: str, out_dir: str | Path, project: str = "townlet-soak") -> None:
    """Log the days as a W&B table and the verdicts as the run summary (needs wandb).

    Args:
        report: the soak.
        mode: ``"offline"`` (files under ``out_dir/wandb``; ``wandb sync`` uploads later)
            or ``"online"``.
        out_dir: the soak's output folder; the run's files go under it.
        project: the W&B project.

    """
    import wandb  # the [train] extra; imported only when asked for

    run = wandb.init(project=project, mode=mode, job_type="soak", dir=str(out_dir),  # type: ignore[arg-type]
                     config={"policy": report.policy, "days": len(report.days)})  # fmt: skip
    rows = [asdict(r) for r in report.days]
    table = wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])
    for r in rows:
        run.log(r)
    run.log({"soak/days": table})
    run.summary.update({"memory_growth": report.memory_growth, "throughput_drift": report.throughput_drift,
                        "all_days_in_band": report.all_days_in_band, "healthy": report.healthy})  # fmt: skip
    run.finish()
    wandb.teardown()  # waits until wandb-core has closed the offline log, so it is complete on return


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, default=30, help="sim days to soak (default 30)")
    add_policy_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="episode and policy seed (default 0)")
    p.add_argument("--agents", type=int, default=None, help="number of agents (default: the config's)")
    p.add_argument("--config", default=None, help="town config YAML (default: the shipped town)")
    p.add_argument(
        "--obs-variant", choices=get_args(ObsVariant), default=None, help="observations (default: the config's)"
    )
    p.add_argument("--out", type=Path, default=Path("runs/soak"), help="telemetry and snapshots go here")
    p.add_argument(
        "--wandb",
        nargs="?",
        const="offline",
        choices=("offline", "online"),
        default=None,
        help="also log the days to W&B (needs the [train] extra); bare --wandb logs offline under --out",
    )


def _command(args: argparse.Namespace) -> int:
    if args.days < 1:
        print(f"townlet soak: --days {args.days}: soak at least one day", file=sys.stderr)
        return 2
    town = {k: v for k, v in (("num_agents", args.agents), ("obs_variant", args.obs_variant)) if v is not None}
    options = PolicyOptions(checkpoint=args.checkpoint, learned_fraction=args.learned_fraction, seed=args.seed)
    try:
        report = run_soak(
            args.days, args.out, policy=args.policy, seed=args.seed, options=options, config=args.config, **town
        )
    except (PolicyError, ConfigError) as exc:
        print(f"townlet soak: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.wandb:
        log_to_wandb(report, mode=args.wandb, out_dir=args.out)
    return 0 if report.healthy else 1


#: ``townlet soak``: (help, handler, arguments), as the command line's table wants it.
COMMAND = ("run a town for many sim days with the ops stack and report its health per day", _command, _arguments)
