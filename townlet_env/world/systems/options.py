"""Option mode: intents, the navigator and the commit window (the mask is in option_mask.py).

A new option cancels what the agent was doing and commits it for ``commit_ticks``: while
committed, the mask allows only the current option, unless some need falls below
``hard_need_threshold``. An option picks a target object once (the nearest usable one,
penalised by its queue), walks the precomputed shortest path there, queues if the object
is single-occupancy, and uses it. It completes when its affordance ends, when it fails,
or (``GO_HOME``) on arrival; ``WORK`` keeps working until the shift ends.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventKind, EventLog
from townlet_env.world.map import DX, DY, UNREACHABLE
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import queues
from townlet_env.world.systems.affordances import cancel_one, on_shift, try_start
from townlet_env.world.systems.chat import attempt_chats

N_OPTIONS = len(Option)
# Plain ints: enum attribute access is slow in hot code and unavailable inside numba kernels.
WAIT, EAT, COOK, WASH, SLEEP, WORK, CHAT, GO_HOME = (int(o) for o in Option)
QUEUE_PENALTY = 12  # ticks of walking an agent trades for one fewer agent in the queue
WORK_LEAD_TICKS = 120  # WORK becomes available this long before a shift starts


def option_affordances(state: WorldState, rules: Rules) -> np.ndarray:
    """The affordance each agent's current option uses (-1 for none)."""
    return _option_affordances(state.option, state.job, rules.option_affordance, rules.job_affordance)


@njit(cache=True)
def _option_affordances(option, job, table, job_affordance):
    out = np.empty(option.shape[0], dtype=np.int64)
    for i in range(option.shape[0]):
        out[i] = table[option[i]]
        if option[i] == WORK and job[i] >= 0 and job_affordance.shape[0] > 0:
            out[i] = job_affordance[job[i]]
    return out


@njit(cache=True)
def _targets(
    agents, option, affs, home, pos, alive, tie_other, tie_vals, holder, waiting, stock, consumes,
    aff_type, obj_type, dist, first_object, home_bed, opt_sleep, target, running,
):  # fmt: skip
    n_obj = obj_type.shape[0]
    load = np.zeros(n_obj, dtype=np.int64)
    for j in range(waiting.shape[0]):
        if waiting[j] >= 0:
            load[waiting[j]] += 1
    for m in range(n_obj):
        if holder[m] >= 0:
            load[m] += 1
    for j in range(alive.shape[0]):  # agents already walking to a shared-by-queue object count too
        opt = option[j]
        if alive[j] and target[j] >= 0 and running[j] < 0 and waiting[j] < 0 and (opt in (EAT, COOK, WASH)):
            load[target[j]] += 1
    for i in agents:
        opt, a = option[i], affs[i]
        y, x = pos[i, 0], pos[i, 1]
        best = -1
        if opt == GO_HOME:
            best = home[i]
        elif opt == CHAT:
            best_score = 0.0
            for k in range(tie_other.shape[1]):  # the closest friend first
                other = tie_other[i, k]
                score = tie_vals[i, k, 0] + tie_vals[i, k, 1] - tie_vals[i, k, 2]
                if other >= 0 and alive[other] and score > best_score:
                    best, best_score = other, score
            if best < 0:  # else the nearest living agent
                best_d = 1 << 30
                for j in range(alive.shape[0]):
                    if j != i and alive[j]:
                        d = abs(pos[j, 0] - y) + abs(pos[j, 1] - x)
                        if d < best_d:
                            best, best_d = j, d
        elif a == opt_sleep:
            best = home_bed[home[i]]
        elif a >= 0:
            best_score = 1 << 14
            for m in range(n_obj):
                if obj_type[m] != aff_type[a]:
                    continue
                lacking = False
                for s in range(consumes.shape[1]):
                    lacking = lacking or stock[m, s] < consumes[a, s]
                d = dist[first_object + m, y, x]
                if lacking or d >= UNREACHABLE:
                    continue
                score = d + QUEUE_PENALTY * load[m]
                if score < best_score:
                    best, best_score = m, score
        target[i] = best


