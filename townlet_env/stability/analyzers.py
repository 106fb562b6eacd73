"""The stability monitor's analyzers: one small class per signal, each with numpy state.

Every analyzer reads one :class:`Frame` (the finished tick, as arrays) in ``update`` and
returns the alerts it raises as ``(kind, severity, message, value, threshold)`` rows; the
monitor stamps them with the tick. Per tick an analyzer makes at most one compiled pass
over the seats (:mod:`townlet_env.stability.kernels`) or reads this tick's event counts,
then pushes a row into its rolling window: never a Python loop over seats. An analyzer's
whole state is ``state()`` (named numpy arrays) and ``last`` (its latest metrics, JSON),
so a snapshot round-trip continues identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from townlet_env.stability.config import StabilityConfig
from townlet_env.stability.frame import Frame, Ring
from townlet_env.stability.kernels import reward_pass, starvation_pass, switch_pass, wait_pass
from townlet_env.world.events import REL_EVENT_KEYS, EventKind

#: An alert before the monitor stamps it: (kind, severity, message, value, threshold).
Raised = tuple[str, str, str, float, float]


# Event kinds as plain ints: enum attribute access is slow on the per-tick path.
_CONFLICT, _RELATIONSHIP = int(EventKind.QUEUE_CONFLICT), int(EventKind.RELATIONSHIP)
_LATE, _ABSENT, _FAIL = int(EventKind.SHIFT_LATE), int(EventKind.SHIFT_ABSENT), int(EventKind.AFFORDANCE_FAIL)


class Analyzer:
    """Base: subclasses fill ``arrays`` (name -> array) and ``rings`` and implement ``update``."""

    name = "analyzer"

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.rings: dict[str, Ring] = {}
        self.last: dict[str, Any] = {}

    def update(self, frame: Frame) -> list[Raised]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything (a new episode starts)."""
        for array in self.arrays.values():
            array[...] = 0
        for ring in self.rings.values():
            ring.reset()
        self.last = {}

    def state(self) -> dict[str, np.ndarray]:
        """Every array of the analyzer's state, by name (rings as ``ring.buf`` etc.)."""
        out = {k: v.copy() for k, v in self.arrays.items()}
        for name, ring in self.rings.items():
            out.update({f"{name}.{k}": v for k, v in ring.state().items()})
        return out

    def load(self, arrays: Mapping[str, np.ndarray], last: Mapping[str, Any]) -> None:
        """Restore :meth:`state` arrays (shapes must match: same seats and windows)."""
        for key, like in self.state().items():
            saved = np.asarray(arrays[key])
            if saved.shape != like.shape:
                raise ValueError(
                    f"stability state {self.name}.{key}: shape {saved.shape} does not fit {like.shape}; "
                    "the snapshot was taken with another seat count or window size"
                )
        for key, array in self.arrays.items():
            array[...] = arrays[key]
        for name, ring in self.rings.items():
            ring.load({k: np.asarray(arrays[f"{name}.{k}"]) for k in ("buf", "pos", "total")})
        self.last = dict(last)


class EventWindow(Analyzer):
    """Counts of some events per tick over a rolling window; alerts when the window's count exceeds ``limit``."""

    kind = ""
    metric = ""

    def __init__(self, window_ticks: int, limit: float) -> None:
        super().__init__()
        self.ring = self.rings["ring"] = Ring(window_ticks)
        self.limit = limit

    def count(self, frame: Frame) -> int:
        raise NotImplementedError

    def update(self, frame: Frame) -> list[Raised]:
        self.ring.push(self.count(frame))
        total = self.ring.total[0]
        self.last = {self.metric: total}
        if total > self.limit:
            window = self.ring.size
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
        self.ring = self.rings["ring"] = Ring(c.window_ticks)
        self.streak = np.zeros(n_seats, np.int64)
        self.counted = np.zeros(n_seats, bool)
        self.arrays = {"streak": self.streak, "counted": self.counted}

    def update(self, frame: Frame) -> list[Raised]:
        args = (self.threshold, self.min_duration, self.streak, self.counted)
        new, starving = starvation_pass(frame.needs, frame.alive, *args)
        self.ring.push(new)
        incidents = self.ring.total[0]
        self.last = {"starvation_incidents": incidents, "starving_now": starving}
        if incidents > self.limit:
            msg = f"{incidents} starvation incidents in {self.ring.size} ticks"
            return [("starvation_spike", "critical", msg, incidents, self.limit)]
        return []


