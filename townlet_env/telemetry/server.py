"""A WebSocket server on the loopback interface: the telemetry stream and a console route.

Routes:

* ``/telemetry``: the stream. A new subscriber gets the latest full snapshot first, then
  every message after it. Each subscriber has a bounded queue; when a slow subscriber's
  queue overflows its backlog is dropped and it gets a fresh snapshot, so it stays
  consistent (its ``seq`` jumps, then a snapshot follows).
* ``/console``: each text message is handed to ``console_handler(text) -> reply`` (run off
  the event loop) and the reply is sent back. Without a handler the route is closed.

The server is a publisher transport (``send`` is called from the publisher's worker
thread) and runs its own thread with an asyncio loop. It binds loopback addresses only.
Needs the ``[ops]`` extra (``websockets``), imported when the server starts.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from townlet_env.telemetry import SCHEMA_VERSION
from townlet_env.telemetry.client import deep_merge, remove_paths

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
STREAM_PATH = "/telemetry"
CONSOLE_PATH = "/console"


class _Subscriber:
    """One stream client: its pending texts, and whether it needs a snapshot first."""

    def __init__(self, limit: int) -> None:
        self.queue: deque[str] = deque(maxlen=limit)
        self.wake = asyncio.Event()
        self.resync = True
        self.dropped = 0


class TelemetryServer:
    """Serves telemetry (and optionally a console) over WebSockets on localhost.

    Args:
        host: a loopback address (``127.0.0.1``, ``::1`` or ``localhost``).
        port: the TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        console_handler: answers each ``/console`` text message; ``None`` disables the route.
        client_queue: messages queued per subscriber before its backlog is dropped.
        send_buffer: the kernel send buffer of each subscriber's socket, in bytes; small, so
            that a subscriber that stops reading is noticed (and resynced) within a few
            dozen messages rather than after megabytes.

    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        console_handler: Callable[[str], str] | None = None,
        client_queue: int = 256,
        send_buffer: int = 1 << 16,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"TelemetryServer: host {host!r} is not loopback; use 127.0.0.1 (telemetry is local only)")
        self.host, self.port = host, port
        self.console_handler = console_handler
        self.client_queue, self.send_buffer = client_queue, send_buffer
        self._subscribers: set[_Subscriber] = set()
        self._state: dict[str, Any] | None = None
        self._head: dict[str, Any] = {}
        self._snapshot_cache: tuple[int, str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._handlers: set[asyncio.Task[Any]] = set()
        self.resyncs = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> TelemetryServer:
        """Start serving in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name="townlet-ws", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"TelemetryServer: not listening on {self.host}:{self.port} after {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"TelemetryServer: cannot listen on {self.host}:{self.port}: {self._error}")
        return self

    @property
    def url(self) -> str:
        """The stream's URL, e.g. ``ws://127.0.0.1:8765/telemetry``."""
        return f"ws://{self.host}:{self.port}{STREAM_PATH}"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        try:
            # No permessage-deflate: it would compress every message once per subscriber.
            server = await serve(self._route, self.host, self.port, max_size=2**20, compression=None)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        async with server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop
            self._closing = True
            for sub in self._subscribers:
                sub.wake.set()  # handlers send what is queued, then return
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=5.0)

    def close(self) -> None:
        """Stop serving and close every connection."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._finish, stop)
        if self._thread is not None:
            self._thread.join(10.0)

    @staticmethod
    def _finish(stop: asyncio.Future[None]) -> None:
        if not stop.done():
            stop.set_result(None)

    def flush(self) -> None:
        """Nothing to flush: subscribers are served by the event loop."""

    # --- transport side (publisher worker thread) -------------------------------------------
    def send(self, message: Mapping[str, Any], text: str) -> None:
        """Hand one message to the event loop, which updates the state and queues it."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, message, text)

    def _dispatch(self, message: Mapping[str, Any], text: str) -> None:
        kind = message.get("kind")
        if kind == "snapshot":
            self._state = {k: v for k, v in json.loads(text).items() if k not in self._head_keys()}
        elif kind == "diff" and self._state is not None:
            deep_merge(self._state, message.get("changes", {}))
            remove_paths(self._state, message.get("removed", []))
        self._head = {"seq": message["seq"], "tick": message["tick"]}
        for sub in self._subscribers:
            if sub.resync:
                sub.wake.set()
                continue
            if len(sub.queue) == sub.queue.maxlen:
                sub.dropped += 1
                sub.resync = True  # its backlog is useless now: it gets a snapshot instead
                sub.queue.clear()
            else:
                sub.queue.append(text)
            sub.wake.set()

    @staticmethod
    def _head_keys() -> tuple[str, ...]:
        return ("schema_version", "seq", "tick", "kind")

    def _snapshot_text(self) -> str:
        seq = int(self._head["seq"])
        if self._snapshot_cache is None or self._snapshot_cache[0] != seq:
            head = {"schema_version": SCHEMA_VERSION, **self._head, "kind": "snapshot"}
            self._snapshot_cache = (seq, json.dumps({**head, **(self._state or {})}, separators=(",", ":")))
        return self._snapshot_cache[1]

    # --- connections (event loop) --------------------------------------------------------------
    async def _route(self, ws: Any) -> None:
        path = ws.request.path.split("?", 1)[0]
        if path == STREAM_PATH:
            await self._stream(ws)
        elif path == CONSOLE_PATH and self.console_handler is not None:
            await self._console(ws)
        elif path == CONSOLE_PATH:
            await ws.close(1008, "no console on this server")
        else:
            await ws.close(1008, f"unknown path {path!r}; use {STREAM_PATH} or {CONSOLE_PATH}")

    async def _stream(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        sub = _Subscriber(self.client_queue)
        self._subscribers.add(sub)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        if self._state is not None:
            sub.wake.set()  # the snapshot is ready now; do not wait for the next tick
        try:
            while not self._closing:
                await sub.wake.wait()
                sub.wake.clear()
                while True:
                    if sub.resync:
                        if self._state is None:
                            break  # no snapshot published yet: wait for it
                        sub.resync = False
                        sub.queue.clear()
                        self.resyncs += 1
                        await ws.send(self._snapshot_text())
                    elif sub.queue:
                        await ws.send(sub.queue.popleft())
                    else:
                        break
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.discard(sub)
            self._handlers.discard(task)

    async def _console(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        handler = self.console_handler
        assert handler is not None
        try:
            async for text in ws:
                if not isinstance(text, str):
                    await ws.send(json.dumps({"ok": False, "error": {"code": "bad_frame", "message": "send text"}}))
                    continue
                await ws.send(await asyncio.to_thread(handler, text))
        except ConnectionClosed:
            pass
