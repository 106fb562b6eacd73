"""Progress for long stages: a bar with rate and ETA on a terminal, a plain line every few seconds otherwise.

Every stage reports through :class:`Progress` (capture ticks, BC batches, evaluation ticks)
or, for PPO, :func:`ppo_callbacks`. Attached to a terminal, the report is a ``tqdm`` bar
(PPO reuses SB3's :class:`~stable_baselines3.common.callbacks.ProgressBarCallback`); in a
log (CI, ``> file``) it is one line every ``PLAIN_EVERY_S`` seconds and one when done::

    [capture] 1,440/2,880 ticks (50.0%), 612.3 ticks/s, ETA 0:00:02
    [capture] 2,880 ticks in 4.7s (612.8 ticks/s)

``TOWNLET_PROGRESS`` overrides the choice: ``bar``, ``plain`` or ``off`` (``auto``, the
default, picks by whether stderr is a terminal). Reports go to stderr, so stdout keeps
only the results.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TextIO

MODE_ENV = "TOWNLET_PROGRESS"
MODES = ("auto", "bar", "plain", "off")
PLAIN_EVERY_S = 5.0


def progress_mode(stream: TextIO | None = None) -> str:
    """``bar``, ``plain`` or ``off``: ``TOWNLET_PROGRESS``, else by whether ``stream`` is a terminal.

    Raises:
        ValueError: ``TOWNLET_PROGRESS`` is not one of :data:`MODES`.

    """
    chosen = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise ValueError(f"{MODE_ENV}={chosen!r}: use one of {', '.join(MODES)}")
    if chosen != "auto":
        return chosen
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "plain"


def _eta(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class Progress:
    """Counts work done towards ``total`` and reports it (see the module doc).

    Args:
        label: the stage, shown as ``[label]``.
        total: units of work expected (``None``: unknown, no percentage or ETA).
        unit: what one unit is, e.g. ``"ticks"``.
        stream: where reports go (default stderr).
        every_s: seconds between plain lines (default :data:`PLAIN_EVERY_S`).
        clock: seconds, monotonic (tests pass a fake).
        mode: ``bar``/``plain``/``off``; default :func:`progress_mode`.

    """

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str,
        *,
        stream: TextIO | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        mode: str | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s, self.clock = (PLAIN_EVERY_S if every_s is None else every_s), clock
        self.mode = mode or progress_mode(self.stream)
        self.done = 0
        self.started = self.last = clock()
        self.bar: Any = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"[{label}]", unit=f" {unit}", file=self.stream, dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rate(self) -> float:
        """Units per second so far."""
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """The plain report of the work so far."""
        rate = self.rate()
        if self.total is None:
            return f"[{self.label}] {self.done:,} {self.unit}, {rate:,.1f} {self.unit}/s"
        share = self.done / self.total if self.total else 1.0
        eta = _eta((self.total - self.done) / rate) if rate > 0 and self.done < self.total else "?"
        done = f"{self.done:,}/{self.total:,} {self.unit} ({share:.1%})"
        return f"[{self.label}] {done}, {rate:,.1f} {self.unit}/s, ETA {eta}"

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units; report when it is time to."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.mode == "plain" and self.clock() - self.last >= self.every_s:
            self.last = self.clock()
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or print the closing plain line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "plain":
            elapsed = self.clock() - self.started
            print(f"[{self.label}] {self.done:,} {self.unit} in {elapsed:.1f}s ({self.rate():,.1f} {self.unit}/s)",
                  file=self.stream, flush=True)  # fmt: skip
        self.mode = "off"


def ppo_callbacks(label: str = "ppo") -> list[Any]:
    """SB3 callbacks reporting PPO timesteps: SB3's own bar, a plain-line callback, or none."""
    mode = progress_mode()
    if mode == "off":
        return []
    from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback

    if mode == "bar":
        return [ProgressBarCallback()]

    class PlainProgress(BaseCallback):
        """Plain lines of PPO timesteps (SB3's bar needs a terminal)."""

        def _on_training_start(self) -> None:
            total = int(self.locals["total_timesteps"]) - int(self.model.num_timesteps)
            self.progress = Progress(label, total, "timesteps", mode="plain")

        def _on_step(self) -> bool:
            self.progress.advance(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.progress.close()

    return [PlainProgress()]
