"""The environment's golden cases: the original pin plus town-life scenarios.

The first ten are the original dynamics pin (seeded random play in every action mode and
observation variant, a scripted-expert day, a crowded town with faints and respawns). The
town-life cases put the scripted expert (or nobody) into situations the design cares
about; their tweaks write the freshly reset state's public arrays only. Capture's stress
scenarios join these in ``training.golden`` (they are defined in ``training.scenarios``,
which this package must not import).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from townlet_env.config import NEEDS, TICKS_PER_DAY
from townlet_env.golden.trace import Case, StateTweak, case
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

HUNGER, HYGIENE, ENERGY = (NEEDS.index(n) for n in ("hunger", "hygiene", "energy"))
RIVALRY = 2  # tie_vals[..., 2]: (trust, familiarity, rivalry)

PIN: tuple[Case, ...] = (
    case("option-hybrid-random-s0", 0, 2_000, "random", action_mode="option", obs_variant="hybrid"),
    case("option-hybrid-random-s1", 1, 2_000, "random", action_mode="option", obs_variant="hybrid"),
    case("primitive-hybrid-random-s0", 0, 2_000, "random", action_mode="primitive", obs_variant="hybrid"),
    case("primitive-hybrid-random-s1", 1, 2_000, "random", action_mode="primitive", obs_variant="hybrid"),
    case("option-full-random-s2", 2, 600, "random", action_mode="option", obs_variant="full"),
    case("option-compact-random-s2", 2, 600, "random", action_mode="option", obs_variant="compact"),
    case("primitive-full-random-s2", 2, 600, "random", action_mode="primitive", obs_variant="full"),
    case("primitive-compact-random-s2", 2, 600, "random", action_mode="primitive", obs_variant="compact"),
    case("option-hybrid-expert-s3", 3, 2 * TICKS_PER_DAY, "expert", obs_variant="hybrid"),
    # A crowded small town with a short respawn: faints, evictions and respawns happen.
    case("small-crowded-random-s4", 4, 3_000, "random", map="small", num_agents=12, obs_variant="full"),
)


def _set_needs(**levels: float) -> StateTweak:
    """A tweak setting the named needs of every seat to fixed levels."""

    def tweak(state: WorldState, rules: Rules, rng: np.random.Generator) -> None:
        for need, level in levels.items():
            state.needs[:, NEEDS.index(need)] = np.float32(level)

    return tweak


def _rivals(state: WorldState, rules: Rules, rng: np.random.Generator) -> None:
    """Seats 0 and 1 (and 2 and 3) start as strong rivals in each other's first tie slot."""
    for a, b, level in ((0, 1, 0.9), (2, 3, 0.6)):
        for me, other in ((a, b), (b, a)):
            state.tie_other[me, 0] = other
            state.tie_vals[me, 0] = (0.0, 0.2, level)


def _scenario(name: str, ticks: int, policy: str, tweak: StateTweak | None, about: str, **kw: Any) -> Case:
    idle_until = kw.pop("idle_until", 0)
    base = case(name, 7, ticks, policy, obs_variant="hybrid", **kw)
    return Case(base.name, base.seed, base.ticks, base.policy, base.env_kwargs, on_reset=tweak, description=about,
                idle_until=idle_until)  # fmt: skip


TOWN_LIFE: tuple[Case, ...] = (
    _scenario("breakfast-no-contention", 600, "expert", _set_needs(hunger=0.35),
              "two hungry agents on the big map: breakfast without anyone queueing", num_agents=2),
    _scenario("shower-queue-contention", 480, "expert", _set_needs(hygiene=0.15),
              "six dirty agents on the small map's one shower: a queue forms", map="small", num_agents=6),
    _scenario("punctual-commuters", 1_100, "expert", _set_needs(hunger=0.8, hygiene=0.8, energy=0.95),
              "rested agents go to work on time", num_agents=4),
    _scenario("late-commuters", 1_100, "expert", None,
              "everybody idles until 09:20, after both shifts start, then commutes late", num_agents=4,
              idle_until=560),
    _scenario("rivalry-decay", 720, "expert", _rivals, "two rival pairs; rivalry decays over half a day",
              num_agents=4),
    _scenario("idle-baseline", 720, "wait", None, "nobody acts: needs decay, nobody eats or works", num_agents=4),
)  # fmt: skip

#: Every environment case, in recording order.
ENV_CASES: tuple[Case, ...] = PIN + TOWN_LIFE
