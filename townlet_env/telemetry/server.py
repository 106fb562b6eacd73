"""A WebSocket server on the loopback interface: the telemetry stream and a console route.

Routes:

* ``/telemetry``: the stream. A new subscriber gets a full snapshot first, then every
  message after it. When a slow subscriber falls more than about ``client_queue``
  messages behind, messages to it are dropped (counted) until it catches up, and then it
  gets a fresh snapshot, so it stays consistent (its ``seq`` jumps, then a snapshot follows).
* ``/console``: each text message is handed to ``console_handler(text) -> reply`` in this
  process (on a small thread pool) and the reply is sent back. Without a handler the
  route is closed.

The serving runs in a child process (:mod:`townlet_env.telemetry.fanout`), so that
building messages and writing them to many subscribers never competes with the tick loop
for the interpreter lock. The publisher's tick thread hands this server raw frames
(``offer``), which go down a pipe in one non-blocking write every few milliseconds; the
child builds, encodes and fans them out. It binds
loopback addresses only, and exits when :meth:`TelemetryServer.close` tells it to or when
this process goes away (its pipe closes). Needs the ``[ops]`` extra (``websockets``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from itertools import count
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from townlet_env.telemetry.fanout import CONSOLE_PATH, STREAM_PATH, FanoutConfig
from townlet_env.telemetry.frames import Frame, Names
from townlet_env.telemetry.wire import BIND, HEALTH, KPI, STATE, STOP, FramePacker, PipeWriter, record

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
__all__ = ["CONSOLE_PATH", "LOOPBACK", "STREAM_PATH", "TelemetryServer"]
_CONSOLE_FAILED = json.dumps({"ok": False, "error": {"code": "internal", "message": "the console handler failed"}})


class TelemetryServer:
    """Serves telemetry (and optionally a console) over WebSockets on localhost.

    Pass it to :class:`~townlet_env.telemetry.publisher.TelemetryPublisher` like a
    transport; it takes frames, not messages.

    Args:
        host: a loopback address (``127.0.0.1``, ``::1`` or ``localhost``).
        port: the TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        console_handler: answers each ``/console`` text message; ``None`` disables the route
            (set it before :meth:`start`).
        client_queue: about how many messages a subscriber may fall behind before messages
            to it are dropped and it is resynced with a snapshot (measured in bytes: this
            many times the mean message size).
        send_buffer: the kernel send buffer of each subscriber's socket, in bytes; small, so
            that a subscriber that stops reading is noticed (and resynced) within a few
            dozen messages rather than after megabytes.
        nice: added to the serving process's niceness, so that when CPUs are short it
            yields to the town (frames it cannot take in time are dropped and counted)
            rather than slowing the tick loop; 0 keeps this process's priority.

    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        console_handler: Callable[[str], str] | None = None,
        client_queue: int = 256,
        send_buffer: int = 1 << 16,
        nice: int = 10,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"TelemetryServer: host {host!r} is not loopback; use 127.0.0.1 (telemetry is local only)")
        self.host, self.port = host, port
        self.console_handler = console_handler
        self.client_queue, self.send_buffer, self.nice = client_queue, send_buffer, nice
        self.process: subprocess.Popen[bytes] | None = None  # the serving process once started
        self._writer: PipeWriter | None = None  # the frame pipe's write end
        self._ctrl: Any = None  # this end of the control pipe
        self._send_lock = threading.Lock()  # frames and requests come from several threads
        self._ctrl_lock = threading.Lock()
        self._pending: list[bytes] = []  # bind/KPI records given before start()
        self.frames_sent = self.frames_dropped = 0
        self._packer = FramePacker()
        self._stats: dict[str, Any] = {}
        self._replies: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._cv = threading.Condition()
        self._ids = count()
        self._reader: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> TelemetryServer:
        """Start the serving process; returns once its port is bound."""
        self.process, writer = self._spawn()
        if not self._ctrl.poll(timeout):
            writer.close()
            self.close()
            raise RuntimeError(f"TelemetryServer: not listening on {self.host}:{self.port} after {timeout} s")
        try:
            status, detail = self._ctrl.recv()
        except EOFError:
            status, detail = "error", f"the serving process exited (code {self.process.poll()})"
        if status != "ready":
            writer.close()
            self.close()
            raise RuntimeError(f"TelemetryServer: cannot listen on {self.host}:{self.port}: {detail}")
        self.port = int(detail)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="townlet-console")
        self._reader = threading.Thread(target=self._read, name="townlet-ws-ctrl", daemon=True)
        self._reader.start()
        with self._send_lock:  # the held records (bind, KPI state) go before any frame
            for data in self._pending:
                writer.add(data)
            self._pending.clear()
            writer.drain(timeout)
            self._writer = writer
        return self

    def _spawn(self) -> tuple[subprocess.Popen[bytes], PipeWriter]:
        """A fresh interpreter running :mod:`.fanout`, holding the child ends of two pipes.

        A plain subprocess rather than ``multiprocessing``: its ``spawn`` re-imports the
        caller's main module, which breaks scripts without a ``__main__`` guard, and
        ``fork`` would copy a threaded process.
        """
        frames_in, frames_out = os.pipe()
        ctrl_here, ctrl_there = socket.socketpair()
        writer = PipeWriter(frames_out)
        self._ctrl = Connection(ctrl_here.detach())
        config = FanoutConfig(
            self.host, self.port, self.client_queue, self.send_buffer, self.console_handler is not None, self.nice
        )
        command = [sys.executable, "-m", "townlet_env.telemetry.fanout", json.dumps(asdict(config))]
        command += [str(frames_in), str(ctrl_there.fileno())]
        env = dict(os.environ)  # the child imports this very townlet_env, wherever it came from
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
        try:
            return subprocess.Popen(command, pass_fds=(frames_in, ctrl_there.fileno()), env=env), writer
        finally:  # only the child holds these ends now: it sees EOF when this process dies
            os.close(frames_in)
            ctrl_there.close()

    @property
    def url(self) -> str:
        """The stream's URL, e.g. ``ws://127.0.0.1:8765/telemetry``."""
        return f"ws://{self.host}:{self.port}{STREAM_PATH}"

    def close(self, timeout: float = 15.0) -> None:
        """Stop serving, close every connection and wait for the serving process to exit."""
        proc = self.process
        if proc is None:
            return
        writer = self._writer
        if proc.poll() is None and writer is not None:
            with self._send_lock:  # bounded: a stuck child must not hang the caller
                writer.add(STOP)
                writer.drain(timeout)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
        if self._reader is not None:
            self._reader.join(5.0)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if writer is not None:
            writer.close()
            self._writer = None
        if self._ctrl is not None and not self._ctrl.closed:
            self._ctrl.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every frame queued so far to the serving process, waiting up to ``timeout``
        s for room in the pipe; ``False`` if some are left (or the process is gone).
        """
        with self._send_lock:
            return self._writer is None or self._writer.drain(timeout)

    # --- the publisher's side ------------------------------------------------------------------
    def bind(self, names: Names, kpi_every: int) -> None:
        """A publisher attached to a town: the serving process starts a fresh message builder."""
        self._packer = FramePacker()
        self._write(record(BIND, (names, kpi_every)), hold=True)

    def ready(self) -> bool:
        """Whether to capture a frame for this server this tick (tick thread): not while its
        pipe is congested (the serving process is behind) or broken; such a tick is counted
        in ``frames_dropped`` and the next diff spans it.
        """
        writer = self._writer
        if writer is None or writer.error is not None or writer.congested:
            self.frames_dropped += 1
            return False
        return True

    def offer(self, frame: Frame) -> None:
        """Queue one tick's frame for the serving process (tick thread; never blocks)."""
        writer = self._writer
        if writer is None:
            self.frames_dropped += 1
            return
        with self._send_lock:
            for data in self._packer.pack(frame):
                writer.add(data)
            self.frames_sent += 1
            writer.push()

    def offer_health(self, seq: int, tick: int, health: Mapping[str, Any]) -> None:
        """Publish a ``health`` message with sequence number ``seq`` (tick thread)."""
        if self._writer is not None:
            with self._send_lock:
                self._writer.add(record(HEALTH, (seq, tick, dict(health))))

    def load_kpi(self, state: Mapping[str, Any]) -> None:
        """Continue the serving process's KPI tracker from a saved state (a resumed stream)."""
        self._write(record(KPI, dict(state)), hold=True)

    def request_state(self, timeout: float = 30.0) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state the stream describes after every frame sent so far, and the KPI
        tracker's state, from the serving process.
        """
        rid = next(self._ids)
        try:
            self._write(record(STATE, rid))
        except OSError as exc:  # its pipe is broken: the process is gone
            raise RuntimeError(f"TelemetryServer: no state from the serving process ({self.fanout_health()})") from exc
        with self._cv:
            ok = self._cv.wait_for(lambda: rid in self._replies or not self.fanout_health()["alive"], timeout)
            if not ok or rid not in self._replies:
                raise RuntimeError(f"TelemetryServer: no state from the serving process ({self.fanout_health()})")
            return self._replies.pop(rid)

    def fanout_health(self) -> dict[str, Any]:
        """Whether the serving process lives, and its last reported counters: subscribers,
        messages built, messages dropped for slow subscribers, snapshots sent (resyncs).
        """
        proc = self.process
        code = None if proc is None else proc.poll()
        error = None if self._writer is None or self._writer.error is None else repr(self._writer.error)
        return {
            "alive": proc is not None and code is None,
            "exitcode": code,
            "frames_sent": self.frames_sent,
            "frames_dropped": self.frames_dropped,
            "pipe_error": error,
            **self._stats,
        }

    @property
    def resyncs(self) -> int:
        """Snapshots sent to subscribers so far (first ones included), as last reported."""
        return int(self._stats.get("resyncs", 0))

    @property
    def subscribers(self) -> int:
        """Connected stream subscribers, as last reported (every 0.25 s and on connect)."""
        return int(self._stats.get("subscribers", 0))

    def _write(self, data: bytes, hold: bool = False, timeout: float = 30.0) -> None:
        """Send a control record after everything queued, waiting for the pipe."""
        with self._send_lock:
            writer = self._writer
            if writer is None and hold:
                self._pending.append(data)
                return
            if writer is None:
                raise RuntimeError("TelemetryServer: not started")
            writer.add(data)
            if not writer.drain(timeout):
                raise OSError(f"the frame pipe did not take the record in {timeout} s ({writer.error!r})")

    # --- the control pipe (reader thread) -----------------------------------------------------
    def _read(self) -> None:
        while True:
            try:
                item = self._ctrl.recv()
            except (EOFError, OSError):  # the serving process exited
                break
            if item[0] == "stats":
                self._stats = item[1]
            elif item[0] == "console" and self._pool is not None:
                self._pool.submit(self._answer, item[1], item[2])
            elif item[0] == "state":
                with self._cv:
                    self._replies[item[1]] = (item[2], item[3])
                    self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()  # wake request_state: no reply will come

    def _answer(self, cid: int, text: str) -> None:
        handler = self.console_handler
        reply = _CONSOLE_FAILED
        try:
            if handler is not None:
                reply = handler(text)
        finally:  # the connection waits for a reply even when the handler raised
            with self._ctrl_lock:
                if not self._ctrl.closed:
                    self._ctrl.send(("reply", cid, reply))
