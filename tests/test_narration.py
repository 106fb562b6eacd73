"""Narration: the throttle's guarantees (hypothesis), templates, config, and the narrator in a town."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import townlet_env
from townlet_env.config import ConfigError, make_config
from townlet_env.narration.config import CATEGORIES, LINE_KINDS, ThrottleConfig
from townlet_env.narration.narrator import Line, Narrator
from townlet_env.narration.templates import PLACEHOLDERS, TemplateError, TemplateFile, load_templates
from townlet_env.narration.throttle import Throttle
from townlet_env.world.events import Event, EventKind, PerturbationKind
from townlet_env.world.systems.relationships import set_tie

# --- the throttle -------------------------------------------------------------------------------

configs = st.builds(
    ThrottleConfig,
    global_cooldown_ticks=st.integers(0, 6),
    category_cooldown_ticks=st.fixed_dictionaries({c: st.integers(0, 12) for c in CATEGORIES}),
    dedupe_ticks=st.integers(0, 40),
    window_ticks=st.integers(1, 30),
    window_limit=st.integers(1, 6),
)
# (ticks since the previous offer, key, category, priority)
offers = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from("abcdef"), st.sampled_from(CATEGORIES), st.booleans()),
    max_size=120,
)


def oracle(cfg: ThrottleConfig, emitted: list[tuple[int, str, str]], tick: int, key: str, cat: str, prio: bool):
    """The reason a line must be dropped, worked out from the emitted lines by brute force."""
    if any(k == key and tick - t < cfg.dedupe_ticks for t, k, _ in emitted):
        return "dedupe"
    if sum(tick - t < cfg.window_ticks for t, _, _ in emitted) >= cfg.window_limit:
        return "window"
    if prio:
        return None
    if any(tick - t < cfg.global_cooldown_ticks for t, _, _ in emitted):
        return "global_cooldown"
    if any(c == cat and tick - t < cfg.category_cooldown_ticks[c] for t, _, c in emitted):  # type: ignore[index]
        return "category_cooldown"
    return None


@settings(max_examples=300, deadline=None)
@given(cfg=configs, seq=offers)
def test_throttle_limits_hold_for_any_sequence(cfg: ThrottleConfig, seq: list) -> None:
    throttle = Throttle(cfg)
    emitted: list[tuple[int, str, str]] = []
    priority_drops: list[str] = []
    tick = 0
    for gap, key, cat, prio in seq:
        tick += gap
        expected = oracle(cfg, emitted, tick, key, cat, prio)
        reason = throttle.offer(tick, key, cat, prio)
        assert reason == expected, (tick, key, cat, prio)
        if reason is None:
            emitted.append((tick, key, cat))  # emitted now, at the tick it was offered: never delayed
        elif prio:
            priority_drops.append(reason)
    ticks = [t for t, _, _ in emitted]
    # No rolling window holds more lines than its limit (a fullest window ends at an emitted tick).
    for end in ticks:
        assert sum(end - cfg.window_ticks < t <= end for t in ticks) <= cfg.window_limit
    # No key repeats within the dedupe window.
    last: dict[str, int] = {}
    for t, k, _ in emitted:
        assert k not in last or t - last[k] >= cfg.dedupe_ticks
        last[k] = t
    # Priority lines are only ever dropped by dedupe or the window, never by a cooldown.
    assert set(priority_drops) <= {"dedupe", "window"}
    assert throttle.emitted == len(emitted)
    assert sum(throttle.dropped.values()) == len(seq) - len(emitted)


@settings(max_examples=100, deadline=None)
@given(cfg=configs, seq=offers, cut=st.integers(0, 120))
def test_throttle_state_round_trips_mid_sequence(cfg: ThrottleConfig, seq: list, cut: int) -> None:
    whole, first = Throttle(cfg), Throttle(cfg)
    out_whole, out_split = [], []
    tick = 0
    for n, (gap, key, cat, prio) in enumerate(seq):
        tick += gap
        if n == cut:
            second = Throttle(cfg)
            second.load_state_dict(json.loads(json.dumps(first.state_dict())))
            first = second
        out_whole.append(whole.offer(tick, key, cat, prio))
        out_split.append(first.offer(tick, key, cat, prio))
    assert out_split == out_whole
    assert first.state_dict() == whole.state_dict()


def test_a_priority_line_passes_a_cooldown_that_stops_an_ordinary_one() -> None:
    cfg = ThrottleConfig(global_cooldown_ticks=10, dedupe_ticks=5, window_ticks=10, window_limit=2)
    throttle = Throttle(cfg)
    assert throttle.offer(0, "a", "social") is None
    assert throttle.offer(1, "b", "social") == "global_cooldown"
    assert throttle.offer(1, "c", "lifecycle", priority=True) is None
    assert throttle.offer(2, "a", "lifecycle", priority=True) == "dedupe"
    assert throttle.offer(3, "d", "lifecycle", priority=True) == "window"
    assert throttle.dropped == {"dedupe": 1, "window": 1, "global_cooldown": 1, "category_cooldown": 0}
    with pytest.raises(ValueError, match="tick 2 offered after tick 3"):
        throttle.offer(2, "e", "social")
    throttle.reset()
    assert throttle.offer(0, "a", "social") is None  # a new episode: the old ticks are forgotten


# --- templates and config -----------------------------------------------------------------------


def test_shipped_templates_cover_every_kind_and_render_deterministically() -> None:
    seats = tuple(f"agent_{i}" for i in range(4))
    templates = load_templates("narration.yaml", seats)
    fields = {"agent": "A", "other": "B", "object": "stove", "perturbation": "A price spike", "need": "hunger"}
    for kind in LINE_KINDS:
        text = templates.render(kind, f"{kind}:x", 7, fields)
        assert text == templates.render(kind, f"{kind}:x", 7, fields)
        assert "{" not in text and all(fields[p] in text for p in PLACEHOLDERS[kind])
    wordings = {templates.render("friendship", "k", t, fields) for t in range(50)}
    assert len(wordings) == 2  # both shipped wordings come up, chosen by a stable hash
    assert templates.perturbation(int(PerturbationKind.POWER_OUTAGE)) == "A power outage"
    assert templates.perturbation(99) == "disturbance #99"
    assert templates.name(2) == "agent_2"


def test_bad_templates_are_refused_naming_file_and_key(tmp_path: Path) -> None:
    good = load_templates("narration.yaml", ("agent_0",)).spec.model_dump(mode="json")
    bad_field = json.loads(json.dumps(good))
    bad_field["lines"]["faint"] = ["{agent} fainted near {object}."]
    missing = json.loads(json.dumps(good))
    del missing["lines"]["rivalry"]
    unknown = {**good, "colour": "red"}
    cases = ((bad_field, r"lines\.faint\.0: unknown placeholders \['object'\]"), (missing, "rivalry"))
    for data, match in (*cases, (unknown, "colour: unknown key")):
        path = tmp_path / "t.yaml"
        path.write_text(json.dumps(data))
        with pytest.raises(TemplateError, match=match) as info:
            load_templates(str(path), ("agent_0",))
        assert str(path) in str(info.value)


def test_display_names_are_used_only_when_every_seat_has_one() -> None:
    spec = TemplateFile.model_validate(
        {**load_templates("narration.yaml", ()).spec.model_dump(mode="json"), "names": ["Ada", "Ben", "Cy"]}
    )
    from townlet_env.narration.templates import Templates

    assert Templates(spec, ("agent_0", "agent_1")).name(1) == "Ben"
    assert Templates(spec, tuple(f"agent_{i}" for i in range(4))).name(3) == "agent_3"


def test_narration_config_is_left_out_of_the_identity_and_checked() -> None:
    tuned = make_config(narration={"rivalry": 0.8, "throttle": {"window_limit": 3}})
    assert tuned.narration.throttle.window_limit == 3
    assert tuned.identity() == make_config().identity()
    with pytest.raises(ConfigError, match=r"narration\.throttle\.bogus"):
        make_config(narration={"throttle": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"narration\.throttle\.priority"):
        make_config(narration={"throttle": {"priority": ["gossip"]}})


# --- the narrator in a town ---------------------------------------------------------------------


class Injector:
    """Adds scripted events to ``last_events`` at given ticks (attach it before the narrator)."""

    def __init__(self, plan: dict[int, list[tuple]]) -> None:
        self.plan = plan

    def after_step(self, town: Any) -> None:
        for args in self.plan.get(town.world.tick, []):
            town.last_events.append(Event(town.world.tick, *args))


def narrated_town(plan: dict[int, list[tuple]], narration: dict | None = None) -> tuple[Any, Narrator]:
    env = townlet_env.parallel_env(num_agents=4, narration=narration or {})
    env.unwrapped.attachments.attach("injector", Injector(plan))
    narrator = Narrator(env)
    env.reset(seed=0)
    return env, narrator


def wait(env: Any, ticks: int = 1) -> None:
    for _ in range(ticks):
        env.step(dict.fromkeys(env.agents, 0))


def test_events_become_lines_priority_first() -> None:
    plan = {
        3: [
            (EventKind.QUEUE_CONFLICT, 0, 1, 0, 45.0),
            (EventKind.SHARED_MEAL, 2, 3, 0),
            (EventKind.PERTURBATION_START, -1, -1, -1, float(PerturbationKind.PRICE_SPIKE)),
            (EventKind.FAINT, 2, -1, -1, 1.0),
        ]
    }
    env, narrator = narrated_town(plan, narration={"throttle": {"global_cooldown_ticks": 0}})
    wait(env, 3)
    lines = narrator.lines
    assert [line.kind for line in lines] == ["perturbation_start", "faint", "queue_conflict", "shared_meal"]
    assert lines[0].text == "News around town: A price spike has begun." and lines[0].priority
    assert lines[1].text == "agent_2 collapsed: hygiene ran out." and lines[1].agents == ("agent_2",)
    obj = env.unwrapped.rules.manifest.object_types[int(env.unwrapped.rules.town.obj_type[0])]
    assert f"at the {obj}" in lines[2].text and lines[2].agents == ("agent_0", "agent_1")
    assert all(line.tick == 3 for line in lines) and list(narrator.history) == list(lines)
    wait(env)
    assert narrator.lines == ()


def test_repeated_conflicts_are_told_once_per_dedupe_window() -> None:
    plan = {t: [(EventKind.QUEUE_CONFLICT, 0, 1, 0)] for t in range(1, 40)}
    env, narrator = narrated_town(plan, narration={"throttle": {"dedupe_ticks": 30, "global_cooldown_ticks": 0}})
    wait(env, 39)
    assert [line.tick for line in narrator.history] == [1, 31]
    assert narrator.throttle.dropped["dedupe"] == 37


@pytest.mark.parametrize("cooldown", [0, 2])
def test_a_tie_crossing_its_threshold_is_a_friendship_or_rivalry_line(cooldown: int) -> None:
    env, narrator = narrated_town({}, {"throttle": {"global_cooldown_ticks": cooldown}})
    world = env.unwrapped.world
    wait(env, 2)
    set_tie(world, 0, 1, np.array([0.9, 0.5, 0.0], np.float32))  # as the console's set_relationship does
    set_tie(world, 1, 0, np.array([0.9, 0.5, 0.0], np.float32))
    set_tie(world, 2, 3, np.array([0.0, 0.1, 0.8], np.float32))
    wait(env)
    kinds = [(line.kind, line.agents) for line in narrator.lines]
    # Both directions of 0-1 crossed: one line (the pair is one dedupe key).
    told = [("friendship", ("agent_0", "agent_1")), ("rivalry", ("agent_2", "agent_3"))]
    assert kinds == (told if cooldown == 0 else told[:1])  # the default cooldown allows one line a tick
    assert narrator.throttle.dropped["dedupe"] == 1
    assert narrator.throttle.dropped["global_cooldown"] == (cooldown > 0)
    wait(env, 3)
    assert narrator.lines == ()  # still above the threshold: nothing new crossed


def test_console_shows_recent_lines(tmp_path: Path) -> None:
    from tests.console_helpers import VIEWER, send, town

    env, console = town(tmp_path)
    assert send(console, "narration", token=VIEWER)["result"]["available"] is False
    narrator = Narrator(env)
    send(console, "set_relationship", agent="agent_0", other="agent_1", trust=0.9)
    wait(env, 2)
    result = send(console, "narration", token=VIEWER, limit=5)["result"]
    assert result["available"] and result["emitted"] == len(narrator.history) == 1
    assert result["lines"][0]["kind"] == "friendship" and result["lines"][0]["agents"] == ["agent_0", "agent_1"]


def test_narration_never_changes_the_town() -> None:
    plain = townlet_env.parallel_env(num_agents=4)
    told, _ = narrated_town({t: [(EventKind.FAINT, 1, -1, -1, 0.0)] for t in range(0, 60, 7)})
    plain.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = {a: int(rng.integers(0, plain.unwrapped.n_actions)) for a in plain.agents}
        plain.step(actions)
        told.step(actions)
    assert told.unwrapped.world.digest() == plain.unwrapped.world.digest()


def test_telemetry_diffs_carry_the_lines() -> None:
    pytest.importorskip("jsonschema")
    from townlet_env.telemetry.client import TelemetryState, validator
    from townlet_env.telemetry.publisher import TelemetryPublisher
    from townlet_env.telemetry.transports import MemoryTransport

    env = townlet_env.parallel_env(num_agents=4)
    memory = MemoryTransport()
    env.unwrapped.attachments.attach("injector", Injector({5: [(EventKind.SHIFT_COVERED, 1, 2)]}))
    publisher = TelemetryPublisher(env, [memory])  # attached before the narrator: it asks for the lines
    Narrator(env)
    env.reset(seed=0)
    wait(env, 8)
    publisher.close()
    check, state = validator(), TelemetryState()
    for message in memory.messages:
        assert check.is_valid(message), message["seq"]
        state.apply(message)
        if message["tick"] == 5:
            (line,) = message["changes"]["narration"]
            assert line["text"] == "agent_1 covered agent_2's shift." and line["agents"] == ["agent_1", "agent_2"]
        elif message["kind"] == "diff" and message["tick"] != 6:
            assert "narration" not in message["changes"]  # unchanged (empty) lists are not resent
    assert state.state["narration"] == []
    assert Line.from_json(json.loads(json.dumps(Line(5, "x", "social", "t", ("a",), False).to_json()))).agents == ("a",)


def test_townlet_town_narrate_prints_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    import townlet_env.demo
    from townlet_env.cli import main

    seen: dict[str, Any] = {}

    def fake_run_town(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        kwargs["narrate"](str(Line(1500, "arrival", "lifecycle", "Ada moved into town.", ("agent_0",), False)))
        raise ConfigError("stop here")

    monkeypatch.setattr(townlet_env.demo, "run_town", fake_run_town)
    printed: list[str] = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    assert main(["town", "--narrate"]) == 1
    assert printed[0] == "day 2 01:00  Ada moved into town."
