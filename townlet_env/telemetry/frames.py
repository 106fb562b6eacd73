"""What the tick loop hands the telemetry worker: cheap copies of one tick's state.

Capturing a :class:`Frame` costs a few small array copies, so it runs on the tick thread;
turning frames into JSON messages (the diffing, the serialising) runs on the publisher's
worker thread. A frame holds the full state of its tick, so whenever frames were dropped
the worker can still rebuild a complete snapshot from the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from townlet_env.world.events import Event
from townlet_env.world.state import WorldState

#: World arrays a frame copies (the rest of WorldState is not telemetry).
WORLD_ARRAYS = (
    "alive",
    "generation",
    "pos",
    "needs",
    "wallet",
    "job",
    "option",
    "running",
    "waiting",
    "joined_tick",
    "wait_age",
    "exit_pending",
    "tie_other",
    "tie_vals",
    "holder",
    "using",
)
_NO_ARRAYS: Mapping[str, Any] = MappingProxyType({})
#: The stability section without a monitor (shared: readers copy what they keep).
NO_STABILITY: Mapping[str, Any] = MappingProxyType({"alerts": (), "metrics": MappingProxyType({})})


@dataclass(frozen=True)
class Names:
    """How indices are spelled in messages: seats, objects, affordances, jobs, options."""

    seats: tuple[str, ...]
    objects: tuple[str, ...]
    affordances: tuple[str, ...]
    jobs: tuple[str, ...]
    options: tuple[str, ...] | None  #: ``None`` in primitive action mode (no options)

    @classmethod
    def of(cls, env: Any) -> Names:
        """The names of a core town (``env.unwrapped``)."""
        from townlet_env.actions import Option

        rules = env.rules
        types = rules.manifest.object_types
        objects = tuple(f"{types[int(t)]}_{m}" for m, t in enumerate(rules.town.obj_type))
        options = tuple(o.name.lower() for o in Option) if rules.option_mode else None
        return cls(tuple(env.possible_agents), objects, tuple(rules.manifest.affordance_ids), rules.job_names, options)


class Frame(NamedTuple):
    """One tick's state (kind ``"state"``), or a request for a health message (``"health"``).

    A named tuple rather than a dataclass: one is built every tick on the tick thread.

    Attributes:
        seq: the message sequence number this frame becomes.
        tick: the world tick.
        kind: ``"state"`` or ``"health"``.
        snapshot: publish a full snapshot rather than a diff (new episode, resumed stream).
        arrays: copies of :data:`WORLD_ARRAYS` plus ``reward`` (this tick) and ``return``
            (the episode so far), per seat.
        events: the tick's events (the env hands out a fresh list every tick).
        stability: ``{"alerts": [...], "metrics": {...}}`` as JSON values.

    """

    seq: int
    tick: int
    kind: str = "state"
    snapshot: bool = False
    arrays: Mapping[str, np.ndarray] = _NO_ARRAYS
    events: Sequence[Event] = ()
    stability: Mapping[str, Any] = _NO_ARRAYS


def copy_arrays(world: WorldState, rewards: np.ndarray, returns: np.ndarray) -> dict[str, np.ndarray]:
    """Copies of the world arrays telemetry reads, plus this tick's rewards and the returns."""
    arrays = {name: getattr(world, name).copy() for name in WORLD_ARRAYS}
    arrays["reward"] = rewards.copy()
    arrays["return"] = returns.copy()
    return arrays


def stability_section(monitor: Any) -> Mapping[str, Any]:
    """The stability monitor's alerts and metrics as it reports them (the worker thread
    converts them to JSON values), or empty ones without a monitor.

    ``metrics()`` returns a fresh dict every call, so handing it to the worker is safe.
    """
    if monitor is None:
        return NO_STABILITY
    metrics = monitor.metrics() if hasattr(monitor, "metrics") else {}
    return {"alerts": tuple(getattr(monitor, "alerts", ())), "metrics": metrics}
