"""The base of every config model: unknown keys are errors and values are immutable.

Its own module so that config sections living beside their subsystem (stability,
narration, perturbations, social rules) share it without importing ``townlet_env.config``,
which imports them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
