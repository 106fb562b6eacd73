"""The one internal observation encoder; variants choose which of its parts they emit.

Parts, each computed for all agents at once:

* ``map``: egocentric window of channels gathered from a padded town buffer in one
  fancy-indexing call (static channels are written once, dynamic ones each tick).
* ``self``: needs, money, time, shift, current option and activity, cooldowns.
* ``landmarks``: first-step direction and path distance to the nearest object of each type,
  home, own bed and the current target, read from the precomputed navigation fields.
* ``social``: top friends and rivals (trust, familiarity, rivalry, relative position).
"""

from __future__ import annotations

import numpy as np

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.map import DX, DY, UNREACHABLE
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

DIST_SCALE = 100.0  # path distances are divided by this and clipped to [0, 1]
POS_SCALE = 16.0  # relative positions of social ties, in tiles / POS_SCALE, clipped to [-1, 1]
WALLET_SCALE = 10.0


def self_feature_names(rules: Rules) -> list[str]:
    names = ["hunger", "hygiene", "energy", "wallet", "time_sin", "time_cos", "episode_progress"]
    names += ["has_job", "work_window", "on_shift", "at_work", "arrived", "late", "attendance", "to_shift"]
    names += [f"option_{o.name.lower()}" for o in Option]
    names += ["committed", "using", "use_progress", "queued", "last_ok", "present"]
    names += [f"cooldown_{t}" for t in rules.manifest.object_types]
    return names


def landmark_names(rules: Rules) -> list[str]:
    marks = [*rules.manifest.object_types, "home", "bed", "target"]
    return [f"lm_{m}_{k}" for m in marks for k in ("dy", "dx", "dist")]


def social_names(rules: Rules) -> list[str]:
    cfg = rules.config.observations
    slots = [f"friend{i}" for i in range(cfg.social_friends)] + [f"rival{i}" for i in range(cfg.social_rivals)]
    per = ("trust", "familiarity", "rivalry", "dy", "dx", "present")
    return [f"{s}_{k}" for s in slots for k in per] + ["ties", "trust_max", "rivalry_max"]


