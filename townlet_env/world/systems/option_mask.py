"""The option-mode action mask: which intents each seat may choose this tick.

WAIT, SLEEP and GO_HOME are always allowed; EAT, COOK and WASH need the price (times any
price spike's factor) in the wallet, no cooldown on that object type and an object of the
type in service (EAT: a stocked fridge in service); WORK opens
``WORK_LEAD_TICKS`` before the seat's shift and closes at its end; CHAT needs the chat
cooldown over and another living agent. While an option is committed, only it is allowed
(unless a need falls below ``hard_need_threshold``), and an option already under way (paid
for, or queued for) always stays allowed so it is never cancelled by its own price.
Vacant seats may only WAIT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from townlet_env.actions import (
    N_OPTIONS,
    OPT_CHAT,
    OPT_COOK,
    OPT_EAT,
    OPT_GO_HOME,
    OPT_SLEEP,
    OPT_WAIT,
    OPT_WASH,
    OPT_WORK,
)
from townlet_env.config import TICKS_PER_DAY
from townlet_env.jit import bind
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.options import WORK_LEAD_TICKS


class MaskRules(NamedTuple):
    """The rule arrays and constants the mask reads."""

    hard_need_threshold: float  # a need below this lifts the commitment
    job_start: np.ndarray  # int32[J] minute of day a shift starts
    job_end: np.ndarray  # int32[J] minute of day a shift ends
    option_price: np.ndarray  # float32[3] price of EAT, COOK, WASH
    option_type: np.ndarray  # int64[3] object type of EAT, COOK, WASH
    obj_type: np.ndarray  # int16[M] object type per object
    eat_consumes: np.ndarray  # int32[S] the stock one meal takes from a fridge
    option_aff: np.ndarray  # int64[3] affordance of EAT, COOK, WASH (indexes price_factor)


class MaskSeats(NamedTuple):
    """The world-state arrays the mask reads."""

    alive: np.ndarray
    needs: np.ndarray
    wallet: np.ndarray
    job: np.ndarray
    option: np.ndarray
    commit_until: np.ndarray
    running: np.ndarray
    waiting: np.ndarray
    cooldown_until: np.ndarray
    chat_ready_at: np.ndarray
    stock: np.ndarray
    price_factor: np.ndarray
    out_of_service: np.ndarray


class _Mask(NamedTuple):
    """The mask kernel bound to one world's records (kept in ``WorldState.kernels``)."""

    seats: MaskSeats
    consts: MaskRules
    kernel: Callable[..., Any]


def option_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, 8]: which options each seat may choose now."""
    mask = np.zeros((state.n_agents, N_OPTIONS), dtype=np.int8)
    m = state.bound("option_mask", rules, _bind_mask)
    m.kernel(mask, state.tick, m.seats, m.consts)
    return mask


def _bind_mask(state: WorldState, rules: Rules) -> _Mask:
    s = MaskSeats(
        state.alive, state.needs, state.wallet, state.job, state.option, state.commit_until, state.running,
        state.waiting, state.cooldown_until, state.chat_ready_at, state.stock, state.price_factor,
        state.out_of_service,
    )  # fmt: skip
    r = MaskRules(
        float(rules.config.options.hard_need_threshold), rules.job_start, rules.job_end, rules.option_price,
        rules.option_type, rules.town.obj_type, rules.aff_consumes[rules.opt_eat],
        np.array([rules.opt_eat, rules.opt_cook, rules.opt_wash], np.int64),
    )  # fmt: skip
    # Looked up now, not at import: a kernel swapped for its py_func before the town is built runs.
    return _Mask(s, r, bind(_option_mask, np.zeros((1, N_OPTIONS), np.int8), state.tick, s, r))


@njit(cache=True)
def _stocked(s, r):
    """Whether any object of the eating type in service holds what one meal consumes."""
    eat_type = r.option_type[0]
    for m in range(r.obj_type.shape[0]):
        if r.obj_type[m] != eat_type or s.out_of_service[m]:
            continue
        ok = True
        for k in range(r.eat_consumes.shape[0]):
            ok = ok and s.stock[m, k] >= r.eat_consumes[k]
        if ok:
            return True
    return False


@njit(cache=True)
def _open_types(s, r):
    """Per EAT, COOK, WASH: whether some object of its type is in service; and its price now."""
    is_open = np.zeros(3, dtype=np.bool_)
    price = np.empty(3, dtype=np.float32)
    for k in range(3):
        price[k] = r.option_price[k] * s.price_factor[r.option_aff[k]]
        for m in range(r.obj_type.shape[0]):
            if r.obj_type[m] == r.option_type[k] and not s.out_of_service[m]:
                is_open[k] = True
                break
    return is_open, price


@njit(cache=True)
def _option_mask(mask, tick, s, r):
    alive, option, needs = s.alive, s.option, s.needs
    stocked = _stocked(s, r)
    is_open, price = _open_types(s, r)
    n_alive = 0
    for i in range(alive.shape[0]):
        n_alive += 1 if alive[i] else 0
    minute = tick % TICKS_PER_DAY
    for i in range(alive.shape[0]):
        row = mask[i]
        row[OPT_WAIT] = 1
        if not alive[i]:
            continue
        committed = option[i] != OPT_WAIT and tick < s.commit_until[i]
        if committed:
            for k in range(3):
                committed = committed and needs[i, k] > r.hard_need_threshold
        if committed:
            row[option[i]] = 1
            row[OPT_WAIT] = 1 if option[i] == OPT_WAIT else 0
            continue
        row[OPT_SLEEP] = 1
        row[OPT_GO_HOME] = 1
        for k, opt in enumerate((OPT_EAT, OPT_COOK, OPT_WASH)):
            affordable = s.wallet[i] >= price[k]
            usable = affordable and is_open[k] and s.cooldown_until[i, r.option_type[k]] <= tick
            row[opt] = 1 if usable else 0
        if not stocked:
            row[OPT_EAT] = 0
        j = s.job[i]
        if j >= 0 and r.job_start.shape[0] > 0:
            row[OPT_WORK] = 1 if (minute >= r.job_start[j] - WORK_LEAD_TICKS and minute < r.job_end[j]) else 0
        row[OPT_CHAT] = 1 if (s.chat_ready_at[i] <= tick and n_alive > 1) else 0
        if option[i] != OPT_WAIT and (s.running[i] >= 0 or s.waiting[i] >= 0):
            # An option already under way (paid for, or queued for) may always be continued,
            # even if it could not be started now (e.g. its price emptied the wallet).
            row[option[i]] = 1
