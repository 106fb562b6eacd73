"""The stability monitor's analyzers: one small class per signal, each with numpy state.

Every analyzer reads one :class:`Frame` (the finished tick, as arrays) in ``update`` and
returns the alerts it raises as ``(kind, severity, message, value, threshold)`` rows; the
monitor stamps them with the tick. Work per tick is a few vector operations over the
seats or the window, never a Python loop over seats. An analyzer's whole state is
``state()`` (named numpy arrays) and ``last`` (its latest metrics, JSON), so a snapshot
round-trip continues identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from townlet_env.stability_config import StabilityConfig
from townlet_env.stability_frame import Frame, Ring
from townlet_env.world.events import REL_EVENT_KEYS, EventKind

#: An alert before the monitor stamps it: (kind, severity, message, value, threshold).
Raised = tuple[str, str, str, float, float]


class Analyzer:
    """Base: subclasses set ``arrays`` (name -> array) and implement ``update``."""

    name = "analyzer"

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.last: dict[str, Any] = {}

    def update(self, frame: Frame) -> list[Raised]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything (a new episode starts)."""
        for array in self.arrays.values():
            array[...] = 0
        self.last = {}

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.arrays.items()}

    def load(self, arrays: Mapping[str, np.ndarray], last: Mapping[str, Any]) -> None:
        """Copy saved arrays into place (shapes must match: same seats and windows)."""
        for key, array in self.arrays.items():
            saved = np.asarray(arrays[key])
            if saved.shape != array.shape:
                raise ValueError(
                    f"stability state {self.name}.{key}: shape {saved.shape} does not fit {array.shape}; "
                    "the snapshot was taken with another seat count or window size"
                )
            array[...] = saved
        self.last = dict(last)


class EventWindow(Analyzer):
    """Counts of some events per tick over a rolling window; alerts when the window's count exceeds ``limit``."""

    kind = ""
    metric = ""

    def __init__(self, window_ticks: int, limit: float) -> None:
        super().__init__()
        self.ring = Ring(window_ticks)
        self.limit = limit
        self.arrays = {"buf": self.ring.buf, "pos": self.ring.pos}

    def count(self, frame: Frame) -> int:
        raise NotImplementedError

    def update(self, frame: Frame) -> list[Raised]:
        self.ring.push(self.count(frame))
        total = int(self.ring.totals()[0])
        self.last = {self.metric: total}
        if total > self.limit:
            window = len(self.ring.buf)
            return [(self.kind, "warning", f"{total} {self.metric} in {window} ticks", total, self.limit)]
        return []


class Starvation(Analyzer):
    """A seat starves when some need stays at or below a threshold for a minimum streak;
    each streak is one incident (cleared on recovery or when the identity ends).
    """

    name = "starvation"

    def __init__(self, cfg: StabilityConfig, n_seats: int) -> None:
        super().__init__()
        c = cfg.starvation
        self.threshold, self.min_duration, self.limit = c.need_threshold, c.min_duration_ticks, c.max_incidents
        self.ring = Ring(c.window_ticks)
        self.streak = np.zeros(n_seats, np.int64)
        self.counted = np.zeros(n_seats, bool)
        self.arrays = {"streak": self.streak, "counted": self.counted, "buf": self.ring.buf, "pos": self.ring.pos}

    def update(self, frame: Frame) -> list[Raised]:
        low = frame.alive & (frame.needs.min(axis=1) <= self.threshold)
        self.streak[:] = np.where(low, self.streak + 1, 0)
        new = low & (self.streak >= self.min_duration) & ~self.counted
        self.counted[:] = (self.counted | new) & low
        self.ring.push(int(new.sum()))
        incidents = int(self.ring.totals()[0])
        self.last = {"starvation_incidents": incidents, "starving_now": int(self.counted.sum())}
        if incidents > self.limit:
            msg = f"{incidents} starvation incidents in {len(self.ring.buf)} ticks"
            return [("starvation_spike", "critical", msg, incidents, self.limit)]
        return []


