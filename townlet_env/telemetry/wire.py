"""What crosses the pipe from the town's process to the telemetry fan-out process.

Every record is one ``Connection.send_bytes`` payload: a one-byte tag, then a pickle.
A frame's arrays travel as one byte string (the arrays' raw bytes back to back) whose
layout (names, dtypes, shapes) is sent only when it changes: pickling the arrays one by
one would cost the sending thread several times more than the whole frame copy.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from townlet_env.jsonable import jsonable
from townlet_env.telemetry.frames import NO_STABILITY, Frame
from townlet_env.world.events import Event, EventKind

#: Record tags (parent -> child).
BIND = b"N"  #: (Names, kpi_every): a new town; the child starts a fresh message builder
LAYOUT = b"L"  #: ((name, dtype, shape), ...) of the arrays in the frames that follow
FRAME = b"F"  #: (seq, tick, snapshot, events as plain tuples, stability or None, raw arrays)
HEALTH = b"H"  #: (seq, tick, the publisher's health dict)
KPI = b"K"  #: a KPI tracker state to continue from (a resumed stream)
STATE = b"Q"  #: request id: answer with the built state and the KPI tracker's state
STOP = b"X"  #: close every connection and exit
BATCH = b"B"  #: a list of records, in order (one pipe write for several ticks)

Layout = tuple[tuple[str, str, tuple[int, ...]], ...]


def record(tag: bytes, payload: Any) -> bytes:
    """One record: ``tag`` then ``payload`` pickled."""
    return tag + pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def parse(data: bytes) -> tuple[bytes, Any]:
    """``(tag, payload)`` of one record (a bare tag has payload ``None``)."""
    return data[:1], pickle.loads(data[1:]) if len(data) > 1 else None


class FramePacker:
    """Packs frames into records, sending the array layout only when it changes.

    Runs on the publisher's worker thread once a tick, so it avoids what pickles slowly:
    arrays one by one, and enum members (events travel as plain tuples).
    """

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()

    def pack(self, frame: Frame) -> list[bytes]:
        """The records for ``frame`` (a layout record first when the arrays changed shape or type)."""
        arrays = frame.arrays
        out = []
        key = tuple([(a.shape, a.dtype) for a in arrays.values()])
        if key != self.key:
            self.key = key
            out.append(record(LAYOUT, tuple((name, a.dtype.str, a.shape) for name, a in arrays.items())))
        raw = b"".join([a.tobytes() for a in arrays.values()])
        events = [(e.tick, int(e.kind), e.agent, e.other, e.obj, e.value) for e in frame.events]
        stability = None if frame.stability is NO_STABILITY else jsonable(dict(frame.stability))
        out.append(record(FRAME, (frame.seq, frame.tick, frame.snapshot, events, stability, raw)))
        return out


class FrameUnpacker:
    """Turns frame records back into :class:`Frame` s (in the fan-out process)."""

    def __init__(self) -> None:
        self.layout: Layout = ()

    def set_layout(self, layout: Layout) -> None:
        self.layout = layout

    def unpack(self, payload: tuple[Any, ...]) -> Frame:
        seq, tick, snapshot, events, stability, raw = payload
        arrays: dict[str, np.ndarray] = {}
        offset = 0
        for name, dtype, shape in self.layout:
            dt = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            arrays[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset).reshape(shape)
            offset += count * dt.itemsize
        section: Mapping[str, Any] = NO_STABILITY if stability is None else stability
        typed = [Event(t, EventKind(k), *rest) for t, k, *rest in events]
        return Frame(seq, tick, snapshot=snapshot, arrays=arrays, events=typed, stability=section)
