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


# Every writer copies the record fields it reads into locals before its seat loop: a field
# read from a record inside the loop costs a reference-count increment and decrement on each
# iteration, which made the self block four times slower per seat.
@njit(cache=True)
def write_map(out, st, mp, start):
    """The egocentric windows, channel-major from column ``start``; ``mp.window`` > 0."""
    pos, alive, waiting, holder = st.pos, st.alive, st.waiting, st.holder
    static, kinds, planes, obj_pos = mp.static, mp.kinds, mp.plane, mp.obj_pos
    n, n_obj, window, r = pos.shape[0], obj_pos.shape[0], mp.window, mp.r
    agents, busy = mp.agents, mp.busy  # all zero between calls
    for j in range(n):
        if alive[j]:
            agents[pos[j, 0] + r, pos[j, 1] + r] += 1
    queued = np.zeros(n_obj, dtype=np.int32)
    for j in range(n):
        if waiting[j] >= 0:
            queued[waiting[j]] += 1
    for m in range(n_obj):
        load = queued[m] + (1 if holder[m] >= 0 else 0)
        busy[obj_pos[m, 0] + r, obj_pos[m, 1] + r] = min(1.0, load / 3.0)
    for i in range(n):
        y0, x0 = pos[i, 0], pos[i, 1]
        k = start
        for c in range(kinds.shape[0]):
            kind, plane = kinds[c], planes[c]
            for dy in range(window):  # explicit loops: slicing would build a view per row
                yy = y0 + dy
                if kind == STATIC:
                    for dx in range(window):
                        out[i, k + dx] = static[plane, yy, x0 + dx]
                elif kind == AGENTS:
                    for dx in range(window):
                        out[i, k + dx] = 1.0 if agents[yy, x0 + dx] > 0 else 0.0
                else:
                    for dx in range(window):
                        out[i, k + dx] = busy[yy, x0 + dx]
                k += window
            if kind == AGENTS and alive[i]:
                # Other agents only: an agent alone on its tile sees 0 at the centre.
                out[i, k - window * window + r * window + r] = 1.0 if agents[y0 + r, x0 + r] > 1 else 0.0
    for j in range(n):  # leave the scratch planes zeroed for the next call
        agents[pos[j, 0] + r, pos[j, 1] + r] = 0
    for m in range(n_obj):
        busy[obj_pos[m, 0] + r, obj_pos[m, 1] + r] = 0.0


@njit(cache=True)
def write_self(out, tick, st, town, c):
    """Needs, money, time, option one-hot, activity and cooldowns; then the job part."""
    minute = tick % TICKS_PER_DAY
    angle = 2.0 * np.pi * minute / TICKS_PER_DAY
    s_angle, c_angle = np.sin(angle), np.cos(angle)
    progress = min(1.0, tick / town.max_ticks)
    at, option_cols, cooldown_cols = c.at, c.option, c.cooldown
    needs, wallet, option, commit_until = st.needs, st.wallet, st.option, st.commit_until
    running, remaining, waiting, last_ok, alive = st.running, st.remaining, st.waiting, st.last_ok, st.alive
    cooldown_until, aff_duration, commit_ticks = st.cooldown_until, town.aff_duration, town.commit_ticks
    for i in range(st.pos.shape[0]):
        out[i, at[HUNGER]] = needs[i, 0]
        out[i, at[HYGIENE]] = needs[i, 1]
        out[i, at[ENERGY]] = needs[i, 2]
        out[i, at[WALLET]] = wallet[i] / WALLET_SCALE
        out[i, at[TIME_SIN]] = s_angle
        out[i, at[TIME_COS]] = c_angle
        out[i, at[EPISODE_PROGRESS]] = progress
        for q in range(option_cols.shape[0]):
            out[i, option_cols[q]] = 0.0
        out[i, option_cols[option[i]]] = 1.0
        out[i, at[COMMITTED]] = min(1.0, max(0.0, (commit_until[i] - tick) / commit_ticks))
        a = running[i]
        if a >= 0:
            out[i, at[USING]] = 1.0
            out[i, at[USE_PROGRESS]] = 1.0 - remaining[i] / aff_duration[a]
        else:
            out[i, at[USING]] = 0.0
            out[i, at[USE_PROGRESS]] = 0.0
        out[i, at[QUEUED]] = 1.0 if waiting[i] >= 0 else 0.0
        out[i, at[LAST_OK]] = 1.0 if last_ok[i] else 0.0
        out[i, at[PRESENT]] = 1.0 if alive[i] else 0.0
        for t in range(cooldown_cols.shape[0]):
            out[i, cooldown_cols[t]] = 1.0 if cooldown_until[i, t] > tick else 0.0
    _write_jobs(out, minute, st, town, c)


