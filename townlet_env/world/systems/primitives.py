"""Primitive mode: grid moves, interact with the adjacent object, chat with a neighbour.

Moving cancels whatever the agent was using or queueing for; ``WAIT`` and ``INTERACT``
keep it going. ``INTERACT`` next to an object starts (or queues for) the first affordance
the manifest lists for that object type. Invalid (masked) actions act as ``WAIT``.
"""

from __future__ import annotations

import numpy as np

from townlet_env.actions import N_PRIMITIVES, Primitive
from townlet_env.world.events import EventLog
from townlet_env.world.map import DX, DY
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems import queues
from townlet_env.world.systems.affordances import cancel, try_start
from townlet_env.world.systems.chat import attempt_chats, nearest_other, within_reach
from townlet_env.world.systems.movement import move


def adjacent_object(state: WorldState, rules: Rules) -> np.ndarray:
    """The first object (in type order) next to each agent that has an affordance, or -1."""
    adj = rules.town.adjacent[:, state.pos[:, 0], state.pos[:, 1]]  # [T, N]
    adj = np.where((rules.type_default_aff >= 0)[:, None], adj, -1)
    has = adj >= 0
    first = np.argmax(has, axis=0)
    return np.where(has.any(axis=0), adj[first, np.arange(state.n_agents)], -1)


def request_use(
    state: WorldState, rules: Rules, agents: np.ndarray, objs: np.ndarray, affs: np.ndarray, log: EventLog
) -> np.ndarray:
    """``agents`` next to ``objs`` ask to run ``affs`` there: a shared object (capacity 0)
    starts it now, a single-occupancy one queues them. Returns the agents refused: those
    cooling down on the object type or at an object out of service (nothing happens) and
    failed starts (``try_start`` has emitted their events).
    """
    types = rules.aff_type[affs]
    cooling = (state.cooldown_until[agents, types] > state.tick) | state.out_of_service[objs]
    refused = agents[cooling]
    agents, objs, affs, types = agents[~cooling], objs[~cooling], affs[~cooling], types[~cooling]
    shared = rules.type_capacity[types] == 0
    if shared.any():
        started = try_start(state, rules, agents[shared], objs[shared], affs[shared], log)
        refused = np.concatenate((refused, agents[shared][~started]))
    if (~shared).any():
        state.request[agents[~shared]] = affs[~shared]
        queues.join(state, agents[~shared], objs[~shared], log)
    return refused


def primitive_mask(state: WorldState, rules: Rules) -> np.ndarray:
    """int8[N, 7]: which primitives each seat may take now."""
    n = state.n_agents
    mask = np.zeros((n, N_PRIMITIVES), dtype=np.int8)
    mask[:, Primitive.WAIT] = 1
    y, x = state.pos[:, 0], state.pos[:, 1]
    for code in (1, 2, 3, 4):
        mask[:, code] = rules.town.walkable[y + DY[code], x + DX[code]]
    busy = (state.running >= 0) | (state.waiting >= 0)
    mask[:, Primitive.INTERACT] = busy | (adjacent_object(state, rules) >= 0)
    ready = (state.chat_ready_at <= state.tick) & state.alive
    if ready.any() and state.alive.sum() > 1:
        seats = np.arange(n)
        other = nearest_other(state, seats)
        mask[:, Primitive.CHAT] = ready & (other >= 0) & within_reach(state, seats, np.maximum(other, 0))
    dead = ~state.alive
    mask[dead] = 0
    mask[dead, Primitive.WAIT] = 1
    return mask


def step_primitives(
    state: WorldState, rules: Rules, actions: np.ndarray, mask: np.ndarray, log: EventLog
) -> np.ndarray:
    """Apply primitive actions; return chat partners per seat (-1 none)."""
    valid = mask[np.arange(state.n_agents), actions].astype(bool) & state.alive
    act = np.where(valid, actions, Primitive.WAIT)
    movers = np.flatnonzero((act >= Primitive.NORTH) & (act <= Primitive.WEST))
    if movers.size:
        cancel(state, rules, movers, log)
        move(state, rules, movers, act[movers])
    fresh = np.flatnonzero((act == Primitive.INTERACT) & (state.running < 0) & (state.waiting < 0))
    if fresh.size:
        objs = adjacent_object(state, rules)[fresh]
        fresh, objs = fresh[objs >= 0], objs[objs >= 0]
        affs = rules.type_default_aff[rules.town.obj_type[objs]]
        state.last_ok[request_use(state, rules, fresh, objs, affs, log)] = False
    speakers = np.flatnonzero(act == Primitive.CHAT)
    if speakers.size:
        cancel(state, rules, speakers, log)
        return attempt_chats(state, rules, speakers, nearest_other(state, speakers), log)
    return np.full(state.n_agents, -1, dtype=np.int32)