def _complete(state: WorldState, agents: np.ndarray, ok: bool) -> None:
    if agents.size == 0:
        return
    state.option[agents] = WAIT
    state.commit_until[agents] = state.tick
    state.target[agents] = -1
    state.last_ok[agents] = ok


def step_options(
    state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog
) -> np.ndarray | None:
    """Apply option actions, navigate, queue and start affordances; return chat partners (None: no chat)."""
    dropped, arrived, n_chat = _plan(
        actions, mask, state.tick, state.option, state.commit_until, state.target, state.alive, state.job,
        state.running, state.using, state.remaining, state.waiting, state.holder, state.last_ok, state.home,
        state.pos, state.tie_other, state.tie_vals, state.stock, *rules.plan_constants,
    )  # fmt: skip
    for i, obj, aff in dropped.tolist():
        log.emit(EventKind.AFFORDANCE_FAIL, i, obj=obj, value=aff)
    chat_partner = _step_chats(state, rules, log) if n_chat else None
    if arrived.size:
        going_home = state.option[arrived] == GO_HOME
        _complete(state, arrived[going_home], True)
        here = arrived[~going_home]
        if here.size:
            _request(state, rules, here, option_affordances(state, rules)[here], log)
    return chat_partner


@njit(cache=True)
def _plan(
    actions, mask, tick, option, commit_until, target, alive, job, running, using, remaining, waiting, holder,
    last_ok, home, pos, tie_other, tie_vals, stock, commit_ticks, job_start, job_end, aff_table, job_aff,
    consumes, aff_type, obj_type, dist, step, walkable, first_object, first_home, home_bed, opt_sleep,
):  # fmt: skip
    """Resolve actions (masked ones continue the committed option, else WAIT), switch options
    (cancelling what was under way), end WORK outside its window, pick targets, and walk.

    Returns (dropped (agent, object, affordance) rows for events, seats that arrived at their
    target, number of CHAT seats).
    """
    n = alive.shape[0]
    dropped = np.empty((n, 3), dtype=np.int64)
    untargeted = np.empty(n, dtype=np.int64)
    n_drop = n_un = 0
    minute = tick % TICKS_PER_DAY
    for i in range(n):
        if not alive[i]:
            continue
        a = actions[i]
        if mask[i, a] == 0:
            a = option[i] if commit_until[i] > tick else WAIT
        changed = a != option[i]
        if changed:
            n_drop = cancel_one(i, running, using, remaining, waiting, holder, dropped, n_drop)
            option[i] = a
            commit_until[i] = tick + commit_ticks
            target[i] = -1
        if a == WORK:
            j = job[i]
            if j < 0 or job_start.shape[0] == 0 or not (job_start[j] - WORK_LEAD_TICKS <= minute < job_end[j]):
                if not changed:  # the shift is over: WORK completes
                    n_drop = cancel_one(i, running, using, remaining, waiting, holder, dropped, n_drop)
                    _complete_one(i, True, tick, option, commit_until, target, last_ok)
                continue
        if a != WAIT and target[i] < 0:
            untargeted[n_un] = i
            n_un += 1
    if n_un:
        chosen = untargeted[:n_un]
        affs = _option_affordances(option, job, aff_table, job_aff)
        _targets(chosen, option, affs, home, pos, alive, tie_other, tie_vals, holder, waiting, stock, consumes,
                 aff_type, obj_type, dist, first_object, home_bed, opt_sleep, target, running)  # fmt: skip
        for i in chosen:
            if target[i] < 0:
                _complete_one(i, False, tick, option, commit_until, target, last_ok)
    n_chat = 0
    for i in range(n):
        if alive[i] and option[i] == CHAT:
            n_chat += 1
    arrived = _navigate(option, target, running, waiting, alive, pos, home, dist, step, walkable, first_object,
                        first_home)  # fmt: skip
    return dropped[:n_drop], arrived, n_chat


@njit(cache=True)
def _complete_one(i, ok, tick, option, commit_until, target, last_ok):
    option[i] = WAIT
    commit_until[i] = tick
    target[i] = -1
    last_ok[i] = ok


