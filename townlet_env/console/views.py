"""Viewer commands: read-only JSON views of the town, answered at once."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from townlet_env.console.town import SeatRef, clock, exit_queue, seat, seat_summary
from townlet_env.jsonable import jsonable


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SnapshotArgs(NoArgs):
    agents: list[SeatRef] | None = Field(default=None, max_length=1024)


class RelationshipArgs(NoArgs):
    agent: SeatRef | None = None
    limit: StrictInt = Field(default=200, ge=1, le=5000)


class NarrationArgs(NoArgs):
    limit: StrictInt = Field(default=20, ge=1, le=10_000)


def snapshot(env: Any, args: SnapshotArgs, console: Any) -> dict[str, Any]:
    """The town now: the clock, the config identity, and every (or the named) seat."""
    seats = (
        range(env.world.n_agents) if args.agents is None else [seat(env, a, "snapshot", "agents") for a in args.agents]
    )
    return {
        **clock(env),
        "config_id": env.config.config_id,
        "exits_today": int(env.world.exits_today),
        "seats": [seat_summary(env, i) for i in seats],
    }


def health(env: Any, args: NoArgs, console: Any) -> dict[str, Any]:
    """How the town and the console are doing: who is alive, vacant, queued to exit; what is pending."""
    w = env.world
    telemetry = env.attachments.get("telemetry")
    tele_health = getattr(telemetry, "health", None)
    return {
        **clock(env),
        "alive": int(w.alive.sum()),
        "vacant": [env.possible_agents[i] for i in np.flatnonzero(~w.alive).tolist()],
        "exit_queue": exit_queue(env),
        "attachments": env.attachments.names(),
        "console": console.status(),
        "telemetry": tele_health() if callable(tele_health) else None,
    }


def employment(env: Any, args: NoArgs, console: Any) -> dict[str, Any]:
    """Jobs, each seat's shift record, and the exit queue."""
    w, rules = env.world, env.rules
    jobs = {
        name: {
            "start": int(rules.job_start[j]),
            "end": int(rules.job_end[j]),
            "wage": round(float(rules.job_wage[j]), 6),
        }
        for j, name in enumerate(rules.job_names)
    }
    seats = [
        {
            "agent": env.possible_agents[i],
            "job": rules.job_names[int(w.job[i])] if w.job[i] >= 0 else None,
            "arrived": bool(w.arrived[i]),
            "late": bool(w.late[i]),
            "absent": bool(w.absent[i]),
            "shifts": int(w.shifts[i]),
            "late_shifts": int(w.late_shifts[i]),
            "attendance": round(float(w.attendance[i]), 4),
            "exit_pending": bool(w.exit_pending[i]),
        }
        for i in range(w.n_agents)
    ]
    cfg = rules.config.lifecycle
    return {
        **clock(env),
        "jobs": jobs,
        "seats": seats,
        "exit_queue": exit_queue(env),
        "exits_today": int(w.exits_today),
        "daily_exit_cap": int(cfg.daily_exit_cap),
    }


def queues(env: Any, args: NoArgs, console: Any) -> dict[str, Any]:
    """Each object that is held or has waiters: its holder and its waiters in serving order."""
    w, rules = env.world, env.rules
    types = rules.manifest.object_types
    names = env.possible_agents
    out = []
    for m in range(len(w.holder)):
        waiters = np.flatnonzero(w.waiting == m)
        if w.holder[m] < 0 and waiters.size == 0:
            continue
        # The order queues.assign serves them in: earliest join, then longest wait age, then seat.
        order = sorted(waiters.tolist(), key=lambda i: (int(w.joined_tick[i]), -int(w.wait_age[i]), i))
        out.append(
            {
                "object": m,
                "type": types[int(rules.town.obj_type[m])],
                "pos": [int(v) for v in rules.town.obj_pos[m]],
                "holder": names[int(w.holder[m])] if w.holder[m] >= 0 else None,
                "waiters": [names[i] for i in order],
            }
        )
    return {**clock(env), "objects": out}


def relationships(env: Any, args: RelationshipArgs, console: Any) -> dict[str, Any]:
    """Ties (trust, familiarity, rivalry), of one agent or of everyone, strongest first."""
    w = env.world
    rows = range(w.n_agents) if args.agent is None else [seat(env, args.agent, "relationships")]
    ties = []
    for i in rows:
        for k in np.flatnonzero(w.tie_other[i] >= 0).tolist():
            t, f, r = (round(float(v), 4) for v in w.tie_vals[i, k])
            ties.append(
                {
                    "agent": env.possible_agents[i],
                    "other": env.possible_agents[int(w.tie_other[i, k])],
                    "trust": t,
                    "familiarity": f,
                    "rivalry": r,
                }
            )
    ties.sort(key=lambda d: -max(abs(d["trust"]), abs(d["familiarity"]), d["rivalry"]))
    return {**clock(env), "count": len(ties), "ties": ties[: args.limit]}


def stability(env: Any, args: NoArgs, console: Any) -> dict[str, Any]:
    """The stability monitor's alerts, metrics and pass streak, if one is attached."""
    monitor = env.attachments.get("stability")
    if monitor is None:
        return {**clock(env), "available": False, "reason": "no stability monitor is attached to this town"}
    metrics = monitor.metrics()
    return {
        **clock(env),
        "available": True,
        "alerts": jsonable(getattr(monitor, "alerts", [])),
        "metrics": jsonable(metrics),
        "pass_streak": int(monitor.pass_streak),
    }


def narration(env: Any, args: NarrationArgs, console: Any) -> dict[str, Any]:
    """The narrator's most recent lines (oldest first) and what its throttle dropped, if one is attached."""
    narrator = env.attachments.get("narration")
    if narrator is None:
        return {**clock(env), "available": False, "reason": "no narrator is attached to this town"}
    return {
        **clock(env),
        "available": True,
        "lines": [line.to_json() for line in narrator.recent(args.limit)],
        "emitted": int(narrator.throttle.emitted),
        "dropped": dict(narrator.throttle.dropped),
    }
