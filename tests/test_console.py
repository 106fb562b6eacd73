"""The console: roles, replay, dry runs, queueing, the audit log, rate limits, state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from tests.console_helpers import ADMIN, TOKENS, VIEWER, digest, send, town, wait_all
from townlet_env.console import ADMIN_COMMANDS, VIEWER_COMMANDS, Console, RateLimit


def test_viewer_commands_answer_at_once(tmp_path: Path) -> None:
    env, console = town(tmp_path)
    before = digest(env)
    for cmd in VIEWER_COMMANDS:
        reply = send(console, cmd, token=VIEWER)
        assert reply["ok"], reply
        assert reply["result"]["tick"] == 0
    assert digest(env) == before
    snap = send(console, "snapshot", token=VIEWER)["result"]
    assert len(snap["seats"]) == env.unwrapped.config.num_agents
    assert set(snap["seats"][0]) >= {"agent", "identity", "pos", "needs", "wallet", "job", "option"}
    stab = send(console, "stability", token=VIEWER)["result"]
    assert stab["available"] is False and "no stability monitor" in stab["reason"]


def test_stability_reads_the_attached_monitor() -> None:
    class Monitor:
        alerts: ClassVar[list[dict]] = [{"kind": "starvation", "agent": 3}]
        pass_streak = 4

        def metrics(self) -> dict:
            return {"starvation": 0.5}

    env, console = town()
    env.unwrapped.attachments.attach("stability", Monitor())
    result = send(console, "stability", token=VIEWER)["result"]
    assert result["available"] and result["pass_streak"] == 4
    assert result["alerts"] == Monitor.alerts and result["metrics"] == {"starvation": 0.5}


@pytest.mark.parametrize("cmd", ADMIN_COMMANDS)
def test_a_viewer_token_runs_no_admin_command(cmd: str) -> None:
    env, console = town()
    before = digest(env)
    reply = send(console, cmd, token=VIEWER, agent="agent_0")
    assert reply["error"]["code"] == "forbidden" and cmd in reply["error"]["message"]
    assert console.status()["pending"] == 0
    wait_all(env)
    assert console.status()["overrides"] == {"prices": {}, "daily_exit_cap": None, "mortality": True}
    assert digest(env) != before  # the town ticked


def test_tokens_decide_the_role_never_the_client() -> None:
    _env, console = town()
    assert send(console, "health", token=None)["error"]["code"] == "unauthorized"
    assert send(console, "health", token="guess")["error"]["code"] == "unauthorized"
    assert send(console, "health", token=ADMIN)["ok"]  # admin runs viewer commands
    claim = {"cmd_id": "x", "cmd": "kill", "args": {"agent": "agent_0"}, "token": VIEWER, "role": "admin"}
    assert console.submit(claim)["error"]["code"] == "bad_request"


def test_without_an_admin_token_admin_commands_are_off() -> None:
    _env, console = town(environ={})
    reply = send(console, "kill", token="anything", agent="agent_0")
    assert reply["error"]["code"] == "unauthorized"
    reply = send(console, "kill", token=None, agent="agent_0")
    assert reply["error"]["code"] == "forbidden" and "TOWNLET_ADMIN_TOKEN" in reply["error"]["message"]
    assert send(console, "health", token=None)["ok"]  # no viewer token configured: viewing is open


def test_a_replayed_cmd_id_returns_the_cached_reply_and_applies_once() -> None:
    env, console = town()
    envelope = {"cmd_id": "kill-1", "cmd": "kill", "args": {"agent": "agent_2"}, "token": ADMIN}
    first = console.submit(envelope)
    assert first["result"]["status"] == "queued"
    assert console.submit(dict(envelope)) == first
    assert console.status()["pending"] == 1
    wait_all(env)
    final = console.result("kill-1")
    assert final["ok"] and final["result"]["status"] == "applied"
    assert console.submit(envelope) == final  # the latest reply, and no second kill
    assert console.status()["pending"] == 0
    other = console.submit({**envelope, "args": {"agent": "agent_3"}})
    assert other["error"]["code"] == "conflict" and "fresh" in other["error"]["message"]
    stolen = console.submit({**envelope, "token": VIEWER})
    assert stolen["error"]["code"] == "forbidden"


def test_dry_run_changes_nothing() -> None:
    env, console = town()
    before = digest(env)
    reply = send(console, "set_need", dry_run=True, agent="agent_1", need="hunger", value=0.25)
    assert reply["result"]["status"] == "dry_run" and "-> 0.2500" in reply["result"]["would"]["hunger"]
    assert digest(env) == before and console.status()["pending"] == 0


def test_queued_commands_apply_at_the_start_of_the_next_tick() -> None:
    env, console = town()
    w = env.unwrapped.world
    y, x = (int(v) for v in env.unwrapped.rules.town.entries[0])
    before = digest(env)
    reply = send(console, "teleport", agent="agent_4", y=y, x=x)
    assert reply["result"] == {**reply["result"], "status": "queued", "apply_at_tick": 0}
    assert digest(env) == before
    wait_all(env)
    assert w.pos[4].tolist() == [y, x]
    assert console.result(reply["cmd_id"])["result"]["tick"] == 0


def test_rate_limit_per_issuer() -> None:
    now = [0.0]
    _env, console = town(rate_limit=RateLimit(per_second=1.0, burst=3), clock=lambda: now[0])
    assert all(send(console, "health", token=VIEWER)["ok"] for _ in range(3))
    limited = send(console, "health", token=VIEWER)
    assert limited["error"]["code"] == "rate_limited" and "retry in" in limited["error"]["message"]
    assert send(console, "health", token=ADMIN)["ok"]  # another issuer has its own bucket
    now[0] += 1.0
    assert send(console, "health", token=VIEWER)["ok"]


def test_audit_log_has_a_line_per_command_and_no_token(tmp_path: Path) -> None:
    env, console = town(tmp_path)
    send(console, "health", token=VIEWER)
    send(console, "kill", token=VIEWER, agent="agent_0")
    send(console, "set_exit_cap", token=ADMIN, cap=5)
    console.submit("{broken")
    console.submit({"cmd_id": "t", "cmd": "health", "token": "wrong-" + ADMIN})
    wait_all(env)
    text = (tmp_path / "audit.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(e["phase"], e["cmd"], e["ok"], e["error"]) for e in lines] == [
        ("submit", "health", True, None),
        ("submit", "kill", False, "forbidden"),
        ("submit", "set_exit_cap", True, None),
        ("submit", None, False, "bad_request"),
        ("submit", "health", False, "unauthorized"),
        ("apply", "set_exit_cap", True, None),
    ]
    assert lines[2]["role"] == "admin" and lines[0]["issuer"].startswith("sha256:")
    assert ADMIN not in text and VIEWER not in text
    assert {"time", "tick", "cmd_id", "summary"} <= set(lines[0])


def test_oversized_payloads_are_refused() -> None:
    _env, console = town()
    huge = json.dumps({"cmd_id": "1", "cmd": "health", "args": {"pad": "x" * 20000}, "token": VIEWER})
    assert console.submit(huge)["error"]["code"] == "too_large"
    long = {"cmd_id": "2", "cmd": "health", "args": {"pad": "x" * 5000}, "token": VIEWER}
    assert console.submit(long)["error"]["code"] == "too_large"
    deep = {"cmd_id": "3", "cmd": "health", "args": {"a": [[[[1]]]]}, "token": VIEWER}
    assert console.submit(deep)["error"]["code"] == "too_large"
    reply = json.loads(console.handle_text(json.dumps({"cmd_id": "4", "cmd": "health", "token": VIEWER})))
    assert reply["ok"]


def test_state_dict_round_trip_keeps_replays_pending_and_overrides() -> None:
    env, console = town()
    queued = send(console, "set_need", agent="agent_1", need="energy", value=0.125)
    send(console, "set_price", key="meal", value=3.5)
    wait_all(env)  # the price applies; the next command stays pending in the saved state
    pending = send(console, "set_need", agent="agent_1", need="hygiene", value=0.5)
    state = json.loads(json.dumps(console.state_dict()))  # JSON all the way through
    env2, _ = town()
    console2 = env2.unwrapped.attachments.detach("console")
    console2 = Console(env2, environ=TOKENS)
    console2.load_state_dict(state)
    assert float(env2.unwrapped.rules.aff_price[env2.unwrapped.rules.opt_eat]) == 3.5
    assert env2.unwrapped.config.economy.prices["meal"] == 1.0  # the config (and its identity) is untouched
    assert console2.result(queued["cmd_id"])["result"]["status"] == "applied"
    replay = {
        "cmd_id": pending["cmd_id"],
        "cmd": "set_need",
        "token": ADMIN,
        "args": {"agent": "agent_1", "need": "hygiene", "value": 0.5},
    }
    assert console2.submit(replay) == pending
    assert console2.status()["pending"] == 1
    wait_all(env2)
    assert console2.result(pending["cmd_id"])["result"]["status"] == "applied"
