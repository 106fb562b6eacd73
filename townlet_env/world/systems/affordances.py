"""Affordances: start (preconditions, price, stock), per-tick effects, completion, cancel.

Prices are charged once, at start; completion effects apply all at once at the end, so an
interrupted affordance gives nothing back but also does not refund. Cooked meals go into
the fridge nearest the stove (``produces_into``), where ``eat_meal`` can reach them.
"""

from __future__ import annotations

import numpy as np

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event

SHARED_MEAL_RADIUS = 4


def on_shift(state: WorldState, rules: Rules, agents: np.ndarray) -> np.ndarray:
    """Whether each agent's shift is running now (False for the unemployed)."""
    job = state.job[agents]
    has = job >= 0
    j = np.where(has, job, 0)
    minute = state.tick % TICKS_PER_DAY
    if len(rules.job_start) == 0:
        return np.zeros(len(agents), dtype=bool)
    return has & (minute >= rules.job_start[j]) & (minute < rules.job_end[j])


def try_start(
    state: WorldState, rules: Rules, agents: np.ndarray, objs: np.ndarray, affs: np.ndarray, log: EventLog
) -> np.ndarray:
    """Start ``affs[i]`` for ``agents[i]`` at ``objs[i]``; return which started.

    Failed starts release the object (no cooldown) and emit ``AFFORDANCE_FAIL``.
    """
    ok = np.ones(len(agents), dtype=bool)
    needed = {rules.aff_precondition[a] for a in np.unique(affs).tolist()} - {None}
    if needed:
        ctx = {
            "hunger": state.needs[agents, 0],
            "hygiene": state.needs[agents, 1],
            "energy": state.needs[agents, 2],
            "wallet": state.wallet[agents],
            "price": rules.aff_price[affs],
            "minute": state.tick % TICKS_PER_DAY,
            "on_shift": on_shift(state, rules, agents).astype(np.int8),
        }
        for k, key in enumerate(rules.stock_keys):
            ctx[f"stock.{key}"] = state.stock[objs, k]
        for a in np.unique(affs).tolist():
            expr = rules.aff_precondition[a]
            if expr is not None:
                sel = affs == a
                ok[sel] &= np.broadcast_to(expr.evaluate(ctx), ok.shape)[sel]
    exclusive = rules.type_capacity[rules.aff_type[affs]] == 1
    good, bad = agents[ok], agents[~ok]
    if good.size:
        ga, go = affs[ok], objs[ok]
        state.wallet[good] -= rules.aff_price[ga]
        np.subtract.at(state.stock, go, rules.aff_consumes[ga])
        state.running[good] = ga
        state.remaining[good] = rules.aff_duration[ga]
        state.using[good] = go
        excl = exclusive[ok]
        state.holder[go[excl]] = good[excl]
        for i, a, o in zip(good.tolist(), ga.tolist(), go.tolist(), strict=True):
            log.emit(EventKind.AFFORDANCE_START, i, obj=o, value=a)
    if bad.size:
        bo = objs[~ok]
        release = bo[exclusive[~ok] & (state.holder[bo] == bad)]
        state.holder[release] = -1
        state.last_ok[bad] = False
        for i, a, o in zip(bad.tolist(), affs[~ok].tolist(), bo.tolist(), strict=True):
            log.emit(EventKind.AFFORDANCE_FAIL, i, obj=o, value=a)
    return ok


def tick_affordances(state: WorldState, rules: Rules, log: EventLog) -> tuple[np.ndarray, np.ndarray]:
    """Advance running affordances one tick; return (finished agents, their affordances)."""
    idx = np.flatnonzero(state.running >= 0)
    if idx.size == 0:
        return idx, idx
    aff = state.running[idx]
    state.needs[idx] += rules.aff_per_tick[aff]
    state.remaining[idx] -= 1
    done = state.remaining[idx] <= 0
    agents, affs = idx[done], aff[done]
    if agents.size:
        _finish(state, rules, agents, affs, log)
    return agents, affs


def _finish(state: WorldState, rules: Rules, agents: np.ndarray, affs: np.ndarray, log: EventLog) -> None:
    objs = state.using[agents]
    state.needs[agents] += rules.aff_effects[affs]
    produces = rules.aff_produces[affs].any(axis=1)
    if produces.any():
        targets = rules.aff_produce_target[affs[produces], objs[produces]]
        np.add.at(state.stock, targets, rules.aff_produces[affs[produces]])
    state.cooldown_until[agents, rules.aff_type[affs]] = state.tick + rules.config.queues.cooldown_ticks
    held = state.holder[objs] == agents
    state.holder[objs[held]] = -1
    state.running[agents] = -1
    state.using[agents] = -1
    state.wait_age[agents] = 0
    state.last_ok[agents] = True
    for i, a, o in zip(agents.tolist(), affs.tolist(), objs.tolist(), strict=True):
        log.emit(EventKind.AFFORDANCE_FINISH, i, obj=o, value=a)
    meal = agents[rules.aff_shared_meal[affs]]
    if meal.size > 1:
        _shared_meal(state, rules, meal, log)


def _shared_meal(state: WorldState, rules: Rules, agents: np.ndarray, log: EventLog) -> None:
    """Hook ``shared_meal``: agents finishing a meal together, close by, warm to each other."""
    pos = state.pos[agents].astype(np.int32)
    for a in range(len(agents)):
        for b in range(a + 1, len(agents)):
            if np.abs(pos[a] - pos[b]).sum() <= SHARED_MEAL_RADIUS:
                apply_event(state, rules, int(agents[a]), int(agents[b]), RelEvent.SHARED_MEAL, log)


def cancel(state: WorldState, rules: Rules, agents: np.ndarray, log: EventLog) -> None:
    """Drop whatever ``agents`` are doing or waiting for; held objects are freed, no effects."""
    if agents.size == 0:
        return
    running = agents[state.running[agents] >= 0]
    for i in running.tolist():
        log.emit(EventKind.AFFORDANCE_FAIL, i, obj=int(state.using[i]), value=int(state.running[i]))
    objs = state.using[running]
    held = state.holder[objs] == running
    state.holder[objs[held]] = -1
    state.running[agents] = -1
    state.using[agents] = -1
    state.remaining[agents] = 0
    state.waiting[agents] = -1
