"""The encoder's kernels: a short driver and one compiled writer per block, for every seat at once.

Each writer fills exactly the features its block names in
:mod:`townlet_env.observations.features`, at the columns a
:class:`~townlet_env.observations.features.Columns` record looked up by name. The arrays
come in records built by :mod:`townlet_env.observations.encoder`: ``st``
(:class:`~townlet_env.observations.encoder.StateArrays`), ``town``
(:class:`~townlet_env.observations.encoder.TownArrays`) and ``mp``
(:class:`~townlet_env.observations.encoder.MapPlanes`). What each feature means is listed
in docs/environment.md ("What the features mean").
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.observations.features import (
    ARRIVED,
    AT_WORK,
    ATTENDANCE,
    COMMITTED,
    ENERGY,
    EPISODE_PROGRESS,
    HAS_JOB,
    HUNGER,
    HYGIENE,
    LAST_OK,
    LATE,
    ON_SHIFT,
    PRESENT,
    QUEUED,
    TIME_COS,
    TIME_SIN,
    TO_SHIFT,
    USE_PROGRESS,
    USING,
    WALLET,
    WORK_DIST,
    WORK_SLACK,
    WORK_WINDOW,
)
from townlet_env.world.map import DX, DY, UNREACHABLE
from townlet_env.world.systems.options import WORK_LEAD_TICKS

DIST_SCALE = 100.0  # path distances are divided by this and clipped to [0, 1]
POS_SCALE = 16.0  # relative positions of social ties, in tiles / POS_SCALE, clipped to [-1, 1]
WALLET_SCALE = 10.0
SLACK_SCALE = 120.0  # work_slack: ticks to spare before the shift, / SLACK_SCALE, clipped to [-1, 1]
STATIC, AGENTS, OCCUPIED = 0, 1, 2  # how a map channel is filled (MapPlanes.kinds)


# The driver lives with the writers it calls: numba's on-disk cache checks only the source
# file of the kernel it loads, so a driver in another module would keep stale writer code.
@njit(cache=True)
def encode(out, tick, st, town, mp, cols):
    """Write every block of every seat's observation into ``out``."""
    if mp.window > 0:
        write_map(out, st, mp, cols.map_start)
    write_self(out, tick, st, town, cols.own)
    write_landmarks(out, st, town, cols.landmarks)
    write_social(out, st, cols.social)


@njit(cache=True)
def write_map(out, st, mp, start):
    """The egocentric windows, channel-major from column ``start``; ``mp.window`` > 0."""
    n, n_obj, window, r = st.pos.shape[0], mp.obj_pos.shape[0], mp.window, mp.r
    agents, busy = mp.agents, mp.busy  # all zero between calls
    for j in range(n):
        if st.alive[j]:
            agents[st.pos[j, 0] + r, st.pos[j, 1] + r] += 1
    queued = np.zeros(n_obj, dtype=np.int32)
    for j in range(n):
        if st.waiting[j] >= 0:
            queued[st.waiting[j]] += 1
    for m in range(n_obj):
        load = queued[m] + (1 if st.holder[m] >= 0 else 0)
        busy[mp.obj_pos[m, 0] + r, mp.obj_pos[m, 1] + r] = min(1.0, load / 3.0)
    for i in range(n):
        y0, x0 = st.pos[i, 0], st.pos[i, 1]
        k = start
        for c in range(mp.kinds.shape[0]):
            kind, plane = mp.kinds[c], mp.plane[c]
            for dy in range(window):  # explicit loops: slicing would build a view per row
                yy = y0 + dy
                if kind == STATIC:
                    for dx in range(window):
                        out[i, k + dx] = mp.static[plane, yy, x0 + dx]
                elif kind == AGENTS:
                    for dx in range(window):
                        out[i, k + dx] = 1.0 if agents[yy, x0 + dx] > 0 else 0.0
                else:
                    for dx in range(window):
                        out[i, k + dx] = busy[yy, x0 + dx]
                k += window
            if kind == AGENTS and st.alive[i]:
                # Other agents only: an agent alone on its tile sees 0 at the centre.
                out[i, k - window * window + r * window + r] = 1.0 if agents[y0 + r, x0 + r] > 1 else 0.0
    for j in range(n):  # leave the scratch planes zeroed for the next call
        agents[st.pos[j, 0] + r, st.pos[j, 1] + r] = 0
    for m in range(n_obj):
        busy[mp.obj_pos[m, 0] + r, mp.obj_pos[m, 1] + r] = 0.0


