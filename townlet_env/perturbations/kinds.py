"""One perturbation's life: its record, how each kind starts (checks, draws, effects) and ends.

:class:`Active` is a running perturbation. :func:`plan` checks a :class:`Request` against
the town now without drawing anything or changing anything (the console's dry run shows
its preview); :func:`start` draws what the request left open and applies the effects;
:func:`finish` undoes them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from townlet_env.perturbations import effects
from townlet_env.perturbations.config import PerturbationConfig
from townlet_env.world.events import EventLog, PerturbationKind
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

K = PerturbationKind
KIND_NAMES: dict[str, PerturbationKind] = {k.name.lower(): k for k in PerturbationKind}


class PerturbationError(ValueError):
    """A perturbation cannot start (or end) now; ``code`` is a console error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Request:
    """What to start; ``None``/empty fields are drawn (duration, magnitude, key) or picked (targets)."""

    kind: PerturbationKind
    duration: int | None = None
    targets: tuple[int, ...] = ()
    key: str | None = None
    magnitude: float | None = None


@dataclass
class Active:
    """A running perturbation (JSON-able with ``asdict``)."""

    id: int
    kind: int
    start: int
    end: int
    targets: list[int]
    key: str | None = None
    magnitude: float = 1.0
    objects: list[int] | None = None
    met_at: int = -1  #: arranged meet: the object where the pair met (-1: not yet)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def section(cfg: PerturbationConfig, kind: PerturbationKind) -> Any:
    """The config section of ``kind``."""
    return cfg.kinds()[kind.name.lower()]


def check_manifest(cfg: PerturbationConfig, rules: Rules) -> None:
    """Raise ``PerturbationError`` if a kind names an object type the manifest lacks."""
    types = rules.manifest.object_types
    named = [("power_outage.object_types", t) for t in cfg.power_outage.object_types]
    named += [("water_outage.object_types", t) for t in cfg.water_outage.object_types]
    named.append(("arranged_meet.place", cfg.arranged_meet.place))
    bad = [f"perturbations.{where}: {t!r}" for where, t in named if t not in types]
    if bad:
        raise PerturbationError(
            "invalid_args", f"{rules.config.config_id}: unknown object types {bad}; the manifest has {list(types)}"
        )


def plan(
    cfg: PerturbationConfig, state: WorldState, rules: Rules, req: Request, active: list[Active]
) -> dict[str, Any]:
    """Check ``req`` against the town now; return what it would do (nothing is drawn or changed)."""
    sec = section(cfg, req.kind)
    running = [a for a in active if a.kind == req.kind]
    lo, hi = sec.duration
    preview: dict[str, Any] = {"kind": req.kind.name.lower(), "duration": req.duration or f"{lo}..{hi}"}
    if req.duration is not None and not 1 <= req.duration <= 7 * 1440:
        raise PerturbationError("invalid_args", f"duration={req.duration}: give 1..{7 * 1440} ticks")
    if req.kind == K.PRICE_SPIKE:
        prices = rules.config.economy.prices
        if req.key is not None and req.key not in prices:
            raise PerturbationError("not_found", f"key={req.key!r} is no economy price; choose from {sorted(prices)}")
        busy = {a.key for a in running}
        keys = [req.key] if req.key is not None else [k for k in sec.keys if k not in busy]
        if not keys or keys[0] in busy:
            raise PerturbationError("conflict", f"price key(s) {keys or list(sec.keys)} already spiked; end it first")
        if req.magnitude is not None and not 0.0 < req.magnitude <= 100.0:
            raise PerturbationError("invalid_args", f"magnitude={req.magnitude}: give a factor in (0, 100]")
        preview |= {"key": keys[0] if len(keys) == 1 else keys, "magnitude": req.magnitude or list(sec.magnitude)}
    elif req.kind in (K.POWER_OUTAGE, K.WATER_OUTAGE):
        objs = _free_objects(state, rules, sec.object_types)
        if objs.size == 0:
            raise PerturbationError("conflict", f"every {list(sec.object_types)} object is already out of service")
        preview |= {"object_types": list(sec.object_types), "objects": math.ceil(sec.share * objs.size)}
    elif req.kind == K.ARRANGED_MEET:
        if req.targets:
            _check_pair(state, req.targets)
        preview |= {"targets": list(req.targets) or "two seats by fairness bucket", "place": sec.place}
    elif running:
        raise PerturbationError("conflict", f"a city event is already running (id {running[0].id}); end it first")
    return preview


