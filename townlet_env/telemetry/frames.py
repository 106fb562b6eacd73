"""What the tick loop hands the telemetry worker: cheap copies of one tick's state.

Capturing a :class:`Frame` costs one copy of a few small arrays into a byte string
(:class:`ArrayCapture`), so it runs on the tick thread;
turning frames into JSON messages (the diffing, the serialising) runs on the publisher's
worker thread. A frame holds the full state of its tick, so whenever frames were dropped
the worker can still rebuild a complete snapshot from the next one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
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
        narration: the tick's narration lines as JSON objects (none without a narrator).

    """

    seq: int
    tick: int
    kind: str = "state"
    snapshot: bool = False
    arrays: Mapping[str, np.ndarray] = _NO_ARRAYS
    events: Sequence[Event] = ()
    stability: Mapping[str, Any] = _NO_ARRAYS
    narration: Sequence[Mapping[str, Any]] = ()


#: Every array a frame holds: the world's, then this tick's rewards and the episode returns.
FRAME_ARRAYS = (*WORLD_ARRAYS, "reward", "return")


@dataclass(frozen=True)
class ArrayLayout:
    """Where each array lies in a frame's bytes: ``(name, dtype, shape)`` back to back."""

    fields: tuple[tuple[str, str, tuple[int, ...]], ...]
    nbytes: int

    @classmethod
    def of(cls, arrays: Sequence[tuple[str, np.ndarray]]) -> ArrayLayout:
        return cls(tuple((name, a.dtype.str, a.shape) for name, a in arrays), sum(a.nbytes for _, a in arrays))

    @cached_property
    def plan(self) -> tuple[tuple[str, np.dtype, int, int, tuple[int, ...]], ...]:
        """``(name, dtype, count, offset, shape)`` of each array, worked out once."""
        out, offset = [], 0
        for name, dtype, shape in self.fields:
            dt, size = np.dtype(dtype), math.prod(shape)
            out.append((name, dt, size, offset, shape))
            offset += size * dt.itemsize
        return tuple(out)

    def views(self, raw: bytes) -> dict[str, np.ndarray]:
        """Read-only arrays over ``raw`` (no copies)."""
        return {
            name: np.frombuffer(raw, dtype=dt, count=size, offset=offset).reshape(shape)
            for name, dt, size, offset, shape in self.plan
        }


class PackedArrays(Mapping[str, np.ndarray]):
    """A frame's arrays as one byte string: one copy on the tick thread, and the very bytes
    the WebSocket server's process is sent. Each array is a read-only view, made on first read.
    """

    __slots__ = ("_views", "layout", "raw")

    def __init__(self, raw: bytes, layout: ArrayLayout) -> None:
        self.raw, self.layout = raw, layout
        self._views: dict[str, np.ndarray] | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        if self._views is None:
            self._views = self.layout.views(self.raw)
        return self._views[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _, _ in self.layout.fields)

    def __len__(self) -> int:
        return len(self.layout.fields)


class ArrayCapture:
    """Copies the arrays telemetry reads into one byte string per tick (tick thread).

    The layout is worked out once: a town's arrays keep their shapes and dtypes, and a
    change in their total size makes it worked out again.
    """

    def __init__(self) -> None:
        self.layout: ArrayLayout | None = None

    def __call__(self, world: WorldState, rewards: np.ndarray, returns: np.ndarray) -> PackedArrays:
        sources = [getattr(world, name) for name in WORLD_ARRAYS]
        sources += (rewards, returns)
        raw = b"".join([a.tobytes() for a in sources])
        layout = self.layout
        if layout is None or layout.nbytes != len(raw):
            layout = self.layout = ArrayLayout.of(list(zip(FRAME_ARRAYS, sources, strict=True)))
        return PackedArrays(raw, layout)


def stability_section(monitor: Any) -> Mapping[str, Any]:
    """The stability monitor's alerts and metrics as it reports them (the worker thread
    converts them to JSON values), or empty ones without a monitor.

    ``metrics()`` returns a fresh dict every call, so handing it to the worker is safe.
    """
    if monitor is None:
        return NO_STABILITY
    metrics = monitor.metrics() if hasattr(monitor, "metrics") else {}
    return {"alerts": tuple(getattr(monitor, "alerts", ())), "metrics": metrics}


def narration_lines(env: Any) -> tuple[dict[str, Any], ...]:
    """The tick's narration lines as JSON objects, or none without a narrator.

    ``update`` narrates the tick if the narrator's own hook has not run yet (it may be
    attached after the publisher), so the frame always carries this tick's lines.
    """
    narrator = env.attachments.get("narration")
    if narrator is None:
        return ()
    return tuple(line.to_json() for line in narrator.update(env))
