"""The expert protocol: how training drives a scripted expert, in one place.

Capture records the expert, the VecEnv and the evaluation let it drive the seats the
learner does not, and all three talk to it the same way: an :data:`ExpertFactory` builds
one :class:`Expert` per episode from the town's rules and the episode seed, and
:func:`expert_actions` asks it for one option per seat. The expert and the policy play
the option action space; :func:`check_option_mode` is where training says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from townlet_env.config import TownConfig
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


class Expert(Protocol):
    """One valid option per seat for the whole town, like :class:`townlet_env.scripted.ScriptedExpert`."""

    def act(self, state: WorldState, mask: np.ndarray) -> np.ndarray: ...


#: ``(rules, episode_seed) -> expert``: one fresh expert per episode.
ExpertFactory = Callable[[Rules, int], Expert]


def scripted_expert(rules: Rules, seed: int) -> Expert:
    """The project's scripted expert (``townlet_env.scripted.ScriptedExpert``)."""
    return ScriptedExpert(rules, seed=seed)


def expert_actions(expert: Expert, state: WorldState, mask: np.ndarray) -> np.ndarray:
    """int64[N]: the expert's action for every seat under ``mask`` (int8[N, A])."""
    return np.asarray(expert.act(state, mask), dtype=np.int64)


def check_option_mode(config: TownConfig, where: str) -> None:
    """Refuse a town whose agents do not play options (the expert and the policy do).

    Raises:
        ValueError: ``config.action_mode`` is not ``"option"``; the message starts with ``where``.

    """
    if config.action_mode != "option":
        raise ValueError(f"{where}: training plays the option action space; set action_mode: option")
