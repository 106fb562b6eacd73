"""The telemetry publisher: attaches to a town, never blocks its tick loop.

Each tick the publisher copies what it needs (a :class:`~townlet_env.telemetry.frames.Frame`)
into a bounded buffer; a background worker thread turns frames into messages and hands
them to the transports. When the buffer is full the oldest frame is dropped and counted;
the next diff is then taken against the last frame the worker built and names that
message as its ``base``, so it spans the dropped ticks and consumers still rebuild the
state exactly (the dropped ticks' events are lost, and counted).

A :class:`FrameSink` (the WebSocket server) takes the frames themselves instead of
messages: it builds them in another process. A publisher with only frame sinks builds
nothing here, so the worker's share of the interpreter lock is one pipe write a tick.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from townlet_env.telemetry import SCHEMA_VERSION
from townlet_env.telemetry.builder import MessageBuilder
from townlet_env.telemetry.frames import ArrayCapture, Frame, Names, narration_lines, stability_section
from townlet_env.telemetry.sinks import TRANSPORT_ERRORS, FrameSink, Transport

__all__ = ["TRANSPORT_ERRORS", "FrameSink", "TelemetryPublisher", "Transport"]
#: Seconds the worker waits, once it has sent everything, before it looks again.
LINGER = 0.002


class TelemetryPublisher:
    """Publishes a town's telemetry stream to transports from a background thread.

    Attaches itself to ``env.unwrapped`` as ``"telemetry"``. Attach it before ``reset`` so
    the stream starts with the episode's snapshot.

    Args:
        env: the town (wrapped or not).
        transports: where messages go (see :mod:`townlet_env.telemetry.transports`), and
            frame sinks (:class:`townlet_env.telemetry.server.TelemetryServer`).
        buffer_size: frames the buffer holds before it drops the oldest.
        kpi_every: ticks between KPI reports (the KPI tracker itself sees every built frame).
        health_every: ticks between ``health`` messages (0: none).
        restart_limit: times a dead worker thread is restarted.
        backlog_stride: while the buffer is full, only every this many ticks is captured
            (the rest are counted as dropped at once), so a stuck consumer costs the tick
            loop almost nothing; 1 captures every tick.

    """

    def __init__(
        self,
        env: Any,
        transports: Sequence[Transport | FrameSink],
        *,
        buffer_size: int = 256,
        kpi_every: int = 60,
        health_every: int = 600,
        restart_limit: int = 3,
        backlog_stride: int = 8,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"TelemetryPublisher: buffer_size={buffer_size}; pass at least 1")
        self.env = env.unwrapped
        self.transports = [cast(Transport, t) for t in transports if not hasattr(t, "offer")]
        self.sinks = [cast(FrameSink, t) for t in transports if hasattr(t, "offer")]
        # Messages are built here only for message transports (or with nothing attached,
        # so current_state() still works); frame sinks build their own, in their process.
        self._build_here = bool(self.transports) or not self.sinks
        self.buffer: deque[Frame] = deque(maxlen=buffer_size)
        self.kpi_every, self.health_every, self.restart_limit = kpi_every, health_every, restart_limit
        self.backlog_stride = max(1, backlog_stride)
        names = Names.of(self.env)
        self._builder = MessageBuilder(names, kpi_every=kpi_every)
        for sink in self.sinks:
            sink.bind(names, kpi_every)
        n = len(self.env.possible_agents)
        self._returns = np.zeros(n, dtype=np.float64)
        self._seq = 0
        self._capture = ArrayCapture()
        self._want_snapshot = False
        self._cv = threading.Condition()
        self._busy = False
        self._idle = False
        self._closing = False
        self.dropped = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.send_failures = 0
        self.restarts = 0
        self.error: str | None = None
        self.max_buffered = 0
        self._thread = self._start_worker()
        self.env.attachments.attach("telemetry", self)

    # --- tick thread -----------------------------------------------------------------------
    def after_reset(self, env: Any) -> None:
        self._returns[:] = 0.0
        frame = self._frame(env, snapshot=True)
        if self._build_here:
            self._push(frame)
        for sink in self.sinks:
            sink.offer(frame)  # never dropped: a new episode starts here

    def after_step(self, env: Any) -> None:
        world = env.world
        self._returns += env.last_rewards
        # A dead worker (a bug, not a transport error) is restarted; checked every 64 ticks.
        if (
            world.tick % 64 == 0
            and not self._thread.is_alive()
            and not self._closing
            and self.restarts < self.restart_limit
        ):
            self.restarts += 1
            self._thread = self._start_worker()
        # Backlogged (a consumer is stuck): the frame would only push out another one, so
        # most ticks skip the copy; their seq is skipped too (diffs then span it). Frame
        # sinks say themselves whether they can take one (they count what they miss).
        full = len(self.buffer) == self.buffer.maxlen
        buffered = self._build_here and not (full and world.tick % self.backlog_stride)
        self.dropped += self._build_here and not buffered
        ready = self.sinks if self._want_snapshot else [sink for sink in self.sinks if sink.ready()]
        if not buffered and not ready:
            self._seq += 1
            return
        frame = self._frame(env, snapshot=self._want_snapshot, narration=narration_lines(env))
        self._want_snapshot = False
        if buffered:
            self._push(frame)
        for sink in ready:
            sink.offer(frame)
        if self.health_every and world.tick % self.health_every == 0:
            health = Frame(self._next_seq(), world.tick, kind="health")
            if buffered:
                self._push(health)
            report = self.health() if ready else {}
            for sink in ready:
                sink.offer_health(health.seq, health.tick, report)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _frame(self, env: Any, snapshot: bool, narration: tuple[dict[str, Any], ...] = ()) -> Frame:
        # A reset frame has no narration: nothing has happened yet in the new episode.
        return Frame(
            self._next_seq(),
            env.world.tick,
            snapshot=snapshot,
            arrays=self._capture(env.world, env.last_rewards, self._returns),
            events=env.last_events,
            stability=stability_section(env.attachments.get("stability")),
            narration=narration,
        )

    def _push(self, frame: Frame) -> None:
        buffer = self.buffer
        size = len(buffer)
        if size == buffer.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest frame on append
        elif size >= self.max_buffered:
            self.max_buffered = size + 1
        buffer.append(frame)  # atomic; the lock is only taken to wake an idle worker
        if self._idle:
            with self._cv:
                self._cv.notify()

    # --- worker thread ---------------------------------------------------------------------
    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name="townlet-telemetry", daemon=True)
        thread.start()
        return thread

    def _work(self) -> None:
        try:
            self._drain()
        except BaseException as exc:  # recorded for health(); after_step restarts the worker
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def _drain(self) -> None:
        while True:
            with self._cv:
                self._idle = True  # set before looking at the buffer: _push reads it after appending
                while not self.buffer and not self._closing:
                    self._busy = False
                    self._cv.notify_all()
                    self._cv.wait(0.5)
                self._idle = False
                if not self.buffer:
                    self._busy = False
                    self._cv.notify_all()
                    return
                frame = self.buffer.popleft()
                self._busy = True
            self._publish(frame)
            if not self.buffer:
                for transport in self.transports:
                    self._call(transport.flush)
                if not self._closing:
                    # Let a few ticks' frames gather, so that neither thread wakes the other
                    # every tick (each hand-over of the interpreter lock costs the tick loop).
                    time.sleep(LINGER)

    def _publish(self, frame: Frame) -> None:
        health = self.health() if frame.kind == "health" else None
        if health is not None:
            message: dict[str, Any] = {
                "schema_version": SCHEMA_VERSION,
                "seq": frame.seq,
                "tick": frame.tick,
                "kind": "health",
                "health": health,
            }
            self._builder.skip(frame.seq)
        else:
            message = self._builder.build(frame)
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
        for transport in self.transports:
            if self._call(transport.send, message, text):
                self.messages_sent += 1
                self.bytes_sent += len(text) + 1

    def _call(self, method: Any, *args: Any) -> bool:
        try:
            method(*args)
        except TRANSPORT_ERRORS as exc:
            self.send_failures += 1
            self.error = f"{type(method.__self__).__name__}: {type(exc).__name__}: {exc}"
            return False
        return True

    # --- public ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The stream's health: buffer, drops, throughput and the worker's state; with a
        WebSocket server also ``fanout`` (per server URL: its process alive, subscribers, drops).
        """
        health: dict[str, Any] = {
            "queue_length": len(self.buffer),
            "buffer_size": self.buffer.maxlen,
            "dropped": self.dropped,
            "messages_sent": self.messages_sent,
            "bytes_sent": self.bytes_sent,
            "send_failures": self.send_failures,
            "worker": {"alive": self._thread.is_alive(), "error": self.error, "restarts": self.restarts},
        }
        if self.sinks:
            health["fanout"] = {sink.url: sink.fanout_health() for sink in self.sinks}
        return health

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every buffered frame is sent (and every frame sink has written what it
        queued); ``False`` if ``timeout`` s passed first.
        """
        deadline = time.monotonic() + timeout
        with self._cv:
            while (self.buffer or self._busy) and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))
        sinks_done = [sink.flush(max(0.0, deadline - time.monotonic())) for sink in self.sinks]
        return not self.buffer and all(sinks_done)

    def current_state(self) -> dict[str, Any]:
        """The state the stream describes now, built from the last frame's arrays (after a
        :meth:`flush`; for tests and consumers in the same process).
        """
        self.flush()
        if not self._build_here:
            return self.sinks[0].request_state()[0]
        with self._cv:
            return copy.deepcopy(self._builder.full_state())

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (up to ``timeout`` s), stop the worker, close the transports."""
        self.flush(timeout)
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        for transport in self.transports:
            self._call(transport.close)
        for sink in self.sinks:
            self._call(sink.close)
        self._thread.join(timeout)

    def state_dict(self) -> dict[str, Any]:
        """The next sequence number, the episode returns and the KPI tracker, so a resumed
        stream continues (the buffer is flushed first: the tracker runs on the worker).
        """
        self.flush()
        kpi = self._builder.kpi_state() if self._build_here else self.sinks[0].request_state()[1]
        return {"schema_version": SCHEMA_VERSION, "seq": self._seq, "returns": self._returns.copy(), "kpi": kpi}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue a saved stream: its sequence numbers, starting with a full snapshot."""
        self._seq = int(state["seq"])
        returns = np.asarray(state["returns"], dtype=np.float64)
        if returns.shape != self._returns.shape:
            raise ValueError(
                f"telemetry state: returns has shape {returns.shape}, the town has {self._returns.shape[0]} seats"
            )
        self._returns[:] = returns
        if "kpi" in state:  # streams saved before the tracker travelled start it afresh
            self._builder.load_kpi_state(state["kpi"])
            for sink in self.sinks:
                sink.load_kpi(state["kpi"])
        self._want_snapshot = True