class RewardVariance(Analyzer):
    """Population variance of every present seat's reward over the window (Chan's merge of
    per-tick count, mean and sum of squared deviations, so no running sum drifts).
    """

    name = "reward_variance"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__()
        c = cfg.reward_variance
        self.limit, self.min_samples = c.max_variance, c.min_samples
        self.ring = Ring(c.window_ticks, width=3, dtype=np.float64)  # count, mean, M2
        self.arrays = {"buf": self.ring.buf, "pos": self.ring.pos}

    def update(self, frame: Frame) -> list[Raised]:
        r = frame.rewards[frame.alive | frame.ended].astype(np.float64)
        mean = float(r.mean()) if r.size else 0.0
        self.ring.push(r.size, mean, float(((r - mean) ** 2).sum()))
        n, means, m2 = self.ring.buf[:, 0], self.ring.buf[:, 1], self.ring.buf[:, 2]
        total = float(n.sum())
        mu = float((n * means).sum() / total) if total else 0.0
        var = float((m2.sum() + (n * (means - mu) ** 2).sum()) / total) if total else 0.0
        self.last = {"reward_variance": var, "reward_mean": mu, "reward_samples": int(total)}
        if total >= self.min_samples and var > self.limit:
            msg = f"reward variance {var:.3g} over {int(total)} seat-ticks"
            return [("reward_variance_spike", "warning", msg, var, self.limit)]
        return []


class OptionThrash(Analyzer):
    """Share of seats (living this tick and the last) whose option changed, averaged over the window."""

    name = "option_thrash"

    def __init__(self, cfg: StabilityConfig, n_seats: int) -> None:
        super().__init__()
        c = cfg.option_thrash
        self.limit, self.min_samples = c.max_switch_rate, c.min_samples
        self.ring = Ring(c.window_ticks, width=2, dtype=np.float64)  # rate, 1 if sampled
        self.prev = np.zeros(n_seats, np.int8)
        self.prev_alive = np.zeros(n_seats, bool)  # all False before the first tick: no sample
        self.arrays = {"prev": self.prev, "prev_alive": self.prev_alive, "buf": self.ring.buf, "pos": self.ring.pos}

    def update(self, frame: Frame) -> list[Raised]:
        both = frame.alive & self.prev_alive
        seats = int(both.sum())
        if seats:
            self.ring.push(float(((frame.option != self.prev) & both).sum()) / seats, 1.0)
        else:
            self.ring.push(0.0, 0.0)
        self.prev[:] = frame.option
        self.prev_alive[:] = frame.alive
        rate_sum, samples = self.ring.totals()
        rate = float(rate_sum / samples) if samples else 0.0
        self.last = {"option_switch_rate": rate, "option_samples": int(samples)}
        if samples >= self.min_samples and rate > self.limit:
            msg = f"option switch rate {rate:.3f} per seat-tick over {int(samples)} ticks"
            return [("option_thrashing", "warning", msg, rate, self.limit)]
        return []


class QueueFairness(Analyzer):
    """Queue conflicts raised this tick, and waiters whose wait is long now."""

    name = "queue_fairness"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__()
        c = cfg.queue_fairness
        self.max_conflicts, self.max_long = c.max_conflicts_per_tick, c.max_long_waits
        self.long_wait = c.long_wait_ticks
        self.total = np.zeros(1, np.int64)  # conflicts since the start of the episode
        self.arrays = {"total": self.total}

    def update(self, frame: Frame) -> list[Raised]:
        conflicts = int(frame.counts[EventKind.QUEUE_CONFLICT])
        queued = frame.waiting >= 0
        long_waits = int((queued & (frame.tick - frame.joined_tick >= self.long_wait)).sum())
        self.total += conflicts
        self.last = {
            "queue_conflicts": conflicts,
            "queue_conflicts_total": int(self.total[0]),
            "queue_waiting": int(queued.sum()),
            "queue_long_waits": long_waits,
        }
        if conflicts > self.max_conflicts:
            msg = f"{conflicts} queue conflicts this tick"
            return [("queue_fairness_pressure", "warning", msg, conflicts, self.max_conflicts)]
        if long_waits > self.max_long:
            msg = f"{long_waits} waiters queued for {self.long_wait}+ ticks"
            return [("queue_fairness_pressure", "warning", msg, long_waits, self.max_long)]
        return []