class RewardVariance(Analyzer):
    """Population variance of every present seat's reward (the engine's total, this tick's
    dead included) over the window, from running sums of count, reward and squared reward.
    """

    name = "reward_variance"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__()
        c = cfg.reward_variance
        self.limit, self.min_samples = c.max_variance, c.min_samples
        self.ring = self.rings["ring"] = Ring(c.window_ticks, width=3, exact=False)  # n, sum, sum of squares

    def update(self, frame: Frame) -> list[Raised]:
        self.ring.push(*reward_pass(frame.rewards, frame.alive, frame.reasons))
        n, total, squares = self.ring.total
        mean = total / n if n else 0.0
        var = max(squares / n - mean * mean, 0.0) if n else 0.0
        self.last = {"reward_variance": var, "reward_mean": mean, "reward_samples": int(n)}
        if n >= self.min_samples and var > self.limit:
            msg = f"reward variance {var:.3g} over {int(n)} seat-ticks"
            return [("reward_variance_spike", "warning", msg, var, self.limit)]
        return []


class OptionThrash(Analyzer):
    """Option switches per seat-tick over the window, counting seats alive this tick and the last."""

    name = "option_thrash"

    def __init__(self, cfg: StabilityConfig, n_seats: int) -> None:
        super().__init__()
        c = cfg.option_thrash
        self.limit, self.min_samples = c.max_switch_rate, c.min_samples
        self.ring = self.rings["ring"] = Ring(c.window_ticks, width=3)  # switches, seats, 1 if sampled
        self.prev = np.zeros(n_seats, np.int8)
        self.prev_alive = np.zeros(n_seats, bool)  # all False before the first tick: no sample
        self.arrays = {"prev": self.prev, "prev_alive": self.prev_alive}

    def update(self, frame: Frame) -> list[Raised]:
        switches, seats = switch_pass(frame.option, frame.alive, self.prev, self.prev_alive)
        self.ring.push(switches, seats, 1 if seats else 0)
        switched, seat_ticks, samples = self.ring.total
        rate = switched / seat_ticks if seat_ticks else 0.0
        self.last = {"option_switch_rate": rate, "option_samples": samples}
        if samples >= self.min_samples and rate > self.limit:
            msg = f"option switch rate {rate:.3f} per seat-tick over {samples} ticks"
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
        conflicts = int(frame.counts[_CONFLICT])
        waiting, long_waits = wait_pass(frame.waiting, frame.joined_tick, frame.tick - self.long_wait)
        if conflicts:
            self.total += conflicts
        self.last = {
            "queue_conflicts": conflicts,
            "queue_conflicts_total": int(self.total[0]),
            "queue_waiting": waiting,
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
        if not frame.counts[_RELATIONSHIP] or not self.raising.size:
            return 0
        ev = frame.events[frame.events[:, 1] == _RELATIONSHIP]
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
        counts = frame.counts
        return int(counts[_LATE] + counts[_ABSENT])


class AffordanceFailures(EventWindow):
    """``AFFORDANCE_FAIL`` events, against a limit of ``max_per_seat`` x seats."""

    name, kind, metric = "affordance_fail", "affordance_failures_exceeded", "affordance_failures"

    def __init__(self, cfg: StabilityConfig, n_seats: int) -> None:
        super().__init__(cfg.affordance_fail.window_ticks, cfg.affordance_fail.max_per_seat * n_seats)

    def count(self, frame: Frame) -> int:
        return int(frame.counts[_FAIL])


class ExitBacklog(Analyzer):
    """Living seats still in the exit queue after the tick: the daily exit cap held them back."""

    name = "exit_backlog"

    def __init__(self, cfg: StabilityConfig) -> None:
        super().__init__()
        self.limit = cfg.exit_backlog.queue_limit

    def update(self, frame: Frame) -> list[Raised]:
        # count_nonzero first: far cheaper than a ufunc on the (almost always empty) queue.
        pending = int(np.count_nonzero(frame.alive & frame.exit_pending)) if np.count_nonzero(frame.exit_pending) else 0
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
