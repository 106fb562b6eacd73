"""``townlet serve``: a live town with telemetry and the console on one localhost server."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from townlet_env.serve import ServeOptions, serve

pytest.importorskip("websockets")


def test_a_served_town_streams_answers_its_console_and_saves_on_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from websockets.sync.client import connect

    monkeypatch.setenv("TOWNLET_ADMIN_TOKEN", "admin-secret")
    monkeypatch.delenv("TOWNLET_VIEWER_TOKEN", raising=False)
    opts = ServeOptions(
        port=0, snapshot_root=str(tmp_path / "snaps"), audit_log=str(tmp_path / "audit.jsonl"),
        ticks_per_second=200.0, max_ticks=400, autosave_ticks=100,
    )  # fmt: skip
    listening = threading.Event()
    found: dict[str, Any] = {}

    def ready(server: Any) -> None:
        found["server"] = server
        listening.set()

    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.update(ticks=serve(opts, ready=ready)))
    thread.start()
    assert listening.wait(30), "the server did not start"
    base = f"ws://127.0.0.1:{found['server'].port}"
    with connect(f"{base}/telemetry", open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        later = json.loads(ws.recv(timeout=10))
    assert first["kind"] == "snapshot" and later["kind"] in ("diff", "health")
    with connect(f"{base}/console", open_timeout=10) as ws:
        ws.send(json.dumps({"cmd_id": "h1", "cmd": "health", "args": {}}))
        health = json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"cmd_id": "k1", "cmd": "kill", "args": {"agent": "agent_1"}, "token": "wrong"}))
        refused = json.loads(ws.recv(timeout=10))
    assert health["ok"] is True, health
    assert refused["ok"] is False and refused["error"]["code"] == "unauthorized"
    thread.join(60)
    assert result["ticks"] == 400
    saved = sorted(p.name for p in (tmp_path / "snaps").glob("snapshot-*.npz"))
    assert saved[-1] == "snapshot-000000400.npz", saved  # the final save on exit
    assert len(saved) == 3  # autosaves every 100 ticks, the newest 3 kept
    assert (tmp_path / "audit.jsonl").read_text().count("\n") >= 2