def _step_chats(state: WorldState, rules: Rules, log: EventLog) -> np.ndarray | None:
    """CHAT agents talk when within reach of their partner, else walk toward them."""
    gone, speakers = _chat_moves(state.option, state.target, state.alive, state.pos, rules.town.walkable)
    _complete(state, gone, False)
    if speakers.size == 0:
        return None
    partner = attempt_chats(state, rules, speakers, state.target[speakers], log)
    _complete(state, speakers, True)
    return partner


@njit(cache=True)
def _chat_moves(option, target, alive, pos, walkable):
    """Walk CHAT agents toward their partner; return (partner gone, partner within reach)."""
    n = alive.shape[0]
    gone = np.empty(n, dtype=np.int64)
    close = np.empty(n, dtype=np.int64)
    n_gone = n_close = 0
    for i in range(n):
        other = target[i]
        if not alive[i] or option[i] != CHAT or other < 0:
            continue
        if not alive[other]:
            gone[n_gone] = i
            n_gone += 1
            continue
        dy, dx = pos[other, 0] - pos[i, 0], pos[other, 1] - pos[i, 1]
        if abs(dy) + abs(dx) <= 1:
            close[n_close] = i
            n_close += 1
            continue
        # Greedy step along the longer axis, else the other one; walls block.
        vy = -1 if dy < 0 else (1 if dy > 0 else 0)
        vx = -1 if dx < 0 else (1 if dx > 0 else 0)
        first_y, first_x, second_y, second_x = (vy, 0, 0, vx) if abs(dy) >= abs(dx) else (0, vx, vy, 0)
        for sy, sx in ((first_y, first_x), (second_y, second_x)):
            if (sy != 0 or sx != 0) and walkable[pos[i, 0] + sy, pos[i, 1] + sx]:
                pos[i, 0] += sy
                pos[i, 1] += sx
                break
    return gone[:n_gone], close[:n_close]


@njit(cache=True)
def _navigate(option, target, running, waiting, alive, pos, home, dist, step, walkable, first_object, first_home):
    """Step every idle navigating agent along its shortest path; return those already there."""
    n = alive.shape[0]
    arrived = np.empty(n, dtype=np.int64)
    n_arr = 0
    for i in range(n):
        opt = option[i]
        if not alive[i] or opt in (WAIT, CHAT) or target[i] < 0 or running[i] >= 0 or waiting[i] >= 0:
            continue
        f = first_home + target[i] if opt == GO_HOME else first_object + target[i]
        y, x = pos[i, 0], pos[i, 1]
        if dist[f, y, x] == 0:
            arrived[n_arr] = i
            n_arr += 1
            continue
        s = step[f, y, x]
        ny, nx = y + DY[s], x + DX[s]
        if walkable[ny, nx]:
            pos[i, 0] = ny
            pos[i, 1] = nx
    return arrived[:n_arr]


def _request(state: WorldState, rules: Rules, agents: np.ndarray, affs: np.ndarray, log: EventLog) -> None:
    """Agents next to their target ask to use it: start now, or join its queue."""
    objs = state.target[agents]
    work = state.option[agents] == WORK
    early = work & ~on_shift(state, rules, agents)
    agents, objs, affs = agents[~early], objs[~early], affs[~early]  # wait at work for the start
    types = rules.aff_type[affs]
    cooling = state.cooldown_until[agents, types] > state.tick
    _complete(state, agents[cooling], False)
    agents, objs, affs, types = agents[~cooling], objs[~cooling], affs[~cooling], types[~cooling]
    shared = rules.type_capacity[types] == 0
    if shared.any():
        started = try_start(state, rules, agents[shared], objs[shared], affs[shared], log)
        _complete(state, agents[shared][~started], False)
    if (~shared).any():
        state.request[agents[~shared]] = affs[~shared]
        queues.join(state, agents[~shared], objs[~shared], log)


def complete_finished(state: WorldState, rules: Rules, agents: np.ndarray) -> None:
    """Options whose affordance just finished are done, except WORK during the shift."""
    if agents.size == 0:
        return
    keep = (state.option[agents] == WORK) & on_shift(state, rules, agents)
    _complete(state, agents[~keep], True)


def complete_failed_starts(state: WorldState, agents: np.ndarray) -> None:
    _complete(state, agents, False)
