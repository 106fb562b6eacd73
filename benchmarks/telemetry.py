"""Telemetry overhead: env-steps/s with telemetry off, with a consumer that never reads,
and with WebSocket subscribers on loopback.

Runs of the same town (8 seats, the scripted expert choosing, option mode), each timing
``env.step`` alone over ``--ticks`` ticks, in ``--rounds`` alternating rounds of:

* ``off``: no publisher.
* ``never-reading transport``: a publisher whose only transport writes into an OS pipe
  that nobody reads, so its worker blocks for good after the pipe fills; the buffer drops
  frames.
* ``stuck subscriber``: a :class:`TelemetryServer` with one WebSocket subscriber that
  never reads (its fan-out process drops messages to it and counts them).
* ``websocket``: a publisher feeding a :class:`TelemetryServer`, with ``--subscribers``
  clients in a separate process at ``--client-nice`` (so their parsing is not charged to
  the town on a 2-core machine). Each client checks that its first message is a snapshot
  and reports the digest of the state it rebuilt, which must equal the publisher's.

Run: ``PYTHONPATH=. python benchmarks/telemetry.py --ticks 10000 --subscribers 20 --rounds 3``.
Targets (medians, wall clock): the never-reading runs within 10 % of off, the WebSocket
run within 30 %.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import townlet_env
from townlet_env.scripted import ScriptedExpert
from townlet_env.telemetry.client import TelemetryState, stream
from townlet_env.telemetry.publisher import TelemetryPublisher


def digest(state: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


class PipeNobodyReads:
    """Writes lines into a pipe whose read end is never read: the worker blocks once it fills."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def send(self, message: Mapping[str, Any], text: str) -> None:
        os.write(self.write_fd, text.encode() + b"\n")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        os.close(self.read_fd)  # the blocked write now fails (EPIPE), which frees the worker


def rss_mib(pid: int | str = "self") -> float:
    """A process's resident memory (Linux), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(ticks: int, transports: list[Any] | None, warmup: int = 200) -> tuple[float, float, Any]:
    """env-steps/s over ``ticks`` timed steps (after ``warmup``) by the wall clock, the tick
    thread's CPU seconds over the whole loop (the expert's choosing included: a per-step
    CPU clock read costs tens of microseconds on this VM), and the publisher.
    """
    env = townlet_env.parallel_env(num_agents=8, max_ticks=10**7)
    expert = ScriptedExpert(env.unwrapped.rules, seed=0)
    publisher = None if transports is None else TelemetryPublisher(env, transports)
    env.reset(seed=0)
    for _ in range(warmup):
        env.step(expert.act_dict(env))
    wall = 0.0
    c0 = time.thread_time()
    for _ in range(ticks):
        actions = expert.act_dict(env)
        t0 = time.perf_counter()
        env.step(actions)
        wall += time.perf_counter() - t0
    cpu = time.thread_time() - c0
    return ticks / wall, ticks / cpu, publisher


def clients(url: str, n: int) -> None:
    """Child process: ``n`` subscribers; prints one JSON line per subscriber at the end."""
    results: list[dict[str, Any]] = []

    def one() -> None:
        state, kinds = TelemetryState(), []
        for message in stream(url):
            if not kinds:
                kinds.append(message["kind"])
            state.apply(message)
        results.append(
            {
                "first": kinds[0] if kinds else None,
                "snapshots": state.snapshots,
                "gaps": state.gaps,
                "consistent": state.consistent,
                "tick": state.tick,
                "digest": digest(state.state),
            }
        )

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()
    for r in results:
        print(json.dumps(r), flush=True)


def stuck_subscriber(port: int) -> socket.socket:
    """A WebSocket subscriber that never reads: a raw socket with a tiny receive buffer."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /telemetry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def stuck_run(ticks: int) -> dict[str, Any]:
    """One timed run with a single WebSocket subscriber that never reads."""
    from townlet_env.telemetry.server import TelemetryServer

    server = TelemetryServer().start()
    sock = stuck_subscriber(server.port)
    deadline = time.monotonic() + 30
    while server.subscribers < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    rss_before = rss_mib(server.process.pid)
    rate, cpu_rate, publisher = run(ticks, [server])
    publisher.flush()
    time.sleep(0.5)  # one statistics report from the fan-out process
    health = publisher.health()
    rss_after = rss_mib(server.process.pid)
    sock.close()
    publisher.close()
    fanout = next(iter(health["fanout"].values()))
    return {"rate": rate, "cpu_rate": cpu_rate, "fanout": fanout, "rss": (rss_before, rss_after)}


