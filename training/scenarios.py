"""Named capture scenarios: config overrides plus optional state tweaks.

A :class:`Scenario` is what the capture stage rolls the scripted expert through. It is a
set of config overrides (applied when the town is built) and, optionally:

* ``on_reset``: a tweak of the freshly reset :class:`~townlet_env.world.state.WorldState`.
  The capture loop follows it with one *unrecorded* all-``WAIT`` tick, so that every
  recorded observation and mask is computed by the env from the tweaked state.
* ``hook``: a factory (given the core env) for a per-tick hook, called on the state right
  after each ``env.step``. Its effect shows in the observation of the *next* tick (the observation
  the step returned was encoded before the hook ran), exactly like news arriving a tick late.

None of this edits ``townlet_env``: tweaks write the state's public arrays, and the outage
scenario starts the town's real water outage through its perturbation scheduler (see
:class:`OutageHook`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from townlet_env.config import NEEDS, TownConfig
from townlet_env.perturbations.scheduler import NAME as PERTURBATIONS
from townlet_env.world.map import UNREACHABLE
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

StateTweak = Callable[[WorldState, Rules, np.random.Generator], None]
TickHook = Callable[[WorldState], None]  # may also offer summary() -> dict for the manifest
ENERGY = NEEDS.index("energy")


class ScenarioError(KeyError):
    """An unknown scenario name (the message lists the known ones)."""


def _no_overrides(base: TownConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Scenario:
    """A named stress case for capture.

    Attributes:
        name: registry key, used in shard file names and the dataset manifest.
        description: one line on what the scenario stresses.
        overrides: ``base config -> overrides`` merged into the town config.
        on_reset: optional tweak of the state right after ``reset``.
        hook: optional ``core env -> per-tick hook`` factory (one fresh hook per episode).

    """

    name: str
    description: str
    overrides: Callable[[TownConfig], dict[str, Any]] = _no_overrides
    on_reset: StateTweak | None = None
    hook: Callable[[Any], TickHook] | None = None
    tags: tuple[str, ...] = field(default=())


def _low_money(base: TownConfig) -> dict[str, Any]:
    # Below every price: agents must earn before they can eat or wash.
    return {"economy": {"starting_wallet": 0.2}}


def _price_change(base: TownConfig) -> dict[str, Any]:
    return {"economy": {"prices": {k: round(v * 1.5, 6) for k, v in base.economy.prices.items()}}}


def _contention(base: TownConfig) -> dict[str, Any]:
    # The small map has one fridge, stove and shower and two beds for twelve people.
    return {"map": "small", "num_agents": 12}


def late_commuter(state: WorldState, rules: Rules, rng: np.random.Generator) -> None:
    """Tired agents, each placed on the reachable tile farthest from its workplace."""
    n = state.n_agents
    state.needs[:, ENERGY] = rng.uniform(0.12, 0.3, size=n).astype(np.float32)
    town = rules.town
    for i in range(n):
        job = int(state.job[i])
        if job < 0:
            continue
        dist = town.dist[int(rules.job_type[job])].astype(np.int32)
        dist[(dist >= UNREACHABLE) | ~town.walkable] = -1
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        state.pos[i] = (y, x)


_SCHEDULES_OFF = ("price_spike", "power_outage", "water_outage", "arranged_meet", "city_event")


def _outage_town(base: TownConfig) -> dict[str, Any]:
    # The scheduler on with every timetable off: only the hook starts a perturbation.
    kinds = {k: {"per_day": 0.0} for k in _SCHEDULES_OFF}
    kinds["water_outage"] = {"per_day": 0.0, "share": 1.0}
    return {"perturbations": {"enabled": True, **kinds}}


class OutageHook:
    """The "outage mid-use" scenario: the town's real water (or power) outage, started while someone uses it.

    The outage starts at the first tick at or after ``earliest`` on which somebody is
    using (or queueing for) an object the outage closes, or at ``latest`` if nobody does,
    through the town's perturbation scheduler (``perturbations.enabled`` must be on): users
    are refunded and released, queues cleared, the objects are out of service (masked, never
    targeted) for ``duration`` ticks, with ``PERTURBATION_START``/``END`` events.
    """

    def __init__(self, town: Any, kind: str, earliest: int, latest: int, duration: int) -> None:
        self.scheduler = town.attachments.get(PERTURBATIONS)
        if self.scheduler is None:
            raise ValueError(f"outage: the town has no perturbation scheduler; enable perturbations ({kind})")
        section = getattr(town.config.perturbations, kind)
        self.objects = np.flatnonzero(np.isin(town.rules.town.obj_type, [
            town.rules.manifest.object_types.index(t) for t in section.object_types]))  # fmt: skip
        self.kind, self.types = kind, section.object_types
        self.earliest, self.latest, self.duration = earliest, latest, duration
        self.started_at: int | None = None
        self.interrupted = 0

    def summary(self) -> dict[str, Any]:
        """What the outage did, for the dataset manifest."""
        end = None if self.started_at is None else self.started_at + self.duration
        return {"kind": self.kind, "object_type": ",".join(self.types), "started_at": self.started_at,
                "ends_at": end, "interrupted": self.interrupted}  # fmt: skip

    def _involved(self, state: WorldState) -> np.ndarray:
        return np.flatnonzero(np.isin(state.using, self.objects) | np.isin(state.waiting, self.objects))

    def __call__(self, state: WorldState) -> None:
        tick = state.tick
        if self.started_at is not None or tick < self.earliest:
            return
        if tick < self.latest and self._involved(state).size == 0:
            return
        started = self.scheduler.trigger(self.kind, duration=self.duration)
        self.started_at = tick
        self.interrupted = int(started["refunded"] + started["waiters_released"])


def _shower_outage(town: Any) -> TickHook:
    return OutageHook(town, "water_outage", earliest=360, latest=720, duration=180)


_ALL = (
    Scenario("baseline", "the default town, untouched", tags=("baseline",)),
    Scenario("low_money", "wallets start at 0.2, below every price", _low_money, tags=("low_money",)),
    Scenario("price_change", "every economy price x1.5", _price_change, tags=("price_spike",)),
    Scenario("contention", "12 agents on the small map (one fridge, stove, shower)", _contention, tags=("contention",)),
    Scenario(
        "late_commuter",
        "energy 0.12-0.3 at midnight, each agent on the tile farthest from its workplace",
        on_reset=late_commuter,
        tags=("lateness",),
    ),
    Scenario(
        "outage",
        "a real water outage: every shower out for 180 ticks, starting while someone uses one",
        _outage_town,
        hook=_shower_outage,
        tags=("outage",),
    ),
)

#: Every scenario by name, in a fixed order.
SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _ALL})


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        ScenarioError: unknown name, listing the known ones.

    """
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; known: {list(SCENARIOS)}") from None
