"""The promotion gate's decision: PROMOTE, HOLD or FAIL from a candidate's evaluation windows.

The gate plays the candidate for ``windows`` consecutive windows of ``window_ticks`` ticks
on held-out seeds (:mod:`training.gate_windows` plays them; this module only decides). A
window is **green** when

* every KPI with a band stays within its tolerance of the current release's value in the
  same window (``higher`` KPIs may drop at most ``tolerance``, ``lower`` ones rise at most),
* every KPI meets its absolute floor / ceiling,
* the stability monitor raised no alert outside ``allowed_alerts``, and
* in shadow (the release drives the towns, the candidate's actions are computed beside
  it) the two policies' greedy actions agree on at least ``shadow.min_agreement`` of the
  seat-ticks.

The decision: **FAIL** when the candidate cannot be compared at all (its observation
signature or config differs from the town it is evaluated in, or from the release without a
golden sign-off for the change; a KPI is not a number); **PROMOTE** when the candidate has
``windows`` green windows; **HOLD** otherwise, with each window's reasons. Exit codes of
``townlet promote``: :data:`EXIT_CODES`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import KW_ONLY
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from townlet_env.kpis import KpiReport
from townlet_env.stability.config import AlertKind

#: KPIs a band, floor or ceiling may name: the numeric fields of a KPI report.
KPI_NAMES = tuple(f.name for f in dataclasses.fields(KpiReport) if f.type in ("float", "int", float, int))
GATE_SEED = 3_000_000  # held-out: capture, anneal and evaluate seeds lie elsewhere


class Decision(str, enum.Enum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    FAIL = "FAIL"


#: ``townlet promote`` exit status per decision (1 and 2 stay bad input and usage errors).
EXIT_CODES = {Decision.PROMOTE: 0, Decision.HOLD: 3, Decision.FAIL: 4}


class KpiBand(BaseModel):
    """How far a KPI may move against the release's value in the same window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    better: Literal["higher", "lower"]
    tolerance: float = Field(ge=0.0, description="largest allowed move in the worse direction (absolute)")


class ShadowConfig(BaseModel):
    """The candidate beside the release on the release's towns (always played when a release serves)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = Field(True, description="a promotion needs min_agreement in every window")
    min_agreement: float = Field(0.0, ge=0.0, le=1.0, description="share of seat-ticks with the same greedy action")


def _default_bands() -> dict[str, KpiBand]:
    return {
        "self_sufficiency": KpiBand(better="higher", tolerance=0.05),
        "lateness": KpiBand(better="lower", tolerance=0.05),
        "mean_daily_return": KpiBand(better="higher", tolerance=0.05),
    }


class GateConfig(BaseModel):
    """The ``promote:`` section of an experiment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str = Field("registry", description="registry folder, relative to the runs folder")
    windows: int = Field(2, ge=1, le=100, description="consecutive green windows a promotion needs")
    window_ticks: int = Field(1000, ge=1)
    seeds: tuple[int, ...] = Field((GATE_SEED, GATE_SEED + 1), min_length=1, description="held-out towns")
    bands: dict[str, KpiBand] = Field(default_factory=_default_bands)
    floors: dict[str, float] = Field(default_factory=dict, description="KPI >= value in every window")
    ceilings: dict[str, float] = Field(default_factory=lambda: {"stuck_reservations": 0.0})
    allowed_alerts: tuple[AlertKind, ...] = ()
    shadow: ShadowConfig = ShadowConfig()
    golden_dir: str = Field("tests/golden", description="where the golden sign-off record lives")

    @model_validator(mode="after")
    def _known_kpis(self) -> GateConfig:
        for where, names in (("bands", self.bands), ("floors", self.floors), ("ceilings", self.ceilings)):
            unknown = sorted(set(names) - set(KPI_NAMES))
            if unknown:
                raise ValueError(f"{where}: unknown KPI {unknown}; choose from {list(KPI_NAMES)}")
        return self


@dataclasses.dataclass(frozen=True)
class WindowObservation:
    """What one gate window measured (KPIs averaged over the seeds, alerts summed)."""

    index: int
    ticks: int
    kpis: dict[str, float]  #: the candidate's, in its own towns
    alerts: dict[str, int]  #: alert kind -> ticks it fired (the candidate's towns)
    _: KW_ONLY
    release_kpis: dict[str, float] | None = None  #: the release's, in the shadow towns
    agreement: float | None = None  #: shadow: share of seat-ticks with the same greedy action

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GateInputs:
    """Everything the decision reads."""

    windows: tuple[WindowObservation, ...]
    parity: tuple[str, ...] = ()  #: signature / config differences from the evaluation town
    golden: tuple[str, ...] = ()  #: changes against the release that lack a golden sign-off
    release: str | None = None  #: the release compared against (None: the first release)
    pass_streak: int = 0  #: the stability monitor's pass streak at the end (min over seeds)


