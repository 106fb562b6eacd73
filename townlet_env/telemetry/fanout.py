"""The telemetry fan-out process: builds the messages and serves them over WebSockets.

The town's process hands this process raw frames over a pipe (:mod:`.wire`); here they
become messages (the same :class:`~townlet_env.telemetry.builder.MessageBuilder` the
in-process publisher uses), each encoded once and written to every subscriber. Running in
its own process, none of this competes with the tick loop for the interpreter lock.

Each subscriber is written to synchronously (``websockets``' ``broadcast``: no task switch
per message). Its backlog is what its connection has not yet taken; when that passes
about ``client_queue`` messages' worth of bytes, later messages are dropped (counted) until
it has caught up, and then it gets a fresh snapshot, so it stays consistent. A new
subscriber gets a snapshot first. ``/console`` messages are forwarded to the town's
process, which owns the console, over the control pipe.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass
from itertools import count
from multiprocessing.connection import Connection
from typing import Any

from townlet_env.telemetry import SCHEMA_VERSION
from townlet_env.telemetry.builder import MessageBuilder
from townlet_env.telemetry.wire import BIND, FRAME, HEALTH, KPI, LAYOUT, STATE, STOP, FrameUnpacker, RecordReader, parse

STREAM_PATH = "/telemetry"
CONSOLE_PATH = "/console"
#: Seconds between the statistics this process reports to the town's.
STATS_EVERY = 0.25
#: Seconds between looks at subscribers waiting for a resync (when no message comes by).
RESYNC_EVERY = 0.02


@dataclass(frozen=True)
class FanoutConfig:
    """How the fan-out process serves (see :class:`~townlet_env.telemetry.server.TelemetryServer`)."""

    host: str
    port: int
    client_queue: int
    send_buffer: int
    console: bool
    nice: int = 0


class _Subscriber:
    """One stream client: whether it needs a snapshot before its next message."""

    __slots__ = ("resync",)

    def __init__(self) -> None:
        self.resync = True


class Fanout:
    """The fan-out process's state: the builder, the subscribers, the statistics."""

    def __init__(self, config: FanoutConfig, frames: int, ctrl: Connection) -> None:
        self.config, self.frames, self.ctrl = config, RecordReader(frames), ctrl
        self.builder: MessageBuilder | None = None
        self.unpacker = FrameUnpacker()
        self.subs: dict[Any, _Subscriber] = {}
        self.head: tuple[int, int] | None = None  # (seq, tick) of the last message
        self.snapshot_cache: tuple[int, bytes] | None = None
        self.mean_size = 1024.0
        self.messages = self.dropped = self.resyncs = 0
        self.waiters: dict[int, asyncio.Future[str]] = {}
        self.ids = count()
        self.stop: asyncio.Future[None] | None = None

    # --- serving ---------------------------------------------------------------------------
    async def run(self) -> None:
        from websockets.asyncio.server import serve

        loop = asyncio.get_running_loop()
        self.stop = loop.create_future()
        try:
            # No permessage-deflate: it would compress every message once per subscriber.
            server = await serve(self.route, self.config.host, self.config.port, max_size=2**20, compression=None)
        except OSError as exc:
            self.ctrl.send(("error", str(exc)))
            return
        async with server:
            self.ctrl.send(("ready", server.sockets[0].getsockname()[1]))
            loop.add_reader(self.frames.fd, self.on_frames)
            loop.add_reader(self.ctrl.fileno(), self.on_ctrl)
            tasks = [loop.create_task(self.report()), loop.create_task(self.resync_drained())]
            await self.stop
            loop.remove_reader(self.frames.fd)
            loop.remove_reader(self.ctrl.fileno())
            for task in tasks:
                task.cancel()
            if self.head is not None and self.builder is not None:
                for ws, sub in self.subs.items():
                    if sub.resync:  # a lagging subscriber still ends on the final state
                        self.send_snapshot(ws, sub)
        self.send_ctrl(("stats", self.stats()))

    def finish(self) -> None:
        if self.stop is not None and not self.stop.done():
            self.stop.set_result(None)
        for waiter in self.waiters.values():
            waiter.cancel()  # no reply will come: the console connections close

    async def report(self) -> None:
        while True:
            self.send_ctrl(("stats", self.stats()))
            await asyncio.sleep(STATS_EVERY)

    async def resync_drained(self) -> None:
        """Send the fresh snapshot to dropped-from subscribers that have caught up, also
        when the town has stopped publishing.
        """
        while True:
            await asyncio.sleep(RESYNC_EVERY)
            if self.head is None or self.builder is None:
                continue
            limit = self.config.client_queue * self.mean_size
            for ws, sub in list(self.subs.items()):
                if sub.resync and ws.transport.get_write_buffer_size() <= limit / 4:
                    self.send_snapshot(ws, sub)

    def stats(self) -> dict[str, Any]:
        return {
            "subscribers": len(self.subs),
            "messages": self.messages,
            "dropped": self.dropped,
            "resyncs": self.resyncs,
        }

    def send_ctrl(self, item: tuple[Any, ...]) -> None:
        try:
            self.ctrl.send(item)
        except OSError:  # the town's process is gone: stop serving
            self.finish()

    # --- records from the town's process ---------------------------------------------------
    def on_frames(self) -> None:
        try:
            records = self.frames.read()
        except OSError:
            records = None
        if records is None:  # the town's process closed the pipe or died
            self.finish()
            return
        for data in records:
            self.handle(data)

    def handle(self, data: bytes) -> None:
        tag, payload = parse(data)
        if tag == FRAME and self.builder is not None:
            self.publish(self.builder.build(self.unpacker.unpack(payload)))
        elif tag == LAYOUT:
            self.unpacker.set_layout(payload)
        elif tag == HEALTH and self.builder is not None:
            seq, tick, health = payload
            self.builder.skip(seq)
            head = {"schema_version": SCHEMA_VERSION, "seq": seq, "tick": tick, "kind": "health"}
            self.publish({**head, "health": health})
        elif tag == BIND:
            names, kpi_every = payload
            self.builder = MessageBuilder(names, kpi_every=kpi_every)
            self.head = self.snapshot_cache = None  # a new stream (its seq may start again at 0)
        elif tag == KPI and self.builder is not None:
            self.builder.load_kpi_state(payload)
        elif tag == STATE:
            state = self.builder.full_state() if self.builder else {}
            kpi = self.builder.kpi_state() if self.builder else {}
            self.send_ctrl(("state", payload, state, kpi))
        elif tag == STOP:
            self.finish()

    def on_ctrl(self) -> None:
        try:
            item = self.ctrl.recv()
        except (EOFError, OSError):
            self.finish()
            return
        if item[0] == "reply":
            waiter = self.waiters.pop(item[1], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(item[2])

    # --- fan-out ---------------------------------------------------------------------------
    def publish(self, message: dict[str, Any]) -> None:
        """Encode ``message`` once and write it to every subscriber that is keeping up."""
        from websockets.asyncio.server import broadcast

        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        self.head = (int(message["seq"]), int(message["tick"]))
        self.messages += 1
        self.mean_size += (len(data) - self.mean_size) / 64
        limit = self.config.client_queue * self.mean_size
        ready = []
        for ws, sub in self.subs.items():
            backlog = ws.transport.get_write_buffer_size()
            if sub.resync and backlog <= limit / 4:
                self.send_snapshot(ws, sub)  # it already describes this message's state
            elif sub.resync or backlog > limit:
                sub.resync = True  # drop from here; a snapshot follows once it has caught up
                self.dropped += 1
            else:
                ready.append(ws)
        if ready:
            broadcast(ready, data, text=True)

    def send_snapshot(self, ws: Any, sub: _Subscriber) -> None:
        from websockets.asyncio.server import broadcast

        assert self.head is not None and self.builder is not None
        seq, tick = self.head
        if self.snapshot_cache is None or self.snapshot_cache[0] != seq:
            head = {"schema_version": SCHEMA_VERSION, "seq": seq, "tick": tick, "kind": "snapshot"}
            text = json.dumps({**head, **self.builder.full_state()}, separators=(",", ":"), allow_nan=False)
            self.snapshot_cache = (seq, text.encode())
        broadcast([ws], self.snapshot_cache[1], text=True)
        sub.resync = False
        self.resyncs += 1

    # --- connections -----------------------------------------------------------------------
    async def route(self, ws: Any) -> None:
        path = ws.request.path.split("?", 1)[0]
        if path == STREAM_PATH:
            await self.stream(ws)
        elif path == CONSOLE_PATH and self.config.console:
            await self.console(ws)
        elif path == CONSOLE_PATH:
            await ws.close(1008, "no console on this server")
        else:
            await ws.close(1008, f"unknown path {path!r}; use {STREAM_PATH} or {CONSOLE_PATH}")

    async def stream(self, ws: Any) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer)
        sub = _Subscriber()
        if self.head is not None and self.builder is not None:
            self.send_snapshot(ws, sub)  # at once: do not wait for the next tick
        self.subs[ws] = sub
        self.send_ctrl(("stats", self.stats()))
        try:
            await ws.wait_closed()
        finally:
            self.subs.pop(ws, None)

    async def console(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            async for text in ws:
                if not isinstance(text, str):
                    await ws.send(json.dumps({"ok": False, "error": {"code": "bad_frame", "message": "send text"}}))
                    continue
                cid = next(self.ids)
                waiter = self.waiters[cid] = loop.create_future()
                self.send_ctrl(("console", cid, text))
                await ws.send(await waiter)
        except ConnectionClosed:
            pass


def main(argv: list[str]) -> None:
    """The fan-out process's entry point (``python -m townlet_env.telemetry.fanout CONFIG
    FRAMES_FD CTRL_FD``, started by the server): serve until told to stop or until the
    town's process is gone.
    """
    config = FanoutConfig(**json.loads(argv[0]))
    if config.nice:
        os.nice(config.nice)  # below the town: when CPUs are short, telemetry drops, the town runs
    asyncio.run(Fanout(config, int(argv[1]), Connection(int(argv[2]))).run())


if __name__ == "__main__":
    main(sys.argv[1:])
