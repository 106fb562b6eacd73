"""Hostile input: every malformed, unknown, oversized or unauthorised envelope gets an error
code, queues nothing, leaves the world digest alone, and the town keeps ticking.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import townlet_env
from tests.console_helpers import ADMIN, VIEWER, digest, send, town, wait_all
from townlet_env.console import COMMANDS
from townlet_env.console.errors import ErrorCode

CODES = set(ErrorCode.__args__)
scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
arg_names = st.sampled_from(
    [
        "agent",
        "other",
        "y",
        "x",
        "need",
        "value",
        "key",
        "cap",
        "enabled",
        "action",
        "name",
        "pos",
        "trust",
        "limit",
        "agents",
    ]
)
envelopes = st.fixed_dictionaries(
    {
        "cmd_id": st.text(min_size=1, max_size=12, alphabet="abc123") | scalars,
        "cmd": st.sampled_from(sorted(COMMANDS)) | st.text(max_size=70) | scalars,
        "args": st.dictionaries(arg_names | st.text(max_size=6), json_values, max_size=5) | json_values,
        "token": st.sampled_from([None, VIEWER, ADMIN + "x", "", VIEWER[:-1]]) | st.text(max_size=30),
    },
    optional={"dry_run": json_values, "role": st.just("admin"), "pad": st.text(min_size=0, max_size=20000)},
)
payloads = envelopes | json_values | st.text(max_size=200) | st.binary(max_size=100) | envelopes.map(json.dumps)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(payload=payloads)
def test_fuzzed_envelopes_never_change_the_world(payload: Any) -> None:
    env, console = _town()
    before, twin_before = digest(env), digest(_TWIN[0])
    assert before == twin_before
    reply = console.submit(payload)
    assert set(reply) in ({"cmd_id", "ok", "result"}, {"cmd_id", "ok", "error"})
    assert console.status()["pending"] == 0  # no admin token in the fuzz: nothing is ever queued
    if not reply["ok"]:
        assert reply["error"]["code"] in CODES and reply["error"]["message"]
    json.dumps(reply)  # replies are plain JSON
    assert digest(env) == before
    wait_all(env)  # the town keeps ticking, exactly as a town without a console
    wait_all(_TWIN[0])
    assert digest(env) == digest(_TWIN[0])


_TOWN: list[Any] = []
_TWIN: list[Any] = []


def _town() -> tuple[Any, Any]:
    if not _TOWN:
        _TOWN.extend(town())
        twin = townlet_env.parallel_env()
        twin.reset(seed=0)
        _TWIN.append(twin)
    if not _TOWN[0].agents:  # an episode ended: start both again
        _TOWN[0].reset(seed=0)
        _TWIN[0].reset(seed=0)
    return _TOWN[0], _TOWN[1]


def test_rejected_admin_commands_leave_the_town_on_its_course() -> None:
    env, console = town()
    twin = townlet_env.parallel_env()
    twin.reset(seed=0)
    bad: list[tuple[str, dict[str, Any], str | None]] = [
        ("teleport", {"agent": "agent_0", "y": 0, "x": 0}, ADMIN),  # a wall
        ("teleport", {"agent": "agent_0", "y": 1, "x": 1}, VIEWER),  # forbidden
        ("kill", {"agent": "agent_0"}, None),
        ("kill", {"agent": "agent_77"}, ADMIN),
        ("set_need", {"agent": "agent_0", "need": "hunger", "value": "full"}, ADMIN),
        ("set_price", {"key": "gold", "value": 1.0}, ADMIN),
        ("spawn", {"agent": "agent_0"}, ADMIN),  # occupied
        ("release", {"agent": "agent_0"}, ADMIN),
        ("approve_exit", {"agent": "agent_0"}, ADMIN),
        ("save_snapshot", {"name": "../escape"}, ADMIN),
        ("set_exit_cap", {"cap": True}, ADMIN),
        ("toggle_mortality", {"enabled": "no"}, ADMIN),
    ]
    for tick in range(30):
        cmd, args, token = bad[tick % len(bad)]
        reply = send(console, cmd, token=token, **args)
        assert not reply["ok"], (cmd, reply)
        wait_all(env)
        wait_all(twin)
        assert digest(env) == digest(twin), (tick, cmd)


admin_envelopes = st.fixed_dictionaries(
    {
        "cmd_id": st.uuids().map(str),
        "cmd": st.sampled_from(sorted(COMMANDS)),
        "args": st.dictionaries(
            arg_names, json_values | st.sampled_from(["agent_1", "hunger", "meal", 3, 0.5]), max_size=4
        ),
        "token": st.just(ADMIN),
        "dry_run": st.booleans(),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=admin_envelopes)
def test_fuzzed_admin_arguments_are_refused_cleanly_or_queued(payload: dict[str, Any]) -> None:
    if not _ADMIN_TOWN:
        _ADMIN_TOWN.extend(town())
    env, console = _ADMIN_TOWN
    if not env.agents:
        env.reset(seed=0)
    before, pending = digest(env), console.status()["pending"]
    reply = console.submit(payload)
    assert digest(env) == before
    if not reply["ok"]:
        assert reply["error"]["code"] in CODES
        assert console.status()["pending"] == pending
    elif COMMANDS[payload["cmd"]].role == "admin":
        status = reply["result"]["status"]
        assert status == ("dry_run" if payload["dry_run"] else "queued")
        assert console.status()["pending"] == pending + (status == "queued")
    wait_all(env)  # queued commands apply (or are refused at apply time) and the town ticks on
    final = console.result(payload["cmd_id"])
    assert final is None or final["ok"] or final["error"]["code"] in CODES


_ADMIN_TOWN: list[Any] = []
