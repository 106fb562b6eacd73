"""The ``stability:`` config section: thresholds of the stability monitor's analyzers.

Each analyzer alerts when its measured value *exceeds* its ``max_*`` threshold. The
defaults are set for the shipped town (8 seats, 1 tick = 1 sim minute) so that a healthy
run of the scripted expert stays quiet with a wide margin: over 3 sim days on seeds 0-2
it has no need below 0.3, reward variance about 3e-5 (1,000-tick window), an option
switch rate about 0.04 per seat-tick (600-tick window), no queue conflict, waits of at
most 24 ticks, rivalry at most 0.3, no late or absent shift, at most 12 affordance
failures (cancellations included) in 60 ticks, and no pending exit.

Counts that grow with the population scale with the seat count ``n`` against
``reference_seats`` (R, default 8), never below the configured value:
``limit(n) = ceil(base * max(1, n / R) ** p)``, with ``p = 1`` for starvation incidents,
queue conflicts per tick, rivalry events, late shifts and the exit-queue limit (each seat
adds its own), and ``p = 2`` for long queue waits: the map's objects do not grow with the
town, so a queue gets longer *and* each waiter waits longer (at 16 seats the scripted
expert's healthy runs reach 5 long waits, against 0 at 8 and 12). Affordance failures
are already per seat. :meth:`StabilityConfig.for_seats` applies the rule.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from townlet_env.strict import Strict

#: Every alert kind the monitor raises (``Alert.kind``), in analyzer order.
ALERT_KINDS: tuple[str, ...] = (
    "starvation_spike",
    "reward_variance_spike",
    "option_thrashing",
    "queue_fairness_pressure",
    "rivalry_spike",
    "lateness_spike",
    "affordance_failures_exceeded",
    "employment_exit_backlog",
    "employment_exit_queue_overflow",
)
AlertKind = Literal[
    "starvation_spike",
    "reward_variance_spike",
    "option_thrashing",
    "queue_fairness_pressure",
    "rivalry_spike",
    "lateness_spike",
    "affordance_failures_exceeded",
    "employment_exit_backlog",
    "employment_exit_queue_overflow",
]


class StarvationConfig(Strict):
    """An incident: a living seat with some need at or below ``need_threshold`` for ``min_duration_ticks``."""

    window_ticks: int = Field(1000, ge=1, le=100_000, description="rolling window incidents are counted over")
    max_incidents: int = Field(0, ge=0, description="alert when incidents in the window exceed this")
    need_threshold: float = Field(0.05, ge=0.0, le=1.0, description="a need at or below this is starving")
    min_duration_ticks: int = Field(30, ge=1, description="consecutive low ticks that make one incident")


class RewardVarianceConfig(Strict):
    """Population variance of every present seat's engine reward over a rolling window."""

    window_ticks: int = Field(1000, ge=1, le=100_000, description="rolling window of per-seat rewards")
    max_variance: float = Field(5e-4, gt=0.0, description="alert when the variance exceeds this")
    min_samples: int = Field(20, ge=1, description="seat-rewards needed in the window before it alerts")


class OptionThrashConfig(Strict):
    """Share of living seats whose option changed this tick, averaged over a rolling window."""

    window_ticks: int = Field(600, ge=1, le=100_000, description="rolling window of per-tick switch rates")
    max_switch_rate: float = Field(0.1, gt=0.0, le=1.0, description="alert when the mean rate exceeds this")
    min_samples: int = Field(10, ge=1, description="ticks needed in the window before it alerts")


class QueueFairnessConfig(Strict):
    """Queue conflicts raised this tick, and waiters queued for a long time now."""

    max_conflicts_per_tick: int = Field(4, ge=0, description="alert when a tick raises more queue conflicts")
    long_wait_ticks: int = Field(60, ge=1, description="a wait this long (ticks since joining) is long")
    max_long_waits: int = Field(2, ge=0, description="alert when more waiters are in a long wait")