@njit(cache=True)
def write_self(out, tick, st, town, c):
    """Needs, money, time, option one-hot, activity and cooldowns; the job part per seat."""
    minute = tick % TICKS_PER_DAY
    angle = 2.0 * np.pi * minute / TICKS_PER_DAY
    s_angle, c_angle = np.sin(angle), np.cos(angle)
    progress = min(1.0, tick / town.max_ticks)
    for i in range(st.pos.shape[0]):
        out[i, c.at[HUNGER]] = st.needs[i, 0]
        out[i, c.at[HYGIENE]] = st.needs[i, 1]
        out[i, c.at[ENERGY]] = st.needs[i, 2]
        out[i, c.at[WALLET]] = st.wallet[i] / WALLET_SCALE
        out[i, c.at[TIME_SIN]] = s_angle
        out[i, c.at[TIME_COS]] = c_angle
        out[i, c.at[EPISODE_PROGRESS]] = progress
        _write_job(out, i, minute, st, town, c)
        for q in range(c.option.shape[0]):
            out[i, c.option[q]] = 0.0
        out[i, c.option[st.option[i]]] = 1.0
        out[i, c.at[COMMITTED]] = min(1.0, max(0.0, (st.commit_until[i] - tick) / town.commit_ticks))
        running = st.running[i]
        if running >= 0:
            out[i, c.at[USING]] = 1.0
            out[i, c.at[USE_PROGRESS]] = 1.0 - st.remaining[i] / town.aff_duration[running]
        else:
            out[i, c.at[USING]] = 0.0
            out[i, c.at[USE_PROGRESS]] = 0.0
        out[i, c.at[QUEUED]] = 1.0 if st.waiting[i] >= 0 else 0.0
        out[i, c.at[LAST_OK]] = 1.0 if st.last_ok[i] else 0.0
        out[i, c.at[PRESENT]] = 1.0 if st.alive[i] else 0.0
        for t in range(c.cooldown.shape[0]):
            out[i, c.cooldown[t]] = 1.0 if st.cooldown_until[i, t] > tick else 0.0


@njit(cache=True)
def _write_job(out, i, minute, st, town, c):
    """Seat ``i``'s shift state, which job, how far its workplace is and the slack before the shift."""
    j = st.job[i]
    if j >= 0 and town.job_start.shape[0] > 0:
        start, end = town.job_start[j], town.job_end[j]
        shift = minute >= start and minute < end
        out[i, c.at[HAS_JOB]] = 1.0
        out[i, c.at[WORK_WINDOW]] = 1.0 if (minute >= start - WORK_LEAD_TICKS and minute < end) else 0.0
        out[i, c.at[ON_SHIFT]] = 1.0 if shift else 0.0
        out[i, c.at[AT_WORK]] = 1.0 if (shift and st.running[i] == town.job_aff[j]) else 0.0
        out[i, c.at[TO_SHIFT]] = ((start - minute) % TICKS_PER_DAY) / TICKS_PER_DAY
    else:
        out[i, c.at[HAS_JOB]] = 0.0
        out[i, c.at[WORK_WINDOW]] = 0.0
        out[i, c.at[ON_SHIFT]] = 0.0
        out[i, c.at[AT_WORK]] = 0.0
        out[i, c.at[TO_SHIFT]] = 1.0
    out[i, c.at[ARRIVED]] = 1.0 if st.arrived[i] else 0.0
    out[i, c.at[LATE]] = 1.0 if (st.late[i] or st.absent[i]) else 0.0
    out[i, c.at[ATTENDANCE]] = st.attendance[i]
    n_jobs = c.job.shape[0]
    for jj in range(n_jobs):
        out[i, c.job[jj]] = 1.0 if j == jj else 0.0
    if j >= 0 and n_jobs > 0:
        d = town.dist[town.job_type[j], st.pos[i, 0], st.pos[i, 1]]
        out[i, c.at[WORK_DIST]] = min(1.0, d / DIST_SCALE)
        if minute < town.job_start[j]:
            slack = (town.job_start[j] - minute - d) / SLACK_SCALE
        elif minute < town.job_end[j]:
            slack = -d / SLACK_SCALE
        else:
            slack = 1.0
        out[i, c.at[WORK_SLACK]] = min(1.0, max(-1.0, slack))
    else:
        out[i, c.at[WORK_DIST]] = 1.0
        out[i, c.at[WORK_SLACK]] = 1.0


