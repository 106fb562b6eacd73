"""``TownVecEnv``: Townlet towns as one stable-baselines3 ``VecEnv`` with parameter sharing.

Each *learned* seat of each of ``K`` towns is one VecEnv index (index ``k * L + j`` is the
``j``-th learned seat of town ``k``). Seats not chosen as learned are driven inside the
VecEnv by the scripted expert, so every transition the learner sees came from its own
policy (on-policy; the anneal's mixed control).

Contract, per index:

* Observations are the env's ``Dict`` (``observation`` float32, ``action_mask`` int8);
  ``env_method("action_masks")`` and ``has_attr("action_masks")`` serve the masks that
  sb3-contrib's ``MaskablePPO`` reads before each step.
* Town ``k``'s ``e``-th episode is reset with seed ``seed + k + K * e``: every town and
  every episode gets its own seed, reproducibly (``VecEnv.seed`` re-bases it).
* Dones are ``bool``. A done carries ``infos[i]["terminal_observation"]`` and
  ``infos[i]["TimeLimit.truncated"]``: False when the seat's identity ended (a death is a
  real termination), True when the day ran out (the learner bootstraps from the value of
  the terminal observation). ``infos[i]["episode"]`` holds ``{"r", "l", "t"}`` as SB3's
  ``Monitor`` would, so ``rollout/ep_rew_mean`` is logged.
* Vacancy: after a death the seat is vacant until respawn (``present`` 0, WAIT-only mask,
  reward 0). Its index still yields a transition every step, as SB3 requires; those
  transitions start the *next* identity's episode, never continue the dead one's. With
  a single valid action the masked policy is deterministic there, so their log-prob
  ratio is exactly 1 with zero gradient and their entropy is 0: they add nothing to the
  policy gradient. :class:`training.ppo.VacancyCallback` also neutralises their value
  targets (see there for what remains). Seats that leave ``env.agents`` (respawn off)
  yield the same padding until the town resets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from townlet_env.controllers import Expert, ExpertFactory, SeatChooser, expert_actions, scripted_expert

TownObs = dict[str, np.ndarray]  # {"observation": float32[n, D], "action_mask": int8[n, A]}
TownStep = tuple[TownObs, np.ndarray, np.ndarray, list[dict[str, Any]]]


def all_seats(episode_seed: int, n_seats: int) -> Sequence[int]:
    """Every seat learned (no scripted seats)."""
    return range(n_seats)


class TownVecEnv(VecEnv):
    """``K`` towns x ``L`` learned seats as one SB3 ``VecEnv`` (see the module docstring).

    Args:
        make_town: builds one town, e.g. ``functools.partial(townlet_env.parallel_env, map="small")``.
        n_towns: towns stepped together (``K``).
        seed: base seed; town ``k`` starts at ``seed + k``.
        learned_seats: which seats the learner drives in an episode, from its seed; the
            count must be the same for every episode. Default: all seats.
        expert: builds the policy for the other seats from ``(rules, episode_seed)``.

    """

    def __init__(
        self,
        make_town: Callable[[], Any],
        n_towns: int = 1,
        *,
        seed: int = 0,
        learned_seats: SeatChooser = all_seats,
        expert: ExpertFactory = scripted_expert,
    ) -> None:
        if n_towns < 1:
            raise ValueError(f"n_towns must be >= 1, got {n_towns}")
        self.towns = [make_town() for _ in range(n_towns)]
        first = self.towns[0]
        self.layout = first.unwrapped.layout
        self.n_seats = len(first.possible_agents)
        self._choose = learned_seats
        self._make_expert = expert
        self._base_seed = seed
        self._episodes = np.zeros(n_towns, dtype=np.int64)
        self.n_learned = len(learned_seats(seed, self.n_seats))
        if not 1 <= self.n_learned <= self.n_seats:
            raise ValueError(f"learned_seats chose {self.n_learned} of {self.n_seats} seats; need 1..{self.n_seats}")
        agent = first.possible_agents[0]
        super().__init__(n_towns * self.n_learned, first.observation_space(agent), first.action_space(agent))
        n, d, a = self.num_envs, self.layout.size, self.layout.n_actions
        self.seats = np.zeros((n_towns, self.n_learned), dtype=np.int64)
        self.experts: list[Expert | None] = [None] * n_towns
        self.episode_seeds = np.zeros(n_towns, dtype=np.int64)
        self._obs = np.zeros((n, d), dtype=np.float32)
        self._masks = np.zeros((n, a), dtype=np.int8)
        self.present = np.zeros(n, dtype=bool)
        self._actions = np.zeros(n, dtype=np.int64)
        self._ret = np.zeros(n, dtype=np.float64)
        self._len = np.zeros(n, dtype=np.int64)
        self._t0 = time.perf_counter()
        self.invalid_actions = 0  # learned actions that hit a masked entry (MaskablePPO: always 0)

    # --- SB3 VecEnv API -------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Re-base the seeds: after the next ``reset`` town ``k`` replays from ``seed + k``."""
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31))
        self._base_seed = seed
        self._episodes[:] = 0
        return [seed + k for k in range(len(self.towns)) for _ in range(self.n_learned)]

    def reset(self) -> TownObs:
        for k in range(len(self.towns)):
            self.reset_infos[k * self.n_learned : (k + 1) * self.n_learned] = self._reset_town(k)
        self._reset_seeds()
        self._reset_options()
        return self._observation()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step(self, actions: np.ndarray) -> TownStep:
        self.step_async(actions)
        return self.step_wait()

    def step_wait(self) -> TownStep:
        n, learned = self.num_envs, self.n_learned
        self.invalid_actions += int((self._masks[np.arange(n), self._actions] == 0).sum())
        rewards = np.zeros(n, dtype=np.float32)
        dones = np.zeros(n, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(n)]
        for k, town in enumerate(self.towns):
            rows = slice(k * learned, (k + 1) * learned)
            obs, rew, term, trunc, tinfo = town.step(self._town_actions(k))
            over = not town.agents
            for j, seat in enumerate(self.seats[k].tolist()):
                i = k * learned + j
                agent = town.possible_agents[seat]
                if agent not in rew:  # left env.agents before this step (respawn off)
                    infos[i] = {"seat": agent, "town": k, "present": False}
                    dones[i] = over
                    if over:
                        self._finish(i, infos[i], self._obs[i].copy(), self._masks[i].copy(), truncated=True)
                    continue
                rewards[i] = rew[agent]
                info = tinfo[agent]
                infos[i] = {"seat": agent, "town": k, "identity": info["identity"], "present": info["present"]}
                self._ret[i] += rew[agent]
                self._len[i] += int(self.present[i])
                self._write(i, obs[agent], info["present"])
                ended = bool(info["identity_ended"] or term[agent])
                if ended or trunc[agent]:
                    dones[i] = True
                    self._finish(i, infos[i], self._obs[i].copy(), self._masks[i].copy(), truncated=not ended)
            if over:
                for i, reset_info in enumerate(self._reset_town(k), start=rows.start):
                    infos[i].update({key: v for key, v in reset_info.items() if key not in infos[i]})
        return self._observation(), rewards, dones, infos

    def close(self) -> None:
        for town in self.towns:
            town.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """A town's attribute for each index (the town the seat lives in)."""
        return [getattr(self.towns[i // self.n_learned], attr_name) for i in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        """Whether the towns have ``attr_name`` (newer sb3-contrib asks this for masks)."""
        try:
            self.get_attr(attr_name, indices=0)
        except AttributeError:
            return False
        return True

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for k in sorted({i // self.n_learned for i in self._get_indices(indices)}):
            setattr(self.towns[k], attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """``action_masks`` gives each index its own seat's mask; other methods run on the index's town."""
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            return [self._masks[i].copy() for i in idx]
        return [getattr(self.towns[i // self.n_learned], method_name)(*method_args, **method_kwargs) for i in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One frame per town (not per seat), for ``render`` and ``VecVideoRecorder``."""
        return [town.render() if self.render_mode == "rgb_array" else None for town in self.towns]

    # --- seat-level helpers ---------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        """int8[num_envs, A]: the current mask of every index."""
        return self._masks.copy()

    def town_rows(self, k: int) -> slice:
        """The VecEnv indices of town ``k``."""
        return slice(k * self.n_learned, (k + 1) * self.n_learned)

    def _reset_town(self, k: int) -> list[dict[str, Any]]:
        town = self.towns[k]
        episode_seed = int(self._base_seed + k + len(self.towns) * self._episodes[k])
        self._episodes[k] += 1
        self.episode_seeds[k] = episode_seed
        chosen = np.unique(np.asarray(self._choose(episode_seed, self.n_seats), dtype=np.int64))
        if chosen.size != self.n_learned or chosen.min() < 0 or chosen.max() >= self.n_seats:
            raise ValueError(
                f"learned_seats({episode_seed}, {self.n_seats}) gave seats {chosen.tolist()}; "
                f"need {self.n_learned} distinct seats in 0..{self.n_seats - 1} every episode"
            )
        self.seats[k] = chosen
        scripted = self.n_learned < self.n_seats
        self.experts[k] = self._make_expert(town.unwrapped.rules, episode_seed) if scripted else None
        obs, tinfo = town.reset(seed=episode_seed)
        infos = []
        for j, seat in enumerate(chosen.tolist()):
            i = k * self.n_learned + j
            agent = town.possible_agents[seat]
            self._write(i, obs[agent], tinfo[agent]["present"])
            self._ret[i], self._len[i] = 0.0, 0
            infos.append({"seat": agent, "town": k, "episode_seed": episode_seed})
        return infos

    def _town_actions(self, k: int) -> dict[str, int]:
        town = self.towns[k]
        expert = self.experts[k]
        if expert is not None:
            core = town.unwrapped
            act = expert_actions(expert, core.world, core.action_masks())
        else:
            act = np.zeros(self.n_seats, dtype=np.int64)
        act[self.seats[k]] = self._actions[self.town_rows(k)]
        return {a: int(act[town.unwrapped.seat_index[a]]) for a in town.agents}

    def _write(self, i: int, obs: dict[str, np.ndarray], present: bool) -> None:
        self._obs[i] = obs["observation"]
        self._masks[i] = obs["action_mask"]
        self.present[i] = present

    def _finish(self, i: int, info: dict[str, Any], obs: np.ndarray, mask: np.ndarray, *, truncated: bool) -> None:
        info["terminal_observation"] = {"observation": obs, "action_mask": mask}
        info["TimeLimit.truncated"] = truncated
        if self._len[i]:  # padding-only stretches (vacancy until the day ends) are not episodes
            elapsed = round(time.perf_counter() - self._t0, 6)
            info["episode"] = {"r": float(self._ret[i]), "l": int(self._len[i]), "t": elapsed}
        self._ret[i], self._len[i] = 0.0, 0

    def _observation(self) -> TownObs:
        return {"observation": self._obs.copy(), "action_mask": self._masks.copy()}
