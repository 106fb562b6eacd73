"""Shared fixtures for the training tests: one modest scripted capture per session, and a
tiny single-agent Dict env for checking that weights load into ``MaskablePPO``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import townlet_env
from training.capture import CaptureConfig, capture
from training.scenarios import SCENARIOS

#: Every scenario over three seeds: seeds 0-1 train, seed 2 is held out by BC's default split.
CAPTURE = CaptureConfig(scenarios=tuple(SCENARIOS), seeds=(0, 1, 2))


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared dataset, read-only by convention: tests that tamper with it copy it first."""
    return capture(CAPTURE, tmp_path_factory.mktemp("capture") / "ds")


class RowsEnv(gym.Env):
    """Single-agent Dict env replaying one town's reset observations; serves action masks."""

    def __init__(self, variant: str) -> None:
        town = townlet_env.parallel_env(obs_variant=variant, seed=0).unwrapped
        obs, _ = town.reset(seed=0)
        self.rows = [obs[a] for a in town.possible_agents]
        self.observation_space = town.observation_space("agent_0")
        self.action_space = town.action_space("agent_0")
        self.i = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.i = 0
        return self.rows[0], {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.i = (self.i + 1) % len(self.rows)
        return self.rows[self.i], float(action == 4), self.i == 0, False, {}

    def action_masks(self) -> np.ndarray:
        return self.rows[self.i]["action_mask"].astype(bool)


@pytest.fixture
def rows_env() -> type[RowsEnv]:
    return RowsEnv
