"""Run a town with the scripted expert and report its KPIs (behind ``townlet town``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from townlet_env.config import TICKS_PER_DAY, load_config
from townlet_env.kpis import KpiReport, KpiTracker
from townlet_env.rewards.guard import RewardGuard
from townlet_env.scripted import ScriptedExpert


def run_town(
    config_path: str | None,
    days: int = 1,
    seed: int = 0,
    num_agents: int | None = None,
    telemetry: str | Path | None = None,
    narrate: Callable[[str], None] | None = None,
) -> KpiReport:
    """Simulate ``days`` sim days of a town under the scripted expert and measure its KPIs.

    Args:
        config_path: a town YAML config; ``None`` for the shipped default town.
        days: sim days to run (``max_ticks`` is set to ``days * 1440``).
        seed: seeds both the episode (``reset(seed=...)``) and the expert.
        num_agents: seats in the town (default from the config).
        telemetry: record the telemetry stream to this JSONL file (appended to); it carries
            the narration lines.
        narrate: called with each narration line as it is told (``print`` for a story).

    Returns:
        The :class:`~townlet_env.kpis.KpiReport` of the run.

    """
    from townlet_env.env import TownletParallelEnv
    from townlet_env.narration.narrator import Narrator

    overrides: dict[str, object] = {"max_ticks": days * TICKS_PER_DAY}
    if num_agents is not None:
        overrides["num_agents"] = num_agents
    env = RewardGuard(TownletParallelEnv(load_config(config_path, **overrides)))
    town = env.unwrapped
    narrator = Narrator(env)
    publisher = None
    if telemetry is not None:
        from townlet_env.telemetry.publisher import TelemetryPublisher
        from townlet_env.telemetry.transports import JsonlTransport

        publisher = TelemetryPublisher(env, [JsonlTransport(telemetry)])
    env.reset(seed=seed)
    expert = ScriptedExpert(town.rules, seed=seed)
    tracker = KpiTracker(len(env.possible_agents))
    rewards = np.zeros(len(env.possible_agents), dtype=np.float64)
    while env.agents:
        _, reward, _, _, _ = env.step(expert.act_dict(env))
        rewards[:] = 0.0
        for agent, r in reward.items():
            rewards[town.seat_index[agent]] = r
        tracker.update(town.world, town.last_events, rewards)
        if narrate is not None:
            for line in narrator.lines:
                narrate(str(line))
    if publisher is not None:
        publisher.close()
    return tracker.report()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple):
        return " ".join(f"{v:.2f}" for v in value)
    return str(value)


def format_report(report: KpiReport) -> str:
    """A compact two-column table of the report (``rich`` when installed, else plain text)."""
    rows = [(k, _fmt(v)) for k, v in asdict(report).items()]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    table = Table(title="Townlet KPIs", show_header=True)
    table.add_column("kpi")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    console = Console(width=100, record=True, force_terminal=False)
    with console.capture() as capture:
        console.print(table)
    return capture.get()
