"""The option-mode action mask: which intents each seat may choose this tick.

WAIT, SLEEP and GO_HOME are always allowed; EAT, COOK and WASH need the price in the wallet
and no cooldown on that object type (EAT also a stocked fridge somewhere); WORK opens
``WORK_LEAD_TICKS`` before the seat's shift and closes at its end; CHAT needs the chat
cooldown over and another living agent. While an option is committed, only it is allowed
(unless a need falls below ``hard_need_threshold``), and an option already under way (paid
for, or queued for) always stays allowed so it is never cancelled by its own price.
Vacant seats may only WAIT.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.options import (
    CHAT,
    COOK,
    EAT,
    GO_HOME,
    N_OPTIONS,
    SLEEP,
    WAIT,
    WASH,
    WORK,
    WORK_LEAD_TICKS,
)


def option_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, 8]: which options each seat may choose now."""
    mask = np.zeros((state.n_agents, N_OPTIONS), dtype=np.int8)
    _option_mask(
        mask, state.tick, state.alive, state.needs, state.wallet, state.cooldown_until, state.chat_ready_at,
        state.option, state.commit_until, state.job, rules.job_start, rules.job_end, rules.option_price,
        rules.option_type, state.stock, rules.town.obj_type, rules.aff_consumes[rules.opt_eat],
        rules.config.options.hard_need_threshold, state.running, state.waiting,
    )  # fmt: skip
    return mask


@njit(cache=True)
def _stocked(stock, obj_type, eat_type, consumes):
    """Whether any object of the eating type holds what one meal consumes."""
    for m in range(obj_type.shape[0]):
        if obj_type[m] != eat_type:
            continue
        ok = True
        for s in range(consumes.shape[0]):
            ok = ok and stock[m, s] >= consumes[s]
        if ok:
            return True
    return False


@njit(cache=True)
def _option_mask(
    mask, tick, alive, needs, wallet, cooldown_until, chat_ready_at, option, commit_until, job,
    job_start, job_end, price, types, stock, obj_type, eat_consumes, hard_threshold, running, waiting,
):  # fmt: skip
    stocked = _stocked(stock, obj_type, types[0], eat_consumes)
    n_alive = 0
    for i in range(alive.shape[0]):
        n_alive += 1 if alive[i] else 0
    minute = tick % TICKS_PER_DAY
    for i in range(alive.shape[0]):
        row = mask[i]
        row[WAIT] = 1
        if not alive[i]:
            continue
        committed = option[i] != WAIT and tick < commit_until[i]
        if committed:
            for k in range(3):
                committed = committed and needs[i, k] > hard_threshold
        if committed:
            row[option[i]] = 1
            row[WAIT] = 1 if option[i] == WAIT else 0
            continue
        row[SLEEP] = 1
        row[GO_HOME] = 1
        for k, opt in enumerate((EAT, COOK, WASH)):
            row[opt] = 1 if (wallet[i] >= price[k] and cooldown_until[i, types[k]] <= tick) else 0
        if not stocked:
            row[EAT] = 0
        j = job[i]
        if j >= 0 and job_start.shape[0] > 0:
            row[WORK] = 1 if (minute >= job_start[j] - WORK_LEAD_TICKS and minute < job_end[j]) else 0
        row[CHAT] = 1 if (chat_ready_at[i] <= tick and n_alive > 1) else 0
        if option[i] != WAIT and (running[i] >= 0 or waiting[i] >= 0):
            # An option already under way (paid for, or queued for) may always be continued,
            # even if it could not be started now (e.g. its price emptied the wallet).
            row[option[i]] = 1
