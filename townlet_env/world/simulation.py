"""One simulated tick: the systems in their documented order.

1. respawn due identities into vacant seats
2. actions (option navigator or primitives), chats
3. queues hand free objects to waiters, who start their affordance
4. running affordances tick (per-tick effects, completion effects, hand-back)
5. queue conflicts (long waits raise rivalry; holders are never preempted)
6. needs decay
7. employment (arrival, wages, lateness, absence)
8. economy (daily restock, exit counter)
9. relationship decay
10. lifecycle terminations (faint, capped evictions)
11. the clock advances
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from townlet_env.world.events import EventLog
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import lifecycle, options, queues
from townlet_env.world.systems.affordances import tick_affordances, try_start
from townlet_env.world.systems.economy import step_economy
from townlet_env.world.systems.employment import ShiftOutcome, step_employment
from townlet_env.world.systems.needs import step_needs
from townlet_env.world.systems.primitives import primitive_mask, step_primitives
from townlet_env.world.systems.relationships import decay_ties

_NONE = np.zeros(0, dtype=np.int64)


class TickOutcome(NamedTuple):
    """What one tick produced, per seat, for rewards, KPIs and infos."""

    shift: ShiftOutcome
    chat_partner: np.ndarray  # int32[N], -1 when the seat had no successful chat
    finished: np.ndarray  # seats whose affordance completed this tick
    finished_affordances: np.ndarray
    reasons: np.ndarray  # int8[N] termination reason (lifecycle.FAINT / EVICTED)
    respawned: np.ndarray  # seats refilled this tick


def action_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, A] for the config's action mode."""
    if rules.config.action_mode == "option":
        return options.option_mask(state, rules)
    return primitive_mask(state, rules)


def step_world(state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog) -> TickOutcome:
    """Advance the world one tick given one action per seat and the mask they were chosen under."""
    log.start_tick(state.tick)
    _, due = lifecycle.any_pending(state, rules)
    respawned = lifecycle.respawn_due(state, rules, log) if due else _NONE
    if respawned.size:
        mask = action_mask(state, rules)  # new identities act under their own mask
    if rules.config.action_mode == "option":
        partner = options.step_options(state, rules, actions, mask, log)
    else:
        partner = step_primitives(state, rules, actions, mask, log)
    winners, objs = queues.assign(state)
    if winners.size:
        started = try_start(state, rules, winners, objs, state.request[winners], log)
        options.complete_failed_starts(state, winners[~started])
    finished, finished_affs = tick_affordances(state, rules, log)
    if rules.config.action_mode == "option":
        options.complete_finished(state, rules, finished)
    queues.detect_conflicts(state, rules, log)
    step_needs(state, rules)
    shift = step_employment(state, rules, log)
    step_economy(state, rules, log)
    decay_ties(state, rules)
    ending, _ = lifecycle.any_pending(state, rules)
    reasons = lifecycle.terminate(state, rules, log) if ending else np.zeros(state.n_agents, dtype=np.int8)
    state.tick += 1
    return TickOutcome(shift, partner, finished, finished_affs, reasons, respawned)
