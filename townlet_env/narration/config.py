"""The ``narration:`` config section: thresholds, templates file and throttle limits.

Narration is presentation: it reads the town and never changes it, so the section is left
out of :meth:`townlet_env.config.TownConfig.identity` (retuning it keeps snapshots and
datasets valid), as the stability section is.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from townlet_env.strict import Strict

#: Every kind of narration line, one template list each (``templates.yaml`` ``lines:``).
LineKind = Literal[
    "friendship",
    "rivalry",
    "queue_conflict",
    "queue_cut_in",
    "object_blocked",
    "shared_meal",
    "coworker_helped",
    "shift_covered",
    "queue_handover",
    "chat_blocked",
    "perturbation_start",
    "perturbation_targeted",
    "perturbation_end",
    "arrival",
    "departure",
    "faint",
]
LINE_KINDS: tuple[str, ...] = get_args(LineKind)
#: The throttle's categories (per-category cooldowns); each line kind belongs to one.
Category = Literal["friendship", "rivalry", "conflict", "social", "perturbation", "lifecycle"]
CATEGORIES: tuple[str, ...] = get_args(Category)
CATEGORY_OF: dict[str, str] = {
    "friendship": "friendship",
    "rivalry": "rivalry",
    "queue_conflict": "conflict",
    "queue_cut_in": "conflict",
    "object_blocked": "conflict",
    "shared_meal": "social",
    "coworker_helped": "social",
    "shift_covered": "social",
    "queue_handover": "social",
    "chat_blocked": "social",
    "perturbation_start": "perturbation",
    "perturbation_targeted": "perturbation",
    "perturbation_end": "perturbation",
    "arrival": "lifecycle",
    "departure": "lifecycle",
    "faint": "lifecycle",
}


class ThrottleConfig(Strict):
    """How many lines reach the reader. Throttled lines are dropped and counted, never delayed.

    A line at tick ``t`` is dropped when (checked in this order): its key was emitted at a
    tick ``> t - dedupe_ticks``; ``window_limit`` lines were emitted at ticks
    ``> t - window_ticks``; or, unless its kind is in ``priority``, a line was emitted at a
    tick ``> t - global_cooldown_ticks`` or a line of its category at a tick
    ``> t - category_cooldown_ticks[category]``.
    """

    global_cooldown_ticks: int = Field(2, ge=0, le=1440, description="ticks between any two non-priority lines")
    category_cooldown_ticks: dict[Category, int] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "friendship": 20,
            "rivalry": 20,
            "conflict": 10,
            "social": 15,
            "perturbation": 0,
            "lifecycle": 5,
        },
        description="ticks between two non-priority lines of one category (missing: 0)",
    )
    dedupe_ticks: int = Field(240, ge=0, le=100_000, description="ticks before the same key may be told again")
    window_ticks: int = Field(60, ge=1, le=100_000, description="the rolling window's length")
    window_limit: int = Field(8, ge=1, le=10_000, description="lines the rolling window may hold")
    priority: tuple[LineKind, ...] = Field(
        ("faint", "departure", "perturbation_start", "perturbation_targeted"),
        description="line kinds that bypass both cooldowns (never dedupe or the window)",
    )

    @model_validator(mode="after")
    def _check(self) -> ThrottleConfig:
        bad = {k: v for k, v in self.category_cooldown_ticks.items() if not 0 <= v <= 1440}
        if bad:
            raise ValueError(f"category_cooldown_ticks must lie in [0, 1440]: {bad}")
        return self


class NarrationConfig(Strict):
    """Narration (``townlet_env.narration``): what is told, in which words, and how often."""

    templates: str = Field("narration.yaml", description="the templates file: a shipped name or a path")
    friendship_trust: float = Field(0.5, gt=0.0, le=1.0, description="trust a tie crosses upward to be a friendship")
    rivalry: float = Field(0.5, gt=0.0, le=1.0, description="rivalry a tie crosses upward to be a rivalry")
    history: int = Field(200, ge=1, le=100_000, description="recent lines kept (console, snapshots)")
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
