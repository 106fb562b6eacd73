"""Perturbation commands: ``perturb`` and ``end_perturbation`` (admin), ``perturbations`` (viewer).

They drive the town's :class:`~townlet_env.perturbations.scheduler.PerturbationScheduler`,
which the env attaches when the config's ``perturbations.enabled`` is true; in a town
without one they are refused with ``conflict``. A manual perturbation skips the schedule's
limits (cooldowns, caps, staggering) but not the town's (a price key spiked twice, an
outage with nothing left to close, a meet of a vacant seat, a second city event).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from townlet_env.console.admin import Plan
from townlet_env.console.errors import ConsoleError
from townlet_env.console.town import SeatRef, clock, seat
from townlet_env.perturbations.kinds import PerturbationError
from townlet_env.perturbations.scheduler import NAME

Kind = Literal["price_spike", "power_outage", "water_outage", "arranged_meet", "city_event"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PerturbArgs(_Args):
    kind: Kind
    duration: StrictInt | None = Field(default=None, ge=1, le=7 * 1440)
    targets: list[SeatRef] | None = Field(default=None, min_length=2, max_length=2)  # arranged_meet
    key: str | None = Field(default=None, max_length=64)  # price_spike: an economy.prices key
    magnitude: StrictInt | StrictFloat | None = Field(default=None, gt=0.0, le=100.0)  # price_spike


class EndArgs(_Args):
    id: StrictInt = Field(ge=1)


class NoArgs(_Args):
    pass


def scheduler(env: Any, cmd: str) -> Any:
    """The town's scheduler, or ``conflict`` naming the config switch."""
    found = env.attachments.get(NAME)
    if found is None:
        raise ConsoleError(
            "conflict", f"{cmd}: this town runs without perturbations; start it with perturbations.enabled: true"
        )
    return found


def _refuse(cmd: str, exc: PerturbationError) -> ConsoleError:
    code = exc.code if exc.code in ("invalid_args", "not_found", "conflict") else "conflict"
    return ConsoleError(code, f"{cmd}: {exc}")  # type: ignore[arg-type]


def perturb(env: Any, a: PerturbArgs, console: Any) -> Plan:
    """Start a perturbation now (a dry run says what it would do)."""
    sched = scheduler(env, "perturb")
    if a.targets is not None and a.kind != "arranged_meet":
        raise ConsoleError("invalid_args", f"perturb: targets are for arranged_meet, not {a.kind}")
    if (a.key is not None or a.magnitude is not None) and a.kind != "price_spike":
        raise ConsoleError("invalid_args", f"perturb: key and magnitude are for price_spike, not {a.kind}")
    targets = [seat(env, t, "perturb", "targets") for t in a.targets or []]
    kwargs: dict[str, Any] = {"duration": a.duration, "targets": targets, "key": a.key}
    kwargs["magnitude"] = None if a.magnitude is None else float(a.magnitude)
    try:
        _, preview = sched.request(a.kind, **kwargs)
    except PerturbationError as exc:
        raise _refuse("perturb", exc) from None

    def apply() -> dict[str, Any]:
        try:
            return dict(sched.trigger(a.kind, **kwargs))
        except PerturbationError as exc:
            raise _refuse("perturb", exc) from None

    return Plan(preview, apply)


def end_perturbation(env: Any, a: EndArgs, console: Any) -> Plan:
    """End an active perturbation now; its effects are undone (prices, objects back in service)."""
    sched = scheduler(env, "end_perturbation")
    found = [x for x in sched.active if x.id == a.id]
    if not found:
        raise ConsoleError(
            "not_found", f"end_perturbation: id={a.id} is not active; active: {[x.id for x in sched.active]}"
        )

    def apply() -> dict[str, Any]:
        try:
            return {"ended": sched.end(a.id)}
        except PerturbationError as exc:
            raise _refuse("end_perturbation", exc) from None

    return Plan({"id": a.id, "kind": found[0].to_json()["kind"], "end": f"{found[0].end} -> now"}, apply)


def perturbations(env: Any, args: NoArgs, console: Any) -> dict[str, Any]:
    """The scheduler now: active perturbations, cooldowns, fairness counts, the timetable."""
    found = env.attachments.get(NAME)
    if found is None:
        return {**clock(env), "available": False, "reason": "perturbations.enabled is false in this town's config"}
    return {**clock(env), "available": True, **found.snapshot()}
