"""Option mode: intents and the commit window (the mask is in option_mask.py, targets and
paths in navigation.py).

A new option cancels what the agent was doing and commits it for ``commit_ticks``: while
committed, the mask allows only the current option, unless some need falls below
``hard_need_threshold``. An option picks a target object once, walks the precomputed
shortest path there, queues if the object is single-occupancy, and uses it. It completes
when its affordance ends, when it fails, or (``GO_HOME``) on arrival; ``WORK`` keeps
working until the shift ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from townlet_env.actions import N_OPTIONS, OPT_CHAT, OPT_GO_HOME, OPT_WAIT, OPT_WORK
from townlet_env.config import TICKS_PER_DAY
from townlet_env.jit import bind
from townlet_env.world.events import EventKind, EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import navigation
from townlet_env.world.systems.affordances import cancel_one, on_shift
from townlet_env.world.systems.chat import attempt_chats
from townlet_env.world.systems.primitives import request_use

WORK_LEAD_TICKS = 120  # WORK becomes available this long before a shift starts


class OptionRules(NamedTuple):
    """The rule arrays and constants the option and navigation kernels read."""

    commit_ticks: int  # ticks a new option is committed for
    job_start: np.ndarray  # int32[J] minute of day a shift starts
    job_end: np.ndarray  # int32[J] minute of day a shift ends
    job_affordance: np.ndarray  # int16[J] the affordance WORK runs, per job
    option_affordance: np.ndarray  # int16[8] the affordance per option (-1 none; WORK per job)
    sleep_affordance: int  # the affordance SLEEP runs (at the home's bed)
    aff_type: np.ndarray  # int16[A] object type per affordance
    aff_consumes: np.ndarray  # int32[A, S] stock taken per use
    obj_type: np.ndarray  # int16[M] object type per object
    home_bed: np.ndarray  # int16[nH] the bed of each home
    dist: np.ndarray  # int16[F, H, W] path lengths to each field
    step: np.ndarray  # int8[F, H, W] first step along a shortest path
    walkable: np.ndarray  # bool[H, W]
    first_object: int  # field of object 0
    first_home: int  # field of home 0
    avoid_rivalry: float  # rivalry at which an agent avoids the other's object
    rival_penalty: int  # ticks of walking an agent trades to avoid a rival's object


class OptionSeats(NamedTuple):
    """The world-state arrays the option and navigation kernels read and write."""

    alive: np.ndarray
    job: np.ndarray
    home: np.ndarray
    pos: np.ndarray
    option: np.ndarray
    commit_until: np.ndarray
    target: np.ndarray
    last_ok: np.ndarray
    running: np.ndarray
    using: np.ndarray
    remaining: np.ndarray
    waiting: np.ndarray
    holder: np.ndarray
    stock: np.ndarray
    tie_other: np.ndarray
    tie_vals: np.ndarray
    out_of_service: np.ndarray


class OptionProgress(NamedTuple):
    """The per-seat option state a completion resets (:func:`_complete_one`)."""

    option: np.ndarray
    commit_until: np.ndarray
    target: np.ndarray
    last_ok: np.ndarray


class _Kernels(NamedTuple):
    """A world's option records and the kernels bound to their types (in ``WorldState.kernels``)."""

    seats: OptionSeats
    consts: OptionRules
    plan: Callable[..., Any]
    chat_moves: Callable[..., Any]
    affordances: Callable[..., Any]


class _Completion(NamedTuple):
    progress: OptionProgress
    complete: Callable[..., Any]


def _option_rules(rules: Rules) -> OptionRules:
    town = rules.town
    return OptionRules(
        commit_ticks=int(rules.config.options.commit_ticks),
        job_start=rules.job_start,
        job_end=rules.job_end,
        job_affordance=rules.job_affordance,
        option_affordance=rules.option_affordance,
        sleep_affordance=int(rules.opt_sleep),
        aff_type=rules.aff_type,
        aff_consumes=rules.aff_consumes,
        obj_type=town.obj_type,
        home_bed=town.home_bed,
        dist=town.dist,
        step=town.step,
        walkable=town.walkable,
        first_object=int(town.first_object_field),
        first_home=int(town.first_home_field),
        avoid_rivalry=float(np.float32(rules.config.relationships.avoid_rivalry)),  # at the ties' precision
        rival_penalty=int(navigation.RIVAL_PENALTY),
    )


def _kernels(state: WorldState, rules: Rules) -> _Kernels:
    """The option kernels bound to ``state``'s records, built on its first option tick."""
    return state.bound("options", rules, _bind_options)


def _bind_options(state: WorldState, rules: Rules) -> _Kernels:
    # Module-level names are looked up now (not at import), so a kernel swapped for its
    # py_func before the town is built is the one that runs.
    s = OptionSeats(
        state.alive, state.job, state.home, state.pos, state.option, state.commit_until, state.target,
        state.last_ok, state.running, state.using, state.remaining, state.waiting, state.holder, state.stock,
        state.tie_other, state.tie_vals, state.out_of_service,
    )  # fmt: skip
    r = _option_rules(rules)
    actions, mask = np.zeros(1, np.int64), np.zeros((1, N_OPTIONS), np.int8)
    return _Kernels(
        s,
        r,
        plan=bind(_plan, actions, mask, state.tick, s, r),
        chat_moves=bind(navigation.chat_moves, s.option, s.target, s.alive, s.pos, r.walkable),
        affordances=bind(navigation.option_affordances, s, r),
    )


def _completion(state: WorldState) -> _Completion:
    return state.bound("complete_options", None, _bind_completion)


