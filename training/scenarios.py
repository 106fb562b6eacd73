"""Named capture scenarios: config overrides plus optional state tweaks.

A :class:`Scenario` is what the capture stage rolls the scripted expert through. It is a
set of config overrides (applied when the town is built) and, optionally:

* ``on_reset``: a tweak of the freshly reset :class:`~townlet_env.world.state.WorldState`.
  The capture loop follows it with one *unrecorded* all-``WAIT`` tick, so that every
  recorded observation and mask is computed by the env from the tweaked state.
* ``hook``: a factory for a per-tick hook, called on the state right after each
  ``env.step``. Its effect shows in the observation of the *next* tick (the observation
  the step returned was encoded before the hook ran), exactly like news arriving a tick late.

None of this edits ``townlet_env``: tweaks write the state's public arrays and use the
world's own ``cancel`` system. The outage scenario is an approximation (there is no outage
system until the M8 perturbation scheduler): see :class:`OutageHook`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from townlet_env.config import NEEDS, TownConfig
from townlet_env.world.events import EventLog
from townlet_env.world.map import UNREACHABLE
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.affordances import cancel

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
        hook: optional ``rules -> per-tick hook`` factory (one fresh hook per episode).

    """

    name: str
    description: str
    overrides: Callable[[TownConfig], dict[str, Any]] = _no_overrides
    on_reset: StateTweak | None = None
    hook: Callable[[Rules], TickHook] | None = None
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


class OutageHook:
    """Approximate "outage mid-use": one object type breaks for a window.

    The outage starts at the first tick at or after ``earliest`` on which somebody is
    using (or queueing for) an object of the type, or at ``latest`` if nobody does. From
    then on, for ``duration`` ticks: whoever is using or queueing there is cancelled
    (the world's ``cancel``: no effects, no refund, the option fails on the next tick), and
    every seat's cooldown for the type is held until the outage ends, which masks the
    option and makes a request there fail. What it does not model: a visible "broken"
    map state, telemetry events for the outage, or repair.
    """

    def __init__(self, rules: Rules, object_type: str, earliest: int, latest: int, duration: int) -> None:
        types = rules.manifest.object_types
        if object_type not in types:
            raise ValueError(f"outage: unknown object type {object_type!r}; the manifest has {list(types)}")
        self.type = types.index(object_type)
        self.objects = np.flatnonzero(rules.town.obj_type == self.type)
        self.rules = rules
        self.earliest, self.latest, self.duration = earliest, latest, duration
        self.started_at: int | None = None
        self.interrupted = 0

    def summary(self) -> dict[str, Any]:
        """What the outage did, for the dataset manifest."""
        end = None if self.started_at is None else self.started_at + self.duration
        name = self.rules.manifest.object_types[self.type]
        return {"object_type": name, "started_at": self.started_at, "ends_at": end, "interrupted": self.interrupted}

    def _involved(self, state: WorldState) -> np.ndarray:
        return np.flatnonzero(np.isin(state.using, self.objects) | np.isin(state.waiting, self.objects))

    def __call__(self, state: WorldState) -> None:
        tick = state.tick
        if self.started_at is None:
            if tick < self.earliest or (tick < self.latest and self._involved(state).size == 0):
                return
            self.started_at = tick
        end = self.started_at + self.duration
        if tick >= end:
            return
        involved = self._involved(state)
        if involved.size:
            self.interrupted += int(involved.size)
            cancel(state, self.rules, involved, EventLog())
        cool = state.cooldown_until[:, self.type]
        state.cooldown_until[:, self.type] = np.maximum(cool, end)


def _shower_outage(rules: Rules) -> TickHook:
    return OutageHook(rules, "shower", earliest=360, latest=720, duration=180)


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
        "showers fail for 180 ticks, starting while someone uses one (approximation, see OutageHook)",
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
