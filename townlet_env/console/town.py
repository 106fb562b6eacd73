"""Reading a town for the console: seats by name, and names for the indices the state holds."""

from __future__ import annotations

from typing import Any

import numpy as np

from townlet_env.actions import Option
from townlet_env.config import NEEDS, TICKS_PER_DAY
from townlet_env.console.errors import ConsoleError

SeatRef = int | str


def core(env: Any) -> Any:
    """The core ``TownletParallelEnv`` under any wrappers."""
    return getattr(env, "unwrapped", env)


def seat(env: Any, agent: SeatRef, cmd: str, arg: str = "agent") -> int:
    """The seat index ``agent`` names (``"agent_3"`` or ``3``).

    Raises:
        ConsoleError: ``not_found`` when no such seat exists.

    """
    n = len(env.possible_agents)
    index = agent if isinstance(agent, int) else env.seat_index.get(agent, -1)
    if not 0 <= index < n:
        raise ConsoleError("not_found", f"{cmd}: {arg}={agent!r} is no seat; name one of agent_0..agent_{n - 1}")
    return int(index)


def alive_seat(env: Any, agent: SeatRef, cmd: str, arg: str = "agent") -> int:
    """Like :func:`seat`, and the seat must hold a living identity (``conflict`` if vacant)."""
    i = seat(env, agent, cmd, arg)
    if not env.world.alive[i]:
        raise ConsoleError("conflict", f"{cmd}: {arg}={agent!r} is a vacant seat; spawn it first or pick another")
    return i


def clock(env: Any) -> dict[str, int]:
    tick = int(env.world.tick)
    return {"tick": tick, "day": tick // TICKS_PER_DAY, "minute": tick % TICKS_PER_DAY}


def seat_summary(env: Any, i: int) -> dict[str, Any]:
    """One seat as JSON: identity, position, needs, wallet, job, option, activity."""
    w, rules = env.world, env.rules
    affs = rules.manifest.affordance_ids
    job = int(w.job[i])
    running = int(w.running[i])
    return {
        "agent": env.possible_agents[i],
        "identity": env.identity(i),
        "alive": bool(w.alive[i]),
        "pos": [int(w.pos[i, 0]), int(w.pos[i, 1])],
        "needs": {n: round(float(v), 4) for n, v in zip(NEEDS, w.needs[i].tolist(), strict=True)},
        "wallet": round(float(w.wallet[i]), 2),
        "job": rules.job_names[job] if job >= 0 else None,
        "option": Option(int(w.option[i])).name.lower(),
        "running": affs[running] if running >= 0 else None,
        "waiting_for": int(w.waiting[i]) if w.waiting[i] >= 0 else None,
        "respawn_at": int(w.respawn_at[i]) if w.respawn_at[i] >= 0 else None,
    }


def exit_queue(env: Any) -> list[str]:
    """Seats waiting for eviction, in the order the lifecycle would evict them (oldest first)."""
    w = env.world
    pending = np.flatnonzero(w.alive & w.exit_pending)
    order = pending[np.argsort(w.absences[pending, 0], kind="stable")]
    return [env.possible_agents[i] for i in order.tolist()]
