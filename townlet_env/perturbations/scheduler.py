"""The perturbation scheduler: an attachment that starts and ends perturbations on a timetable.

Each tick (``before_step``) it ends the perturbations whose time is up, then starts at
most one due perturbation, if the limits allow: at most ``max_concurrent`` at once, none
within ``stagger_ticks`` of the last start or ``global_cooldown_ticks`` of the last end,
the kind's own cooldown (counted from its end) over, and the window caps (per kind and
overall) not reached. Each kind is due on a jittered grid: its k-th firing is due at
``anchor + (k + u) / per_day`` days with ``u`` uniform in ``+-jitter/2`` and the anchor
uniform within the first gap, so a start delayed by a limit does not lower the rate and
the count over many days stays within one of ``per_day x days``. An arranged meet picks its pair by fairness
bucket (:mod:`townlet_env.perturbations.fairness`); when no fair pair is free, it waits.

After each tick (``after_step``) it checks arranged meets (a pair within ``radius`` of one
object of the meeting place has met: a tie bonus, and the meet ends), and appends its
events (``PERTURBATION_START``/``END``, and the ``AFFORDANCE_FAIL`` of released users) to
``env.last_events``. The action masks follow at the end of the tick, as for any change
of the world (a caller that starts one between ticks and wants the current masks to show
it calls ``env.refresh_action_masks()``). It is attached first (by the env, when ``perturbations.enabled``),
so the other components see those events. Its RNG is seeded from the world's RNG state at
each reset (so from the reset seed) without drawing from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np

from townlet_env.perturbations import effects, kinds, persist
from townlet_env.perturbations.config import DAY, PerturbationConfig
from townlet_env.perturbations.fairness import pick_targets
from townlet_env.perturbations.kinds import KIND_NAMES, Active, PerturbationError, Request
from townlet_env.world.events import EventKind, EventLog, PerturbationKind

NAME = "perturbations"  #: the attachment name
_SALT = 0x7E57  # keeps the scheduler's stream apart from others seeded from the same state


def _seed_of(rng: np.random.Generator) -> int:
    digest = hashlib.blake2b(repr(rng.bit_generator.state).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class PerturbationScheduler:
    """Schedules, triggers and ends perturbations in one town (see the module docstring).

    Args:
        env: the core env (``TownletParallelEnv``) it perturbs.
        config: the section to run; default: ``env.config.perturbations``.

    Raises:
        PerturbationError: a kind names an object type the manifest lacks.

    """

    def __init__(self, env: Any, config: PerturbationConfig | None = None) -> None:
        self.env = env
        self.cfg = config if config is not None else env.config.perturbations
        kinds.check_manifest(self.cfg, env.rules)
        self.log = EventLog()  #: events of this tick not yet handed to ``env.last_events``
        self._restart()

    # --- lifecycle hooks -------------------------------------------------------------
    def _restart(self) -> None:
        world = self.env.world
        self.rng = np.random.default_rng([_SALT, _seed_of(world.rng)])
        n, tick = world.n_agents, int(world.tick)
        self.active: list[Active] = []
        self.counts = np.zeros(n, np.int64)  #: times each seat was targeted (fairness buckets)
        self.agent_ready_at = np.zeros(n, np.int64)  #: per-agent cooldowns
        self.kind_ready_at = dict.fromkeys(KIND_NAMES, 0)
        self.global_ready_at = 0
        self.last_start = -(10**9)
        self.starts: list[tuple[int, int]] = []  #: (tick, kind) of starts within the window
        self.fired = dict.fromkeys(KIND_NAMES, 0)
        self.stats = dict.fromkeys(("refunded", "waiters_released", "rerouted", "meets_met"), 0)
        self.next_id = 1
        self.next_at: dict[str, float | None] = {}
        self.anchor: dict[str, float] = {}
        self.slot = dict.fromkeys(KIND_NAMES, 0)
        for name, sec in self.cfg.kinds().items():
            self.anchor[name] = tick + float(self.rng.uniform(0.0, DAY / sec.per_day)) if sec.per_day > 0 else 0.0
            self.next_at[name] = self._due(name)
        self.log.events = []

    def after_reset(self, env: Any) -> None:
        self._restart()

    def before_step(self, env: Any, actions: np.ndarray) -> None:
        tick = int(env.world.tick)
        self.log.tick = tick
        for act in [a for a in self.active if a.end <= tick]:
            self._finish(act, tick)
        self.starts = [s for s in self.starts if s[0] > tick - self.cfg.window_ticks]
        if not self._room(tick):
            return
        due = sorted((t, name) for name, t in self.next_at.items() if t is not None and t <= tick)
        for _, name in due:
            req = self._scheduled_request(KIND_NAMES[name], tick)
            if req is not None:
                self._start(req, tick)
                self.slot[name] += 1
                self.next_at[name] = self._due(name)
                return

    def _due(self, name: str) -> float | None:
        """When firing ``slot[name]`` of kind ``name`` is due on its jittered grid (None: off)."""
        per_day = self.cfg.kinds()[name].per_day
        if per_day <= 0:
            return None
        half = self.cfg.jitter / 2
        return self.anchor[name] + (self.slot[name] + float(self.rng.uniform(-half, half))) * DAY / per_day

    def after_step(self, env: Any) -> None:
        world = env.world
        tick = int(world.tick) - 1  # the tick just simulated
        self.log.tick = tick
        meet = self.cfg.arranged_meet
        for act in [a for a in self.active if a.kind == PerturbationKind.ARRANGED_MEET]:
            places = effects.objects_of(env.rules, [meet.place])
            pair = (act.targets[0], act.targets[1])
            if not world.alive[list(pair)].all():  # a participant left town: the meet is off
                self._finish(act, tick)
                continue
            where = effects.meeting_place(world, env.rules, pair, places, meet.radius)
            if where >= 0:
                act.met_at = where
                self.stats["meets_met"] += 1
                effects.meet_bonus(world, env.rules, pair, meet.bonus, self.log)
                self._finish(act, tick)
        if self.log.events:
            env.last_events.extend(self.log.events)
            self.log.events = []

    # --- limits ----------------------------------------------------------------------
    def _room(self, tick: int) -> bool:
        """Whether the scheduled path may start anything this tick (kind-independent limits)."""
        cfg = self.cfg
        return (
            len(self.active) < cfg.max_concurrent
            and tick >= self.global_ready_at
            and tick - self.last_start >= max(cfg.stagger_ticks, 1)
            and len(self.starts) < cfg.max_per_window
        )

    def _scheduled_request(self, kind: PerturbationKind, tick: int) -> Request | None:
        """The request a due ``kind`` would start now, or ``None`` if its limits or the town forbid."""
        name = kind.name.lower()
        sec = self.cfg.kinds()[name]
        if tick < self.kind_ready_at[name] or sum(k == kind for _, k in self.starts) >= sec.max_per_window:
            return None
        req = Request(kind)
        if kind == PerturbationKind.ARRANGED_MEET:
            picked = self._fair_pair(tick)
            if picked is None:
                return None
            req = replace(req, targets=picked)
        try:
            kinds.plan(self.cfg, self.env.world, self.env.rules, req, self.active)
        except PerturbationError:
            return None
        return req

    def _fair_pair(self, tick: int) -> tuple[int, ...] | None:
        picked = pick_targets(self.counts, self.env.world.alive, self.agent_ready_at <= tick, 2, self.rng)
        return None if picked is None else tuple(picked)

    # --- start and end ---------------------------------------------------------------
    def _start(self, req: Request, tick: int) -> dict[str, Any]:
        env, cfg = self.env, self.cfg
        act, detail = kinds.start(cfg, env.world, env.rules, req, self.next_id, self.rng, self.active, self.log)
        self.next_id += 1
        self.active.append(act)
        name = req.kind.name.lower()
        self.starts.append((tick, int(req.kind)))
        self.last_start = tick
        self.fired[name] += 1
        for key in ("refunded", "waiters_released", "rerouted"):
            self.stats[key] += int(detail.get(key, 0))
        self.kind_ready_at[name] = act.end + kinds.section(cfg, req.kind).cooldown_ticks
        for t in act.targets:
            self.counts[t] += 1
            self.agent_ready_at[t] = act.end + cfg.agent_cooldown_ticks
        first = act.objects[0] if act.objects else -1
        agent, other = [*act.targets, -1, -1][:2]
        self.log.emit(EventKind.PERTURBATION_START, agent, other=other, obj=first, value=int(req.kind))
        return {"id": act.id, **act.to_json(), **detail}

    def _finish(self, act: Active, tick: int) -> None:
        env, cfg = self.env, self.cfg
        self.active.remove(act)
        kinds.finish(cfg, env.world, env.rules, act, self.active)
        kind = PerturbationKind(act.kind)
        name = kind.name.lower()
        self.kind_ready_at[name] = tick + kinds.section(cfg, kind).cooldown_ticks
        self.global_ready_at = max(self.global_ready_at, tick + cfg.global_cooldown_ticks)
        for t in act.targets:
            self.agent_ready_at[t] = tick + cfg.agent_cooldown_ticks
        obj = act.met_at if kind == PerturbationKind.ARRANGED_MEET else (act.objects[0] if act.objects else -1)
        agent, other = [*act.targets, -1, -1][:2]
        self.log.emit(EventKind.PERTURBATION_END, agent, other=other, obj=obj, value=int(kind))

    # --- by hand ---------------------------------------------------------------------
    def request(
        self,
        kind: str | PerturbationKind,
        *,
        duration: int | None = None,
        targets: tuple[int, ...] | list[int] = (),
        key: str | None = None,
        magnitude: float | None = None,
    ) -> tuple[Request, dict[str, Any]]:
        """Check a manual perturbation against the town now: the request and its preview.

        Manual perturbations skip the schedule's limits (the operator decides) but not the
        town's: a price key spiked twice, an outage with nothing left to close, a meet of a
        vacant seat or a second city event are refused.

        Raises:
            PerturbationError: unknown kind or bad arguments (``code`` is a console error code).

        """
        if isinstance(kind, str):
            if kind not in KIND_NAMES:
                raise PerturbationError("invalid_args", f"kind={kind!r} is unknown; choose one of {list(KIND_NAMES)}")
            kind = KIND_NAMES[kind]
        req = Request(PerturbationKind(kind), duration, tuple(int(t) for t in targets), key, magnitude)
        preview = kinds.plan(self.cfg, self.env.world, self.env.rules, req, self.active)
        return req, preview

    def trigger(self, kind: str | PerturbationKind, *, dry_run: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Start a perturbation now, by hand (``dry_run``: only check it and say what it would do).

        ``kwargs`` are :meth:`request`'s. An arranged meet without ``targets`` picks its pair
        by fairness bucket. Returns the preview (dry run) or the started perturbation.

        Raises:
            PerturbationError: see :meth:`request`; also no fair pair is free for a meet.

        """
        req, preview = self.request(kind, **kwargs)
        if dry_run:
            return {"dry_run": True, **preview}
        tick = int(self.env.world.tick)
        self.log.tick = tick
        if req.kind == PerturbationKind.ARRANGED_MEET and not req.targets:
            picked = self._fair_pair(tick)
            if picked is None:
                raise PerturbationError("conflict", "no fair pair is free now (cooldowns); name targets or wait")
            req = replace(req, targets=picked)
        return self._start(req, tick)

    def end(self, ident: int) -> dict[str, Any]:
        """End the active perturbation ``ident`` now (its effects are undone)."""
        found = [a for a in self.active if a.id == ident]
        if not found:
            raise PerturbationError("not_found", f"id={ident} is not active; active: {[a.id for a in self.active]}")
        tick = int(self.env.world.tick)
        self.log.tick = tick
        self._finish(found[0], tick)
        return found[0].to_json()

    # --- views and snapshots ---------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A JSON view for operators and telemetry: active, cooldowns, fairness counts, timetable."""
        return {
            "active": [a.to_json() for a in self.active],
            "next_at": {k: (None if v is None else round(v, 1)) for k, v in self.next_at.items()},
            "cooldowns": {
                "kinds": dict(self.kind_ready_at),
                "global": self.global_ready_at,
                "agents": self.agent_ready_at.tolist(),
            },
            "targeted": self.counts.tolist(),
            "fired": dict(self.fired),
            "stats": dict(self.stats),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything the scheduler carries between ticks, for snapshots (:mod:`.persist`)."""
        return persist.dump(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the same perturbations follow."""
        persist.restore(self, state)
