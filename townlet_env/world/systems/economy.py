"""Economy: the daily restock of object stock and the daily reset of the exit counter.

Prices live in the config (``economy.prices``) and are charged by affordances at start;
wages are paid by employment. The invariant wages/day >= 1.1 x daily basket is checked
for every shipped config by ``tests/test_economy.py``.
"""

from __future__ import annotations

import numpy as np

from townlet_env.world.events import EventKind, EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


def reset_exit_counter(state: WorldState) -> None:
    """A new day (minute 0): no evictions have executed today yet."""
    state.exits_today = 0


def restock(state: WorldState, rules: Rules, log: EventLog) -> None:
    """The daily restock (at ``economy.restock_minute``): stock below its type's level is refilled."""
    level = rules.type_restock[rules.town.obj_type]  # [M, S], -1 = not restocked
    refill = (level >= 0) & (state.stock < level)
    if refill.any():
        np.copyto(state.stock, level, where=refill)
        for m in np.flatnonzero(refill.any(axis=1)).tolist():
            log.emit(EventKind.RESTOCK, -1, obj=m)


def daily_wage(rules: Rules) -> float:
    """The lowest full-shift pay over the config's jobs (0 without jobs)."""
    if len(rules.job_wage) == 0:
        return 0.0
    return float(((rules.job_end - rules.job_start) * rules.job_wage).min())