@njit(cache=True)
def write_landmarks(out, st, town, c):
    """First step (dy, dx) and distance to each object type, the home, own bed and target."""
    n_types = town.n_types
    for i in range(st.pos.shape[0]):
        y, x = st.pos[i, 0], st.pos[i, 1]
        for lm in range(c.dy.shape[0]):
            ok = True
            if lm < n_types:
                f = lm
            elif lm == n_types:
                f = town.first_home_field + st.home[i]
            elif lm == n_types + 1:
                bed = town.home_bed[st.home[i]]
                f = town.first_object_field + max(bed, 0)
                ok = bed >= 0
            else:
                opt, target = st.option[i], st.target[i]
                ok = target >= 0 and opt != Option.WAIT and opt != Option.CHAT
                home = opt == Option.GO_HOME
                f = town.first_home_field + target if home else town.first_object_field + target
                if not ok:
                    f = 0
            d = town.dist[f, y, x]
            if ok and d < UNREACHABLE:
                s = town.step[f, y, x]
                out[i, c.dy[lm]] = DY[s]
                out[i, c.dx[lm]] = DX[s]
                out[i, c.dist[lm]] = min(1.0, d / DIST_SCALE)
            else:
                out[i, c.dy[lm]] = 0.0
                out[i, c.dx[lm]] = 0.0
                out[i, c.dist[lm]] = 1.0


@njit(cache=True)
def write_social(out, st, c):
    """Top friends (trust + familiarity), top rivals (rivalry), then the tie summary."""
    tie_other, tie_vals, pos = st.tie_other, st.tie_vals, st.pos
    n_ties, n_slots = tie_other.shape[1], c.trust.shape[0]
    for i in range(pos.shape[0]):
        used = 0  # bitmask of tie slots already shown (max_ties <= 32)
        for s in range(n_slots):
            friend = s < c.n_friends
            if s == c.n_friends:
                used = 0  # a rival may also be shown as a friend
            best, best_score = -1, 0.0
            for k in range(n_ties):
                if tie_other[i, k] < 0 or (used >> k) & 1:
                    continue
                score = tie_vals[i, k, 0] + tie_vals[i, k, 1] if friend else tie_vals[i, k, 2]
                if score > 0 and (best < 0 or score > best_score):
                    best, best_score = k, score
            if best >= 0:
                used |= 1 << best
                other = tie_other[i, best]
                out[i, c.trust[s]] = tie_vals[i, best, 0]
                out[i, c.familiarity[s]] = tie_vals[i, best, 1]
                out[i, c.rivalry[s]] = tie_vals[i, best, 2]
                out[i, c.dy[s]] = min(1.0, max(-1.0, (pos[other, 0] - pos[i, 0]) / POS_SCALE))
                out[i, c.dx[s]] = min(1.0, max(-1.0, (pos[other, 1] - pos[i, 1]) / POS_SCALE))
                out[i, c.present[s]] = 1.0
            else:
                out[i, c.trust[s]] = 0.0
                out[i, c.familiarity[s]] = 0.0
                out[i, c.rivalry[s]] = 0.0
                out[i, c.dy[s]] = 0.0
                out[i, c.dx[s]] = 0.0
                out[i, c.present[s]] = 0.0
        filled = 0
        trust_max, rivalry_max = -np.inf, -np.inf
        for k in range(n_ties):
            valid = tie_other[i, k] >= 0
            filled += 1 if valid else 0
            trust_max = max(trust_max, tie_vals[i, k, 0] if valid else 0.0)
            rivalry_max = max(rivalry_max, tie_vals[i, k, 2] if valid else 0.0)
        out[i, c.ties] = filled / n_ties
        out[i, c.trust_max] = trust_max
        out[i, c.rivalry_max] = rivalry_max
