"""What crosses the pipe from the town's process to the telemetry fan-out process.

The pipe carries records, each a 4-byte length then the record: a one-byte tag, then a
pickle. The town's end (:class:`PipeWriter`) never blocks the tick loop: records gather
in memory and go out in one non-blocking write every few milliseconds; while the pipe is
full they wait, and past a limit the caller drops frames instead.
A frame's arrays travel as one byte string (the arrays' raw bytes back to back) whose
layout (names, dtypes, shapes) is sent only when it changes: pickling the arrays one by
one would cost the sending thread several times more than the whole frame copy.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from collections.abc import Mapping
from typing import Any

from townlet_env.jsonable import jsonable
from townlet_env.telemetry.frames import NO_STABILITY, ArrayLayout, Frame, PackedArrays
from townlet_env.world.events import Event, EventKind

#: Record tags (parent -> child).
BIND = b"N"  #: (Names, kpi_every): a new town; the child starts a fresh message builder
LAYOUT = b"L"  #: the ArrayLayout of the frames that follow
FRAME = b"F"  #: (seq, tick, snapshot, events as plain tuples, stability or None, narration, raw arrays)
HEALTH = b"H"  #: (seq, tick, the publisher's health dict)
KPI = b"K"  #: a KPI tracker state to continue from (a resumed stream)
STATE = b"Q"  #: request id: answer with the built state and the KPI tracker's state
STOP = b"X"  #: close every connection and exit
HEADER = struct.Struct("<I")  #: a record's length
#: A writer writes when this many seconds have passed since its last write...
WRITE_EVERY = 0.002
#: ... or this many bytes are waiting.
WRITE_BYTES = 1 << 15


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
        narration = [dict(line) for line in frame.narration]
        out.append(record(FRAME, (frame.seq, frame.tick, frame.snapshot, events, stability, narration, raw)))
        return out


class FrameUnpacker:
    """Turns frame records back into :class:`Frame` s (in the fan-out process)."""

    def __init__(self) -> None:
        self.layout = ArrayLayout((), 0)

    def set_layout(self, layout: ArrayLayout) -> None:
        self.layout = layout

    def unpack(self, payload: tuple[Any, ...]) -> Frame:
        seq, tick, snapshot, events, stability, narration, raw = payload
        section: Mapping[str, Any] = NO_STABILITY if stability is None else stability
        typed = [Event(t, EventKind(k), *rest) for t, k, *rest in events]
        arrays = PackedArrays(raw, self.layout)
        return Frame(
            seq, tick, snapshot=snapshot, arrays=arrays, events=typed, stability=section, narration=tuple(narration)
        )


class PipeWriter:
    """The town's end of the frame pipe: records written without ever blocking, except in
    :meth:`drain`.

    Args:
        fd: the pipe's write end (made non-blocking).
        limit: unwritten bytes past which the writer is :attr:`congested`.

    """

    def __init__(self, fd: int, limit: int = 1 << 18) -> None:
        os.set_blocking(fd, False)
        self.fd, self.limit = fd, limit
        self.out = bytearray()
        self.last = 0.0
        self.error: OSError | None = None  #: set once a write failed (the reader is gone)

    def add(self, data: bytes) -> None:
        """Queue one record (dropped once the pipe has failed)."""
        if self.error is None:
            self.out += HEADER.pack(len(data))
            self.out += data

    def push(self, force: bool = False) -> None:
        """Write what the pipe takes now: when ``force``, or every :data:`WRITE_EVERY` s or
        :data:`WRITE_BYTES` bytes.
        """
        now = time.monotonic()
        if not self.out or (not force and len(self.out) < WRITE_BYTES and now - self.last < WRITE_EVERY):
            return
        self.last = now
        try:
            written = os.write(self.fd, self.out)
        except BlockingIOError:
            return  # the pipe is full: try again later
        except OSError as exc:  # BrokenPipeError: the fan-out process is gone
            self.error = exc
            self.out.clear()
            return
        del self.out[:written]

    @property
    def congested(self) -> bool:
        """More than ``limit`` bytes are still waiting for the pipe (retried at most every
        :data:`WRITE_EVERY` s: a failed write each tick would cost the tick loop a system call).
        """
        if len(self.out) > self.limit:
            self.push()
        return len(self.out) > self.limit

    def drain(self, timeout: float) -> bool:
        """Write everything queued, waiting up to ``timeout`` s for the pipe; ``False`` if
        something is left or the pipe has failed.
        """
        deadline = time.monotonic() + timeout
        while self.out and self.error is None:
            self.push(force=True)
            left = deadline - time.monotonic()
            if self.out and (left <= 0 or not select.select([], [self.fd], [], left)[1]):
                return False
        return self.error is None

    def close(self) -> None:
        os.close(self.fd)


class RecordReader:
    """The fan-out process's end of the frame pipe: whole records out of a byte stream."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.buf = bytearray()

    def read(self) -> list[bytes] | None:
        """The records complete after one read of what is there; ``None`` at end of file."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        buf = self.buf
        buf += chunk
        out, pos = [], 0
        while len(buf) - pos >= HEADER.size:
            end = pos + HEADER.size + HEADER.unpack_from(buf, pos)[0]
            if end > len(buf):
                break
            out.append(bytes(buf[pos + HEADER.size : end]))
            pos = end
        del buf[:pos]
        return out
