"""What perturbations do to the world: price factors, objects out of service, held exits, meets.

Every change goes through the world's own arrays (``WorldState.price_factor``,
``out_of_service``, ``exits_held_until``), so snapshots carry it and the systems read it
from the next phase on.

An outage is *refunded*, not completed: an agent using an object when it goes out of
service gets back exactly what it paid at the start (``WorldState.paid``), gains none of
the affordance's completion effects (per-tick effects already applied stay), and its
option fails, so it chooses again next tick. Waiters in the object's queue and agents
walking to it are released the same way (nothing to refund). No cooldown starts, and the
object is left with no holder and no queue: nothing is reserved while it is out.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from townlet_env.actions import OPT_COOK, OPT_EAT, OPT_WASH
from townlet_env.world.events import EventLog, RelEvent
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.affordances import cancel
from townlet_env.world.systems.options import complete_failed_starts
from townlet_env.world.systems.relationships import apply_event

_CHORES = (OPT_EAT, OPT_COOK, OPT_WASH)


def price_keys(rules: Rules) -> tuple[str | None, ...]:
    """The ``economy.prices`` key of each affordance (``None``: free)."""
    return tuple(rules.manifest.affordances[a].price for a in rules.manifest.affordance_ids)


def set_price_factors(state: WorldState, rules: Rules, factors: dict[str, float]) -> None:
    """Each affordance's price factor: the product of the spikes on its key (1 for none)."""
    keys = price_keys(rules)
    state.price_factor[:] = [float(np.prod([factors.get(k, 1.0)])) if k else 1.0 for k in keys]


def objects_of(rules: Rules, types: Iterable[str]) -> np.ndarray:
    """Indices of the town's objects of the named types."""
    names = rules.manifest.object_types
    codes = [names.index(t) for t in types]
    return np.flatnonzero(np.isin(rules.town.obj_type, codes))


def close_objects(state: WorldState, rules: Rules, objs: np.ndarray, log: EventLog) -> dict[str, float]:
    """Take ``objs`` out of service and release everyone using, queueing for or walking to them.

    Returns counts for the operator: users refunded, the money refunded, waiters released
    and walkers sent to choose again.
    """
    state.out_of_service[objs] = True
    using = np.isin(state.using, objs) & (state.running >= 0)
    queued = np.isin(state.waiting, objs)
    walking = np.isin(state.target, objs) & np.isin(state.option, _CHORES) & (state.running < 0) & (state.waiting < 0)
    users = np.flatnonzero(using)
    refund = state.paid[users].copy()
    state.wallet[users] += refund
    state.paid[users] = 0.0
    involved = np.flatnonzero(using | queued)
    cancel(state, rules, involved, log)  # frees the holder, clears running and waiting; AFFORDANCE_FAIL
    if rules.option_mode:
        complete_failed_starts(state, np.flatnonzero(using | queued | walking).astype(np.int64))
    return {
        "refunded": int(users.size),
        "refund_total": round(float(refund.sum()), 6),
        "waiters_released": int(queued.sum()),
        "rerouted": int(walking.sum()),
    }


def open_objects(state: WorldState, objs: np.ndarray) -> None:
    """Put ``objs`` back in service."""
    state.out_of_service[objs] = False


def hold_exits(state: WorldState, until: int) -> None:
    """No identity ends before tick ``until`` (a later hold already set is kept)."""
    state.exits_held_until = max(int(state.exits_held_until), int(until))


def meeting_place(state: WorldState, rules: Rules, pair: tuple[int, int], places: np.ndarray, radius: int) -> int:
    """An object of ``places`` both seats of ``pair`` stand within ``radius`` tiles of (-1: none)."""
    a, b = pair
    if not (state.alive[a] and state.alive[b]) or places.size == 0:
        return -1
    where = rules.town.obj_pos[places].astype(np.int32)
    near_a = np.abs(where - state.pos[a]).sum(axis=1) <= radius
    near_b = np.abs(where - state.pos[b]).sum(axis=1) <= radius
    both = np.flatnonzero(near_a & near_b)
    return int(places[both[0]]) if both.size else -1


def meet_bonus(state: WorldState, rules: Rules, pair: tuple[int, int], bonus: float, log: EventLog) -> None:
    """The pair met as arranged: a ``chat_success`` tie event scaled by ``bonus``, both ways."""
    a, b = pair
    apply_event(state, rules, a, b, RelEvent.CHAT_SUCCESS, log, scale=bonus)
