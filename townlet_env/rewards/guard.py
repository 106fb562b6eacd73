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

from typing import Any

import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

from townlet_env.rewards.engine import TERMINAL, TERMS


class RewardGuardError(FloatingPointError):
    """A reward term was NaN or infinite."""


class RewardGuard(BaseParallelWrapper):
    """Clips, caps, death-window and NaN guard over a Townlet parallel env."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._episode_return = np.zeros(len(env.possible_agents), dtype=np.float64)

    def reset(self, seed: int | None = None, options: dict | None = None) -> Any:
        self._episode_return[:] = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: dict) -> Any:
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        town = self.env.unwrapped
        guarded, clipped = self.guard(town.reward_terms, town)
        for agent in rewards:
            i = town.seat_index[agent]
            rewards[agent] = float(guarded[i])
            infos[agent]["clipped"] = bool(clipped[i])
        return obs, rewards, terms, truncs, infos

    def guard(self, raw: np.ndarray, town: Any) -> tuple[np.ndarray, np.ndarray]:
        """Guarded per-seat rewards and whether a guard changed each one."""
        state = town.state
        cfg = town.rules.config.rewards.clip
        finite = np.isfinite(raw)
        if not finite.all():
            seat, term = (int(v) for v in np.argwhere(~finite)[0])
            raise RewardGuardError(
                f"non-finite reward term {TERMS[term]!r} for {town.possible_agents[seat]} at tick {state.tick}"
            )
        shaping = np.delete(raw, TERMINAL, axis=1).sum(axis=1)
        total = np.clip(shaping, -cfg.per_tick, cfg.per_tick) + raw[:, TERMINAL]
        ended = town.last_termination_reasons > 0
        fresh = (state.generation > 0) & (state.tick - state.born_tick <= cfg.death_window_ticks)
        window = (state.zero_ticks > 0) | ended | fresh
        total = np.where(window, np.minimum(total, 0.0), total)
        running = self._episode_return + total
        capped = np.clip(running, -cfg.per_episode, cfg.per_episode)
        total = total - (running - capped)
        self._episode_return = np.where(ended | ~state.alive, 0.0, capped)
        clipped = ~np.isclose(total, raw.sum(axis=1))
        return total, clipped
