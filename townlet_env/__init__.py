"""Townlet: a small-town life simulation for multi-agent RL, as a PettingZoo environment.

Import stays light: numpy, pydantic, gymnasium and pettingzoo only (no torch, SB3,
imitation or wandb; those live in ``training`` behind the ``[train]`` extra).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec

from townlet_env.actions import Option, Primitive
from townlet_env.config import TICKS_PER_DAY, ConfigError, TownConfig, load_config, make_config
from townlet_env.env import TownletParallelEnv
from townlet_env.rewards.guard import RewardGuard
from townlet_env.snapshots import SnapshotError, load_snapshot, save_snapshot

__all__ = [
    "TICKS_PER_DAY",
    "ConfigError",
    "Option",
    "Primitive",
    "RewardGuard",
    "SnapshotError",
    "TownConfig",
    "TownletParallelEnv",
    "env",
    "load_config",
    "load_snapshot",
    "make_config",
    "parallel_env",
    "save_snapshot",
]
__version__ = "0.1.0"


def parallel_env(
    config: TownConfig | str | None = None,
    *,
    obs_variant: str | None = None,
    action_mode: str | None = None,
    num_agents: int | None = None,
    render_mode: str | None = None,
    **overrides: Any,
) -> RewardGuard:
    """A Townlet town as a PettingZoo ``ParallelEnv``, with the reward guardrails applied.

    Args:
        config: a :class:`TownConfig`, a path to a YAML config, a shipped config's name
            (``"crowded"``), or ``None`` for the default.
        obs_variant: ``"full"``, ``"hybrid"`` or ``"compact"`` (default: the config's, ``"hybrid"``).
        action_mode: ``"option"`` (intents run by the navigator) or ``"primitive"`` (default: the
            config's, ``"option"``).
        num_agents: seats in the town (default: the config's).
        render_mode: ``"ansi"``, ``"rgb_array"`` or ``None``.
        **overrides: further config keys, e.g. ``seed=3`` or ``max_ticks=4320``.

    Raises:
        ConfigError: a bad key or value, naming it.

    """
    named = {"obs_variant": obs_variant, "action_mode": action_mode, "num_agents": num_agents}
    fields: dict[str, Any] = {**{k: v for k, v in named.items() if v is not None}, **overrides}
    if isinstance(config, TownConfig):
        cfg = load_config(None, **{**config.model_dump(), **fields})
    else:
        cfg = load_config(config, **fields)
    return RewardGuard(TownletParallelEnv(cfg, render_mode=render_mode))


def env(config: TownConfig | str | None = None, **kwargs: Any) -> Any:
    """The AEC form of :func:`parallel_env` (same arguments)."""
    return parallel_to_aec(parallel_env(config, **kwargs))
