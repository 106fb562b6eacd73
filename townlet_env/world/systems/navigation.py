"""Where an option goes and how its agent walks there: targets, the chat partner, the steps.

An option picks its target once: home (``GO_HOME``), the home's bed (``SLEEP``), the chat
partner (``CHAT``, see :func:`chat_target`), else the nearest usable object (stocked, in
service) of the affordance's type, penalised by how many agents already use, queue for or
walk to it, and by ``rival_penalty`` when a rival (rivalry at least
``relationships.avoid_rivalry``) holds it, queues for it or walks to it: agents step away
from a conflict with a rival when another object will do (``RIVAL_AVOIDED``), and queue
behind the rival only when nothing else will.
Agents then walk the precomputed shortest path (CHAT: a greedy step toward the partner).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.actions import OPT_CHAT, OPT_COOK, OPT_EAT, OPT_GO_HOME, OPT_WAIT, OPT_WASH, OPT_WORK
from townlet_env.world.map import DX, DY, UNREACHABLE

QUEUE_PENALTY = 12  # ticks of walking an agent trades for one fewer agent in the queue
RIVAL_PENALTY = 60  # ticks of walking an agent trades to keep out of a rival's way


@njit(cache=True)
def option_affordances(s, r):
    """The affordance each seat's current option uses (-1 for none); ``s``/``r``: option records."""
    out = np.empty(s.option.shape[0], dtype=np.int64)
    for i in range(s.option.shape[0]):
        out[i] = r.option_affordance[s.option[i]]
        if s.option[i] == OPT_WORK and s.job[i] >= 0 and r.job_affordance.shape[0] > 0:
            out[i] = r.job_affordance[s.job[i]]
    return out


@njit(cache=True)
def chat_target(i, tie_other, tie_vals, alive, pos):
    """Whom seat ``i`` chats with: its closest living friend (trust + familiarity - rivalry
    above 0), else the nearest living agent (-1: nobody). Ties go to the first found.
    """
    best = -1
    best_score = 0.0
    for k in range(tie_other.shape[1]):
        other = tie_other[i, k]
        score = tie_vals[i, k, 0] + tie_vals[i, k, 1] - tie_vals[i, k, 2]
        if other >= 0 and alive[other] and score > best_score:
            best, best_score = other, score
    if best < 0:
        y, x = pos[i, 0], pos[i, 1]
        best_d = 1 << 30
        for j in range(alive.shape[0]):
            if j != i and alive[j]:
                d = abs(pos[j, 0] - y) + abs(pos[j, 1] - x)
                if d < best_d:
                    best, best_d = j, d
    return best


@njit(cache=True)
def chat_targets(seats, tie_other, tie_vals, alive, pos):
    """:func:`chat_target` of each of ``seats`` (int64)."""
    out = np.empty(seats.shape[0], dtype=np.int64)
    for k in range(seats.shape[0]):
        out[k] = chat_target(seats[k], tie_other, tie_vals, alive, pos)
    return out


@njit(cache=True)
def _rival_objects(i, tie_other, tie_vals, threshold, option, target, holder, using, waiting, running, alive):
    """Per object, a rival of seat ``i`` (rivalry at least ``threshold``) that holds it, queues
    for it or walks to it for a chore; -1 where there is none.
    """
    out = np.full(holder.shape[0], -1, dtype=np.int64)
    for k in range(tie_other.shape[1]):
        j = tie_other[i, k]
        if j < 0 or not alive[j] or tie_vals[i, k, 2] < threshold:
            continue
        if using[j] >= 0 and holder[using[j]] == j:
            out[using[j]] = j
        if waiting[j] >= 0:
            out[waiting[j]] = j
        if target[j] >= 0 and running[j] < 0 and option[j] in (OPT_EAT, OPT_COOK, OPT_WASH):
            out[target[j]] = j
    return out


