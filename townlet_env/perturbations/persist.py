"""Snapshot state of the perturbation scheduler: RNG, timetable, limits, fairness, active ones."""

from __future__ import annotations

from typing import Any

import numpy as np

from townlet_env.perturbations.kinds import Active
from townlet_env.world.events import Event, EventKind


def dump(sched: Any) -> dict[str, Any]:
    """The scheduler's state as JSON values and arrays."""
    return {
        **sched.snapshot(),
        "rng": dict(sched.rng.bit_generator.state),
        "counts": sched.counts.copy(),
        "agent_ready_at": sched.agent_ready_at.copy(),
        "last_start": sched.last_start,
        "starts": [list(s) for s in sched.starts],
        "next_at": dict(sched.next_at),
        "anchor": dict(sched.anchor),
        "slot": dict(sched.slot),
        "next_id": sched.next_id,
        "pending": [list(e) for e in sched.log.events],
    }


def restore(sched: Any, state: dict[str, Any]) -> None:
    """Put :func:`dump`'s state back into ``sched``."""
    sched.rng = np.random.default_rng()
    sched.rng.bit_generator.state = state["rng"]
    sched.active = [Active(**a) for a in state["active"]]
    sched.counts = np.array(state["counts"], np.int64)
    sched.agent_ready_at = np.array(state["agent_ready_at"], np.int64)
    sched.kind_ready_at = {str(k): int(v) for k, v in state["cooldowns"]["kinds"].items()}
    sched.global_ready_at = int(state["cooldowns"]["global"])
    sched.last_start = int(state["last_start"])
    sched.starts = [(int(t), int(k)) for t, k in state["starts"]]
    sched.fired = {str(k): int(v) for k, v in state["fired"].items()}
    sched.stats = {str(k): int(v) for k, v in state["stats"].items()}
    sched.next_at = {str(k): (None if v is None else float(v)) for k, v in state["next_at"].items()}
    sched.anchor = {str(k): float(v) for k, v in state["anchor"].items()}
    sched.slot = {str(k): int(v) for k, v in state["slot"].items()}
    sched.next_id = int(state["next_id"])
    sched.log.events = [Event(int(t), EventKind(int(k)), int(a), int(o), int(m), float(v))
                        for t, k, a, o, m, v in state["pending"]]  # fmt: skip
