"""Affordances: start (preconditions, price, stock), per-tick effects, completion, cancel.

Prices are charged once, at start; completion effects apply all at once at the end, so an
interrupted affordance gives nothing back but also does not refund. Cooked meals go into
the fridge nearest the stove (``produces_into``), where ``eat_meal`` can reach them. A meal
finished next to someone still eating is a shared meal (the ``shared_meal`` hook).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventKind, EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.relationships import apply_event

SHARED_MEAL_RADIUS = 4
_NEED_COLUMN = {"hunger": 0, "hygiene": 1, "energy": 2}
_NONE = np.zeros(0, dtype=np.int64)


def on_shift(state: WorldState, rules: Rules, agents: np.ndarray) -> np.ndarray:
    """Whether each agent's shift is running now (False for the unemployed)."""
    job = state.job[agents]
    has = job >= 0
    j = np.where(has, job, 0)
    minute = state.tick % TICKS_PER_DAY
    if len(rules.job_start) == 0:
        return np.zeros(len(agents), dtype=bool)
    return has & (minute >= rules.job_start[j]) & (minute < rules.job_end[j])


def _context(
    state: WorldState, rules: Rules, agents: np.ndarray, objs: np.ndarray, aff: int, names: frozenset[str]
) -> dict[str, np.ndarray | float]:
    """The precondition names ``names`` evaluated for ``agents`` at ``objs`` (only those asked for)."""
    ctx: dict[str, np.ndarray | float] = {}
    for name in names:
        if name in _NEED_COLUMN:
            ctx[name] = state.needs[agents, _NEED_COLUMN[name]]
        elif name == "wallet":
            ctx[name] = state.wallet[agents]
        elif name == "price":
            ctx[name] = float(rules.aff_price[aff] * state.price_factor[aff])
        elif name == "minute":
            ctx[name] = float(state.tick % TICKS_PER_DAY)
        elif name == "on_shift":
            ctx[name] = on_shift(state, rules, agents).astype(np.int8)
        else:  # stock.<key>; the manifest loader has checked the key exists
            ctx[name] = state.stock[objs, rules.stock_keys.index(name.removeprefix("stock."))]
    return ctx


def try_start(
    state: WorldState, rules: Rules, agents: np.ndarray, objs: np.ndarray, affs: np.ndarray, log: EventLog
) -> np.ndarray:
    """Start ``affs[i]`` for ``agents[i]`` at ``objs[i]``; return which started.

    Failed starts release the object (no cooldown) and emit ``AFFORDANCE_FAIL``.
    """
    ok = np.ones(len(agents), dtype=bool)
    for a in set(affs.tolist()):
        expr = rules.aff_precondition[a]
        if expr is None:
            continue
        sel = np.flatnonzero(affs == a)
        ctx = _context(state, rules, agents[sel], objs[sel], a, expr.names)
        ok[sel] = np.broadcast_to(expr.evaluate(ctx), sel.shape)
    exclusive = rules.type_capacity[rules.aff_type[affs]] == 1
    good, bad = agents[ok], agents[~ok]
    if good.size:
        ga, go = affs[ok], objs[ok]
        price = rules.aff_price[ga] * state.price_factor[ga]  # a price spike scales the list price
        state.wallet[good] -= price
        state.paid[good] = price
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


def after_finish(state: WorldState, rules: Rules, done: np.ndarray, log: EventLog) -> tuple[np.ndarray, np.ndarray]:
    """Events and ``after`` hooks for the (agent, object, affordance) rows ``advance`` finished."""
    if done.shape[0] == 0:
        return _NONE, _NONE
    agents, affs = done[:, 0], done[:, 2]
    for i, o, a in done.tolist():
        log.emit(EventKind.AFFORDANCE_FINISH, i, obj=o, value=a)
    meal = rules.aff_shared_meal[affs]
    if meal.any():
        _shared_meal(state, rules, agents[meal], done[meal, 1], log)
    return agents, affs