def websocket_run(ticks: int, n: int, client_nice: int) -> dict[str, Any]:
    """One timed run with ``n`` subscribers (in one child process, at ``client_nice``)."""
    from townlet_env.telemetry.server import TelemetryServer

    server = TelemetryServer(client_queue=1024).start()
    child = subprocess.Popen(
        [sys.executable, __file__, "--clients", server.url, "--subscribers", str(n)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.nice(client_nice)) if client_nice else None,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while server.subscribers < n and time.monotonic() < deadline:
        time.sleep(0.05)
    rate, cpu_rate, publisher = run(ticks, [server])
    expected = digest(publisher.current_state())
    health = publisher.health()
    publisher.close()
    results = [json.loads(line) for line in child.stdout]
    child.wait(60)
    ok = [r["first"] == "snapshot" and r["consistent"] and r["gaps"] == 0 and r["digest"] == expected for r in results]
    fanout = next(iter(health["fanout"].values()))
    return {
        "rate": rate,
        "cpu_rate": cpu_rate,
        "subscribers": len(results),
        "all_consistent": all(ok) and len(ok) == n,
        "ok": f"{sum(ok)}/{n}",
        "resyncs": server.resyncs - n,
        "dropped": health["dropped"],
        "fanout_dropped": fanout.get("dropped", 0),
        "frames_dropped": fanout["frames_dropped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client-nice", type=int, default=10, help="niceness of the subscribers' process (0: none)")
    parser.add_argument("--clients", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        clients(args.clients, args.subscribers)
        return
    print(
        f"{args.ticks} timed ticks a run, 8 seats, scripted expert; env-steps/s by the wall clock"
        f" (and ticks per tick-thread CPU second, expert included); {args.subscribers} subscribers"
        f" at nice {args.client_nice}"
    )
    rates: dict[str, list[tuple[float, float]]] = {"off": [], "never": [], "stuck": [], "ws": []}
    for r in range(args.rounds):  # interleaved, so drifting load on a shared machine hits all alike
        rates["off"].append(run(args.ticks, None)[:2])
        pipe = PipeNobodyReads()
        rss_before = rss_mib()
        wall, cpu, publisher = run(args.ticks, [pipe])
        rates["never"].append((wall, cpu))
        health = publisher.health()
        rss_after = rss_mib()
        publisher.close(timeout=1.0)
        stuck = stuck_run(args.ticks)
        rates["stuck"].append((stuck["rate"], stuck["cpu_rate"]))
        ws = websocket_run(args.ticks, args.subscribers, args.client_nice)
        rates["ws"].append((ws["rate"], ws["cpu_rate"]))
        print(
            f"round {r}: off {rates['off'][-1][0]:6.0f} ({rates['off'][-1][1]:6.0f})"
            f" | never-reading {wall:6.0f} ({cpu:6.0f}) dropped {health['dropped']}"
            f" buffer max {publisher.max_buffered}/{health['buffer_size']} RSS {rss_before:.0f}->{rss_after:.0f} MiB"
            f" | stuck subscriber {stuck['rate']:6.0f} ({stuck['cpu_rate']:6.0f})"
            f" fan-out drops {stuck['fanout'].get('dropped')} frames dropped {stuck['fanout']['frames_dropped']}"
            f" fan-out RSS {stuck['rss'][0]:.0f}->{stuck['rss'][1]:.0f} MiB"
            f" | websocket x{ws['subscribers']} {ws['rate']:6.0f} ({ws['cpu_rate']:6.0f})"
            f" consistent {ws['ok']} frames dropped {ws['frames_dropped']}"
            f" fan-out drops {ws['fanout_dropped']} forced resyncs {ws['resyncs']}",
            flush=True,
        )
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rates.items()}
    targets = (
        ("never", "never-reading transport", 0.90),
        ("stuck", "never-reading WebSocket subscriber", 0.90),
        ("ws", f"websocket x{args.subscribers}", 0.70),
    )
    for key, label, target in targets:
        wall, cpu = med[key][0] / med["off"][0], med[key][1] / med["off"][1]
        verdict = "met" if wall >= target else "NOT met"
        print(f"{label} / off (medians): wall {wall:.3f}  tick-thread cpu {cpu:.3f}  (target >= {target}: {verdict})")


if __name__ == "__main__":
    main()
