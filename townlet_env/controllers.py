"""Controllers: who picks the town's actions, seat by seat, in one protocol.

A :class:`Controller` sees the whole town at once, as arrays: ``reset(rules, seed)`` at the
start of its play, then ``act(state, obs float32[N, D], mask int8[N, A]) -> int64[N]``,
one action per seat (absent seats have zero observation rows and a WAIT-only mask). The
scripted expert, random play and (from the training package) a learned policy all speak
it, so the evaluation, ``townlet serve`` and ``townlet soak`` drive a town the same way;
:class:`MixedController` lets one controller drive some seats and another the rest, as the
anneal's mixed control does. :func:`drive` turns a ParallelEnv's observation dict into
these arrays and the answer back into an actions dict.

Which controller a command runs is a *policy name*, looked up in :mod:`townlet_env.policies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from townlet_env.scripted import ScriptedExpert
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState


class Expert(Protocol):
    """One valid option per seat for the whole town, like :class:`townlet_env.scripted.ScriptedExpert`."""

    def act(self, state: WorldState, mask: np.ndarray) -> np.ndarray: ...


#: ``(rules, episode_seed) -> expert``: one fresh expert per episode.
ExpertFactory = Callable[[Rules, int], Expert]
#: ``(episode_seed, n_seats) -> the seats one controller drives``.
SeatChooser = Callable[[int, int], Sequence[int]]


def scripted_expert(rules: Rules, seed: int) -> Expert:
    """The project's scripted expert (``townlet_env.scripted.ScriptedExpert``)."""
    return ScriptedExpert(rules, seed=seed)


def expert_actions(expert: Expert, state: WorldState, mask: np.ndarray) -> np.ndarray:
    """int64[N]: the expert's action for every seat under ``mask`` (int8[N, A])."""
    return np.asarray(expert.act(state, mask), dtype=np.int64)


class Controller(Protocol):
    """Picks one action per seat: ``act(state, obs float32[N, D], mask int8[N, A]) -> int64[N]``."""

    def reset(self, rules: Any, episode_seed: int) -> None: ...

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class RandomController:
    """Uniformly random among each seat's valid actions (seeded by the episode)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, rules: Any, episode_seed: int) -> None:
        self.rng = np.random.default_rng([episode_seed, 0x5EED])

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        noise = self.rng.random(mask.shape)
        noise[mask == 0] = -1.0
        return noise.argmax(axis=1).astype(np.int64)


class ScriptedController:
    """The scripted expert (``townlet_env.scripted.ScriptedExpert`` unless another factory is given)."""

    def __init__(self, expert: ExpertFactory = scripted_expert) -> None:
        self._make = expert
        self.expert: Expert | None = None

    def reset(self, rules: Any, episode_seed: int) -> None:
        self.expert = self._make(rules, episode_seed)

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.expert is None:
            raise RuntimeError("ScriptedController.act before reset: no expert for this episode yet")
        return expert_actions(self.expert, state, mask)


class MixedController:
    """``main`` drives the seats ``seats`` chooses from the episode seed; ``others`` the rest.

    Both are asked every tick (the scripted expert reads the whole town either way) and
    the answers are merged seat by seat, as the anneal's mixed control does.

    Args:
        main: the controller of the chosen seats (e.g. a learned policy).
        others: the controller of every other seat (e.g. :class:`ScriptedController`).
        seats: ``(episode_seed, n_seats) -> seat ids``; duplicates are ignored.

    """

    def __init__(self, main: Controller, others: Controller, seats: SeatChooser) -> None:
        self.main, self.others, self._seats = main, others, seats
        self.episode_seed = 0
        self._chosen: dict[int, np.ndarray] = {}  # by number of seats, for this episode

    def reset(self, rules: Any, episode_seed: int) -> None:
        self.main.reset(rules, episode_seed)
        self.others.reset(rules, episode_seed)
        self.episode_seed, self._chosen = episode_seed, {}

    def chosen(self, n_seats: int) -> np.ndarray:
        """int64[k]: the seats ``main`` drives in this episode (sorted, unique)."""
        if n_seats not in self._chosen:
            self._chosen[n_seats] = np.unique(np.asarray(self._seats(self.episode_seed, n_seats), dtype=np.int64))
        return self._chosen[n_seats]

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        chosen = self.chosen(len(mask))
        actions = self.others.act(state, obs, mask)
        actions[chosen] = self.main.act(state, obs, mask)[chosen]
        return actions


def town_arrays(env: Any, obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A ParallelEnv's observation dict as ``(obs float32[N, D], mask int8[N, A])`` by seat.

    Seats without an observation (dead or departed) keep a zero row; the mask is the
    town's own (:meth:`~townlet_env.env.TownletEnv.action_masks`), WAIT-only for them.
    """
    core = env.unwrapped
    rows = np.zeros((len(env.possible_agents), core.layout.size), dtype=np.float32)
    for agent, o in obs.items():
        rows[core.seat_index[agent]] = o["observation"]
    return rows, core.action_masks()


def drive(controller: Controller, env: Any, obs: dict[str, Any]) -> dict[str, int]:
    """The controller's actions for ``env.agents``, from the observations of the last step or reset."""
    core = env.unwrapped
    rows, mask = town_arrays(env, obs)
    actions = controller.act(core.world, rows, mask)
    return {a: int(actions[core.seat_index[a]]) for a in env.agents}
