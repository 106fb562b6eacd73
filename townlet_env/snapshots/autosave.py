"""``Autosaver``: an attachment that snapshots the town every N ticks and keeps the newest few."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from townlet_env.snapshots.core import save_snapshot

_NAME = re.compile(r"snapshot-\d{9}\.npz")


class Autosaver:
    """Attachment ``"autosave"`` (attaches itself, like the monitor, publisher and console):
    ``root/snapshot-<tick:09d>.npz`` every ``every_ticks`` ticks.

    The save for tick ``t`` is written at the start of the next step (``before_step``), not
    in ``after_step`` of the tick that reached ``t``: only then has the reward guard counted
    the tick and has every other attachment's ``after_step`` seen it, so the file is the
    state between two ticks. Attach it before components whose ``before_step`` changes the
    world (the console), so a save never holds half of a tick's commands. After each save
    all but the newest ``keep`` snapshot files in ``root`` are deleted.

    Args:
        env: the town as built by :func:`townlet_env.parallel_env` (the reward guard's state
            is saved too, so pass the wrapped env, not ``env.unwrapped``).
        root: the folder (created if missing).
        every_ticks: the cadence, >= 1.
        keep: how many snapshots to retain, >= 1.

    """

    def __init__(self, env: Any, root: str | Path, every_ticks: int, keep: int = 3) -> None:
        if every_ticks < 1 or keep < 1:
            raise ValueError(f"Autosaver: every_ticks={every_ticks} and keep={keep} must both be >= 1")
        self.env = env
        self.root = Path(root)
        self.every_ticks = every_ticks
        self.keep = keep
        self.saved: list[Path] = []
        env.unwrapped.attachments.attach("autosave", self)

    def before_step(self, town: Any, actions: Any) -> None:
        tick = int(town.world.tick)
        if tick > 0 and tick % self.every_ticks == 0:
            self.save_now()

    def save_now(self) -> Path:
        """Save the current tick now (e.g. on shutdown) and apply the retention."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = save_snapshot(self.env, self.root / f"snapshot-{int(self.env.unwrapped.world.tick):09d}.npz")
        self.saved.append(path)
        for old in sorted(p for p in self.root.iterdir() if _NAME.fullmatch(p.name))[: -self.keep]:
            old.unlink()
        return path

    def latest(self) -> Path | None:
        """The newest snapshot file in ``root``, or ``None``."""
        found = sorted(p for p in self.root.glob("snapshot-*.npz") if _NAME.fullmatch(p.name))
        return found[-1] if found else None
