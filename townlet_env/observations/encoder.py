"""The one internal observation encoder; variants choose which of its parts they emit.

Parts, written for all agents by one compiled kernel per call:

* ``map``: egocentric ``w x w`` window per channel. Static channels (walls, objects) come
  from a padded buffer built once; ``agents`` marks tiles holding another living agent and
  ``occupied`` marks objects in use or queued for (held + queue length, / 3, capped at 1).
* ``self``: needs, money, time, shift, current option and activity, cooldowns.
* ``landmarks``: first-step direction and path distance to the nearest object of each type,
  home, own bed and the current target, read from the precomputed navigation fields.
* ``social``: top friends (by trust + familiarity) and top rivals (by rivalry) with their
  relative position, then tie count, max trust and max rivalry.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.map import DX, DY, UNREACHABLE
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

DIST_SCALE = 100.0  # path distances are divided by this and clipped to [0, 1]
POS_SCALE = 16.0  # relative positions of social ties, in tiles / POS_SCALE, clipped to [-1, 1]
WALLET_SCALE = 10.0
SLACK_SCALE = 120.0  # work_slack: ticks to spare before the shift, / SLACK_SCALE, clipped to [-1, 1]
WORK_LEAD_TICKS = 120  # must match world.systems.options.WORK_LEAD_TICKS
STATIC, AGENTS, OCCUPIED = 0, 1, 2
N_OPTIONS = len(Option)
OPT_WAIT, OPT_CHAT, OPT_GO_HOME = int(Option.WAIT), int(Option.CHAT), int(Option.GO_HOME)


def self_feature_names(rules: Rules) -> list[str]:
    names = ["hunger", "hygiene", "energy", "wallet", "time_sin", "time_cos", "episode_progress"]
    names += ["has_job", "work_window", "on_shift", "at_work", "arrived", "late", "attendance", "to_shift"]
    names += [f"option_{o.name.lower()}" for o in Option]
    names += ["committed", "using", "use_progress", "queued", "last_ok", "present"]
    names += [f"cooldown_{t}" for t in rules.manifest.object_types]
    names += [f"job_{j}" for j in rules.job_names] + ["work_dist", "work_slack"]
    return names


def landmark_names(rules: Rules) -> list[str]:
    marks = [*rules.manifest.object_types, "home", "own_bed", "target"]
    return [f"lm_{m}_{k}" for m in marks for k in ("dy", "dx", "dist")]


def social_names(rules: Rules) -> list[str]:
    cfg = rules.config.observations
    slots = [f"friend{i}" for i in range(cfg.social_friends)] + [f"rival{i}" for i in range(cfg.social_rivals)]
    per = ("trust", "familiarity", "rivalry", "dy", "dx", "present")
    return [f"{s}_{k}" for s in slots for k in per] + ["ties", "trust_max", "rivalry_max"]


class Encoder:
    """Encodes observation vectors from a :class:`WorldState` (see the module docstring)."""

    def __init__(self, rules: Rules, map_channels: tuple[str, ...], window: int, landmarks: bool) -> None:
        self.rules = rules
        town = rules.town
        r = window // 2 if map_channels else 0
        h, w = town.shape
        types = rules.manifest.object_types
        static: list[np.ndarray] = []
        kinds, index = [], []
        for name in map_channels:
            plane = np.zeros((h + 2 * r, w + 2 * r), dtype=np.float32)
            if name == "blocked":
                plane[:] = 1.0
                plane[r : r + h, r : r + w] = ~town.walkable
            elif name == "objects":
                plane[town.obj_pos[:, 0] + r, town.obj_pos[:, 1] + r] = 1.0
            elif name.startswith("object_"):
                sel = town.obj_type == types.index(name.removeprefix("object_"))
                plane[town.obj_pos[sel, 0] + r, town.obj_pos[sel, 1] + r] = 1.0
            kinds.append({"agents": AGENTS, "occupied": OCCUPIED}.get(name, STATIC))
            index.append(len(static))
            static.append(plane)
        self._static = np.stack(static) if static else np.zeros((1, 1, 1), dtype=np.float32)
        self._kinds = np.array(kinds, dtype=np.int8)
        self._index = np.array(index, dtype=np.int64)
        self._window = window if map_channels else 0
        self._r = r
        self._landmarks = landmarks
        self._scratch_agents = np.zeros(self._static.shape[1:], dtype=np.int32)
        self._scratch_busy = np.zeros(self._static.shape[1:], dtype=np.float32)
        cfg = rules.config
        self._consts = np.array(
            [cfg.max_ticks, cfg.options.commit_ticks, cfg.observations.social_friends, cfg.observations.social_rivals],
            dtype=np.int64,
        )
        # Arguments that never change, bound once: the kernel call is on the hot path.
        self._head = (self._static, self._kinds, self._index, self._window, self._r, self._landmarks, self._consts,
                      self._scratch_agents, self._scratch_busy)  # fmt: skip
        self._tail = (rules.job_start, rules.job_end, rules.job_affordance, rules.job_type, rules.aff_duration,
                      town.obj_pos,
                      town.dist, town.step, town.home_bed, town.n_types, town.first_object_field,
                      town.first_home_field)  # fmt: skip

    def encode(self, state: WorldState, out: np.ndarray) -> None:
        """Fill ``out`` (float32[N, size]) with every seat's observation."""
        _encode(
            out, *self._head,
            state.tick, state.pos, state.alive, state.needs, state.wallet, state.job, state.home,
            state.option, state.commit_until, state.target, state.running, state.remaining,
            state.waiting, state.last_ok, state.arrived, state.late, state.absent, state.attendance,
            state.cooldown_until, state.holder, state.tie_other, state.tie_vals,
            *self._tail,
        )  # fmt: skip


