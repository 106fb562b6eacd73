"""Telemetry: schema-valid messages, diffs that rebuild the state, version checks, drops."""

from __future__ import annotations

import copy
import json
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.cli import main
from townlet_env.jsonable import jsonable
from townlet_env.scripted import ScriptedExpert
from townlet_env.telemetry import SCHEMA_PATH, SCHEMA_VERSION
from townlet_env.telemetry.client import (
    NewerSchemaWarning,
    TelemetryState,
    TelemetryVersionError,
    check_version,
    read_jsonl,
    validator,
)
from townlet_env.telemetry.publisher import TelemetryPublisher
from townlet_env.telemetry.transports import MemoryTransport

pytest.importorskip("jsonschema")


def expert_town(num_agents: int = 8, seed: int = 0) -> tuple[Any, ScriptedExpert]:
    env = townlet_env.parallel_env(num_agents=num_agents, max_ticks=10**6)
    return env, ScriptedExpert(env.unwrapped.rules, seed=seed)


def run_stream(ticks: int, checkpoints: tuple[int, ...] = (), **kwargs: Any) -> tuple[MemoryTransport, dict, dict]:
    """Run the expert with a publisher; returns the messages and the publisher's state at
    each checkpoint tick (and at the end) as ``{tick: (last seq, state)}``.
    """
    env, expert = expert_town()
    memory = MemoryTransport()
    publisher = TelemetryPublisher(env, [memory], **kwargs)
    env.reset(seed=0)
    states: dict[int, tuple[int, dict]] = {}
    for _ in range(ticks):
        env.step(expert.act_dict(env))
        tick = env.unwrapped.world.tick
        if tick in checkpoints:
            states[tick] = (publisher._seq - 1, publisher.current_state())
    final = publisher.current_state()
    health = publisher.health()
    publisher.close()
    return memory, {**states, -1: (publisher._seq - 1, final)}, health


def replay(messages: list[Mapping[str, Any]], upto_seq: int) -> TelemetryState:
    state = TelemetryState()
    for message in messages:
        if message["seq"] > upto_seq:
            break
        state.apply(json.loads(json.dumps(message)))  # through JSON, as a remote client sees it
    return state


def test_a_300_tick_stream_validates_and_rebuilds_the_state() -> None:
    memory, states, health = run_stream(300, checkpoints=(1, 100, 217), health_every=100)
    check = validator()
    for message in memory.messages:
        errors = sorted(check.iter_errors(message), key=str)
        assert not errors, f"seq {message['seq']}: {errors[0].message} at {list(errors[0].absolute_path)}"
    kinds = [m["kind"] for m in memory.messages]
    assert kinds[0] == "snapshot" and kinds.count("snapshot") == 1
    assert kinds.count("health") == 3 and kinds.count("diff") == 300
    assert [m["seq"] for m in memory.messages] == list(range(len(kinds)))
    assert all(m["base"] == m["seq"] - 1 for m in memory.messages if m["kind"] == "diff")  # nothing dropped
    for tick, (seq, expected) in states.items():
        rebuilt = replay(memory.messages, seq)
        assert rebuilt.consistent and rebuilt.state == expected, f"state differs at tick {tick}"
    assert states[-1][1]["kpis"]["ticks"] == 300
    assert len(states[-1][1]["agents"]) == 8
    assert health["dropped"] == 0 and health["messages_sent"] == len(kinds)
    # Diffs carry only what changed: far smaller than snapshots on average.
    sizes = [len(t) for t, m in zip(memory.texts, memory.messages, strict=True) if m["kind"] == "diff"]
    assert np.mean(sizes) < len(memory.texts[0]) / 2


@pytest.mark.slow
def test_a_3_day_stream_validates_and_rebuilds_the_state() -> None:
    ticks = 3 * townlet_env.TICKS_PER_DAY
    memory, states, _ = run_stream(ticks, checkpoints=(1440, 2880))
    check = validator()
    bad = [(m["seq"], e.message) for m in memory.messages for e in check.iter_errors(m)]
    assert not bad, bad[:3]
    assert len(memory.messages) == ticks + 1 + ticks // 600
    for tick, (seq, expected) in states.items():
        assert replay(memory.messages, seq).state == expected, f"state differs at tick {tick}"