class RivalryConfig(Strict):
    """Rivalry-raising tie events (queue conflict, failed chat) that leave a tie's rivalry high."""

    intensity: float = Field(0.7, ge=0.0, le=1.0, description="rivalry after the event that counts as a spike")
    window_ticks: int = Field(60, ge=1, le=100_000, description="rolling window such events are counted over")
    max_events: int = Field(2, ge=0, description="alert when events in the window exceed this")


class LatenessConfig(Strict):
    """Shifts arrived at late or marked absent."""

    window_ticks: int = Field(1440, ge=1, le=100_000, description="rolling window late/absent shifts count over")
    max_late_shifts: int = Field(3, ge=0, description="alert when late or absent shifts in the window exceed this")


class AffordanceFailConfig(Strict):
    """``AFFORDANCE_FAIL`` events: failed starts and uses cancelled by a new option or a death."""

    window_ticks: int = Field(60, ge=1, le=100_000, description="rolling window failures are counted over")
    max_per_seat: float = Field(3.0, ge=0.0, description="alert when failures in the window exceed this x seats")


class ExitBacklogConfig(Strict):
    """Seats waiting in the exit queue after the tick (the daily exit cap was reached)."""

    queue_limit: int = Field(4, ge=0, description="pending exits above this are an overflow (critical)")


class StabilityConfig(Strict):
    """The stability monitor (``townlet_env.stability``): analyzers and evaluation windows."""

    window_ticks: int = Field(1000, ge=1, description="ticks per evaluation window")
    reference_seats: int = Field(8, ge=1, description="seat count the count thresholds are set for; see for_seats")
    allowed_alerts: tuple[AlertKind, ...] = Field((), description="alert kinds that do not fail a window")
    required_passes: int = Field(2, ge=1, description="consecutive passed windows that make a candidate ready")
    history: int = Field(50, ge=1, le=10_000, description="window results kept")
    starvation: StarvationConfig = Field(default_factory=StarvationConfig)
    reward_variance: RewardVarianceConfig = Field(default_factory=RewardVarianceConfig)
    option_thrash: OptionThrashConfig = Field(default_factory=OptionThrashConfig)
    queue_fairness: QueueFairnessConfig = Field(default_factory=QueueFairnessConfig)
    rivalry: RivalryConfig = Field(default_factory=RivalryConfig)
    lateness: LatenessConfig = Field(default_factory=LatenessConfig)
    affordance_fail: AffordanceFailConfig = Field(default_factory=AffordanceFailConfig)
    exit_backlog: ExitBacklogConfig = Field(default_factory=ExitBacklogConfig)

    def for_seats(self, n_seats: int) -> StabilityConfig:
        """These thresholds for a town of ``n_seats`` (the module docstring's rule).

        ``limit(n) = ceil(base * max(1, n / reference_seats) ** p)``: ``p = 2`` for long
        queue waits, ``p = 1`` for the other counts; a town no larger than
        ``reference_seats`` keeps the configured values.
        """
        scale = max(1.0, n_seats / self.reference_seats)

        def grow(base: int, power: int = 1) -> int:
            return math.ceil(base * scale**power)

        queue = self.queue_fairness
        return self.model_copy(
            update={
                "starvation": self.starvation.model_copy(update={"max_incidents": grow(self.starvation.max_incidents)}),
                "queue_fairness": queue.model_copy(
                    update={
                        "max_conflicts_per_tick": grow(queue.max_conflicts_per_tick),
                        "max_long_waits": grow(queue.max_long_waits, 2),
                    }
                ),
                "rivalry": self.rivalry.model_copy(update={"max_events": grow(self.rivalry.max_events)}),
                "lateness": self.lateness.model_copy(update={"max_late_shifts": grow(self.lateness.max_late_shifts)}),
                "exit_backlog": self.exit_backlog.model_copy(
                    update={"queue_limit": grow(self.exit_backlog.queue_limit)}
                ),
            }
        )
