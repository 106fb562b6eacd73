"""The anneal's schedule and its rollback guard: pure value objects, no training.

:class:`AnnealSchedule` says which seats the learned policy drives at each stage;
:class:`RollbackGuard` compares a stage's KPIs with the last good stage's and with the
all-scripted baseline and says whether the stage may advance (see :mod:`training.anneal`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np

from training.vec_env import SeatChooser


@dataclasses.dataclass(frozen=True)
class AnnealSchedule:
    """Shares of seats under learned control, stage by stage (a pure value object).

    ``assignment`` is a function of the episode seed alone: the seats are the first
    ``round(share * n_seats)`` (at least 1) of a permutation drawn from the seed, so the
    same episode seed gives the same seats, and a later stage's seats include an earlier one's.
    """

    shares: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)

    def __post_init__(self) -> None:
        s = self.shares
        if not s or any(not 0.0 < x <= 1.0 for x in s) or any(b < a for a, b in itertools.pairwise(s)):
            raise ValueError(f"shares must be non-decreasing values in (0, 1], got {s}")

    @property
    def n_stages(self) -> int:
        return len(self.shares)

    def n_learned(self, stage: int, n_seats: int) -> int:
        return min(n_seats, max(1, int(np.floor(self.shares[stage] * n_seats + 0.5))))

    def assignment(self, stage: int, episode_seed: int, n_seats: int) -> tuple[int, ...]:
        """The learned seats (sorted) of an episode with ``episode_seed`` at ``stage``."""
        order = np.random.default_rng([episode_seed, n_seats]).permutation(n_seats)
        return tuple(sorted(int(i) for i in order[: self.n_learned(stage, n_seats)]))

    def chooser(self, stage: int) -> SeatChooser:
        """``assignment`` bound to ``stage``, as ``TownVecEnv`` and ``evaluate`` take it."""
        return functools.partial(self.assignment, stage)


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """How a KPI's drop is measured: ``(worse change) / max(|reference|, floor)``."""

    name: str
    higher_is_better: bool
    floor: float  #: keeps tiny references from turning noise into huge relative drops

    def drop(self, current: float, reference: float) -> float:
        worse = reference - current if self.higher_is_better else current - reference
        return worse / max(abs(reference), self.floor)


#: tolerance x floor is the absolute slack near a zero reference: lateness 0.15 (the KPI
#: band), starvation 0.3 incidents per episode, return 0.3 per seat-day.
DEFAULT_RULES = (
    MetricRule("self_sufficiency", True, 0.1),
    MetricRule("lateness", False, 0.5),
    MetricRule("mean_daily_return", True, 1.0),
    MetricRule("starvation_incidents", False, 1.0),
)


@dataclasses.dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    reasons: tuple[str, ...]
    drops: dict[str, dict[str, float]]


@dataclasses.dataclass(frozen=True)
class RollbackGuard:
    """Flags a stage whose KPIs drop past ``tolerance`` vs the last good stage, or past
    ``baseline_tolerance`` vs the scripted baseline (None: no baseline check).
    """

    tolerance: float = 0.3
    baseline_tolerance: float | None = 0.3
    rules: tuple[MetricRule, ...] = DEFAULT_RULES

    def check(self, current: dict[str, float], previous: dict[str, float], baseline: dict[str, float]) -> GuardVerdict:
        refs = [("previous stage", previous, self.tolerance)]
        if self.baseline_tolerance is not None:
            refs.append(("scripted baseline", baseline, self.baseline_tolerance))
        reasons, drops = [], {}
        for label, ref, tol in refs:
            drops[label] = {r.name: r.drop(current[r.name], ref[r.name]) for r in self.rules}
            reasons += [
                f"{r.name} worsened {drops[label][r.name]:.0%} vs {label} ({ref[r.name]:.4g} -> {current[r.name]:.4g}; "
                f"tolerance {tol:.0%})"
                for r in self.rules
                if drops[label][r.name] > tol
            ]
        return GuardVerdict(not reasons, tuple(reasons), drops)