def test_the_schema_catches_a_wrong_type_and_a_missing_key() -> None:
    memory, _, _ = run_stream(5)
    check = validator()
    snapshot, diff = memory.messages[0], memory.messages[1]
    assert check.is_valid(snapshot) and check.is_valid(diff)
    assert SCHEMA_PATH.name == f"telemetry-{SCHEMA_VERSION}.json"
    wrong_type = copy.deepcopy(snapshot)
    wrong_type["agents"]["agent_0"]["wallet"] = "4.0"
    missing = copy.deepcopy(snapshot)
    del missing["agents"]["agent_1"]["needs"]["energy"]
    no_section = copy.deepcopy(snapshot)
    del no_section["queues"]
    bad_diff = copy.deepcopy(diff)
    bad_diff["changes"]["agents"] = {"agent_0": {"pos": [1, "2"]}}
    no_changes = {k: v for k, v in diff.items() if k != "changes"}
    bad_kind = {**diff, "kind": "delta"}
    for message in (wrong_type, missing, no_section, bad_diff, no_changes, bad_kind):
        assert not check.is_valid(message)
    tolerant = copy.deepcopy(snapshot)
    tolerant["weather"] = {"rain": True}  # a field a newer minor version might add
    tolerant["agents"]["agent_0"]["mood"] = 0.5
    assert check.is_valid(tolerant)


def test_version_check_warns_on_a_newer_minor_and_refuses_a_newer_major() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_version({"schema_version": SCHEMA_VERSION}) == (1, 1)
        assert check_version({"schema_version": "0.9"}) == (0, 9)
    with pytest.warns(NewerSchemaWarning, match=r"1\.3 is newer"):
        check_version({"schema_version": "1.3"})
    with pytest.raises(TelemetryVersionError, match=r"2\.0 is newer.*upgrade"):
        check_version({"schema_version": "2.0"})
    for bad in ("1", "one.two", None, 1.0):
        with pytest.raises(TelemetryVersionError, match="schema_version"):
            check_version({"schema_version": bad})
    with pytest.raises(TelemetryVersionError):
        TelemetryState().apply({"schema_version": "2.0", "seq": 0, "tick": 0, "kind": "snapshot"})