@dataclasses.dataclass(frozen=True)
class GateDecision:
    decision: Decision
    reasons: tuple[str, ...]
    windows: tuple[dict[str, Any], ...]  #: each observation with ``green`` and its ``reasons``
    release: str | None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision.value, "reasons": list(self.reasons), "windows": list(self.windows),
                "release": self.release, "exit_code": self.exit_code}  # fmt: skip


def window_reasons(window: WindowObservation, cfg: GateConfig) -> list[str]:
    """Why ``window`` is not green (empty: green)."""
    out: list[str] = []
    kpis, base = window.kpis, window.release_kpis
    for name, floor in sorted(cfg.floors.items()):
        if kpis[name] < floor:
            out.append(f"{name} {kpis[name]:.3f} below the floor {floor:g}")
    for name, ceiling in sorted(cfg.ceilings.items()):
        if kpis[name] > ceiling:
            out.append(f"{name} {kpis[name]:.3f} above the ceiling {ceiling:g}")
    if base is not None:
        for name, band in sorted(cfg.bands.items()):
            worse = base[name] - kpis[name] if band.better == "higher" else kpis[name] - base[name]
            if worse > band.tolerance:
                out.append(f"{name} {kpis[name]:.3f} vs release {base[name]:.3f}: out of band (±{band.tolerance:g})")
    for kind, ticks in sorted(window.alerts.items()):
        if ticks > 0 and kind not in cfg.allowed_alerts:
            out.append(f"stability alert {kind} ({ticks} ticks) not in allowed_alerts")
    if cfg.shadow.required and window.agreement is not None and window.agreement < cfg.shadow.min_agreement:
        out.append(f"shadow agreement {window.agreement:.3f} below {cfg.shadow.min_agreement:g}")
    return out


def _not_numbers(window: WindowObservation) -> list[str]:
    values = {**window.kpis, **{f"release {k}": v for k, v in (window.release_kpis or {}).items()}}
    return [k for k, v in values.items() if not math.isfinite(float(v))]


def decide(inputs: GateInputs, cfg: GateConfig) -> GateDecision:
    """The gate's decision and its reasons (see the module docstring for the rules)."""
    fail = [f"parity: {p}" for p in inputs.parity] + [f"golden sign-off: {g}" for g in inputs.golden]
    verdicts = []
    for window in inputs.windows:
        bad = _not_numbers(window)
        if bad:
            fail.append(f"window {window.index + 1}: KPIs are not numbers: {bad}")
        reasons = [] if bad else window_reasons(window, cfg)
        verdicts.append({**window.to_json(), "green": not reasons and not bad, "reasons": reasons})
    if fail:
        return GateDecision(Decision.FAIL, tuple(fail), tuple(verdicts), inputs.release)
    hold = [f"window {v['index'] + 1}: {r}" for v in verdicts for r in v["reasons"]]
    if len(verdicts) < cfg.windows:
        hold.append(f"{len(verdicts)} of {cfg.windows} windows evaluated")
    if hold:
        return GateDecision(Decision.HOLD, tuple(hold), tuple(verdicts), inputs.release)
    first = "first release: checked against floors, ceilings and alerts" if inputs.release is None else (
        f"{len(verdicts)} green windows against release {inputs.release}"
    )  # fmt: skip
    return GateDecision(Decision.PROMOTE, (first,), tuple(verdicts), inputs.release)


def summary_metrics(decision: GateDecision) -> dict[str, Any]:
    """Flat metrics for W&B: the decision code and each window's green flag and KPIs."""
    out: dict[str, Any] = {"gate/decision": decision.decision.value, "gate/exit_code": decision.exit_code}
    for w in decision.windows:
        prefix = f"gate/window{w['index'] + 1}"
        out[f"{prefix}/green"] = int(w["green"])
        out.update({f"{prefix}/{k}": v for k, v in w["kpis"].items()})
        if w.get("agreement") is not None:
            out[f"{prefix}/shadow_agreement"] = w["agreement"]
    return out
