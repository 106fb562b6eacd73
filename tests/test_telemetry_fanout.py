"""The WebSocket server's fan-out process: the same messages as in-process publishing,
consistent subscribers, counted drops, its death reported, no orphan on any exit.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.scripted import ScriptedExpert
from townlet_env.telemetry.client import validator
from townlet_env.telemetry.publisher import TelemetryPublisher
from townlet_env.telemetry.transports import MemoryTransport

pytest.importorskip("websockets")
pytest.importorskip("jsonschema")
from tests.test_telemetry_server import Subscriber
from townlet_env.telemetry.server import TelemetryServer

ROOT = Path(__file__).resolve().parents[1]


class Recorder(Subscriber):
    """A subscriber that keeps every message it read."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.messages: list[dict[str, Any]] = []

    def _take(self, text: str | bytes) -> None:
        super()._take(text)
        self.messages.append(json.loads(text))


def expert_town(seed: int = 0) -> tuple[Any, ScriptedExpert]:
    env = townlet_env.parallel_env(num_agents=8, max_ticks=10**6)
    return env, ScriptedExpert(env.unwrapped.rules, seed=seed)


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its new parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_the_fan_out_sends_what_in_process_publishing_builds_and_every_subscriber_rebuilds_it() -> None:
    server = TelemetryServer(client_queue=8192, nice=0).start()  # every tick, even on a busy machine
    subs = [Recorder(server.url) for _ in range(4)]
    for sub in subs:
        sub.start()
        assert sub.connected.wait(10)
    assert wait_for(lambda: server.subscribers == len(subs))
    env, expert = expert_town()
    memory = MemoryTransport()
    publisher = TelemetryPublisher(env, [memory, server], health_every=100)
    env.reset(seed=0)
    for _ in range(250):
        env.step(expert.act_dict(env))
        time.sleep(0.0005)  # a town with a tick budget, so the subscribers keep up
    expected = publisher.current_state()  # built in this process (a message transport is attached)
    remote_state, remote_kpi = server.request_state()
    assert remote_state == expected
    np.testing.assert_equal(remote_kpi, publisher.state_dict()["kpi"])  # the KPI trackers saw the same frames
    for sub in subs:
        sub.last_seq = publisher._seq - 1
        assert sub.done.wait(30), "a subscriber never caught up with the stream"
    publisher.close()
    local = [json.loads(text) for text in memory.texts]
    for sub in subs:
        assert sub.kinds[0] == "snapshot" and sub.kinds.count("snapshot") == 1
        assert sub.state.consistent and sub.state.gaps == 0 and sub.state.state == expected
    # Every subscriber joined before the first message, so it got the very same stream
    # (health messages are built from the publisher's health() at different instants).
    check = validator()
    for message in subs[0].messages:
        assert not list(check.iter_errors(message)), message["seq"]
    assert "fanout" in next(m for m in subs[0].messages if m["kind"] == "health")["health"]
    for sub in subs:
        assert [m for m in sub.messages if m["kind"] != "health"] == [m for m in local if m["kind"] != "health"]
        assert [m["seq"] for m in sub.messages] == [m["seq"] for m in local]
    assert sum(k == "diff" for k in subs[0].kinds) == 250
    assert server.process is not None and server.process.returncode == 0  # exited cleanly


def test_a_subscriber_that_never_reads_costs_counted_drops_and_others_stay_consistent() -> None:
    # nice=0: under load a niced fan-out process may starve, and this test is about drops
    # to a stuck subscriber, not about priority.
    server = TelemetryServer(client_queue=16, send_buffer=4096, nice=0).start()
    try:
        _stuck_subscriber_case(server)
    finally:
        server.close()


def _stuck_subscriber_case(server: TelemetryServer) -> None:
    stuck = never_reading_subscriber(server.port)
    fast = Subscriber(server.url)
    fast.start()
    assert fast.connected.wait(10)
    env, expert = expert_town()
    publisher = TelemetryPublisher(env, [server])
    env.reset(seed=0)
    for _ in range(1500):
        env.step(expert.act_dict(env))
        time.sleep(0.0002)
    # A tick captured while the pipe is congested is skipped (the next diff spans it): wait
    # until the pipe drains, then step once more so the last tick surely reaches subscribers.
    assert wait_for(lambda: not server._writer.congested)  # type: ignore[union-attr]
    env.step(expert.act_dict(env))
    expected = publisher.current_state()  # from the fan-out process (no message transport here)
    fast.last_seq = publisher._seq - 1
    assert fast.done.wait(30)
    url = server.url
    assert wait_for(lambda: publisher.health()["fanout"][url].get("dropped", 0) > 100)
    fanout = publisher.health()["fanout"][url]
    assert fanout["alive"] and fanout["subscribers"] == 2
    stuck.close()
    publisher.close()
    # (On a busy machine the fast one may fall 16 messages behind too: then it is resynced.)
    assert fast.state.consistent and fast.state.gaps == 0 and fast.state.state == expected


def never_reading_subscriber(port: int) -> socket.socket:
    """A stream subscriber that never reads: the WebSocket handshake on a raw socket with a
    tiny receive buffer, and then nothing.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /telemetry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def test_a_dead_fan_out_process_is_reported_in_health_and_the_town_goes_on() -> None:
    server = TelemetryServer().start()
    env, expert = expert_town()
    publisher = TelemetryPublisher(env, [server])
    env.reset(seed=0)
    for _ in range(20):
        env.step(expert.act_dict(env))
    assert publisher.flush()
    url = server.url
    assert publisher.health()["fanout"][url]["alive"]
    assert server.process is not None
    server.process.kill()
    server.process.wait(10)
    for _ in range(200):  # the tick loop neither blocks nor raises
        env.step(expert.act_dict(env))
    assert publisher.flush(timeout=2) is False  # the frames cannot go anywhere, and it says so
    health = publisher.health()
    assert health["fanout"][url]["alive"] is False and health["fanout"][url]["exitcode"] == -signal.SIGKILL
    assert "BrokenPipeError" in (health["fanout"][url]["pipe_error"] or "")
    assert health["fanout"][url]["frames_dropped"] > 0  # ticks after the failure, counted
    with pytest.raises(RuntimeError, match="no state from the serving process"):
        server.request_state(timeout=2)
    publisher.close(timeout=2)


def test_the_fan_out_process_exits_when_the_towns_process_dies() -> None:
    script = textwrap.dedent(
        """
        import os, signal
        import townlet_env
        from townlet_env.telemetry.publisher import TelemetryPublisher
        from townlet_env.telemetry.server import TelemetryServer

        server = TelemetryServer().start()
        env = townlet_env.parallel_env(num_agents=2, max_ticks=10**6)
        TelemetryPublisher(env, [server])
        env.reset(seed=0)
        print(server.process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close(), no atexit: the pipes just close
        """
    )
    town = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert town.returncode == -signal.SIGKILL, town.stderr
    pid = int(town.stdout.split()[0])
    assert wait_for(lambda: gone(pid), timeout=20), f"fan-out process {pid} outlived the town's process"


def test_close_stops_the_fan_out_process_and_a_busy_port_is_one_clear_error() -> None:
    server = TelemetryServer().start()
    assert server.process is not None
    pid = server.process.pid
    with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        TelemetryServer(port=server.port).start()
    server.close()
    assert server.process.returncode == 0 and gone(pid)
    assert not any(gone(p) is False for p in _fanout_children())


def _fanout_children() -> list[int]:
    """Fan-out processes that are children of this process (there should be none left)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me and b"townlet_env.telemetry.fanout" in cmdline:
                found.append(int(entry.name))
    return found