@njit(cache=True)
def pick_targets(agents, affs, s, r):
    """Set ``s.target`` of each of ``agents`` (-1: nothing usable); ``affs``: per seat.

    An object a rival holds, queues for or walks to costs ``r.rival_penalty`` more; returns
    the (agent, rival, object) rows where that sent the agent elsewhere (``RIVAL_AVOIDED``).
    """
    option, target, alive = s.option, s.target, s.alive
    n_obj = r.obj_type.shape[0]
    load = np.zeros(n_obj, dtype=np.int64)
    avoided = np.empty((agents.shape[0], 3), dtype=np.int64)
    n_avoided = 0
    for j in range(s.waiting.shape[0]):
        if s.waiting[j] >= 0:
            load[s.waiting[j]] += 1
    for m in range(n_obj):
        if s.holder[m] >= 0:
            load[m] += 1
    for j in range(alive.shape[0]):  # agents already walking to a shared-by-queue object count too
        opt = option[j]
        queued = s.waiting[j] >= 0
        if alive[j] and target[j] >= 0 and s.running[j] < 0 and not queued and (opt in (OPT_EAT, OPT_COOK, OPT_WASH)):
            load[target[j]] += 1
    for i in agents:
        opt, a = option[i], affs[i]
        y, x = s.pos[i, 0], s.pos[i, 1]
        best = -1
        if opt == OPT_GO_HOME:
            best = s.home[i]
        elif opt == OPT_CHAT:
            best = chat_target(i, s.tie_other, s.tie_vals, alive, s.pos)
        elif a == r.sleep_affordance:
            best = r.home_bed[s.home[i]]
        elif a >= 0:
            rivals = _rival_objects(
                i, s.tie_other, s.tie_vals, r.avoid_rivalry, option, target, s.holder, s.using, s.waiting,
                s.running, alive,
            )  # fmt: skip
            best_score = 1 << 14
            plain, plain_score = -1, 1 << 14
            for m in range(n_obj):
                if r.obj_type[m] != r.aff_type[a] or s.out_of_service[m]:
                    continue
                lacking = False
                for k in range(r.aff_consumes.shape[1]):
                    lacking = lacking or s.stock[m, k] < r.aff_consumes[a, k]
                d = r.dist[r.first_object + m, y, x]
                if lacking or d >= UNREACHABLE:
                    continue
                score = d + QUEUE_PENALTY * load[m]
                if score < plain_score:
                    plain, plain_score = m, score
                if rivals[m] >= 0:
                    score += r.rival_penalty
                if score < best_score:
                    best, best_score = m, score
            if plain >= 0 and best != plain and rivals[plain] >= 0:
                avoided[n_avoided, 0], avoided[n_avoided, 1], avoided[n_avoided, 2] = i, rivals[plain], plain
                n_avoided += 1
        target[i] = best
    return avoided[:n_avoided]


@njit(cache=True)
def navigate(s, r):
    """Step every idle navigating agent along its shortest path; return those already there."""
    n = s.alive.shape[0]
    arrived = np.empty(n, dtype=np.int64)
    n_arr = 0
    for i in range(n):
        opt = s.option[i]
        idle = s.running[i] < 0 and s.waiting[i] < 0
        if not s.alive[i] or opt in (OPT_WAIT, OPT_CHAT) or s.target[i] < 0 or not idle:
            continue
        f = r.first_home + s.target[i] if opt == OPT_GO_HOME else r.first_object + s.target[i]
        y, x = s.pos[i, 0], s.pos[i, 1]
        if r.dist[f, y, x] == 0:
            arrived[n_arr] = i
            n_arr += 1
            continue
        d = r.step[f, y, x]
        ny, nx = y + DY[d], x + DX[d]
        if r.walkable[ny, nx]:
            s.pos[i, 0] = ny
            s.pos[i, 1] = nx
    return arrived[:n_arr]


@njit(cache=True)
def chat_moves(option, target, alive, pos, walkable):
    """Walk CHAT agents toward their partner; return (partner gone, partner within reach).

    Takes the five arrays it reads rather than the option records: it runs on most ticks,
    and unboxing a whole record costs more than the walk.
    """
    n = alive.shape[0]
    gone = np.empty(n, dtype=np.int64)
    close = np.empty(n, dtype=np.int64)
    n_gone = n_close = 0
    for i in range(n):
        other = target[i]
        if not alive[i] or option[i] != OPT_CHAT or other < 0:
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
