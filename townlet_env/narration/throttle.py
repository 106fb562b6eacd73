"""The narration throttle: cooldowns, a dedupe window and a rolling-window limit.

Each candidate line is offered once, with its tick, dedupe key, category and priority,
and is either emitted or dropped; a dropped line is counted under its reason and never
comes back (nothing is delayed, so a priority line can never wait behind a cooldown).
The checks, in order (see :class:`~townlet_env.narration.config.ThrottleConfig`):

1. ``dedupe``: the same key was emitted within the last ``dedupe_ticks`` ticks;
2. ``window``: ``window_limit`` lines were emitted within the last ``window_ticks`` ticks;
3. ``global_cooldown`` (non-priority only): any line was emitted within the last
   ``global_cooldown_ticks`` ticks;
4. ``category_cooldown`` (non-priority only): a line of the same category was emitted
   within that category's cooldown.

"Within the last ``n`` ticks" of tick ``t`` means at a tick ``u`` with ``t - u < n``.
Priority lines count towards every limit once emitted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from townlet_env.narration.config import ThrottleConfig

#: Why a line was dropped, in check order.
DROP_REASONS: tuple[str, ...] = ("dedupe", "window", "global_cooldown", "category_cooldown")
#: Remembered keys past which expired ones are forgotten (keeps the memory bounded).
_PRUNE_AT = 256


class Throttle:
    """Decides which offered lines are emitted; its state travels in snapshots.

    Args:
        config: the limits.

    Attributes:
        emitted: lines emitted since the last :meth:`clear_counts`.
        dropped: lines dropped, by reason (:data:`DROP_REASONS`).

    """

    def __init__(self, config: ThrottleConfig) -> None:
        self.config = config
        self._cooldown: dict[str, int] = {str(k): v for k, v in config.category_cooldown_ticks.items()}
        self._last_key: dict[str, int] = {}
        self._window: deque[int] = deque()
        self._last_any: int | None = None
        self._last_category: dict[str, int] = {}
        self._tick = -1
        self.emitted = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def offer(self, tick: int, key: str, category: str, priority: bool = False) -> str | None:
        """Offer one line; ``None`` if it is emitted, else the reason it was dropped.

        Raises:
            ValueError: ``tick`` is earlier than a tick already offered (call :meth:`reset`
                between episodes).

        """
        if tick < self._tick:
            raise ValueError(f"narration throttle: tick {tick} offered after tick {self._tick}; reset() first")
        self._tick = tick
        reason = self._reason(tick, key, category, priority)
        if reason is not None:
            self.dropped[reason] += 1
            return reason
        self._last_key[key] = tick
        self._window.append(tick)
        self._last_any = tick
        self._last_category[category] = tick
        self.emitted += 1
        if len(self._last_key) > _PRUNE_AT:
            self._forget(tick)
        return None

    def _reason(self, tick: int, key: str, category: str, priority: bool) -> str | None:
        cfg = self.config
        last = self._last_key.get(key)
        if last is not None and tick - last < cfg.dedupe_ticks:
            return "dedupe"
        window = self._window
        while window and tick - window[0] >= cfg.window_ticks:
            window.popleft()
        if len(window) >= cfg.window_limit:
            return "window"
        if priority:
            return None
        if self._last_any is not None and tick - self._last_any < cfg.global_cooldown_ticks:
            return "global_cooldown"
        last_cat = self._last_category.get(category)
        if last_cat is not None and tick - last_cat < self._cooldown.get(category, 0):
            return "category_cooldown"
        return None

    def _forget(self, tick: int) -> None:
        """Drop keys older than the dedupe window (they can no longer block anything)."""
        horizon = self.config.dedupe_ticks
        self._last_key = {k: t for k, t in self._last_key.items() if tick - t < horizon}

    def reset(self) -> None:
        """Forget every tick (a new episode starts its clock again); counts are kept."""
        self._last_key.clear()
        self._window.clear()
        self._last_any = None
        self._last_category.clear()
        self._tick = -1

    def state_dict(self) -> dict[str, Any]:
        """The throttle's memory and counts as JSON values."""
        return {
            "last_key": dict(self._last_key),
            "window": list(self._window),
            "last_any": self._last_any,
            "last_category": dict(self._last_category),
            "tick": self._tick,
            "emitted": self.emitted,
            "dropped": dict(self.dropped),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output."""
        self._last_key = {str(k): int(v) for k, v in state["last_key"].items()}
        self._window = deque(int(t) for t in state["window"])
        self._last_any = None if state["last_any"] is None else int(state["last_any"])
        self._last_category = {str(k): int(v) for k, v in state["last_category"].items()}
        self._tick = int(state["tick"])
        self.emitted = int(state["emitted"])
        self.dropped = {r: int(state["dropped"].get(r, 0)) for r in DROP_REASONS}
