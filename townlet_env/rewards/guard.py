"""``RewardGuard``: the reward guardrails, as a PettingZoo parallel wrapper.

Applied to the engine's per-term breakdown each tick, in this order:

1. NaN/inf guard: a non-finite term raises :class:`RewardGuardError` naming seat, tick, term.
2. Per-tick clip of the shaping terms to ``+-clip.per_tick`` (terminal penalties are not
   softened by it: a death always costs its full penalty).
3. Death window: no positive reward while a need sits at 0 (the run-up to a faint), on the
   tick an identity ends, and for ``clip.death_window_ticks`` after a new identity arrives
   in the seat. Keyed on the seat, so a respawn cannot dodge it.
4. Per-episode cap: the running return of an identity stays within ``+-clip.per_episode``.

The guarded reward is what ``step`` returns; ``infos[agent]["reward_terms"]`` keeps the
raw breakdown (see ``env.reward_terms_names``) and ``infos[agent]["clipped"]`` says whether
a guard changed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit
from pettingzoo.utils.wrappers import BaseParallelWrapper

from townlet_env.jit import bind
from townlet_env.rewards.engine import T_TERMINAL, TERMS
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


class RewardGuardError(FloatingPointError):
    """A reward term was NaN or infinite."""


class GuardLimits(NamedTuple):
    """The ``rewards.clip`` config, as the guard kernel reads it."""

    per_tick: float
    per_episode: float
    death_window_ticks: int


class _Guard(NamedTuple):
    """The guard kernel bound to one world's types (kept in ``WorldState.kernels``)."""

    limits: GuardLimits
    kernel: Callable[..., Any]


class RewardGuard(BaseParallelWrapper):
    """Clips, caps, death-window and NaN guard over a Townlet parallel env."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._town = env.unwrapped
        self._episode_return = np.zeros(len(env.possible_agents), dtype=np.float64)

    def reset(self, seed: int | None = None, options: dict | None = None) -> Any:
        self._episode_return[:] = 0.0
        return self.env.reset(seed=seed, options=options)

    def state_dict(self) -> dict[str, Any]:
        """The guard's own state (each seat's running episode return), for snapshots."""
        return {"episode_return": self._episode_return.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`.

        Raises:
            ValueError: the saved returns do not fit this env's seats.

        """
        value = np.asarray(state["episode_return"])
        if value.shape != self._episode_return.shape or value.dtype != self._episode_return.dtype:
            raise ValueError(f"guard state episode_return: {value.dtype}{list(value.shape)}, expected "
                             f"{self._episode_return.dtype}{list(self._episode_return.shape)}")  # fmt: skip
        self._episode_return[:] = value

    def step(self, actions: dict) -> Any:
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        town = self._town
        guarded, clipped = self.guard(town.reward_terms, town)
        values, flags = guarded.tolist(), clipped.tolist()
        index = town.seat_index
        for agent, info in infos.items():
            i = index[agent]
            rewards[agent] = values[i]
            info["clipped"] = flags[i]
        return obs, rewards, terms, truncs, infos

    def guard(self, raw: np.ndarray, town: Any) -> tuple[np.ndarray, np.ndarray]:
        """Guarded per-seat rewards and whether a guard changed each one."""
        state = town.world
        total = np.empty(len(raw), dtype=np.float64)
        clipped = np.empty(len(raw), dtype=np.bool_)
        g = state.bound("reward_guard", town.rules, _bind_guard)
        bad = g.kernel(
            raw, g.limits, state.tick, state.zero_ticks, town.last_termination_reasons, state.alive,
            state.generation, state.born_tick, self._episode_return, total, clipped,
        )  # fmt: skip
        if bad >= 0:
            seat, term = divmod(bad, raw.shape[1])
            raise RewardGuardError(
                f"non-finite reward term {TERMS[term]!r} for {town.possible_agents[seat]} at tick {state.tick}"
            )
        return total, clipped


def _bind_guard(state: WorldState, rules: Rules) -> _Guard:
    cfg = rules.config.rewards.clip
    limits = GuardLimits(float(cfg.per_tick), float(cfg.per_episode), int(cfg.death_window_ticks))
    n = len(state.alive)
    seat_f64, seat_bool = np.zeros(n), np.zeros(n, dtype=np.bool_)
    # The types every tick passes (the engine's float32 terms, the lifecycle's int8 reasons); a
    # call with another dtype raises TypeError. Looked up now, not at import (see jit.bind).
    kernel = bind(
        _guard, np.zeros((n, len(TERMS)), np.float32), limits, state.tick, state.zero_ticks, np.zeros(n, np.int8),
        state.alive, state.generation, state.born_tick, seat_f64, seat_f64, seat_bool,
    )  # fmt: skip
    return _Guard(limits, kernel)


@njit(cache=True)
def _guard(raw, limits, tick, zero_ticks, reasons, alive, generation, born_tick, episode_return, total, clipped):
    """Apply the guards in place; return the flat index of a non-finite term, or -1."""
    n, t = raw.shape
    for i in range(n):
        shaping = 0.0
        raw_sum = 0.0
        for k in range(t):
            v = raw[i, k]
            if not np.isfinite(v):
                return i * t + k
            raw_sum += v
            if k != T_TERMINAL:
                shaping += v
        value = min(limits.per_tick, max(-limits.per_tick, shaping))
        ended = reasons[i] > 0
        fresh = generation[i] > 0 and tick - born_tick[i] <= limits.death_window_ticks
        if (zero_ticks[i] > 0 or ended or fresh) and value > 0.0:
            value = 0.0  # no positive shaping around a death, so it cannot soften the penalty
        value += raw[i, T_TERMINAL]
        running = episode_return[i] + value
        capped = min(limits.per_episode, max(-limits.per_episode, running))
        value -= running - capped
        episode_return[i] = 0.0 if (ended or not alive[i]) else capped
        total[i] = value
        clipped[i] = abs(value - raw_sum) > 1e-6
    return -1
