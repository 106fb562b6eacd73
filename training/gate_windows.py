"""Play the promotion gate's evaluation windows: the candidate alone, and in shadow of the release.

For each held-out seed the candidate drives every seat of a town for ``windows x
window_ticks`` ticks, with a :class:`~townlet_env.stability.StabilityMonitor` attached
(its windows are the gate's windows; the gate's ``allowed_alerts`` are the monitor's) and
a fresh :class:`~townlet_env.kpis.KpiTracker` per window. With a release to compare
against, the same seed is played again in **shadow**: the release's actions are applied,
and on the same observations both policies' greedy actions are computed and logged, so
their agreement is measured on exactly the states the release visits; the release's KPIs
in those towns are the band's reference. Window ``k`` of every seed makes gate window
``k`` (KPIs averaged over seeds, alert ticks summed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from townlet_env.kpis import KpiTracker
from townlet_env.stability import StabilityMonitor
from training.evaluate import Controller
from training.gate import KPI_NAMES, GateConfig, WindowObservation

TownFactory = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class Shadow:
    """The release beside the candidate: ``apply`` drives the towns, the views are compared."""

    apply: Controller  #: the release as it serves (sampling)
    release_view: Controller  #: the release, greedy
    candidate_view: Controller  #: the candidate, greedy


@dataclasses.dataclass
class _Episode:
    kpis: list[dict[str, float]] = dataclasses.field(default_factory=list)
    alerts: list[dict[str, int]] = dataclasses.field(default_factory=list)
    agreement: list[float] = dataclasses.field(default_factory=list)
    log: list[np.ndarray] = dataclasses.field(default_factory=list)  # rows (tick, seat, release, candidate)
    pass_streak: int = 0


def _observe(env: Any, obs_dict: dict[str, Any]) -> np.ndarray:
    core = env.unwrapped
    obs = np.zeros((len(env.possible_agents), core.layout.size), dtype=np.float32)
    for agent, o in obs_dict.items():
        obs[core.seat_index[agent]] = o["observation"]
    return obs


def _numeric(report: Any) -> dict[str, float]:
    return {k: float(getattr(report, k)) for k in KPI_NAMES}


def _play(make_town: TownFactory, seed: int, driver: Controller, shadow: Shadow | None, cfg: GateConfig) -> _Episode:
    """One seed: ``cfg.windows`` windows of ``cfg.window_ticks`` ticks driven by ``driver``."""
    env = make_town(max_ticks=cfg.windows * cfg.window_ticks)
    core = env.unwrapped
    stability = core.config.stability.model_copy(
        update={"window_ticks": cfg.window_ticks, "allowed_alerts": cfg.allowed_alerts}
    )
    monitor = StabilityMonitor(env, stability)
    views = () if shadow is None else (shadow.release_view, shadow.candidate_view)
    for controller in (driver, *views):
        controller.reset(core.rules, seed)
    out, n = _Episode(), len(env.possible_agents)
    obs_dict, _ = env.reset(seed=seed)
    tracker, same, seen = KpiTracker(n), 0, 0
    while env.agents:
        obs, mask = _observe(env, obs_dict), core.action_masks()
        actions = driver.act(core.world, obs, mask)
        if views:
            present = np.array([core.seat_index[a] for a in env.agents], dtype=np.int64)
            mine, theirs = (v.act(core.world, obs, mask)[present] for v in views)
            same, seen = same + int((mine == theirs).sum()), seen + len(present)
            tick = np.full(len(present), int(core.world.tick), dtype=np.int64)
            out.log.append(np.stack([tick, present, mine, theirs], axis=1))
        obs_dict, rewards, _, _, _ = env.step({a: int(actions[core.seat_index[a]]) for a in env.agents})
        guarded = np.zeros(n, dtype=np.float64)
        for agent, r in rewards.items():
            guarded[core.seat_index[agent]] = r
        tracker.update(core.world, core.last_events, guarded)
        if tracker.ticks == cfg.window_ticks:  # the monitor closed the same window this tick
            result = monitor.window_history[-1]
            out.kpis.append(_numeric(tracker.report()))
            out.alerts.append(dict(result.alerts + result.allowed))
            out.agreement.append(same / seen if seen else 1.0)
            tracker, same, seen = KpiTracker(n), 0, 0
    out.pass_streak = monitor.pass_streak
    env.close()
    return out


def play_windows(
    make_town: TownFactory, candidate: Controller, cfg: GateConfig, shadow: Shadow | None = None,
    log_dir: Path | None = None,
) -> tuple[tuple[WindowObservation, ...], int]:  # fmt: skip
    """The gate windows of ``candidate`` (and the release in shadow) and the monitor's pass streak.

    Args:
        make_town: builds the evaluation town from overrides (``max_ticks`` is set here).
        candidate: drives every seat in the candidate's own towns.
        cfg: windows, window length, seeds and allowed alerts.
        shadow: the release beside the candidate (None: no release to compare with).
        log_dir: where ``shadow_actions.npz`` goes (columns: tick, seat, release, candidate).

    """
    own = [_play(make_town, seed, candidate, None, cfg) for seed in cfg.seeds]
    beside = [_play(make_town, seed, shadow.apply, shadow, cfg) for seed in cfg.seeds] if shadow else []
    if beside and log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        rows = {f"seed_{s}": np.concatenate(e.log) if e.log else np.zeros((0, 4), np.int64)
                for s, e in zip(cfg.seeds, beside, strict=True)}  # fmt: skip
        np.savez_compressed(log_dir / "shadow_actions.npz", allow_pickle=False, **rows)
    windows = []
    for k in range(min(len(e.kpis) for e in own)):
        kpis = {name: float(np.mean([e.kpis[k][name] for e in own])) for name in KPI_NAMES}
        alerts: dict[str, int] = {}
        for e in own:
            for kind, ticks in e.alerts[k].items():
                alerts[kind] = alerts.get(kind, 0) + ticks
        release_kpis = {n: float(np.mean([e.kpis[k][n] for e in beside])) for n in KPI_NAMES} if beside else None
        agreement = float(np.mean([e.agreement[k] for e in beside])) if beside else None
        windows.append(WindowObservation(k, cfg.window_ticks, kpis, alerts, release_kpis=release_kpis,
                                         agreement=agreement))  # fmt: skip
    return tuple(windows), min(e.pass_streak for e in own)