@njit(cache=True)
def _encode(
    out, static, kinds, index, window, r, landmarks, consts, scratch_agents, scratch_busy,
    tick, pos, alive, needs, wallet, job, home, option, commit_until, target, running, remaining,
    waiting, last_ok, arrived, late, absent, attendance, cooldown_until, holder, tie_other, tie_vals,
    job_start, job_end, job_aff, job_type, aff_duration, obj_pos, dist, step, home_bed, n_types,
    first_object_field, first_home_field,
):  # fmt: skip
    n = pos.shape[0]
    n_obj = obj_pos.shape[0]
    max_ticks, commit_ticks, n_friends, n_rivals = consts[0], consts[1], consts[2], consts[3]
    col = 0
    # --- map ---
    if window > 0:
        agents, busy = scratch_agents, scratch_busy  # all zero between calls
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
        n_ch = kinds.shape[0]
        for i in range(n):
            y0, x0 = pos[i, 0], pos[i, 1]
            k = 0
            for c in range(n_ch):
                kind = kinds[c]
                plane = index[c]
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
                    centre = k - window * window + r * window + r
                    out[i, centre] = 1.0 if agents[y0 + r, x0 + r] > 1 else 0.0
        col = n_ch * window * window
        for j in range(n):  # leave the scratch planes zeroed for the next call
            agents[pos[j, 0] + r, pos[j, 1] + r] = 0
        for m in range(n_obj):
            busy[obj_pos[m, 0] + r, obj_pos[m, 1] + r] = 0.0
    # --- self ---
    minute = tick % TICKS_PER_DAY
    angle = 2.0 * np.pi * minute / TICKS_PER_DAY
    s_angle, c_angle = np.sin(angle), np.cos(angle)
    progress = min(1.0, tick / max_ticks)
    n_opt = N_OPTIONS
    for i in range(n):
        o = out[i, col:]
        o[0] = needs[i, 0]
        o[1] = needs[i, 1]
        o[2] = needs[i, 2]
        o[3] = wallet[i] / WALLET_SCALE
        o[4] = s_angle
        o[5] = c_angle
        o[6] = progress
        j = job[i]
        if j >= 0 and job_start.shape[0] > 0:
            start, end = job_start[j], job_end[j]
            shift = minute >= start and minute < end
            o[7] = 1.0
            o[8] = 1.0 if (minute >= start - WORK_LEAD_TICKS and minute < end) else 0.0
            o[9] = 1.0 if shift else 0.0
            o[10] = 1.0 if (shift and running[i] == job_aff[j]) else 0.0
            o[14] = ((start - minute) % TICKS_PER_DAY) / TICKS_PER_DAY
        else:
            o[7] = 0.0
            o[8] = 0.0
            o[9] = 0.0
            o[10] = 0.0
            o[14] = 1.0
        o[11] = 1.0 if arrived[i] else 0.0
        o[12] = 1.0 if (late[i] or absent[i]) else 0.0
        o[13] = attendance[i]
        for q in range(n_opt):
            o[15 + q] = 0.0
        o[15 + option[i]] = 1.0
        b = 15 + n_opt
        o[b] = min(1.0, max(0.0, (commit_until[i] - tick) / commit_ticks))
        if running[i] >= 0:
            o[b + 1] = 1.0
            o[b + 2] = 1.0 - remaining[i] / aff_duration[running[i]]
        else:
            o[b + 1] = 0.0
            o[b + 2] = 0.0
        o[b + 3] = 1.0 if waiting[i] >= 0 else 0.0
        o[b + 4] = 1.0 if last_ok[i] else 0.0
        o[b + 5] = 1.0 if alive[i] else 0.0
        for t in range(cooldown_until.shape[1]):
            o[b + 6 + t] = 1.0 if cooldown_until[i, t] > tick else 0.0
        # Which job, how far its workplace is, and the slack before the shift: the commute decision.
        b += 6 + cooldown_until.shape[1]
        n_jobs = job_type.shape[0]
        for jj in range(n_jobs):
            o[b + jj] = 1.0 if job[i] == jj else 0.0
        if j >= 0 and n_jobs > 0:
            d = dist[job_type[j], pos[i, 0], pos[i, 1]]
            o[b + n_jobs] = min(1.0, d / DIST_SCALE)
            if minute < job_start[j]:
                slack = (job_start[j] - minute - d) / SLACK_SCALE
            elif minute < job_end[j]:
                slack = -d / SLACK_SCALE
            else:
                slack = 1.0
            o[b + n_jobs + 1] = min(1.0, max(-1.0, slack))
        else:
            o[b + n_jobs] = 1.0
            o[b + n_jobs + 1] = 1.0
    col += 15 + n_opt + 6 + cooldown_until.shape[1] + job_type.shape[0] + 2
    # --- landmarks ---
    if landmarks:
        n_marks = n_types + 3
        for i in range(n):
            y, x = pos[i, 0], pos[i, 1]
            for lm in range(n_marks):
                ok = True
                if lm < n_types:
                    f = lm
                elif lm == n_types:
                    f = first_home_field + home[i]
                elif lm == n_types + 1:
                    bed = home_bed[home[i]]
                    f = first_object_field + max(bed, 0)
                    ok = bed >= 0
                else:
                    opt = option[i]
                    ok = target[i] >= 0 and opt != OPT_WAIT and opt != OPT_CHAT
                    f = first_home_field + target[i] if opt == OPT_GO_HOME else first_object_field + target[i]
                    if not ok:
                        f = 0
                d = dist[f, y, x]
                base = col + 3 * lm
                if ok and d < UNREACHABLE:
                    s = step[f, y, x]
                    out[i, base] = DY[s]
                    out[i, base + 1] = DX[s]
                    out[i, base + 2] = min(1.0, d / DIST_SCALE)
                else:
                    out[i, base] = 0.0
                    out[i, base + 1] = 0.0
                    out[i, base + 2] = 1.0
        col += 3 * n_marks
    # --- social ---
    n_ties = tie_other.shape[1]
    for i in range(n):
        c = col
        for group in range(2):
            count = n_friends if group == 0 else n_rivals
            used = 0  # bitmask of tie slots already shown (max_ties <= 32)
            for _ in range(count):
                best, best_score = -1, 0.0
                for k in range(n_ties):
                    if tie_other[i, k] < 0 or (used >> k) & 1:
                        continue
                    score = tie_vals[i, k, 0] + tie_vals[i, k, 1] if group == 0 else tie_vals[i, k, 2]
                    if score > 0 and (best < 0 or score > best_score):
                        best, best_score = k, score
                if best >= 0:
                    used |= 1 << best
                    other = tie_other[i, best]
                    out[i, c] = tie_vals[i, best, 0]
                    out[i, c + 1] = tie_vals[i, best, 1]
                    out[i, c + 2] = tie_vals[i, best, 2]
                    out[i, c + 3] = min(1.0, max(-1.0, (pos[other, 0] - pos[i, 0]) / POS_SCALE))
                    out[i, c + 4] = min(1.0, max(-1.0, (pos[other, 1] - pos[i, 1]) / POS_SCALE))
                    out[i, c + 5] = 1.0
                else:
                    for q in range(6):
                        out[i, c + q] = 0.0
                c += 6
        filled = 0
        trust_max, rivalry_max = -np.inf, -np.inf
        for k in range(n_ties):
            valid = tie_other[i, k] >= 0
            filled += 1 if valid else 0
            trust_max = max(trust_max, tie_vals[i, k, 0] if valid else 0.0)
            rivalry_max = max(rivalry_max, tie_vals[i, k, 2] if valid else 0.0)
        out[i, c] = filled / n_ties
        out[i, c + 1] = trust_max
        out[i, c + 2] = rivalry_max