class NeverReads:
    """A consumer that never reads: ``send`` blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.messages: list[Mapping[str, Any]] = []

    def send(self, message: Mapping[str, Any], text: str) -> None:
        self.release.wait()
        self.messages.append(message)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.release.set()


@pytest.mark.parametrize("stride", [1, 8])
def test_a_consumer_that_never_reads_costs_drops_not_memory(stride: int) -> None:
    env, expert = expert_town()
    consumer = NeverReads()
    publisher = TelemetryPublisher(env, [consumer], buffer_size=16, health_every=0, backlog_stride=stride)
    env.reset(seed=0)
    for _ in range(200):
        env.step(expert.act_dict(env))
        assert len(publisher.buffer) <= 16
    health = publisher.health()
    # 201 frames: one is stuck in the consumer, 16 wait in the buffer, the rest were dropped.
    assert health["dropped"] == 201 - 1 - 16
    assert health["queue_length"] == 16 and publisher.max_buffered == 16
    assert health["worker"]["alive"] and health["worker"]["error"] is None
    assert publisher.flush(timeout=0.2) is False  # stuck, and says so instead of hanging
    consumer.release.set()
    assert publisher.flush()
    expected = publisher.current_state()
    publisher.close()
    # The consumer got the first snapshot, then diffs that span the dropped ticks (each
    # names its base), and ends with the publisher's state.
    kinds = [m["kind"] for m in consumer.messages]
    assert kinds.count("snapshot") == 1 and len(kinds) == 1 + 16
    spans = [m["seq"] - m["base"] for m in consumer.messages[1:]]
    assert max(spans) > 1
    state = TelemetryState()
    for message in consumer.messages:
        state.apply(message)
    assert state.gaps == 0 and state.consistent and state.state == expected
    # Every dropped tick is either one a diff spans or one before the first message (on a
    # busy machine the worker may start after the first frames were already pushed out).
    assert state.skipped + consumer.messages[0]["seq"] == health["dropped"]


def test_a_diff_whose_base_is_missing_waits_for_the_next_snapshot() -> None:
    memory, _, _ = run_stream(20, health_every=0)
    state = TelemetryState()
    messages = memory.messages
    for message in [*messages[:5], *messages[6:10]]:  # message 5 lost on the way
        state.apply(message)
    assert state.gaps == 1 and not state.consistent
    state.apply({**messages[0], "seq": 10, "tick": 9})  # any snapshot resynchronises
    assert state.consistent and state.state == replay(messages, 0).state


def test_a_resumed_stream_continues_its_seq_with_a_snapshot() -> None:
    env, expert = expert_town()
    memory = MemoryTransport()
    publisher = TelemetryPublisher(env, [memory])
    env.reset(seed=0)
    for _ in range(10):
        env.step(expert.act_dict(env))
    saved = publisher.state_dict()
    publisher.close()
    env.unwrapped.attachments.detach("telemetry")
    resumed_memory = MemoryTransport()
    resumed = TelemetryPublisher(env, [resumed_memory])
    resumed.load_state_dict(saved)
    env.step(expert.act_dict(env))
    resumed.close()
    first = resumed_memory.messages[0]
    assert first["kind"] == "snapshot" and first["seq"] == memory.messages[-1]["seq"] + 1
    before = replay(memory.messages, memory.messages[-1]["seq"]).state["agents"]["agent_0"]
    after = first["agents"]["agent_0"]
    assert abs(before["return"]) > 0.01  # so that a return restarted at 0 would show
    assert after["return"] == pytest.approx(before["return"] + after["reward"], abs=0.011)  # 2 decimals
    with pytest.raises(ValueError, match="returns has shape"):
        resumed.load_state_dict({"seq": 3, "returns": np.zeros(3)})


def test_town_records_a_telemetry_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["town", "--days", "1", "--agents", "4", "--telemetry", str(out)]) == 0
    capsys.readouterr()
    messages = list(read_jsonl(out))
    assert messages[0]["kind"] == "snapshot" and len(messages[0]["agents"]) == 4
    assert sum(m["kind"] == "diff" for m in messages) == townlet_env.TICKS_PER_DAY
    state = TelemetryState()
    for message in messages:
        state.apply(message)
    assert state.consistent and state.tick == townlet_env.TICKS_PER_DAY
    assert main(["town", "--telemetry", str(tmp_path / "nope" / "x.jsonl")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_the_stream_carries_the_stability_monitors_alerts_and_metrics() -> None:
    from townlet_env.stability import StabilityMonitor

    env, expert = expert_town()
    monitor = StabilityMonitor(env)  # attached first, so telemetry sees this tick's alerts
    memory = MemoryTransport()
    publisher = TelemetryPublisher(env, [memory], health_every=0)
    env.reset(seed=0)
    for _ in range(120):
        env.step(expert.act_dict(env))
    expected = publisher.current_state()
    publisher.close()
    check = validator()
    assert all(check.is_valid(m) for m in memory.messages)
    stability = expected["stability"]
    assert stability["metrics"]["tick"] == 120 and stability["metrics"]["metrics"]
    assert stability["alerts"] == jsonable(list(monitor.alerts))
    assert replay(memory.messages, memory.messages[-1]["seq"]).state == expected


def test_publishing_never_changes_the_town() -> None:
    def digests(with_telemetry: bool) -> list[str]:
        env, expert = expert_town()
        publisher = TelemetryPublisher(env, [MemoryTransport()], buffer_size=4) if with_telemetry else None
        env.reset(seed=3)
        out = []
        for _ in range(150):
            env.step(expert.act_dict(env))
            out.append(env.unwrapped.world.digest())
        if publisher is not None:
            publisher.close()
        return out

    assert digests(True) == digests(False)


def test_a_town_loaded_from_a_snapshot_resumes_the_stream(tmp_path: Path) -> None:
    env, expert = expert_town()
    memory = MemoryTransport()
    publisher = TelemetryPublisher(env, [memory], health_every=0)
    env.reset(seed=0)
    for _ in range(40):
        env.step(expert.act_dict(env))
    townlet_env.save_snapshot(env, tmp_path / "town.npz")
    loaded = townlet_env.load_snapshot(tmp_path / "town.npz")
    resumed_memory = MemoryTransport()
    resumed = TelemetryPublisher(loaded, [resumed_memory], health_every=0)  # takes the saved state
    actions = expert.act_dict(env)
    env.step(actions)
    loaded.step(actions)
    original, continued = publisher.current_state(), resumed.current_state()
    publisher.close()
    resumed.close()
    first = resumed_memory.messages[0]
    last = memory.messages[-1]  # the uninterrupted stream's message for the same tick
    assert first["kind"] == "snapshot" and (first["seq"], first["tick"]) == (last["seq"], last["tick"])
    # The same town and the same episode returns; the KPI report is refreshed on its own
    # cadence (every kpi_every ticks, and at a snapshot), so compare the trackers themselves.
    assert {k: v for k, v in continued.items() if k != "kpis"} == {k: v for k, v in original.items() if k != "kpis"}
    kpi_a, kpi_b = publisher.state_dict()["kpi"], resumed.state_dict()["kpi"]
    assert kpi_a["ticks"] == kpi_b["ticks"] == 41
    for key in kpi_a:
        assert (
            np.array_equal(kpi_a[key], kpi_b[key]) if isinstance(kpi_a[key], np.ndarray) else kpi_a[key] == kpi_b[key]
        ), key
