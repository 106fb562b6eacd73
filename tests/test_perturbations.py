"""Perturbations: config, what each kind does to the town, the scheduler's limits, snapshots."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import ConfigError, make_config
from townlet_env.perturbations.kinds import PerturbationError
from townlet_env.perturbations.scheduler import NAME
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.events import EventKind, PerturbationKind

MANUAL = {k: {"per_day": 0.0} for k in ("price_spike", "power_outage", "water_outage", "arranged_meet", "city_event")}
P = PerturbationKind


def town(seed: int = 0, **section: Any) -> tuple[Any, Any]:
    """A reset default town with the scheduler on and every schedule off unless ``section`` says."""
    kw = {k: section.pop(k) for k in ("map", "num_agents", "max_ticks") if k in section}
    cfg = {"enabled": True, **{k: {**v, **section.pop(k, {})} for k, v in MANUAL.items()}, **section}
    env = townlet_env.parallel_env(perturbations=cfg, **kw)
    env.reset(seed=seed)
    return env, env.unwrapped.attachments.get(NAME)


def expert_until(env: Any, expert: ScriptedExpert, done: Any, limit: int = 3000) -> None:
    for _ in range(limit):
        if done(env.unwrapped.world):
            return
        env.step(expert.act_dict(env))
    raise AssertionError("condition never held")


def kinds_of(events: list, kind: EventKind) -> list[int]:
    return [int(e.value) for e in events if e.kind == kind]


def test_off_by_default_and_a_disabled_section_keeps_the_identity() -> None:
    env = townlet_env.parallel_env()
    assert env.unwrapped.attachments.get(NAME) is None
    base = make_config()
    assert make_config(perturbations={"jitter": 0.1}).identity() == base.identity()
    assert make_config(perturbations={"enabled": True}).identity() != base.identity()


def test_bad_config_is_refused_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"price_spike.keys.*'grocer'.*choose from"):
        make_config(perturbations={"price_spike": {"keys": ["grocer"]}})
    with pytest.raises(ConfigError, match=r"perturbations\.city_event\.typo"):
        make_config(perturbations={"city_event": {"typo": 1}})
    with pytest.raises(ConfigError, match="duration"):
        make_config(perturbations={"city_event": {"duration": [50, 10]}})
    with pytest.raises(PerturbationError, match=r"unknown object types.*'jacuzzi'"):
        townlet_env.parallel_env(perturbations={"enabled": True, "water_outage": {"object_types": ["jacuzzi"]}})


def test_a_price_spike_changes_what_agents_pay() -> None:
    env, sched = town()
    w, rules = env.unwrapped.world, env.unwrapped.rules
    expert = ScriptedExpert(rules, seed=0)
    meal = float(rules.aff_price[rules.opt_eat])
    started = sched.trigger("price_spike", key="meal", magnitude=2.0, duration=1440)
    assert started["key"] == "meal" and w.price_factor[rules.opt_eat] == 2.0
    assert w.price_factor[rules.opt_wash] == 1.0  # other keys untouched
    before = w.wallet.copy()
    expert_until(env, expert, lambda s: (s.running == rules.opt_eat).any())
    eater = int(np.flatnonzero(w.running == rules.opt_eat)[0])
    assert w.paid[eater] == pytest.approx(2.0 * meal)
    assert before[eater] - w.wallet[eater] == pytest.approx(2.0 * meal, abs=0.02)  # wages are 0.01/tick
    # the mask asks for the spiked price: a wallet between list and spiked price may not EAT
    w.wallet[:] = 1.5 * meal
    w.option[:], w.commit_until[:], w.running[:] = int(Option.WAIT), 0, -1  # nobody under way: the mask decides
    env.unwrapped.refresh_action_masks()
    free = w.cooldown_until[:, rules.option_type[0]] <= w.tick
    assert free.sum() >= 4 and env.unwrapped.action_masks()[free, Option.EAT].sum() == 0
    sched.end(started["id"])
    assert (w.price_factor == 1.0).all()
    env.unwrapped.refresh_action_masks()
    assert env.unwrapped.action_masks()[free, Option.EAT].all()


def test_an_outage_refunds_users_releases_queues_and_ends_cleanly() -> None:
    env, sched = town(water_outage={"share": 1.0})
    w, rules = env.unwrapped.world, env.unwrapped.rules
    expert = ScriptedExpert(rules, seed=0)
    expert_until(env, expert, lambda s: (s.running == rules.opt_wash).any())
    user = int(np.flatnonzero(w.running == rules.opt_wash)[0])
    shower = int(w.using[user])
    wallet, paid = float(w.wallet[user]), float(w.paid[user])
    assert paid > 0
    done = sched.trigger("water_outage", duration=50)
    assert done["refunded"] >= 1 and shower in done["objects"]
    assert w.wallet[user] == pytest.approx(wallet + paid)
    assert w.running[user] == -1 and w.holder[shower] == -1 and w.out_of_service[shower]
    assert not np.isin(w.waiting, done["objects"]).any()
    env.unwrapped.refresh_action_masks()
    assert env.unwrapped.action_masks()[:, Option.WASH].sum() == 0
    for _ in range(60):
        env.step(expert.act_dict(env))
        assert not np.isin(w.using, done["objects"]).any() and not np.isin(w.waiting, done["objects"]).any()
        if not sched.active:
            break
    assert not sched.active and not w.out_of_service.any()
    assert P.WATER_OUTAGE in kinds_of(env.unwrapped.last_events, EventKind.PERTURBATION_END)


def test_the_expert_reroutes_around_a_partial_outage() -> None:
    env, sched = town(power_outage={"share": 0.5}, water_outage={"share": 0.5})
    w, rules = env.unwrapped.world, env.unwrapped.rules
    expert = ScriptedExpert(rules, seed=0)
    expert_until(env, expert, lambda s: s.tick >= 300)
    out = sched.trigger("water_outage", duration=600)["objects"]
    used: set[int] = set()
    for _ in range(600):
        env.step(expert.act_dict(env))
        assert not np.isin(w.using, out).any() and not np.isin(w.waiting, out).any()
        used |= set(w.using[w.running == rules.opt_wash].tolist())
    assert used, "nobody showered during the outage: the expert did not reroute"


def test_an_arranged_meet_gives_a_bonus_when_the_pair_meets() -> None:
    env, sched = town()
    w, rules = env.unwrapped.world, env.unwrapped.rules
    started = sched.trigger("arranged_meet", targets=[1, 2], duration=100)
    assert w.meet_partner[1] == 2 and w.meet_partner[2] == 1
    fridge = int(np.flatnonzero(rules.town.obj_type == rules.manifest.object_types.index("fridge"))[0])
    fy, fx = rules.town.obj_pos[fridge]
    floor = [(int(y), int(x)) for y, x in np.argwhere(rules.town.walkable) if abs(y - fy) + abs(x - fx) <= 2]
    w.pos[1], w.pos[2] = floor[0], floor[1]
    env.step(dict.fromkeys(env.agents, int(Option.WAIT)))
    ev = [e for e in env.unwrapped.last_events if e.kind == EventKind.PERTURBATION_END]
    assert ev and ev[0].obj >= 0 and (ev[0].agent, ev[0].other) == (1, 2)
    assert any(e.kind == EventKind.RELATIONSHIP and {e.agent, e.other} == {1, 2} for e in env.unwrapped.last_events)
    assert not sched.active and (w.meet_partner == -1).all() and started["targets"] == [1, 2]
    assert sched.counts[[1, 2]].tolist() == [1, 1]


def test_a_city_event_holds_exits_until_its_grace_ends() -> None:
    env, sched = town(exit_grace_ticks=20)
    w = env.unwrapped.world
    started = sched.trigger("city_event", duration=30)
    w.needs[3, 0] = 0.0
    w.zero_ticks[3] = 10**6  # would faint at once
    while w.alive[3]:
        env.step(dict.fromkeys(env.agents, int(Option.WAIT)))
        w.needs[3, 0] = 0.0
    assert w.tick - 1 >= started["end"] + 20  # nobody left before the grace was over
    departures = [e for e in env.unwrapped.last_events if e.kind == EventKind.DEPARTURE]
    assert [(e.agent, e.value) for e in departures] == [(3, 1)]  # seat 3, reason 1 (faint)
    arrivals: list = []
    while not arrivals:
        env.step(dict.fromkeys(env.agents, int(Option.WAIT)))
        arrivals = [e for e in env.unwrapped.last_events if e.kind == EventKind.ARRIVAL]
    assert [(e.agent, e.value) for e in arrivals] == [(3, 1)]  # seat 3, generation 1


def test_schedule_limits_hold_over_a_busy_week() -> None:
    busy = {k: {"per_day": 6.0, "cooldown_ticks": 0, "duration": [20, 60], "max_per_window": 3} for k in MANUAL}
    env, sched = town(seed=3, max_ticks=7 * 1440, max_concurrent=2, stagger_ticks=15, max_per_window=8, **busy)
    expert = ScriptedExpert(env.unwrapped.rules, seed=3)
    starts: list[tuple[int, int]] = []
    while env.agents:
        env.step(expert.act_dict(env))
        starts += [(e.tick, int(e.value)) for e in env.unwrapped.last_events if e.kind == EventKind.PERTURBATION_START]
        assert len(sched.active) <= 2
    ticks = [t for t, _ in starts]
    assert len(starts) > 30 and all(b - a >= 15 for a, b in itertools.pairwise(ticks))
    for t in ticks:  # window caps: all kinds, and per kind
        window = [k for s, k in starts if t - 1440 < s <= t]
        assert len(window) <= 8 and max(window.count(k) for k in set(window)) <= 3


def test_same_seed_same_perturbations_and_a_snapshot_resumes_them(tmp_path: Path) -> None:
    def run(seed: int, ticks: int, env: Any = None) -> tuple[Any, list]:
        env = env or town(seed, arranged_meet={"per_day": 4.0}, price_spike={"per_day": 4.0})[0]
        expert = env.unwrapped.attachments.get("expert")
        if expert is None:
            expert = ScriptedExpert(env.unwrapped.rules, seed=seed)
            env.unwrapped.attachments.attach("expert", expert)
        seen = []
        for _ in range(ticks):
            env.step(expert.act_dict(env))
            seen += [tuple(e) for e in env.unwrapped.last_events if e.kind >= EventKind.PERTURBATION_START]
        return env, seen

    _, full = run(4, 1200)
    assert full == run(4, 1200)[1] and full != run(5, 1200)[1]
    env, head = run(4, 600)
    path = townlet_env.save_snapshot(env, tmp_path / "p.snap")
    loaded = townlet_env.load_snapshot(path)
    _, tail = run(4, 600, loaded)
    assert head + tail == full