class Encoder:
    """Computes observation parts from a :class:`WorldState` (see the module docstring)."""

    def __init__(self, rules: Rules, map_channels: tuple[str, ...], window: int) -> None:
        self.rules = rules
        self.channels = map_channels
        self.window = window
        town = rules.town
        r = window // 2
        h, w = town.shape
        self._r = r
        self._buf = np.zeros((len(map_channels), h + 2 * r, w + 2 * r), dtype=np.float32)
        offsets = np.arange(window) - r
        self._oy = offsets[None, :, None] + r
        self._ox = offsets[None, None, :] + r
        types = rules.manifest.object_types
        obj_y, obj_x = town.obj_pos[:, 0] + r, town.obj_pos[:, 1] + r
        for c, name in enumerate(map_channels):
            if name == "wall":
                self._buf[c] = 1.0
                self._buf[c, r : r + h, r : r + w] = ~town.walkable
            elif name == "objects":
                self._buf[c, obj_y, obj_x] = 1.0
            elif name.startswith("object_"):
                t = types.index(name.removeprefix("object_"))
                sel = town.obj_type == t
                self._buf[c, obj_y[sel], obj_x[sel]] = 1.0
        self._agents_c = map_channels.index("agents") if "agents" in map_channels else -1
        self._busy_c = map_channels.index("occupied") if "occupied" in map_channels else -1
        self._obj_y, self._obj_x = obj_y, obj_x
        self._unit = np.stack([DY, DX], axis=1).astype(np.float32)  # direction code -> (dy, dx)

    def map(self, state: WorldState) -> np.ndarray:
        """float32[N, C*w*w]: the egocentric windows, flattened channel-major."""
        r = self._r
        if self._agents_c >= 0:
            plane = self._buf[self._agents_c]
            plane.fill(0.0)
            live = state.pos[state.alive]
            plane[live[:, 0] + r, live[:, 1] + r] = 1.0
        if self._busy_c >= 0:
            plane = self._buf[self._busy_c]
            queued = np.bincount(state.waiting[state.waiting >= 0], minlength=len(state.holder))
            plane[self._obj_y, self._obj_x] = np.minimum(1.0, ((state.holder >= 0) + queued) / 3.0)
        ys = state.pos[:, 0][:, None, None] + self._oy
        xs = state.pos[:, 1][:, None, None] + self._ox
        win = self._buf[:, ys, xs]  # [C, N, w, w]
        if self._agents_c >= 0:
            # Other agents only: an agent alone on its tile sees 0 at the centre.
            centre = win[self._agents_c, :, r, r]
            shared = (state.pos[:, None, :] == state.pos[None, state.alive, :]).all(axis=2).sum(axis=1)
            win[self._agents_c, :, r, r] = np.where(shared > 1, 1.0, 0.0) * (centre > 0)
        return np.ascontiguousarray(win.transpose(1, 0, 2, 3)).reshape(state.n_agents, -1)

    def self_features(self, state: WorldState, out: np.ndarray) -> None:
        """Write the self features into ``out`` (float32[N, n_self])."""
        rules = self.rules
        tick = state.tick
        minute = tick % TICKS_PER_DAY
        angle = 2.0 * np.pi * minute / TICKS_PER_DAY
        out[:, 0:3] = state.needs
        out[:, 3] = state.wallet / WALLET_SCALE
        out[:, 4] = np.sin(angle)
        out[:, 5] = np.cos(angle)
        out[:, 6] = min(1.0, tick / rules.config.max_ticks)
        has = state.job >= 0
        if len(rules.job_start):
            j = np.maximum(state.job, 0)
            start, end = rules.job_start[j], rules.job_end[j]
            shift = has & (minute >= start) & (minute < end)
            out[:, 8] = has & (minute >= start - 120) & (minute < end)
            out[:, 9] = shift
            out[:, 10] = shift & (state.running == rules.job_affordance[j])
            out[:, 14] = np.where(has, ((start - minute) % TICKS_PER_DAY) / TICKS_PER_DAY, 1.0)
        else:
            out[:, 8:11] = 0.0
            out[:, 14] = 1.0
        out[:, 7] = has
        out[:, 11] = state.arrived
        out[:, 12] = state.late | state.absent
        out[:, 13] = state.attendance
        base = 15
        out[:, base : base + len(Option)] = 0.0
        out[np.arange(state.n_agents), base + state.option] = 1.0
        base += len(Option)
        out[:, base] = np.clip((state.commit_until - tick) / rules.config.options.commit_ticks, 0.0, 1.0)
        running = state.running >= 0
        out[:, base + 1] = running
        dur = rules.aff_duration[np.maximum(state.running, 0)]
        out[:, base + 2] = np.where(running, 1.0 - state.remaining / dur, 0.0)
        out[:, base + 3] = state.waiting >= 0
        out[:, base + 4] = state.last_ok
        out[:, base + 5] = state.alive
        out[:, base + 6 :] = state.cooldown_until > tick

    def landmarks(self, state: WorldState, out: np.ndarray) -> None:
        """Write (dy, dx, dist) per landmark into ``out`` (float32[N, 3 * L])."""
        town = self.rules.town
        n_types = town.n_types
        bed = town.home_bed[state.home]
        target = state.target
        target_field = np.where(
            state.option == Option.GO_HOME, town.first_home_field + target, town.first_object_field + target
        )
        has_target = (target >= 0) & (state.option != Option.CHAT) & (state.option != Option.WAIT)
        fields = np.empty((state.n_agents, n_types + 3), dtype=np.int64)
        fields[:, :n_types] = np.arange(n_types)
        fields[:, n_types] = town.first_home_field + state.home
        fields[:, n_types + 1] = town.first_object_field + np.maximum(bed, 0)
        fields[:, n_types + 2] = np.where(has_target, target_field, 0)
        y, x = state.pos[:, 0][:, None], state.pos[:, 1][:, None]
        dist = town.dist[fields, y, x].astype(np.float32)
        step = town.step[fields, y, x]
        unit = self._unit[step]  # [N, L, 2]
        missing = dist >= UNREACHABLE
        missing[:, n_types + 2] |= ~has_target
        dist = np.where(missing, 1.0, np.minimum(dist / DIST_SCALE, 1.0))
        unit[missing] = 0.0
        view = out.reshape(state.n_agents, -1, 3)
        view[:, :, 0:2] = unit
        view[:, :, 2] = dist

    def social(self, state: WorldState, out: np.ndarray) -> None:
        """Write the social snippet into ``out`` (float32[N, 6 * slots + 3])."""
        cfg = self.rules.config.observations
        others, vals = state.tie_other, state.tie_vals
        valid = others >= 0
        n = state.n_agents
        rows = np.arange(n)[:, None]
        friend_score = np.where(valid & (vals[..., 0] + vals[..., 1] > 0), vals[..., 0] + vals[..., 1], -np.inf)
        rival_score = np.where(valid & (vals[..., 2] > 0), vals[..., 2], -np.inf)
        picks = [(friend_score, cfg.social_friends), (rival_score, cfg.social_rivals)]
        col = 0
        for score, count in picks:
            order = np.argsort(-score, axis=1, kind="stable")[:, :count]
            for k in range(count):
                slot = order[:, k] if k < order.shape[1] else np.zeros(n, dtype=np.int64)
                present = np.isfinite(score[rows[:, 0], slot]) if k < order.shape[1] else np.zeros(n, bool)
                other = others[rows[:, 0], slot]
                rel = (state.pos[np.maximum(other, 0)] - state.pos).astype(np.float32) / POS_SCALE
                block = out[:, col : col + 6]
                block[:, 0:3] = vals[rows[:, 0], slot]
                block[:, 3:5] = np.clip(rel, -1.0, 1.0)
                block[:, 5] = 1.0
                block[~present] = 0.0
                col += 6
        out[:, col] = valid.sum(axis=1) / others.shape[1]
        out[:, col + 1] = np.where(valid, vals[..., 0], 0.0).max(axis=1) if others.shape[1] else 0.0
        out[:, col + 2] = np.where(valid, vals[..., 2], 0.0).max(axis=1) if others.shape[1] else 0.0
