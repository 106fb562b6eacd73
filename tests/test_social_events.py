"""Relationship events: each is a typed event that feeds the tie store with its config deltas.

Scenarios are set up by hand on a reset town and driven through the system that owns the
rule (queues, affordances, employment, chat, the navigator), so each test names one rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY, ConfigError, make_config
from townlet_env.world.events import REL_EVENT_KEYS, EventKind, EventLog, RelEvent
from townlet_env.world.systems import queues
from townlet_env.world.systems.affordances import after_finish
from townlet_env.world.systems.chat import attempt_chats
from townlet_env.world.systems.employment import emit_shift_events
from townlet_env.world.systems.relationships import apply_event, set_tie, tie


@pytest.fixture
def town() -> Any:
    env = townlet_env.parallel_env(num_agents=4, max_ticks=100_000)
    env.reset(seed=0)
    core = env.unwrapped
    core.world.needs[:] = 0.9
    core.world.wallet[:] = 10.0
    core.world.tie_other[:] = -1
    core.world.tie_vals[:] = 0.0
    return core


def _objects(town: Any, aff: int) -> np.ndarray:
    return np.flatnonzero(town.rules.town.obj_type == town.rules.aff_type[aff])


def _kinds(log: EventLog) -> list[EventKind]:
    return [e.kind for e in log.events]


def _queue_two_for_a_shower(town: Any, head_hygiene: float, other_hygiene: float) -> tuple[int, EventLog]:
    """Seats 0 (joined first) and 1 wait for a free shower; returns it and a fresh log."""
    state, rules = town.world, town.rules
    shower = int(_objects(town, rules.opt_wash)[0])
    state.waiting[:2] = shower
    state.request[:2] = rules.opt_wash
    state.joined_tick[:2] = (5, 9)
    state.needs[0, 1], state.needs[1, 1] = head_hygiene, other_hygiene
    log = EventLog()
    log.start_tick(state.tick)
    return shower, log


def test_fifo_when_needs_are_close(town: Any) -> None:
    shower, log = _queue_two_for_a_shower(town, 0.5, 0.4)
    winners, objs = queues.assign(town.world, town.rules, log)
    assert winners.tolist() == [0] and objs.tolist() == [shower]
    assert EventKind.QUEUE_CUT_IN not in _kinds(log) and EventKind.QUEUE_HANDOVER not in _kinds(log)


def test_a_much_needier_stranger_cuts_in(town: Any) -> None:
    shower, log = _queue_two_for_a_shower(town, 0.8, 0.2)
    winners, _ = queues.assign(town.world, town.rules, log)
    assert winners.tolist() == [1]
    assert town.world.waiting[0] == shower, "the head keeps its place"
    cut = [e for e in log.events if e.kind == EventKind.QUEUE_CUT_IN]
    assert [(e.agent, e.other, e.obj) for e in cut] == [(1, 0, shower)]
    delta = town.rules.config.relationships.events["queue_cut_in"]
    assert tie(town.world, 0, 1).tolist() == pytest.approx([delta[0], delta[1], delta[2]])


def test_the_head_hands_its_turn_to_a_needy_friend(town: Any) -> None:
    shower, log = _queue_two_for_a_shower(town, 0.8, 0.2)
    set_tie(town.world, 0, 1, np.array([0.4, 0.4, 0.0]))
    winners, _ = queues.assign(town.world, town.rules, log)
    assert winners.tolist() == [1]
    handover = [e for e in log.events if e.kind == EventKind.QUEUE_HANDOVER]
    assert [(e.agent, e.other, e.obj) for e in handover] == [(0, 1, shower)]
    assert EventKind.QUEUE_CUT_IN not in _kinds(log)
    assert tie(town.world, 0, 1)[0] == pytest.approx(0.4 + town.rules.config.relationships.events["queue_handover"][0])


def test_taking_an_object_without_needing_it_while_a_needier_agent_waits_blocks_it(town: Any) -> None:
    state, rules = town.world, town.rules
    shower, log = _queue_two_for_a_shower(town, 0.7, 0.5)  # a gap below urgency_gap: FIFO holds
    winners, objs = queues.assign(state, rules, log)
    assert winners.tolist() == [0]
    queues.note_blocking(state, rules, winners, objs, log)
    blocked = [e for e in log.events if e.kind == EventKind.OBJECT_BLOCKED]
    assert [(e.agent, e.other, e.obj) for e in blocked] == [(0, 1, shower)]
    assert tie(state, 1, 0)[2] == pytest.approx(rules.config.relationships.events["object_blocked"][2])


def test_a_needy_winner_does_not_block(town: Any) -> None:
    state, rules = town.world, town.rules
    _, log = _queue_two_for_a_shower(town, 0.45, 0.3)
    winners, objs = queues.assign(state, rules, log)
    queues.note_blocking(state, rules, winners, objs, log)
    assert EventKind.OBJECT_BLOCKED not in _kinds(log)


@pytest.mark.parametrize("wait_age", [10, 20])
def test_conflict_intensity_scales_with_the_wait(town: Any, wait_age: int) -> None:
    state, rules = town.world, town.rules
    shower = int(_objects(town, rules.opt_wash)[0])
    state.holder[shower] = 2
    state.using[2] = shower
    state.waiting[0] = shower
    state.wait_age[0] = wait_age
    log = EventLog()
    queues.raise_conflicts(state, rules, np.array([0]), log)
    (conflict,) = [e for e in log.events if e.kind == EventKind.QUEUE_CONFLICT]
    expected = wait_age / rules.config.queues.conflict_wait_ticks
    assert (conflict.agent, conflict.other, conflict.value) == (0, 2, pytest.approx(expected))
    assert tie(state, 0, 2)[2] == pytest.approx(rules.config.relationships.events["queue_conflict"][2] * expected)


def test_finishing_a_meal_next_to_someone_still_eating_is_a_shared_meal(town: Any) -> None:
    state, rules = town.world, town.rules
    fridge = int(_objects(town, rules.opt_eat)[0])
    state.pos[:2] = state.pos[2]
    state.running[1] = rules.opt_eat  # seat 1 is still eating
    log = EventLog()
    after_finish(state, rules, np.array([[0, fridge, rules.opt_eat]]), log)
    shared = [e for e in log.events if e.kind == EventKind.SHARED_MEAL]
    assert [(e.agent, e.other, e.obj) for e in shared] == [(0, 1, fridge)]
    assert tie(state, 1, 0)[1] == pytest.approx(rules.config.relationships.events["shared_meal"][1])
    state.pos[1, 0] += 20  # far away: a meal alone
    log = EventLog()
    after_finish(state, rules, np.array([[0, fridge, rules.opt_eat]]), log)
    assert EventKind.SHARED_MEAL not in _kinds(log)


def _at_work(town: Any, seats: list[int], job: int) -> None:
    state, rules = town.world, town.rules
    state.job[seats] = job
    state.arrived[seats] = True
    state.running[seats] = rules.job_affordance[job]
    state.tick = TICKS_PER_DAY + int(rules.job_start[job]) + 70


def test_a_late_arrival_is_helped_by_an_on_time_coworker(town: Any) -> None:
    state, rules = town.world, town.rules
    _at_work(town, [0, 1], 0)
    state.late[1] = True  # seat 1 is the late arrival of this tick
    n = state.n_agents
    late = np.zeros(n, bool)
    late[1] = True
    log = EventLog()
    emit_shift_events(state, rules, np.zeros(n, bool), late, np.zeros(n, bool), log)
    helped = [e for e in log.events if e.kind == EventKind.COWORKER_HELPED]
    assert [(e.agent, e.other) for e in helped] == [(0, 1)]
    assert tie(state, 1, 0)[0] > rules.config.relationships.events["coworker_helped"][0] - 1e-6


def test_an_absent_seats_shift_is_covered_by_a_coworker_at_work(town: Any) -> None:
    state, rules = town.world, town.rules
    _at_work(town, [0], 0)
    state.job[1] = 0
    n = state.n_agents
    absent = np.zeros(n, bool)
    absent[1] = True
    log = EventLog()
    emit_shift_events(state, rules, np.zeros(n, bool), np.zeros(n, bool), absent, log)
    covered = [e for e in log.events if e.kind == EventKind.SHIFT_COVERED]
    assert [(e.agent, e.other) for e in covered] == [(0, 1)]
    assert tie(state, 1, 0)[2] == pytest.approx(rules.config.relationships.events["shift_covered"][2])


def test_a_chat_toward_an_avoided_rival_is_blocked_without_a_draw(town: Any) -> None:
    state, rules = town.world, town.rules
    set_tie(state, 0, 1, np.array([0.0, 0.0, rules.config.relationships.avoid_rivalry]))
    before = state.tie_vals.copy()
    rng_state = state.rng.bit_generator.state
    log = EventLog()
    partner = attempt_chats(state, rules, np.array([0]), np.array([1]), log)
    assert _kinds(log) == [EventKind.CHAT_BLOCKED]
    assert (partner == -1).all() and not state.last_ok[0]
    assert np.array_equal(state.tie_vals, before), "a blocked chat changes no tie"
    assert state.rng.bit_generator.state == rng_state


def test_the_navigator_steps_away_from_a_rivals_fridge(town: Any) -> None:
    env = townlet_env.parallel_env(num_agents=2, max_ticks=100_000)
    env.reset(seed=0)
    core = env.unwrapped
    state, rules = core.world, core.rules
    state.needs[:] = 0.5
    state.wallet[:] = 10.0
    fridges = _objects(core, rules.opt_eat)
    field = rules.town.first_object_field + fridges
    nearest = int(fridges[np.argmin(rules.town.dist[field, state.pos[0, 0], state.pos[0, 1]])])
    state.waiting[1] = nearest  # the rival queues at seat 0's nearest fridge
    state.request[1] = rules.opt_eat
    state.option[1] = Option.EAT
    state.holder[nearest] = 1  # and holds it, so it stays there this tick
    state.using[1] = nearest
    state.waiting[1] = -1
    state.running[1] = rules.opt_eat
    state.remaining[1] = 10
    set_tie(state, 0, 1, np.array([0.0, 0.0, 0.9]))
    env.step({"agent_0": int(Option.EAT), "agent_1": int(Option.EAT)})
    avoided = [e for e in core.last_events if e.kind == EventKind.RIVAL_AVOIDED]
    assert [(e.agent, e.other, e.obj) for e in avoided] == [(0, 1, nearest)]
    assert state.target[0] >= 0 and state.target[0] != nearest


@pytest.mark.parametrize("kind", list(RelEvent))
def test_every_relationship_event_applies_its_config_deltas_both_ways(town: Any, kind: RelEvent) -> None:
    state, rules = town.world, town.rules
    log = EventLog()
    apply_event(state, rules, 0, 1, kind, log, scale=0.5)
    delta = 0.5 * np.asarray(rules.config.relationships.events[REL_EVENT_KEYS[kind]], np.float32)
    expected = np.clip(delta, (-1, -1, 0), (1, 1, 1))
    assert tie(state, 0, 1) == pytest.approx(expected) and tie(state, 1, 0) == pytest.approx(expected)
    assert [(e.kind, e.value) for e in log.events] == [(EventKind.RELATIONSHIP, int(kind))]


def test_the_event_table_must_name_every_relationship_event() -> None:
    events = dict(make_config().relationships.events)
    del events["queue_cut_in"]
    with pytest.raises(ConfigError, match="queue_cut_in"):
        make_config(relationships={"events": events})