@njit(cache=True)
def _write_jobs(out, minute, st, town, c):
    """Each seat's shift state, which job, how far its workplace is and the slack before the shift."""
    at, job_cols = c.at, c.job
    job, pos, running, arrived, late, absent, attendance = (
        st.job,
        st.pos,
        st.running,
        st.arrived,
        st.late,
        st.absent,
        st.attendance,
    )
    job_start, job_end, job_aff, job_type, dist = town.job_start, town.job_end, town.job_aff, town.job_type, town.dist
    n_jobs = job_cols.shape[0]
    for i in range(pos.shape[0]):
        j = job[i]
        if j >= 0 and job_start.shape[0] > 0:
            start, end = job_start[j], job_end[j]
            shift = minute >= start and minute < end
            out[i, at[HAS_JOB]] = 1.0
            out[i, at[WORK_WINDOW]] = 1.0 if (minute >= start - WORK_LEAD_TICKS and minute < end) else 0.0
            out[i, at[ON_SHIFT]] = 1.0 if shift else 0.0
            out[i, at[AT_WORK]] = 1.0 if (shift and running[i] == job_aff[j]) else 0.0
            out[i, at[TO_SHIFT]] = ((start - minute) % TICKS_PER_DAY) / TICKS_PER_DAY
        else:
            out[i, at[HAS_JOB]] = 0.0
            out[i, at[WORK_WINDOW]] = 0.0
            out[i, at[ON_SHIFT]] = 0.0
            out[i, at[AT_WORK]] = 0.0
            out[i, at[TO_SHIFT]] = 1.0
        out[i, at[ARRIVED]] = 1.0 if arrived[i] else 0.0
        out[i, at[LATE]] = 1.0 if (late[i] or absent[i]) else 0.0
        out[i, at[ATTENDANCE]] = attendance[i]
        for jj in range(n_jobs):
            out[i, job_cols[jj]] = 1.0 if j == jj else 0.0
        if j >= 0 and n_jobs > 0:
            d = dist[job_type[j], pos[i, 0], pos[i, 1]]
            out[i, at[WORK_DIST]] = min(1.0, d / DIST_SCALE)
            if minute < job_start[j]:
                slack = (job_start[j] - minute - d) / SLACK_SCALE
            elif minute < job_end[j]:
                slack = -d / SLACK_SCALE
            else:
                slack = 1.0
            out[i, at[WORK_SLACK]] = min(1.0, max(-1.0, slack))
        else:
            out[i, at[WORK_DIST]] = 1.0
            out[i, at[WORK_SLACK]] = 1.0


@njit(cache=True)
def write_landmarks(out, st, town, c):
    """First step (dy, dx) and distance to each object type, the home, own bed and target."""
    n_types, first_home, first_object = town.n_types, town.first_home_field, town.first_object_field
    home_bed, dist, step = town.home_bed, town.dist, town.step
    pos, homes, options, targets = st.pos, st.home, st.option, st.target
    dy_cols, dx_cols, dist_cols = c.dy, c.dx, c.dist
    for i in range(pos.shape[0]):
        y, x = pos[i, 0], pos[i, 1]
        for lm in range(dy_cols.shape[0]):
            ok = True
            if lm < n_types:
                f = lm
            elif lm == n_types:
                f = first_home + homes[i]
            elif lm == n_types + 1:
                bed = home_bed[homes[i]]
                f = first_object + max(bed, 0)
                ok = bed >= 0
            else:
                opt, target = options[i], targets[i]
                ok = target >= 0 and opt != Option.WAIT and opt != Option.CHAT
                home = opt == Option.GO_HOME
                f = first_home + target if home else first_object + target
                if not ok:
                    f = 0
            d = dist[f, y, x]
            if ok and d < UNREACHABLE:
                s = step[f, y, x]
                out[i, dy_cols[lm]] = DY[s]
                out[i, dx_cols[lm]] = DX[s]
                out[i, dist_cols[lm]] = min(1.0, d / DIST_SCALE)
            else:
                out[i, dy_cols[lm]] = 0.0
                out[i, dx_cols[lm]] = 0.0
                out[i, dist_cols[lm]] = 1.0


@njit(cache=True)
def write_social(out, st, c):
    """Top friends (trust + familiarity), top rivals (rivalry), then the tie summary."""
    tie_other, tie_vals, pos = st.tie_other, st.tie_vals, st.pos
    trust_cols, fam_cols, riv_cols, dy_cols, dx_cols, present_cols = (
        c.trust,
        c.familiarity,
        c.rivalry,
        c.dy,
        c.dx,
        c.present,
    )
    n_friends, ties_col, trust_max_col, rivalry_max_col = c.n_friends, c.ties, c.trust_max, c.rivalry_max
    n_ties, n_slots = tie_other.shape[1], trust_cols.shape[0]
    for i in range(pos.shape[0]):
        used = 0  # bitmask of tie slots already shown (max_ties <= 32)
        for s in range(n_slots):
            friend = s < n_friends
            if s == n_friends:
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
                out[i, trust_cols[s]] = tie_vals[i, best, 0]
                out[i, fam_cols[s]] = tie_vals[i, best, 1]
                out[i, riv_cols[s]] = tie_vals[i, best, 2]
                out[i, dy_cols[s]] = min(1.0, max(-1.0, (pos[other, 0] - pos[i, 0]) / POS_SCALE))
                out[i, dx_cols[s]] = min(1.0, max(-1.0, (pos[other, 1] - pos[i, 1]) / POS_SCALE))
                out[i, present_cols[s]] = 1.0
            else:
                out[i, trust_cols[s]] = 0.0
                out[i, fam_cols[s]] = 0.0
                out[i, riv_cols[s]] = 0.0
                out[i, dy_cols[s]] = 0.0
                out[i, dx_cols[s]] = 0.0
                out[i, present_cols[s]] = 0.0
        filled = 0
        trust_max, rivalry_max = -np.inf, -np.inf
        for k in range(n_ties):
            valid = tie_other[i, k] >= 0
            filled += 1 if valid else 0
            trust_max = max(trust_max, tie_vals[i, k, 0] if valid else 0.0)
            rivalry_max = max(rivalry_max, tie_vals[i, k, 2] if valid else 0.0)
        out[i, ties_col] = filled / n_ties
        out[i, trust_max_col] = trust_max
        out[i, rivalry_max_col] = rivalry_max
