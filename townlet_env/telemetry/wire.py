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

from townlet_env.jsonable import jsonable
from townlet_env.telemetry.frames import NO_STABILITY, ArrayLayout, Frame, PackedArrays
from townlet_env.world.events import Event, EventKind

#: Record tags (parent -> child).
BIND = b"N"  #: (Names, kpi_every): a new town; the child starts a fresh message builder
LAYOUT = b"L"  #: the ArrayLayout of the frames that follow
FRAME = b"F"  #: (seq, tick, snapshot, events as plain tuples, stability or None, raw arrays)
HEALTH = b"H"  #: (seq, tick, the publisher's health dict)
KPI = b"K"  #: a KPI tracker state to continue from (a resumed stream)
STATE = b"Q"  #: request id: answer with the built state and the KPI tracker's state
STOP = b"X"  #: close every connection and exit
BATCH = b"B"  #: a list of records, in order (one pipe write for several ticks)


def record(tag: bytes, payload: Any) -> bytes:
    """One record: ``tag`` then ``payload`` pickled."""
    return tag + pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def parse(data: bytes) -> tuple[bytes, Any]:
    """``(tag, payload)`` of one record (a bare tag has payload ``None``)."""
    return data[:1], pickle.loads(data[1:]) if len(data) > 1 else None


class FramePacker:
    """Packs frames into records, sending the array layout only when it changes.

    Runs on the publisher's worker thread once a tick, so it avoids what pickles slowly:
    arrays one by one (a captured frame's arrays are already one byte string), and enum
    members (events travel as plain tuples).
    """

    def __init__(self) -> None:
        self.layout: ArrayLayout | None = None

    def pack(self, frame: Frame) -> list[bytes]:
        """The records for ``frame`` (a layout record first when its arrays' layout changed)."""
        arrays = frame.arrays
        if isinstance(arrays, PackedArrays):
            raw, layout = arrays.raw, arrays.layout
        else:  # a frame made by hand (tests)
            items = list(arrays.items())
            raw, layout = b"".join([a.tobytes() for _, a in items]), ArrayLayout.of(items)
        out = []
        if layout is not self.layout and layout != self.layout:
            out.append(record(LAYOUT, layout))
        self.layout = layout
        events = [(e.tick, int(e.kind), e.agent, e.other, e.obj, e.value) for e in frame.events]
        stability = None if frame.stability is NO_STABILITY else jsonable(dict(frame.stability))
        out.append(record(FRAME, (frame.seq, frame.tick, frame.snapshot, events, stability, raw)))
        return out


class FrameUnpacker:
    """Turns frame records back into :class:`Frame` s (in the fan-out process)."""

    def __init__(self) -> None:
        self.layout = ArrayLayout((), 0)

    def set_layout(self, layout: ArrayLayout) -> None:
        self.layout = layout

    def unpack(self, payload: tuple[Any, ...]) -> Frame:
        seq, tick, snapshot, events, stability, raw = payload
        section: Mapping[str, Any] = NO_STABILITY if stability is None else stability
        typed = [Event(t, EventKind(k), *rest) for t, k, *rest in events]
        arrays = PackedArrays(raw, self.layout)
        return Frame(seq, tick, snapshot=snapshot, arrays=arrays, events=typed, stability=section)