@njit(cache=True)
def advance(s, r, tick):
    """Per-tick effects and countdown, then completion; return (agent, object, affordance) rows.

    ``s`` and ``r`` are the tick's state and rule records (``simulation.TickArrays`` and
    ``TickRules``). The cooldown applies to single-occupancy objects only: it keeps one agent
    from hogging a queue, and shared objects (workplaces) have no queue to hog.
    """
    running, remaining, using, needs, stock = s.running, s.remaining, s.using, s.needs, s.stock
    cooldown_until, holder, wait_age, last_ok = s.cooldown_until, s.holder, s.wait_age, s.last_ok
    per_tick, effects, produces, produce_target = r.aff_per_tick, r.aff_effects, r.aff_produces, r.aff_produce_target
    aff_type, type_capacity = r.aff_type, r.type_capacity
    cooldown_end = tick + r.cooldown_ticks
    done = np.empty((running.shape[0], 3), dtype=np.int64)
    n_done = 0
    for i in range(running.shape[0]):
        a = running[i]
        if a < 0:
            continue
        for k in range(needs.shape[1]):
            needs[i, k] += per_tick[a, k]
        remaining[i] -= 1
        if remaining[i] > 0:
            continue
        obj = using[i]
        for k in range(needs.shape[1]):
            needs[i, k] += effects[a, k]
        target = produce_target[a, obj]
        if target >= 0:
            for k in range(stock.shape[1]):
                stock[target, k] += produces[a, k]
        if type_capacity[aff_type[a]] == 1:
            cooldown_until[i, aff_type[a]] = cooldown_end
        if holder[obj] == i:
            holder[obj] = -1
        running[i] = -1
        using[i] = -1
        wait_age[i] = 0
        last_ok[i] = True
        done[n_done, 0], done[n_done, 1], done[n_done, 2] = i, obj, a
        n_done += 1
    return done[:n_done]


def _shared_meal(state: WorldState, rules: Rules, agents: np.ndarray, objs: np.ndarray, log: EventLog) -> None:
    """Hook ``shared_meal``: an agent finishing a meal shares it with every agent within
    ``SHARED_MEAL_RADIUS`` still eating (running a shared-meal affordance) or finishing one
    now (each pair once): a ``SHARED_MEAL`` event and a warming tie event.
    """
    eating = np.flatnonzero((state.running >= 0) & rules.aff_shared_meal[np.maximum(state.running, 0)])
    pos = state.pos.astype(np.int32)
    for k, (i, obj) in enumerate(zip(agents.tolist(), objs.tolist(), strict=True)):
        company = np.concatenate((eating, agents[k + 1 :]))
        near = company[np.abs(pos[company] - pos[i]).sum(axis=1) <= SHARED_MEAL_RADIUS]
        for j in near[near != i].tolist():
            log.emit(EventKind.SHARED_MEAL, i, other=j, obj=obj)
            apply_event(state, rules, i, j, RelEvent.SHARED_MEAL, log)


def cancel(state: WorldState, rules: Rules, agents: np.ndarray, log: EventLog) -> None:
    """Drop whatever ``agents`` are doing or waiting for; held objects are freed, no effects."""
    if agents.size == 0:
        return
    dropped = _cancel(agents, state.running, state.using, state.remaining, state.waiting, state.holder)
    for i, obj, aff in dropped.tolist():
        log.emit(EventKind.AFFORDANCE_FAIL, i, obj=obj, value=aff)


@njit(cache=True)
def _cancel(agents, running, using, remaining, waiting, holder):
    """Clear activity of ``agents``; return (agent, object, affordance) rows of dropped uses."""
    dropped = np.empty((agents.shape[0], 3), dtype=np.int64)
    n = 0
    for i in agents:
        n = cancel_one(i, running, using, remaining, waiting, holder, dropped, n)
    return dropped[:n]


@njit(cache=True)
def cancel_one(i, running, using, remaining, waiting, holder, dropped, n):
    """Clear seat ``i``'s activity (freeing a held object); record a dropped use in ``dropped[n]``.

    Returns the new count of rows in ``dropped``.
    """
    if running[i] >= 0:
        obj = using[i]
        dropped[n, 0], dropped[n, 1], dropped[n, 2] = i, obj, running[i]
        n += 1
        if obj >= 0 and holder[obj] == i:
            holder[obj] = -1
    running[i] = -1
    using[i] = -1
    remaining[i] = 0
    waiting[i] = -1
    return n