def _bind_completion(state: WorldState, rules: None) -> _Completion:
    progress = OptionProgress(state.option, state.commit_until, state.target, state.last_ok)
    return _Completion(progress, bind(_complete, np.zeros(1, np.int64), True, state.tick, progress))


def step_options(
    state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog
) -> np.ndarray | None:
    """Apply option actions, navigate, queue and start affordances; return chat partners (None: no chat)."""
    k = _kernels(state, rules)
    # The bound entry point trusts its argument types: make sure of the two from outside.
    actions = np.ascontiguousarray(actions, dtype=np.int64)
    mask = np.ascontiguousarray(mask, dtype=np.int8)
    dropped, arrived, n_chat, avoided = k.plan(actions, mask, state.tick, k.seats, k.consts)
    for i, obj, aff in dropped.tolist():
        log.emit(EventKind.AFFORDANCE_FAIL, i, obj=obj, value=aff)
    for i, rival, obj in avoided.tolist():
        log.emit(EventKind.RIVAL_AVOIDED, i, other=rival, obj=obj)
    chat_partner = _step_chats(state, rules, k, log) if n_chat else None
    if arrived.size:
        going_home = state.option[arrived] == OPT_GO_HOME
        _complete_seats(state, arrived[going_home], True)
        here = arrived[~going_home]
        if here.size:
            _request(state, rules, k, here, log)
    return chat_partner


@njit(cache=True)
def _plan(actions, mask, tick, s, r):
    """Resolve actions (masked ones continue the committed option, else WAIT), switch options
    (cancelling what was under way), end WORK outside its window, pick targets, and walk.

    Returns (dropped (agent, object, affordance) rows for events, seats that arrived at their
    target, number of CHAT seats, (agent, rival, object) rows of rivals avoided).
    """
    alive, option, target = s.alive, s.option, s.target
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
            a = option[i] if s.commit_until[i] > tick else OPT_WAIT
        changed = a != option[i]
        if changed:
            n_drop = cancel_one(i, s.running, s.using, s.remaining, s.waiting, s.holder, dropped, n_drop)
            option[i] = a
            s.commit_until[i] = tick + r.commit_ticks
            target[i] = -1
        if a == OPT_WORK:
            j = s.job[i]
            if j < 0 or r.job_start.shape[0] == 0 or not (r.job_start[j] - WORK_LEAD_TICKS <= minute < r.job_end[j]):
                if not changed:  # the shift is over: WORK completes
                    n_drop = cancel_one(i, s.running, s.using, s.remaining, s.waiting, s.holder, dropped, n_drop)
                    _complete_one(i, True, tick, s)
                continue
        if a != OPT_WAIT and target[i] < 0:
            untargeted[n_un] = i
            n_un += 1
    avoided = np.empty((0, 3), dtype=np.int64)
    if n_un:
        chosen = untargeted[:n_un]
        avoided = navigation.pick_targets(chosen, navigation.option_affordances(s, r), s, r)
        for i in chosen:
            if target[i] < 0:
                _complete_one(i, False, tick, s)
    n_chat = 0
    for i in range(n):
        if alive[i] and option[i] == OPT_CHAT:
            n_chat += 1
    arrived = navigation.navigate(s, r)
    return dropped[:n_drop], arrived, n_chat, avoided


@njit(cache=True)
def _complete_one(i, ok, tick, s):
    """Seat ``i``'s option is done (``ok``: it succeeded): back to WAIT, uncommitted."""
    s.option[i] = OPT_WAIT
    s.commit_until[i] = tick
    s.target[i] = -1
    s.last_ok[i] = ok


@njit(cache=True)
def _complete(agents, ok, tick, s):
    """:func:`_complete_one` for each of ``agents`` (the entry point for Python callers)."""
    for i in agents:
        _complete_one(i, ok, tick, s)


def _complete_seats(state: WorldState, agents: np.ndarray, ok: bool) -> None:
    """The options of ``agents`` are done (:func:`_complete_one`)."""
    if agents.size:
        c = _completion(state)
        c.complete(np.ascontiguousarray(agents, dtype=np.int64), ok, state.tick, c.progress)


def _step_chats(state: WorldState, rules: Rules, k: _Kernels, log: EventLog) -> np.ndarray | None:
    """CHAT agents talk when within reach of their partner, else walk toward them."""
    s = k.seats
    gone, speakers = k.chat_moves(s.option, s.target, s.alive, s.pos, k.consts.walkable)
    _complete_seats(state, gone, False)
    if speakers.size == 0:
        return None
    partner = attempt_chats(state, rules, speakers, state.target[speakers], log)
    _complete_seats(state, speakers, True)
    return partner


def _request(state: WorldState, rules: Rules, k: _Kernels, agents: np.ndarray, log: EventLog) -> None:
    """Agents next to their target ask to use it: start now, or join its queue."""
    early = (state.option[agents] == OPT_WORK) & ~on_shift(state, rules, agents)
    agents = agents[~early]  # wait at work for the start
    affs = k.affordances(k.seats, k.consts)[agents]
    refused = request_use(state, rules, agents, state.target[agents], affs, log)
    _complete_seats(state, refused, False)


def complete_finished(state: WorldState, rules: Rules, agents: np.ndarray) -> None:
    """Options whose affordance just finished are done, except WORK during the shift."""
    if agents.size == 0:
        return
    keep = (state.option[agents] == OPT_WORK) & on_shift(state, rules, agents)
    _complete_seats(state, agents[~keep], True)


def complete_failed_starts(state: WorldState, agents: np.ndarray) -> None:
    """Agents whose queued affordance failed to start give up their option."""
    _complete_seats(state, agents, False)
