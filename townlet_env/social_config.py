"""Config of the social rules: queue manners and the relationship store.

See the rule docstrings of ``world/systems/queues.py`` and ``relationships.py`` and
docs/environment.md ("Town life") for what each key does.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from townlet_env.strict import Strict
from townlet_env.world.events import REL_EVENT_KEYS


class QueueConfig(Strict):
    cooldown_ticks: int = Field(20, ge=0, le=1440)
    conflict_wait_ticks: int = Field(40, ge=1, le=1440)
    conflict_rivalry: float = Field(0.15, ge=0.0, le=1.0)
    max_intensity: float = Field(3.0, ge=1.0, le=10.0)  # cap on a conflict's intensity
    urgency_gap: float = Field(0.25, ge=0.0, le=1.0)  # a waiter this much needier than the head goes first
    handover_friendship: float = Field(0.3, ge=0.0, le=3.0)  # trust + fam - rivalry: the head yields politely
    block_need: float = Field(0.6, ge=0.0, le=1.0)  # a use started this satisfied, a needier waiter left: blocking


class RelationshipConfig(Strict):
    """Sparse ties: at most ``max_ties`` per agent; deltas are (trust, familiarity, rivalry)."""

    max_ties: int = Field(6, ge=1, le=32)
    decay_interval: int = Field(60, ge=1)
    decay_factor: float = Field(0.995, gt=0.0, le=1.0)
    drop_below: float = Field(0.01, ge=0.0)
    avoid_rivalry: float = Field(0.7, ge=0.0, le=1.0)
    chat_cooldown_ticks: int = Field(60, ge=0)
    chat_base_success: float = Field(0.7, ge=0.0, le=1.0)
    events: dict[str, tuple[float, float, float]] = Field(
        default_factory=lambda: {
            "chat_success": (0.06, 0.1, 0.0),
            "chat_failure": (0.0, -0.03, 0.05),
            "shared_meal": (0.05, 0.1, 0.0),
            "queue_conflict": (-0.05, 0.0, 0.15),
            "coworker": (0.01, 0.02, 0.0),
            "queue_cut_in": (-0.05, 0.0, 0.1),
            "queue_handover": (0.05, 0.05, -0.05),
            "object_blocked": (0.0, -0.05, 0.1),
            "coworker_helped": (0.2, 0.1, -0.1),
            "shift_covered": (-0.1, 0.0, 0.3),
        }
    )

    @model_validator(mode="after")
    def _check(self) -> RelationshipConfig:
        if set(self.events) != set(REL_EVENT_KEYS):
            raise ValueError(f"events must give (trust, fam, rivalry) for exactly {list(REL_EVENT_KEYS)}")
        return self
