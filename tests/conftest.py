"""Shared test setup: wandb off before anything imports it, and small rollout helpers."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "disabled")

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

StepResult = tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]


def sample_valid_actions(obs: dict[str, dict[str, np.ndarray]], rng: np.random.Generator) -> dict[str, int]:
    """One uniformly random action per agent among those its ``action_mask`` allows."""
    agents = list(obs)
    masks = np.stack([obs[a]["action_mask"] for a in agents])
    scores = np.where(masks > 0, rng.random(masks.shape), -1.0)
    return dict(zip(agents, scores.argmax(axis=1).tolist(), strict=True))


def random_rollout(env: Any, ticks: int, *, seed: int, action_seed: int) -> Iterator[StepResult]:
    """Step ``env`` for ``ticks`` ticks with seeded random valid actions, yielding each step.

    The env is reset with ``seed`` first, and again (without a seed, so the episode RNG
    carries on) whenever an episode ends for everybody.
    """
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(ticks):
        if not env.agents:
            obs, _ = env.reset()
        result = env.step(sample_valid_actions({a: obs[a] for a in env.agents}, rng))
        obs = result[0]
        yield result


@pytest.fixture
def valid_actions() -> Callable[[dict[str, dict[str, np.ndarray]], np.random.Generator], dict[str, int]]:
    """:func:`sample_valid_actions`, as a fixture."""
    return sample_valid_actions


@pytest.fixture
def rollout() -> Callable[..., Iterator[StepResult]]:
    """:func:`random_rollout`, as a fixture."""
    return random_rollout