class RivalrySpike(EventWindow):
    """Rivalry-raising tie events whose tie (agent toward other) ends at or above ``intensity``."""

    name, kind, metric = "rivalry", "rivalry_spike", "rivalry_events"

    def __init__(self, cfg: StabilityConfig, rivalry_deltas: Mapping[str, tuple[float, float, float]]) -> None:
        super().__init__(cfg.rivalry.window_ticks, cfg.rivalry.max_events)
        self.intensity = cfg.rivalry.intensity
        self.raising = np.array([i for i, key in enumerate(REL_EVENT_KEYS) if rivalry_deltas[key][2] > 0])

    def count(self, frame: Frame) -> int:
        if not frame.counts[EventKind.RELATIONSHIP] or not self.raising.size:
            return 0
        ev = frame.events[frame.events[:, 1] == EventKind.RELATIONSHIP]
        ev = ev[np.isin(ev[:, 5].astype(np.int64), self.raising)]
        agent, other = ev[:, 2].astype(np.int64), ev[:, 3].astype(np.int64)
        match = frame.tie_other[agent] == other[:, None]  # [E, K]: the tie's slot
        rivalry = np.where(match, frame.tie_vals[agent, :, 2], 0.0).max(axis=1, initial=0.0)
        return int((rivalry >= self.intensity).sum())


class Lateness(EventWindow):
    """Shifts arrived at late or marked absent."""

    name, kind, metric = "lateness", "lateness_spike", "late_shifts"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__(cfg.lateness.window_ticks, cfg.lateness.max_late_shifts)

    def count(self, frame: Frame) -> int:
        return int(frame.counts[EventKind.SHIFT_LATE] + frame.counts[EventKind.SHIFT_ABSENT])


class AffordanceFailures(EventWindow):
    """``AFFORDANCE_FAIL`` events, against a limit of ``max_per_seat`` x seats."""

    name, kind, metric = "affordance_fail", "affordance_failures_exceeded", "affordance_failures"

    def __init__(self, cfg: StabilityConfig, n_seats: int) -> None:
        super().__init__(cfg.affordance_fail.window_ticks, cfg.affordance_fail.max_per_seat * n_seats)

    def count(self, frame: Frame) -> int:
        return int(frame.counts[EventKind.AFFORDANCE_FAIL])


class ExitBacklog(Analyzer):
    """Living seats still in the exit queue after the tick: the daily exit cap held them back."""

    name = "exit_backlog"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__()
        self.limit = cfg.exit_backlog.queue_limit

    def update(self, frame: Frame) -> list[Raised]:
        pending = int((frame.alive & frame.exit_pending).sum())
        self.last = {"exits_pending": pending}
        if pending > self.limit:
            msg = f"{pending} exits pending, over the queue limit"
            return [("employment_exit_queue_overflow", "critical", msg, pending, self.limit)]
        if pending:
            return [("employment_exit_backlog", "warning", f"{pending} exits pending", pending, 0)]
        return []


def build_analyzers(cfg: StabilityConfig, town: Any) -> list[Analyzer]:
    """Every analyzer, in ``ALERT_KINDS`` order, for ``town`` (a ``TownletParallelEnv``)."""
    n = town.world.n_agents
    return [
        Starvation(cfg, n),
        RewardVariance(cfg),
        OptionThrash(cfg, n),
        QueueFairness(cfg),
        RivalrySpike(cfg, town.config.relationships.events),
        Lateness(cfg),
        AffordanceFailures(cfg, n),
        ExitBacklog(cfg),
    ]
