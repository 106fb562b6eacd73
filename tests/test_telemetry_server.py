"""The telemetry WebSocket server on loopback: snapshot first, consistent diffs, resyncs, console route."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from typing import Any

import pytest

import townlet_env
from townlet_env.scripted import ScriptedExpert
from townlet_env.telemetry.client import TelemetryState, stream
from townlet_env.telemetry.publisher import TelemetryPublisher

websockets = pytest.importorskip("websockets")
from websockets.sync.client import connect  # noqa: E402

from townlet_env.telemetry.server import TelemetryServer  # noqa: E402


class Subscriber(threading.Thread):
    """Reads the stream until it has applied ``last_seq``; a slow one stops reading for
    ``pause`` seconds after its first message, with a small receive buffer.
    """

    def __init__(self, url: str, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.url, self.pause = url, pause
        self.state = TelemetryState()
        self.kinds: list[str] = []
        self.last_seq = -1
        self.done = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        if self.pause:
            self._run_raw()
            return
        with connect(self.url, open_timeout=10, max_size=None) as ws:
            self.connected.set()
            deadline = time.monotonic() + 60
            while not self._finished() and time.monotonic() < deadline:
                try:
                    self._take(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue  # caught up; check whether the town has finished
        self.done.set()

    def _finished(self) -> bool:
        return self.last_seq >= 0 and self.state.seq >= self.last_seq

    def _take(self, text: str | bytes) -> None:
        message = json.loads(text)
        self.kinds.append(message["kind"])
        self.state.apply(message)

    def _run_raw(self) -> None:
        """A client that really stops reading: a plain socket with a tiny receive buffer
        (websockets' own client keeps reading into memory), speaking just enough WebSocket.
        """
        port = int(self.url.split(":")[2].split("/")[0])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /telemetry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        stream = sock.makefile("rb")
        self.connected.set()
        sock.settimeout(20)
        while not self._finished():
            opcode, payload = self._frame(stream)
            if opcode == 1:  # text; pings and the like are ignored
                self._take(payload)
                if len(self.kinds) == 1:
                    time.sleep(self.pause)
        sock.close()
        self.done.set()

    @staticmethod
    def _frame(stream: Any) -> tuple[int, bytes]:
        first, second = stream.read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", stream.read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", stream.read(8))[0]
        return first & 0x0F, stream.read(size)


def run_town(server: TelemetryServer, subscribers: list[Subscriber], ticks: int, late: Subscriber | None = None) -> Any:
    env = townlet_env.parallel_env(num_agents=8, max_ticks=10**6)
    expert = ScriptedExpert(env.unwrapped.rules, seed=0)
    publisher = TelemetryPublisher(env, [server], health_every=50)
    env.reset(seed=0)
    for sub in subscribers:
        sub.start()
        assert sub.connected.wait(10)
    for tick in range(ticks):
        env.step(expert.act_dict(env))
        if late is not None and tick == ticks // 2:
            late.start()  # joins mid-stream: must get a snapshot first
            assert late.connected.wait(10)
        time.sleep(0.0005)  # a town with a tick budget, so the fast subscribers keep up
    expected = publisher.current_state()
    last = publisher._seq - 1
    for sub in [*subscribers, *([late] if late else [])]:
        sub.last_seq = last
        assert sub.done.wait(30), "a subscriber never caught up with the stream"
    publisher.close()
    return expected


def test_subscribers_get_a_snapshot_then_consistent_diffs() -> None:
    server = TelemetryServer(client_queue=4096, nice=0).start()  # every tick, even on a busy machine
    subs = [Subscriber(server.url) for _ in range(3)]
    late = Subscriber(server.url)
    expected = run_town(server, subs, 300, late=late)
    for sub in [*subs, late]:
        assert sub.kinds[0] == "snapshot"
        assert sub.state.consistent and sub.state.gaps == 0
        assert sub.state.state == expected
    assert subs[0].kinds.count("diff") == 300 and subs[0].kinds.count("snapshot") == 1
    assert late.kinds.count("diff") < 200  # it joined halfway


def test_a_slow_subscriber_is_resynced_with_a_snapshot_and_stays_consistent() -> None:
    server = TelemetryServer(client_queue=16, send_buffer=8192).start()
    fast, slow = Subscriber(server.url), Subscriber(server.url, pause=3.0)
    expected = run_town(server, [fast, slow], 300)
    assert server.resyncs > 2  # the first snapshots plus at least one forced one
    assert slow.kinds.count("snapshot") >= 2  # its backlog was replaced by a fresh snapshot
    assert slow.state.consistent and slow.state.state == expected
    assert fast.state.consistent and fast.state.state == expected


def test_the_console_route_forwards_to_its_handler_and_other_paths_are_refused() -> None:
    server = TelemetryServer(console_handler=lambda text: f"echo:{text}").start()
    base = f"ws://127.0.0.1:{server.port}"
    try:
        with connect(f"{base}/console") as ws:
            ws.send('{"cmd": "health"}')
            assert ws.recv(timeout=10) == 'echo:{"cmd": "health"}'
            ws.send("second")
            assert ws.recv(timeout=10) == "echo:second"
        with connect(f"{base}/admin") as ws, pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert "unknown path" in info.value.rcvd.reason
    finally:
        server.close()
    no_console = TelemetryServer().start()
    try:
        with (
            connect(f"ws://127.0.0.1:{no_console.port}/console") as ws,
            pytest.raises(websockets.exceptions.ConnectionClosed),
        ):
            ws.recv(timeout=10)
    finally:
        no_console.close()


def test_the_server_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        TelemetryServer(host="0.0.0.0")


def test_the_stream_reader_stops_when_the_server_closes() -> None:
    server = TelemetryServer().start()
    env = townlet_env.parallel_env(num_agents=2, max_ticks=10**6)
    publisher = TelemetryPublisher(env, [server])
    env.reset(seed=0)
    publisher.flush()
    received: list[dict] = []
    reader = threading.Thread(target=lambda: received.extend(stream(server.url)), daemon=True)
    reader.start()
    time.sleep(0.5)
    publisher.close()  # closes the server, which ends the reader's stream
    reader.join(10)
    assert not reader.is_alive() and received and received[0]["kind"] == "snapshot"


def test_the_console_answers_over_the_servers_console_route(monkeypatch: pytest.MonkeyPatch) -> None:
    from townlet_env.console import Console

    monkeypatch.setenv("TOWNLET_VIEWER_TOKEN", "viewer-secret")
    monkeypatch.delenv("TOWNLET_ADMIN_TOKEN", raising=False)
    env = townlet_env.parallel_env(num_agents=2, max_ticks=10**6)
    console = Console(env)
    server = TelemetryServer(console_handler=console.handle_text).start()
    publisher = TelemetryPublisher(env, [server])
    env.reset(seed=0)
    env.step({})
    try:
        with connect(f"ws://127.0.0.1:{server.port}/console") as ws:
            ws.send(json.dumps({"cmd_id": "h1", "cmd": "health", "args": {}, "token": "viewer-secret"}))
            reply = json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"cmd_id": "k1", "cmd": "kill", "args": {"agent": "agent_0"}, "token": "viewer-secret"}))
            refused = json.loads(ws.recv(timeout=10))
    finally:
        publisher.close()
    assert reply["cmd_id"] == "h1" and reply["ok"] is True
    assert reply["result"]["telemetry"]["worker"]["alive"] in (True, False)
    assert refused["cmd_id"] == "k1" and refused["ok"] is False and refused["error"]["code"]
