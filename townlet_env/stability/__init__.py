"""The stability monitor: per-tick alerts from the town's analyzers, and evaluation windows.

``StabilityMonitor(env)`` attaches to a town as ``"stability"`` and, after every tick,
runs the analyzers of :mod:`townlet_env.stability.analyzers` (starvation, reward variance,
option thrashing, queue fairness pressure, rivalry spikes, lateness, affordance failures,
exit backlog) with the thresholds of the config's ``stability:`` section. The tick's
alerts are typed :class:`Alert` records in ``monitor.alerts``; ``monitor.metrics()`` is a
JSON-able view for telemetry.

Evaluation windows count the ticks the monitor has seen: every ``window_ticks`` ticks a
window closes and passes if no alert outside ``allowed_alerts`` fired in it. Passes in a
row make ``pass_streak``; ``candidate_ready()`` is ``pass_streak >= required_passes``, the
signal a promotion gate reads. A ``reset`` of the env clears the analyzers (a new episode
has no history) but not the window progress, streak or history.

The monitor only reads the world: attaching it never changes what the town does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from townlet_env.stability.analyzers import build_analyzers
from townlet_env.stability.config import StabilityConfig
from townlet_env.stability.frame import frame_of

STATE_FORMAT = 1


@dataclass(frozen=True)
class Alert:
    """One alert raised at the end of ``tick``: ``value`` exceeded ``threshold``."""

    tick: int
    kind: str  #: one of ``townlet_env.stability.config.ALERT_KINDS``
    severity: Literal["warning", "critical"]
    message: str
    value: float
    threshold: float


@dataclass(frozen=True)
class WindowResult:
    """A closed evaluation window: ticks ``(start_tick, end_tick]`` of the world clock."""

    index: int  #: windows closed before this one
    start_tick: int
    end_tick: int
    passed: bool
    alerts: tuple[tuple[str, int], ...]  #: (kind, ticks it fired) for kinds that fail a window
    allowed: tuple[tuple[str, int], ...]  #: the same for allowed kinds


class StabilityMonitor:
    """Watches a town every tick; attaches itself to ``env`` as ``"stability"``.

    Args:
        env: a Townlet env (``parallel_env(...)`` or the core ``TownletParallelEnv``).
        config: the thresholds; default: the town config's ``stability`` section.

    Attributes:
        alerts: this tick's alerts (a tuple, fresh each tick).
        pass_streak: windows passed in a row.
        window_history: the last ``config.history`` closed windows, oldest first.

    """

    def __init__(self, env: Any, config: StabilityConfig | None = None) -> None:
        town = env.unwrapped
        self.config = config if config is not None else town.config.stability
        #: The thresholds in force: ``config`` scaled to the town's seat count (``for_seats``).
        self.thresholds = self.config.for_seats(town.world.n_agents)
        self.analyzers = build_analyzers(self.thresholds, town)
        self._allowed = frozenset(self.config.allowed_alerts)
        self.alerts: tuple[Alert, ...] = ()
        self.pass_streak = 0
        self.window_history: deque[WindowResult] = deque(maxlen=self.config.history)
        self._windows = 0  # windows closed so far
        self._window_ticks = 0  # ticks seen in the open window
        self._window_start = int(town.world.tick)
        self._window_alerts: dict[str, int] = {}
        self._tick = int(town.world.tick)
        # Last, so a snapshot's saved state (attachments.restore) lands on a built monitor.
        town.attachments.attach("stability", self)

    # --- hooks ---------------------------------------------------------------------------

    def after_step(self, env: Any) -> None:
        """Run every analyzer on the tick that just ended; close the window when it is full."""
        frame = frame_of(env)
        tick = self._tick = int(frame.tick)
        alerts: list[Alert] = []
        for analyzer in self.analyzers:
            raised = analyzer.update(frame)
            if raised:  # rare: the quiet path builds nothing
                alerts += [Alert(tick, k, s, m, float(v), float(t)) for k, s, m, v, t in raised]  # type: ignore[arg-type]
        self.alerts = tuple(alerts)
        for alert in alerts:
            self._window_alerts[alert.kind] = self._window_alerts.get(alert.kind, 0) + 1
        self._window_ticks += 1
        if self._window_ticks >= self.config.window_ticks:
            self._close_window(tick)

    def after_reset(self, env: Any) -> None:
        """A new episode: the analyzers forget the old one; windows and the streak go on."""
        for analyzer in self.analyzers:
            analyzer.reset()
        self.alerts = ()
        self._tick = int(env.world.tick)

    def _close_window(self, tick: int) -> None:
        counts = sorted(self._window_alerts.items())
        failing = tuple((k, n) for k, n in counts if k not in self._allowed)
        allowed = tuple((k, n) for k, n in counts if k in self._allowed)
        result = WindowResult(self._windows, self._window_start, tick, not failing, failing, allowed)
        self.window_history.append(result)
        self.pass_streak = self.pass_streak + 1 if result.passed else 0
        self._windows += 1
        self._window_ticks = 0
        self._window_start = tick
        self._window_alerts = {}

    # --- reading -------------------------------------------------------------------------

    def candidate_ready(self, required_passes: int | None = None) -> bool:
        """Whether the last ``required_passes`` windows (default: the config's) all passed."""
        need = self.config.required_passes if required_passes is None else required_passes
        return self.pass_streak >= need

    def metrics(self) -> dict[str, Any]:
        """The current metrics, alerts, thresholds and window state (JSON-able)."""
        values: dict[str, Any] = {}
        for analyzer in self.analyzers:
            values.update(analyzer.last)
        last = self.window_history[-1] if self.window_history else None
        return {
            "tick": self._tick,
            "metrics": values,
            "alerts": [asdict(a) for a in self.alerts],
            "thresholds": self.thresholds.model_dump(mode="json"),
            "window": {
                "window_ticks": self.config.window_ticks,
                "index": self._windows,
                "ticks_in_window": self._window_ticks,
                "alerts_in_window": dict(sorted(self._window_alerts.items())),
                "pass_streak": self.pass_streak,
                "last_passed": None if last is None else last.passed,
                "candidate_ready": self.candidate_ready(),
            },
        }

    # --- snapshots -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the monitor has learnt: JSON values, and numpy arrays named ``analyzer.field``."""
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "tick": self._tick,
            "windows": self._windows,
            "window_ticks_seen": self._window_ticks,
            "window_start": self._window_start,
            "window_alerts": dict(self._window_alerts),
            "pass_streak": self.pass_streak,
            "history": [_result_json(r) for r in self.window_history],
            "alerts": [asdict(a) for a in self.alerts],
            "last": {a.name: dict(a.last) for a in self.analyzers},
        }
        for analyzer in self.analyzers:
            for key, array in analyzer.state().items():
                state[f"{analyzer.name}.{key}"] = array
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (from this or an identically configured monitor).

        Raises:
            ValueError: naming the missing or misshapen entry, or an unknown format.

        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"stability state format {state.get('format')!r}: this monitor reads {STATE_FORMAT}")
        missing = [k for k in _JSON_KEYS if k not in state]
        missing += [f"{a.name}.{k}" for a in self.analyzers for k in a.state() if f"{a.name}.{k}" not in state]
        if missing:
            raise ValueError(f"stability state is missing {missing}; save it with StabilityMonitor.state_dict()")
        for analyzer in self.analyzers:
            arrays = {k: np.asarray(state[f"{analyzer.name}.{k}"]) for k in analyzer.state()}
            analyzer.load(arrays, state["last"].get(analyzer.name, {}))
        self._tick = int(state["tick"])
        self._windows = int(state["windows"])
        self._window_ticks = int(state["window_ticks_seen"])
        self._window_start = int(state["window_start"])
        self._window_alerts = {str(k): int(v) for k, v in state["window_alerts"].items()}
        self.pass_streak = int(state["pass_streak"])
        self.window_history.clear()
        self.window_history.extend(_result_of(r) for r in state["history"])
        self.alerts = tuple(Alert(**a) for a in state["alerts"])


_JSON_KEYS = (
    *("tick", "windows", "window_ticks_seen", "window_start", "window_alerts", "pass_streak"),
    *("history", "alerts", "last"),
)


def _result_json(result: WindowResult) -> dict[str, Any]:
    return {**asdict(result), "alerts": [list(p) for p in result.alerts], "allowed": [list(p) for p in result.allowed]}


def _result_of(data: Mapping[str, Any]) -> WindowResult:
    pairs = {k: tuple((str(kind), int(n)) for kind, n in data[k]) for k in ("alerts", "allowed")}
    return WindowResult(
        int(data["index"]), int(data["start_tick"]), int(data["end_tick"]), bool(data["passed"]), **pairs
    )
