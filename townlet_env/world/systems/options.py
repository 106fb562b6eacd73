"""Option mode: intents, the navigator, the commit window and the option action mask.

A new option cancels what the agent was doing and commits it for ``commit_ticks``: while
committed, the mask allows only the current option, unless some need falls below
``hard_need_threshold``. An option picks a target object once (the nearest usable one,
penalised by its queue), walks the precomputed shortest path there, queues if the object
is single-occupancy, and uses it. It completes when its affordance ends, when it fails,
or (``GO_HOME``) on arrival; ``WORK`` keeps working until the shift ends.
"""

from __future__ import annotations

import numpy as np

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.events import EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import queues
from townlet_env.world.systems.affordances import cancel, on_shift, try_start
from townlet_env.world.systems.chat import attempt_chats, nearest_other, within_reach
from townlet_env.world.systems.movement import move, step_toward
from townlet_env.world.systems.relationships import best_friend

N_OPTIONS = len(Option)
QUEUE_PENALTY = 12  # ticks of walking an agent trades for one fewer agent in the queue
WORK_LEAD_TICKS = 120  # WORK becomes available this long before a shift starts


def option_affordances(state: WorldState, rules: Rules) -> np.ndarray:
    """The affordance each agent's current option uses (-1 for none)."""
    table = np.array(
        [-1, rules.opt_eat, rules.opt_cook, rules.opt_wash, rules.opt_sleep, -1, -1, -1], dtype=np.int16
    )
    aff = table[state.option]
    if len(rules.job_affordance):
        work = (state.option == Option.WORK) & (state.job >= 0)
        aff[work] = rules.job_affordance[state.job[work]]
    return aff


def work_window(state: WorldState, rules: Rules) -> np.ndarray:
    """Whether each seat may choose WORK now: shortly before or during its shift."""
    if len(rules.job_start) == 0:
        return np.zeros(state.n_agents, dtype=bool)
    j = np.maximum(state.job, 0)
    minute = state.tick % TICKS_PER_DAY
    return (state.job >= 0) & (minute >= rules.job_start[j] - WORK_LEAD_TICKS) & (minute < rules.job_end[j])


def option_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, 8]: which options each seat may choose now."""
    n = state.n_agents
    tick = state.tick
    mask = np.zeros((n, N_OPTIONS), dtype=np.int8)
    mask[:, Option.WAIT] = 1
    mask[:, Option.SLEEP] = 1
    mask[:, Option.GO_HOME] = 1
    cool = state.cooldown_until <= tick
    for opt, aff in ((Option.EAT, rules.opt_eat), (Option.COOK, rules.opt_cook), (Option.WASH, rules.opt_wash)):
        t = rules.aff_type[aff]
        mask[:, opt] = (state.wallet >= rules.aff_price[aff]) & cool[:, t]
    eat_type = rules.aff_type[rules.opt_eat]
    consumes = rules.aff_consumes[rules.opt_eat]
    if consumes.any():
        stocked = (state.stock[rules.town.obj_type == eat_type] >= consumes).all(axis=1).any()
        mask[:, Option.EAT] &= np.int8(stocked)
    mask[:, Option.WORK] = work_window(state, rules)
    mask[:, Option.CHAT] = (state.chat_ready_at <= tick) & (state.alive.sum() > 1)
    committed = (state.option != Option.WAIT) & (tick < state.commit_until)
    committed &= (state.needs > rules.config.options.hard_need_threshold).all(axis=1)
    if committed.any():
        rows = np.flatnonzero(committed)
        mask[rows] = 0
        mask[rows, state.option[rows]] = 1
    dead = ~state.alive
    if dead.any():
        mask[dead] = 0
        mask[dead, Option.WAIT] = 1
    return mask


def _choose_targets(state: WorldState, rules: Rules, agents: np.ndarray) -> None:
    """Pick each agent's target: nearest usable object (queue-penalised), bed, home or friend."""
    town = rules.town
    opt = state.option[agents]
    affs = option_affordances(state, rules)[agents]
    for a in np.unique(affs[affs >= 0]).tolist():
        sel = agents[affs == a]
        cand = np.flatnonzero(town.obj_type == rules.aff_type[a])
        if a == rules.opt_sleep:
            state.target[sel] = town.home_bed[state.home[sel]]
            continue
        if cand.size == 0:
            continue
        pos = state.pos[sel]
        score = town.dist[town.first_object_field + cand][:, pos[:, 0], pos[:, 1]].astype(np.int32)
        busy = (state.holder[cand] >= 0).astype(np.int32) + queues.queue_lengths(state, len(town.obj_type))[cand]
        score += QUEUE_PENALTY * busy[:, None]
        lacking = (state.stock[cand] < rules.aff_consumes[a]).any(axis=1)
        score[lacking] = 1 << 20
        best = np.argmin(score, axis=0)
        usable = score[best, np.arange(sel.size)] < (1 << 14)
        state.target[sel] = np.where(usable, cand[best], -1)
    home = agents[opt == Option.GO_HOME]
    state.target[home] = state.home[home]
    chat = agents[opt == Option.CHAT]
    for i in chat.tolist():
        state.target[i] = best_friend(state, i)
    lonely = chat[state.target[chat] < 0]
    state.target[lonely] = nearest_other(state, lonely)


