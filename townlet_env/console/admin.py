"""Admin commands: each checks its arguments against the town now and returns a :class:`Plan`.

A plan's ``preview`` says what would change (``dry_run`` answers with it and stops); its
``apply`` makes the change. The console checks a command when it is submitted, queues it,
and checks it again when it is applied at the start of the next tick (the town may have
moved on), so a command refused at either point changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from townlet_env.config import NEEDS
from townlet_env.console.errors import ConsoleError
from townlet_env.console.town import SeatRef, alive_seat, seat
from townlet_env.world.events import EventLog
from townlet_env.world.systems import lifecycle
from townlet_env.world.systems.affordances import cancel
from townlet_env.world.systems.options import complete_failed_starts
from townlet_env.world.systems.relationships import set_tie, tie

Number = StrictInt | StrictFloat


@dataclass(frozen=True)
class Plan:
    """What a checked command would change, and how to change it."""

    preview: dict[str, Any]
    apply: Callable[[], dict[str, Any]]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AgentArgs(Args):
    agent: SeatRef


class SpawnArgs(AgentArgs):
    pos: list[StrictInt] | None = Field(default=None, min_length=2, max_length=2)  # [y, x]


class TeleportArgs(AgentArgs):
    y: StrictInt
    x: StrictInt


class NeedArgs(AgentArgs):
    need: Literal["hunger", "hygiene", "energy"]
    value: Number = Field(ge=0.0, le=1.0)


class PriceArgs(Args):
    key: str = Field(max_length=64)
    value: Number = Field(ge=0.0, le=1e6)


class TieArgs(AgentArgs):
    other: SeatRef
    trust: Number | None = Field(default=None, ge=-1.0, le=1.0)
    familiarity: Number | None = Field(default=None, ge=-1.0, le=1.0)
    rivalry: Number | None = Field(default=None, ge=0.0, le=1.0)


class MortalityArgs(Args):
    enabled: StrictBool | None = None  # None flips it


class ExitCapArgs(Args):
    cap: StrictInt = Field(ge=0, le=10_000)


def _respawn_on(env: Any, cmd: str) -> None:
    if not env.rules.config.lifecycle.respawn:
        raise ConsoleError(
            "conflict", f"{cmd}: lifecycle.respawn is off, so a seat that leaves returns only at reset; run with it on"
        )


def _pos_check(env: Any, y: int, x: int, cmd: str) -> None:
    h, w = env.rules.town.shape
    if not (0 <= y < h and 0 <= x < w):
        raise ConsoleError(
            "invalid_args", f"{cmd}: tile (y={y}, x={x}) is off the {h}x{w} map; pick 0<=y<{h}, 0<=x<{w}"
        )
    if not env.rules.town.walkable[y, x]:
        what = "a wall" if env.rules.town.wall[y, x] else "an object's tile"
        raise ConsoleError("invalid_args", f"{cmd}: tile (y={y}, x={x}) is {what}, not walkable; pick a floor tile")


def stop(env: Any, i: int) -> None:
    """Drop what seat ``i`` is doing or queueing for and end its option, as a cancelled use does."""
    w = env.world
    cancel(w, env.rules, np.array([i]), EventLog())
    complete_failed_starts(w, np.array([i], dtype=np.int64))


def spawn(env: Any, a: SpawnArgs, console: Any) -> Plan:
    """Seat a new identity in a vacant seat now (at ``pos``, else at a random entry)."""
    i = seat(env, a.agent, "spawn")
    _respawn_on(env, "spawn")
    if env.world.alive[i]:
        raise ConsoleError("conflict", f"spawn: {a.agent!r} is occupied; spawn fills vacant seats (kill it first)")
    if a.pos is not None:
        _pos_check(env, a.pos[0], a.pos[1], "spawn")

    def apply() -> dict[str, Any]:
        w = env.world
        # Seat it through the lifecycle's own respawn (entry tile, fresh needs and wallet, a new
        # generation): make this seat the only one due now, then put the others' timers back.
        timers = w.respawn_at.copy()
        w.respawn_at[:] = -1
        w.respawn_at[i] = w.tick
        lifecycle.respawn_due(w, env.rules, EventLog())
        timers[i] = -1
        w.respawn_at[:] = timers
        if a.pos is not None:
            w.pos[i] = a.pos
        env._identities[i] = env.identity(i)  # the env refreshes identities only for its own respawns
        return {"agent": env.possible_agents[i], "identity": env.identity(i), "pos": w.pos[i].tolist()}

    return Plan({"agent": env.possible_agents[i], "seat": "vacant -> occupied", "pos": a.pos or "an entry tile"}, apply)


def teleport(env: Any, a: TeleportArgs, console: Any) -> Plan:
    """Move a living agent to a walkable tile; what it was doing or queueing for is dropped."""
    i = alive_seat(env, a.agent, "teleport")
    _pos_check(env, a.y, a.x, "teleport")
    old = env.world.pos[i].tolist()

    def apply() -> dict[str, Any]:
        stop(env, i)
        env.world.pos[i] = (a.y, a.x)
        return {"agent": env.possible_agents[i], "pos": [a.y, a.x]}

    return Plan({"agent": env.possible_agents[i], "pos": f"{old} -> {[a.y, a.x]}"}, apply)


def set_need(env: Any, a: NeedArgs, console: Any) -> Plan:
    """Set one need of a living agent (0 empty .. 1 full)."""
    i = alive_seat(env, a.agent, "set_need")
    k = NEEDS.index(a.need)
    old = float(env.world.needs[i, k])

    def apply() -> dict[str, Any]:
        env.world.needs[i, k] = a.value
        return {"agent": env.possible_agents[i], a.need: float(a.value)}

    return Plan({"agent": env.possible_agents[i], a.need: f"{old:.4f} -> {float(a.value):.4f}"}, apply)


def set_price(env: Any, a: PriceArgs, console: Any) -> Plan:
    """Set a named price (``economy.prices``) from the next tick on."""
    prices = env.rules.config.economy.prices
    if a.key not in prices:
        raise ConsoleError("not_found", f"set_price: key={a.key!r} is no price; choose one of {sorted(prices)}")
    old = float(prices[a.key])

    def apply() -> dict[str, Any]:
        console.overrides.prices[a.key] = float(a.value)
        console.overrides.apply(env)
        return {"key": a.key, "price": float(a.value)}

    return Plan({"key": a.key, "price": f"{old:g} -> {float(a.value):g}"}, apply)


def set_relationship(env: Any, a: TieArgs, console: Any) -> Plan:
    """Set the tie between two living agents, in both directions (as tie events do)."""
    i = alive_seat(env, a.agent, "set_relationship")
    j = alive_seat(env, a.other, "set_relationship", "other")
    if i == j:
        raise ConsoleError("invalid_args", "set_relationship: agent and other are the same seat; name two agents")
    given = (a.trust, a.familiarity, a.rivalry)
    if all(v is None for v in given):
        raise ConsoleError("invalid_args", "set_relationship: give at least one of trust, familiarity, rivalry")
    old = tie(env.world, i, j)
    new = np.array([o if v is None else v for o, v in zip(old.tolist(), given, strict=True)], np.float32)

    def apply() -> dict[str, Any]:
        set_tie(env.world, i, j, new)
        set_tie(env.world, j, i, new)
        return {"agent": env.possible_agents[i], "other": env.possible_agents[j], "tie": new.round(4).tolist()}

    return Plan({"tie": f"{old.round(4).tolist()} -> {new.round(4).tolist()}"}, apply)


def kill(env: Any, a: AgentArgs, console: Any) -> Plan:
    """End a living identity now, as the lifecycle ends one; its seat respawns after the delay."""
    i = alive_seat(env, a.agent, "kill")
    _respawn_on(env, "kill")

    def apply() -> dict[str, Any]:
        identity = _evict(env, i)
        return {"agent": env.possible_agents[i], "ended": identity, "respawn_at": int(env.world.respawn_at[i])}

    return Plan({"agent": env.possible_agents[i], "identity": f"{env.identity(i)} -> vacant"}, apply)


def _evict(env: Any, i: int) -> str:
    """End seat ``i``'s identity the way the lifecycle ends an eviction (the env reports it in
    the next step as that tick's death); returns the identity ended.
    """
    identity = env.identity(i)
    env.end_identity(i, lifecycle.EVICTED)
    return identity


def toggle_mortality(env: Any, a: MortalityArgs, console: Any) -> Plan:
    """Turn fainting on or off (``enabled``; omitted: flip). Evictions are not affected."""
    old = console.overrides.mortality
    new = (not old) if a.enabled is None else a.enabled

    def apply() -> dict[str, Any]:
        console.overrides.mortality = new
        console.overrides.apply(env)
        return {"mortality": new}

    return Plan({"mortality": f"{old} -> {new}"}, apply)


def set_exit_cap(env: Any, a: ExitCapArgs, console: Any) -> Plan:
    """Set how many evictions may execute per sim day (``lifecycle.daily_exit_cap``)."""
    old = int(env.rules.config.lifecycle.daily_exit_cap)

    def apply() -> dict[str, Any]:
        console.overrides.daily_exit_cap = a.cap
        console.overrides.apply(env)
        return {"daily_exit_cap": a.cap}

    return Plan({"daily_exit_cap": f"{old} -> {a.cap}"}, apply)


def approve_exit(env: Any, a: AgentArgs, console: Any) -> Plan:
    """Execute a pending eviction now, counted in today's exits (the daily cap is not applied)."""
    i = _pending_exit(env, a, "approve_exit")
    _respawn_on(env, "approve_exit")

    def apply() -> dict[str, Any]:
        env.world.exits_today += 1
        identity = _evict(env, i)
        return {"agent": env.possible_agents[i], "evicted": identity, "exits_today": int(env.world.exits_today)}

    return Plan({"agent": env.possible_agents[i], "identity": f"{env.identity(i)} -> evicted"}, apply)


def defer_exit(env: Any, a: AgentArgs, console: Any) -> Plan:
    """Take an agent out of the exit queue; a further absence within the week queues it again."""
    i = _pending_exit(env, a, "defer_exit")

    def apply() -> dict[str, Any]:
        env.world.exit_pending[i] = False
        return {"agent": env.possible_agents[i], "exit_pending": False}

    return Plan({"agent": env.possible_agents[i], "exit_pending": "True -> False"}, apply)


def _pending_exit(env: Any, a: AgentArgs, cmd: str) -> int:
    i = alive_seat(env, a.agent, cmd)
    if not env.world.exit_pending[i]:
        raise ConsoleError("conflict", f"{cmd}: {env.possible_agents[i]} is not in the exit queue; see employment")
    return i
