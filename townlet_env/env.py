"""``TownletParallelEnv``: the town as a PettingZoo ``ParallelEnv``.

Agents are fixed *seats* ``agent_0 .. agent_{N-1}``. Who sits in a seat (identity, origin,
generation) is in ``infos``. With ``lifecycle.respawn`` on (default) a death ends the
seat's identity (``infos[a]["identity_ended"]`` with a ``termination_reason``) and the
seat stays in ``env.agents``: it is vacant (``present`` False, WAIT-only mask, zero reward)
for the respawn delay, then a new identity takes it. With ``lifecycle.respawn`` off, a
death is a PettingZoo termination and the seat leaves ``env.agents`` until ``reset``.
Episodes truncate for everyone after ``max_ticks``. The simulation state itself is
``env.world`` (a :class:`~townlet_env.world.state.WorldState`); ``env.state()`` is
PettingZoo's global-state hook (all seats' observations, for centralised critics).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from townlet_env.actions import N_OPTIONS, N_PRIMITIVES
from townlet_env.attachments import Attachments
from townlet_env.config import TownConfig, make_config
from townlet_env.observations.variants import Variant
from townlet_env.perturbations.scheduler import NAME, PerturbationScheduler
from townlet_env.render import render_ansi, render_rgb
from townlet_env.rewards.engine import TERMS, reward_terms
from townlet_env.snapshots.state import rng_from_state, rng_state
from townlet_env.world.events import Event, EventKind, EventLog
from townlet_env.world.rules import build_rules
from townlet_env.world.simulation import action_mask, step_world
from townlet_env.world.state import WorldState, new_state
from townlet_env.world.systems.lifecycle import EVICTED, FAINT, end_identities

REASONS = {FAINT: "faint", EVICTED: "evicted"}


class TownletParallelEnv(ParallelEnv):
    """A Townlet town. Build it with :func:`townlet_env.parallel_env` to get the guards."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "townlet_v1",
        "render_modes": ["ansi", "rgb_array"],
        "is_parallelizable": True,
        "render_fps": 10,
    }

    def __init__(self, config: TownConfig | None = None, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; choose one of {self.metadata['render_modes']}")
        self.config = config if config is not None else make_config()
        self.rules = build_rules(self.config)
        self.render_mode = render_mode
        n = self.config.num_agents
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.seat_index = {a: i for i, a in enumerate(self.possible_agents)}
        self._agent_set = frozenset(self.possible_agents)
        self.n_actions = N_OPTIONS if self.rules.option_mode else N_PRIMITIVES
        self.variant = Variant(self.rules, self.config.obs_variant, self.n_actions)
        self.layout = self.variant.layout
        self._obs_space = self.variant.space()
        low, high = self.variant.bounds()
        self.state_space = spaces.Box(np.tile(low, n), np.tile(high, n), dtype=np.float32)
        self._act_spaces = {a: spaces.Discrete(self.n_actions) for a in self.possible_agents}
        self.reward_terms_names = TERMS
        self.agents: list[str] = []
        self._seats: list[int] = []
        self._identities: list[str] = []
        self.world: WorldState = new_state(self.rules, n, np.random.default_rng(self.config.seed))
        self.reward_terms = np.zeros((n, len(TERMS)), dtype=np.float32)
        self.last_termination_reasons = np.zeros(n, dtype=np.int8)
        self.last_events: list[Event] = []
        self._max_ticks = self.config.max_ticks
        self._respawn = self.config.lifecycle.respawn
        self._log = EventLog()
        self._ended_before: dict[int, int] = {}  # seat -> reason: identities end_identity ended before this tick
        self._events_before: list[Event] = []
        self._master: np.random.Generator | None = None
        self._mask = np.zeros((n, self.n_actions), dtype=np.int8)
        self.last_rewards = np.zeros(n, dtype=np.float32)  # the engine's totals (before the guard)
        self.attachments = Attachments()  # ops components and their per-tick hooks
        if self.config.perturbations.enabled:  # first, so later components see its events
            self.attachments.attach(NAME, PerturbationScheduler(self))

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start a new episode. ``seed`` fixes the trajectory; without it the episode RNG is
        drawn from the previous one (first reset: ``config.seed``).
        """
        if seed is not None or self._master is None:
            self._master = np.random.default_rng(self.config.seed if seed is None else seed)
        rng = np.random.default_rng(self._master.integers(0, 2**63))
        for i, space in enumerate(self._act_spaces.values()):
            space.seed(int(self._master.integers(0, 2**31)) + i)
        self.world = new_state(self.rules, self.config.num_agents, rng)
        self._set_agents(list(self.possible_agents))
        self._identities = [self.identity(i) for i in range(len(self.possible_agents))]
        self.reward_terms[:] = 0.0
        self.last_termination_reasons[:] = 0
        self._ended_before, self._events_before = {}, []
        self.last_events = []
        self.last_rewards = np.zeros(len(self.possible_agents), dtype=np.float32)
        self._mask = action_mask(self.world, self.rules)
        obs = self._observations()
        for hook in self.attachments.after_reset:
            hook(self)
        return obs, self._infos([])

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one tick (one sim minute). Missing agents WAIT; masked actions are
        treated as WAIT (or as continuing the committed option).
        """
        act = self._action_array(actions)
        for hook in self.attachments.before_step:
            hook(self, act)
        # Read after the hooks: a console command applied there may swap the rules (a price,
        # the exit cap) or the world (a loaded snapshot), and this tick must run under them.
        state, rules = self.world, self.rules
        outcome = step_world(state, rules, act, self._mask, self._log)
        self.last_events = self._log.events  # a fresh list every tick, so it is safe to hand out
        reasons, ended = outcome.reasons, outcome.ended
        if self._ended_before:  # ended by a hook (the console's kill): reported as this tick's deaths
            reasons, ended = reasons.copy(), sorted({*ended, *self._ended_before})
            reasons[list(self._ended_before)] = list(self._ended_before.values())
            self.last_events = self._events_before + self.last_events
            self._ended_before, self._events_before = {}, []
        self.reward_terms, totals = reward_terms(
            state, rules, outcome.shift, outcome.chat_partner, reasons, self.last_events
        )
        self.last_termination_reasons = reasons
        self.last_rewards = totals
        for seat in outcome.respawned.tolist():
            self._identities[seat] = self.identity(seat)
        self._mask = action_mask(state, rules)
        obs = self._observations()
        agents, seats = self.agents, self._seats
        reward = totals.tolist()
        rewards = {a: reward[i] for a, i in zip(agents, seats, strict=True)}
        terminations = dict.fromkeys(agents, False)
        if ended and not self._respawn:
            for i in ended:
                terminations[self.possible_agents[i]] = True
        truncate = state.tick >= self._max_ticks
        truncations = dict.fromkeys(agents, truncate)
        infos = self._infos(ended)
        if truncate:
            self._set_agents([])
        elif ended and not self._respawn:
            self._set_agents([a for a in agents if not terminations[a]])
        for hook in self.attachments.after_step:
            hook(self)
        return obs, rewards, terminations, truncations, infos

    def _action_array(self, actions: dict[str, Any]) -> np.ndarray:
        """One action per seat (missing seats WAIT), validated against the action space.

        Integers (Python or NumPy, bools included, as ``Discrete.contains`` takes them) in
        ``0..n_actions-1``; anything else raises a ValueError naming the agent and value.
        """
        values = list(actions.values())
        array = np.array(values)
        if values and (array.dtype.kind not in "iub" or min(values) < 0 or max(values) >= self.n_actions):
            raise ValueError(self._bad_action(actions))
        if len(values) == len(self.possible_agents) and list(actions) == self.possible_agents:
            return array.astype(np.int64, copy=False)  # the common case: every seat, in seat order
        if not actions.keys() <= self._agent_set:
            unknown = sorted(set(actions) - self._agent_set)
            raise ValueError(f"step(): unknown agents {unknown}; agents are {self.possible_agents[0]}..")
        return np.array([actions.get(a, 0) for a in self.possible_agents], dtype=np.int64)

    def _bad_action(self, actions: dict[str, Any]) -> str:
        """The message for the first action that is not an integer in the action space."""
        n = self.n_actions
        for agent, value in actions.items():
            if not isinstance(value, int | np.integer | np.bool_) or not 0 <= int(value) < n:
                names = "Option" if self.rules.option_mode else "Primitive"
                return (
                    f"step(): action {value!r} for {agent} is not an integer in Discrete({n}); "
                    f"pass an int from 0 to {n - 1} (e.g. townlet_env.{names}.WAIT)"
                )
        return f"step(): actions must be integers in Discrete({n}); got {actions!r}"

    def _set_agents(self, agents: list[str]) -> None:
        self.agents = agents
        self._seats = [self.seat_index[a] for a in agents]

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        batch = self.variant.encode(self.world)
        mask = self._mask
        if len(self.agents) == len(batch):  # every seat present, in seat order: iterate rows directly
            return {a: {"observation": o, "action_mask": m} for a, o, m in zip(self.agents, batch, mask, strict=True)}
        return {
            a: {"observation": batch[i], "action_mask": mask[i]} for a, i in zip(self.agents, self._seats, strict=True)
        }

    def _infos(self, ended: list[int]) -> dict[str, dict[str, Any]]:
        """Per-seat infos; ``ended`` lists the seats whose identity ended this tick."""
        alive = self.world.alive.tolist()
        rows = list(self.reward_terms)
        identities = self._identities
        infos: dict[str, dict[str, Any]] = {
            a: {"identity": identities[i], "present": alive[i], "identity_ended": False, "reward_terms": rows[i]}
            for a, i in zip(self.agents, self._seats, strict=True)
        }
        for i in ended:
            info = infos.get(self.possible_agents[i])
            if info is not None:
                info["identity_ended"] = True
                info["termination_reason"] = REASONS[int(self.last_termination_reasons[i])]
        return infos

    def end_identity(self, seat: int, reason: int) -> None:
        """End seat ``seat``'s identity now, between ticks, for ``reason`` (``EVICTED`` or ``FAINT``),
        through the lifecycle's own path; the next :meth:`step` reports it as a death in its tick
        (event, death reward term, ``identity_ended`` info, termination when respawn is off).
        """
        log, reasons = EventLog(), np.zeros(self.world.n_agents, dtype=np.int8)
        log.start_tick(int(self.world.tick))
        reasons[seat] = reason
        end_identities(self.world, self.rules, np.array([seat]), reasons, log)
        self._ended_before[seat] = reason
        self._events_before += log.events

    def identity(self, seat: int) -> str:
        """The seat's current identity, ``agent_3#g1`` for the second occupant of seat 3."""
        return f"{self.possible_agents[seat]}#g{int(self.world.generation[seat])}"

    def state(self) -> np.ndarray:
        """The global state for centralised critics: every seat's observation vector, in seat order."""
        return self.variant.encode(self.world).ravel()

    def action_masks(self) -> np.ndarray:
        """int8[N, A]: the current mask of every seat (vacant seats: WAIT only)."""
        return self._mask.copy()

    def current_observations(self) -> dict[str, dict[str, np.ndarray]]:
        """The observations of the agents in play now (what the last ``reset`` or ``step`` returned)."""
        return self._observations()

    def refresh_action_masks(self) -> None:
        """Recompute the masks from the world, after an operator changed it between ticks."""
        self._mask = action_mask(self.world, self.rules)

    def state_dict(self) -> dict[str, Any]:
        """The episode state beside ``self.world``, for :mod:`townlet_env.snapshots`.

        Seats in play, their identities, the last tick's rewards, terms, termination reasons
        and events, the action mask, the episode RNG and the action spaces' RNGs.

        Raises:
            ValueError: the env was never reset (there is no episode to save).

        """
        if self._master is None:
            raise ValueError("state_dict(): the env has no episode yet; call reset() first")
        return {
            "agents": list(self.agents),
            "identities": list(self._identities),
            "reward_terms": self.reward_terms.copy(),
            "last_rewards": self.last_rewards.copy(),
            "last_termination_reasons": self.last_termination_reasons.copy(),
            "last_events": [
                [int(e.tick), int(e.kind), int(e.agent), int(e.other), int(e.obj), float(e.value)]
                for e in self.last_events
            ],
            "mask": self._mask.copy(),
            "master_rng": rng_state(self._master),
            "action_space_rngs": [rng_state(space.np_random) for space in self._act_spaces.values()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the episode :meth:`state_dict` describes (``self.world`` is restored separately).

        Raises:
            ValueError: the state does not fit this env (other seats or action count).

        """
        n = len(self.possible_agents)
        shapes = {"reward_terms": (n, len(TERMS)), "last_rewards": (n,), "last_termination_reasons": (n,),
                  "mask": (n, self.n_actions)}  # fmt: skip
        for key, shape in shapes.items():  # dtypes stay as saved: the engine's may differ from __init__'s
            if np.shape(state[key]) != shape:
                raise ValueError(f"env state {key}: shape {list(np.shape(state[key]))}, expected {list(shape)}")
        unknown = [a for a in state["agents"] if a not in self._agent_set]
        if unknown or len(state["identities"]) != n or len(state["action_space_rngs"]) != n:
            raise ValueError(f"env state: seats do not match this env's {n} seats (unknown: {unknown})")
        self._set_agents([str(a) for a in state["agents"]])
        self._identities = [str(i) for i in state["identities"]]
        self.reward_terms = np.array(state["reward_terms"])
        self.last_rewards = np.array(state["last_rewards"])
        self.last_termination_reasons = np.array(state["last_termination_reasons"])
        self._mask = np.array(state["mask"])
        self.last_events = [Event(int(t), EventKind(int(k)), int(a), int(o), int(m), float(v))
                            for t, k, a, o, m, v in state["last_events"]]  # fmt: skip
        self._master = rng_from_state(state["master_rng"], "env.master_rng")
        for i, space in enumerate(self._act_spaces.values()):
            space.np_random.bit_generator.state = state["action_space_rngs"][i]

    def render(self) -> Any:
        if self.render_mode == "rgb_array":
            return render_rgb(self.world, self.rules)
        if self.render_mode == "ansi":
            return render_ansi(self.world, self.rules)
        return None

    def close(self) -> None:
        pass