def _check_pair(state: WorldState, targets: tuple[int, ...]) -> None:
    n = state.n_agents
    if len(targets) != 2 or targets[0] == targets[1]:
        raise PerturbationError("invalid_args", f"targets={list(targets)}: an arranged meet needs two different seats")
    for t in targets:
        if not 0 <= t < n:
            raise PerturbationError("not_found", f"targets: seat {t} does not exist (0..{n - 1})")
        if not state.alive[t]:
            raise PerturbationError("conflict", f"targets: seat {t} is vacant; pick living agents")
        if state.meet_partner[t] >= 0:
            raise PerturbationError("conflict", f"targets: seat {t} already has a meet; end it first")


def _free_objects(state: WorldState, rules: Rules, types: tuple[str, ...]) -> np.ndarray:
    objs = effects.objects_of(rules, types)
    return objs[~state.out_of_service[objs]]


def start(
    cfg: PerturbationConfig,
    state: WorldState,
    rules: Rules,
    req: Request,
    ident: int,
    rng: np.random.Generator,
    active: list[Active],
    log: EventLog,
) -> tuple[Active, dict[str, Any]]:
    """Draw what ``req`` left open and apply the effects; ``req.targets`` must be resolved already.

    Returns the new record (not yet in ``active``) and what the effects did.
    """
    sec = section(cfg, req.kind)
    lo, hi = sec.duration
    duration = int(req.duration if req.duration is not None else rng.integers(lo, hi + 1))
    act = Active(ident, int(req.kind), int(state.tick), int(state.tick) + duration, [int(t) for t in req.targets])
    detail: dict[str, Any] = {}
    if req.kind == K.PRICE_SPIKE:
        free = [k for k in sec.keys if k not in {a.key for a in active if a.kind == K.PRICE_SPIKE}]
        act.key = req.key if req.key is not None else free[int(rng.integers(len(free)))]
        act.magnitude = float(req.magnitude if req.magnitude is not None else round(rng.uniform(*sec.magnitude), 3))
        apply_prices(state, rules, [*active, act])
    elif req.kind in (K.POWER_OUTAGE, K.WATER_OUTAGE):
        objs = _free_objects(state, rules, sec.object_types)
        count = math.ceil(sec.share * objs.size)
        act.objects = sorted(int(o) for o in rng.choice(objs, size=count, replace=False))
        detail = effects.close_objects(state, rules, np.array(act.objects, dtype=np.int64), log)
    elif req.kind == K.ARRANGED_MEET:
        a, b = act.targets
        state.meet_partner[a], state.meet_partner[b] = b, a
    elif req.kind == K.CITY_EVENT:
        effects.hold_exits(state, act.end + cfg.exit_grace_ticks)
    return act, detail


def apply_prices(state: WorldState, rules: Rules, active: list[Active]) -> None:
    """Price factors from the running price spikes (1 everywhere when none run)."""
    factors: dict[str, float] = {}
    for a in active:
        if a.kind == K.PRICE_SPIKE and a.key is not None:
            factors[a.key] = factors.get(a.key, 1.0) * a.magnitude
    effects.set_price_factors(state, rules, factors)


def finish(cfg: PerturbationConfig, state: WorldState, rules: Rules, act: Active, rest: list[Active]) -> None:
    """Undo ``act``'s effects; ``rest`` are the perturbations still running."""
    if act.kind == K.PRICE_SPIKE:
        apply_prices(state, rules, rest)
    elif act.kind in (K.POWER_OUTAGE, K.WATER_OUTAGE) and act.objects:
        still = {o for a in rest if a.objects for o in a.objects}
        effects.open_objects(state, np.array([o for o in act.objects if o not in still], dtype=np.int64))
    elif act.kind == K.ARRANGED_MEET:
        state.meet_partner[act.targets] = -1
    elif act.kind == K.CITY_EVENT and state.tick < act.end:  # ended early: the grace counts from now
        state.exits_held_until = int(state.tick) + cfg.exit_grace_ticks
