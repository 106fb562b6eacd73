"""Evaluate a controller (learned, scripted or uniformly random) on held-out seeds.

Entry point :func:`evaluate`: for each seed, build a town of ``days`` sim days, let the
controller drive its seats (all by default; in mixed control the others follow the
scripted expert), measure the tick stream with :class:`townlet_env.kpis.KpiTracker`, and
average the reports. :func:`normalised_score` puts a return between the uniformly random
(0) and the scripted expert (1).

Held-out seeds: training towns are seeded ``seed + k + K * e`` from small bases, so the
default evaluation seeds start at 1,000,000 and never meet them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from townlet_env.config import TICKS_PER_DAY
from townlet_env.controllers import (
    Controller,
    ExpertFactory,
    MixedController,
    RandomController,
    ScriptedController,
    SeatChooser,
    drive,
    scripted_expert,
)
from townlet_env.kpis import KpiTracker
from training.progress import Progress
from training.vec_env import all_seats

HELD_OUT_SEED = 1_000_000
TownFactory = Callable[..., Any]  # (**config overrides) -> a Townlet ParallelEnv


class EvalConfig(BaseModel):
    """Which held-out episodes to play."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: tuple[int, ...] = Field((HELD_OUT_SEED, HELD_OUT_SEED + 1, HELD_OUT_SEED + 2), min_length=1)
    days: int = Field(1, ge=1, description="sim days per episode")
    max_ticks: int | None = Field(None, ge=1, description="override the episode length (short test runs)")


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """KPIs averaged over the episodes (count fields become means per episode).

    ``controller_return`` is the mean daily return of the seats the evaluated controller
    drove; ``kpis["mean_daily_return"]`` is over every seat of the town.
    """

    kpis: dict[str, float]
    controller_return: float
    episodes: tuple[dict[str, Any], ...]

    @property
    def mean_daily_return(self) -> float:
        return self.kpis["mean_daily_return"]

    def to_json(self) -> dict[str, Any]:
        return {"kpis": self.kpis, "controller_return": self.controller_return, "episodes": list(self.episodes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvalResult:
        return cls(dict(data["kpis"]), float(data["controller_return"]), tuple(data["episodes"]))


@dataclasses.dataclass(frozen=True)
class Scores:
    """A controller against the scripted expert and random play on the same seeds.

    ``returns`` and ``kpis`` are keyed ``learned``, ``scripted`` and ``random``.
    """

    returns: dict[str, float]
    normalised_score: float
    kpis: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scores:
        return cls(dict(data["returns"]), float(data["normalised_score"]), dict(data["kpis"]))

    def headline(self) -> str:
        """One line for the closing table."""
        learned = self.kpis.get("learned", {})
        nan = float("nan")
        return (
            f"normalised score {self.normalised_score:.2f}, self-sufficiency "
            f"{learned.get('self_sufficiency', nan):.2f}, lateness {learned.get('lateness', nan):.2f}"
        )


def evaluate(
    make_town: TownFactory,
    controller: Controller,
    config: EvalConfig | None = None,
    *,
    learned_seats: SeatChooser = all_seats,
    expert: ExpertFactory = scripted_expert,
) -> EvalResult:
    """Play ``controller`` on each held-out seed and average the KPI reports.

    Args:
        make_town: builds a town from config overrides (``max_ticks`` is set here).
        controller: drives the seats ``learned_seats`` picks for each episode seed.
        config: seeds and episode length.
        learned_seats: the controller's seats per episode (default all); the scripted
            expert drives the rest, as in the anneal's mixed control.
        expert: the factory for those scripted seats.

    """
    config = config if config is not None else EvalConfig()
    ticks = config.max_ticks if config.max_ticks is not None else config.days * TICKS_PER_DAY
    env = make_town(max_ticks=ticks)
    core = env.unwrapped
    n = len(env.possible_agents)
    episodes = []
    progress = Progress("eval", len(config.seeds) * ticks, "ticks")
    for seed in config.seeds:
        chosen = np.unique(np.asarray(learned_seats(seed, n), dtype=np.int64))
        player: Controller = controller
        if chosen.size < n:  # mixed control: the scripted expert drives the other seats
            player = MixedController(controller, ScriptedController(expert), learned_seats)
        player.reset(core.rules, seed)
        report = _play(env, seed, player, progress)
        row = dataclasses.asdict(report)
        per_seat = np.asarray(row.pop("daily_return_per_seat"), dtype=np.float64)
        row["controller_return"] = float(per_seat[chosen].mean())
        row.update(seed=seed, controller_seats=chosen.tolist())
        episodes.append(row)
    env.close()
    progress.close()
    numeric = [k for k, v in episodes[0].items() if isinstance(v, int | float) and k != "seed"]
    kpis = {k: float(np.mean([e[k] for e in episodes])) for k in numeric if k != "controller_return"}
    return EvalResult(kpis, float(np.mean([e["controller_return"] for e in episodes])), tuple(episodes))


def _play(env: Any, seed: int, controller: Controller, progress: Progress) -> Any:
    core = env.unwrapped
    n = len(env.possible_agents)
    tracker = KpiTracker(n)
    obs_dict, _ = env.reset(seed=seed)
    while env.agents:
        obs_dict, rewards, _, _, _ = env.step(drive(controller, env, obs_dict))
        guarded = np.zeros(n, dtype=np.float64)
        for agent, r in rewards.items():
            guarded[core.seat_index[agent]] = r
        tracker.update(core.world, core.last_events, guarded)
        progress.advance()
    return tracker.report()


def normalised_score(learned: float, random: float, expert: float) -> float:
    """``(R_learned - R_random) / (R_expert - R_random)``: 0 at random play, 1 at the expert.

    Raises:
        ValueError: the expert does not beat random play, so the scale is undefined.

    """
    if not expert > random:
        raise ValueError(f"normalised score undefined: expert return {expert:.4f} <= random return {random:.4f}")
    return (learned - random) / (expert - random)


def score_against_baselines(
    make_town: TownFactory,
    learned: Controller,
    config: EvalConfig | None = None,
    *,
    expert: ExpertFactory = scripted_expert,
) -> Scores:
    """Evaluate ``learned``, the scripted expert and random play on the same seeds; add the normalised score."""
    runs = {
        "learned": evaluate(make_town, learned, config, expert=expert),
        "scripted": evaluate(make_town, ScriptedController(expert), config, expert=expert),
        "random": evaluate(make_town, RandomController(), config, expert=expert),
    }
    returns = {name: r.mean_daily_return for name, r in runs.items()}
    return Scores(
        returns,
        normalised_score(returns["learned"], returns["random"], returns["scripted"]),
        {name: r.kpis for name, r in runs.items()},
    )