def _complete(state: WorldState, agents: np.ndarray, ok: bool) -> None:
    state.option[agents] = Option.WAIT
    state.commit_until[agents] = state.tick
    state.target[agents] = -1
    state.last_ok[agents] = ok


def step_options(state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog) -> np.ndarray:
    """Apply option actions, navigate, queue and start affordances; return chat partners."""
    town = rules.town
    alive = state.alive
    valid = mask[np.arange(state.n_agents), actions].astype(bool)
    keep = np.where(state.commit_until > state.tick, state.option, Option.WAIT)
    act = np.where(valid, actions, keep).astype(np.int8)
    act[~alive] = Option.WAIT
    switched = np.flatnonzero(act != state.option)
    if switched.size:
        cancel(state, rules, switched, log)
        state.option[switched] = act[switched]
        state.commit_until[switched] = state.tick + rules.config.options.commit_ticks
        state.target[switched] = -1
    expired = np.flatnonzero((state.option == Option.WORK) & ~work_window(state, rules))
    if expired.size:
        cancel(state, rules, expired, log)
        _complete(state, expired, True)

    opt = state.option
    active = alive & (opt != Option.WAIT)
    untargeted = np.flatnonzero(active & (state.target < 0))
    if untargeted.size:
        _choose_targets(state, rules, untargeted)
        failed = untargeted[state.target[untargeted] < 0]
        _complete(state, failed, False)

    chatting = np.flatnonzero(active & (opt == Option.CHAT) & (state.target >= 0))
    chat_partner = np.full(state.n_agents, -1, dtype=np.int32)
    if chatting.size:
        partner = state.target[chatting]
        gone = ~alive[partner]
        _complete(state, chatting[gone], False)
        chatting, partner = chatting[~gone], partner[~gone]
        close = within_reach(state, chatting, partner)
        if close.any():
            chat_partner = attempt_chats(state, rules, chatting[close], partner[close], log)
            _complete(state, chatting[close], True)
        if (~close).any():
            step_toward(state, rules, chatting[~close], state.pos[partner[~close]])

    idle = (state.running < 0) & (state.waiting < 0)
    nav = np.flatnonzero(active & idle & (opt != Option.CHAT) & (state.target >= 0))
    if nav.size == 0:
        return chat_partner
    field = np.where(
        opt[nav] == Option.GO_HOME, town.first_home_field + state.target[nav], town.first_object_field + state.target[nav]
    )
    y, x = state.pos[nav, 0], state.pos[nav, 1]
    arrived = town.dist[field, y, x] == 0
    walkers = nav[~arrived]
    if walkers.size:
        move(state, rules, walkers, town.step[field[~arrived], y[~arrived], x[~arrived]])
    here = nav[arrived]
    _complete(state, here[opt[here] == Option.GO_HOME], True)
    here = here[opt[here] != Option.GO_HOME]
    if here.size:
        _request(state, rules, here, option_affordances(state, rules)[here], log)
    return chat_partner


def _request(state: WorldState, rules: Rules, agents: np.ndarray, affs: np.ndarray, log: EventLog) -> None:
    """Agents next to their target ask to use it: start now, or join its queue."""
    objs = state.target[agents]
    work = state.option[agents] == Option.WORK
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
    keep = (state.option[agents] == Option.WORK) & on_shift(state, rules, agents)
    _complete(state, agents[~keep], True)


def complete_failed_starts(state: WorldState, agents: np.ndarray) -> None:
    _complete(state, agents, False)
