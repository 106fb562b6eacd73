"""Town-life figures (``townlet_env.town_life``) and the shipped ``crowded`` config."""

from __future__ import annotations

import townlet_env
from townlet_env.config import TICKS_PER_DAY, load_config
from townlet_env.town_life import TownLifeTracker
from townlet_env.world.events import Event, EventKind


def _feed(tracker: TownLifeTracker, env: object, events: list[Event], tick: int) -> None:
    state = env.unwrapped.world  # type: ignore[attr-defined]
    state.tick = tick + 1
    tracker.update(state, [e for e in events if e.tick == tick])


def test_a_conflict_escalates_with_two_avoidances_within_a_day_after_it() -> None:
    env = townlet_env.parallel_env(num_agents=4)
    env.reset(seed=0)
    events = [
        Event(100, EventKind.QUEUE_CONFLICT, 0, other=1),  # escalates: 2 avoidances in its day
        Event(110, EventKind.QUEUE_CONFLICT, 2, other=3),  # one avoidance only: does not
        Event(200, EventKind.RIVAL_AVOIDED, 1, other=0),
        Event(300, EventKind.CHAT_BLOCKED, 0, other=1),
        Event(400, EventKind.RIVAL_AVOIDED, 3, other=2),
        Event(TICKS_PER_DAY + 50, EventKind.QUEUE_CONFLICT, 2, other=3),  # day 1
        Event(TICKS_PER_DAY + 120 + TICKS_PER_DAY, EventKind.RIVAL_AVOIDED, 2, other=3),  # too late
    ]
    tracker = TownLifeTracker()
    for tick in sorted({e.tick for e in events} | {TICKS_PER_DAY - 1}):
        _feed(tracker, env, events, tick)
    day0, day1, day2 = tracker.days()
    assert (day0.conflicts, day0.escalated, day0.escalation, day0.avoidances) == (2, 1, 0.5, 3)
    assert (day1.conflicts, day1.escalated, day1.escalation) == (1, 0, 0.0)
    assert (day2.conflicts, day2.escalation, day2.avoidances) == (0, 0.0, 1)
    assert tracker.escalates(100, 1, 0), "the pair is unordered"
    assert not tracker.escalates(300, 0, 1), "only avoidances after the conflict count"


def test_the_tie_share_counts_strong_trust_or_rivalry() -> None:
    env = townlet_env.parallel_env(num_agents=4)
    env.reset(seed=0)
    state = env.unwrapped.world
    state.tie_other[:] = -1
    state.tie_other[0, 0], state.tie_vals[0, 0] = 1, (-0.4, 0.0, 0.0)  # distrust counts
    state.tie_other[1, 0], state.tie_vals[1, 0] = 0, (0.0, 0.9, 0.0)  # familiarity alone does not
    state.tie_other[2, 0], state.tie_vals[2, 0] = 3, (0.0, 0.0, 0.31)
    tracker = TownLifeTracker()
    state.tick = 1
    tracker.update(state, [])
    assert tracker.days()[0].tie_share == 0.5


def test_crowded_is_a_shipped_config_loaded_by_name() -> None:
    cfg = load_config("crowded")
    assert 16 <= cfg.num_agents <= 24
    assert cfg.config_id != load_config("default").config_id
    env = townlet_env.parallel_env("crowded")
    assert len(env.possible_agents) == cfg.num_agents
