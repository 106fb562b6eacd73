"""Roll one golden case out and fingerprint every tick.

Per tick the trace keeps one 16-bit checksum (CRC-32, low half) per *field* (every ``WorldState`` array, the RNG state,
the clock, the actions, observations, masks, guarded rewards and each reward term) and one
per *agent* (that seat's row of every per-agent array, its observation, mask, action and
reward terms). A whole-run comparison of these two tables finds the first tick that
differs and names the fields and agents that differ there; a one-tick change in a decay
rate or a reward weight shows up at the tick it first acts. Every ``EVERY`` ticks the
trace also keeps the strong digests of the original pin (``WorldState.digest()`` and
running BLAKE2 hashes of observations and rewards), so the recording stays compatible
with the first format. (16 bits keep the per-tick tables small in git; a change that
slips past one tick's checksum by chance, odds 1 in 65,536, is named a tick later or by the
checkpoint digests, never missed.)
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

import townlet_env
from townlet_env.actions import action_names
from townlet_env.rewards.engine import TERMS
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

EVERY = 100
StateTweak = Callable[[WorldState, Rules, np.random.Generator], None]
TickHook = Callable[[WorldState], None]
#: Arrays indexed by object, not by seat.
OBJECT_FIELDS = ("holder", "stock", "out_of_service", "price_factor")  # world arrays not indexed by seat
POLICIES = ("random", "expert", "wait")


@dataclass(frozen=True)
class Case:
    """One pinned rollout.

    Attributes:
        name: key in the recording.
        seed: ``reset(seed=...)``; the random policy draws from ``1000 + seed``.
        ticks: ticks stepped after reset.
        policy: ``"random"`` (seeded valid actions), ``"expert"`` (the scripted expert) or
            ``"wait"`` (everybody waits: the idle baseline).
        env_kwargs: ``parallel_env`` keyword arguments, as sorted items.
        on_reset: optional tweak of the state right after reset (same shape as capture's).
        hook: optional ``town -> per-tick hook`` factory (given the unwrapped env), called after every step.
        description: one line on what the case pins.
        idle_until: everybody waits until this tick, then ``policy`` acts (late starters).

    """

    name: str
    seed: int
    ticks: int
    policy: str
    env_kwargs: tuple[tuple[str, Any], ...]
    on_reset: StateTweak | None = field(default=None, compare=False)
    hook: Callable[[Any], TickHook] | None = field(default=None, compare=False)
    description: str = ""
    idle_until: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"golden case {self.name}: policy {self.policy!r} is not one of {POLICIES}")


def case(name: str, seed: int, ticks: int, policy: str, **kw: Any) -> Case:
    """A :class:`Case` from keyword ``parallel_env`` arguments."""
    return Case(name, seed, ticks, policy, tuple(sorted(kw.items())))


@dataclass
class Trace:
    """What a rollout recorded; ``fields``/``agents`` are ``uint16[ticks + 1, ...]`` checksums."""

    field_names: list[str]
    agent_names: list[str]
    fields: np.ndarray
    agents: np.ndarray
    checkpoints: dict[str, list[Any]]  # ticks, digests, obs, rewards (the first format)
    reward_sums: dict[str, dict[str, float]]  # agent -> term -> sum over the run
    actions: dict[str, int]  # action name -> count over all agents and ticks


def _world_arrays(state: WorldState) -> list[tuple[str, np.ndarray]]:
    return [(f.name, getattr(state, f.name)) for f in fields(state) if isinstance(getattr(state, f.name), np.ndarray)]


def _crc(value: np.ndarray | bytes) -> int:
    data = value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes()
    return zlib.crc32(data) & 0xFFFF


def _rows(n: int, arrays: list[np.ndarray]) -> np.ndarray:
    """``uint16[n]``: a checksum of each seat's row across ``arrays``."""
    flat = [np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in arrays]
    joined = np.concatenate(flat, axis=1)
    return np.array([zlib.crc32(joined[i].tobytes()) & 0xFFFF for i in range(n)], dtype=np.uint16)


class _Recorder:
    """Builds the per-tick fingerprint tables and the checkpoint hashes."""

    def __init__(self, state: WorldState, n_actions: int) -> None:
        world = [name for name, _ in _world_arrays(state)]
        self.field_names = ["clock", "rng", "action", *world, "observation", "action_mask", "reward"]
        self.field_names += [f"reward.{t}" for t in TERMS]
        self.n = state.n_agents
        self.field_rows: list[list[int]] = []
        self.agent_rows: list[np.ndarray] = []
        self.h_obs, self.h_rew = hashlib.blake2b(digest_size=16), hashlib.blake2b(digest_size=16)
        self.checkpoints: dict[str, list[Any]] = {"ticks": [], "digests": [], "obs": [], "rewards": []}
        self.reward_sums = np.zeros((self.n, len(TERMS)), dtype=np.float64)
        self.action_counts = np.zeros(n_actions, dtype=np.int64)

    def tick(self, state: WorldState, step: dict[str, np.ndarray], obs_keys: list[str], reward_keys: list[str]) -> None:
        """Fingerprint the state and this tick's ``step`` arrays (seat-ordered).

        ``obs_keys``/``reward_keys``: the agents in the step's dicts, in sorted order (the
        order the first format hashed them in).
        """
        clock = f"{state.tick} {state.exits_today}".encode()
        world = _world_arrays(state)
        terms = step["terms"]
        row = [_crc(clock), _crc(repr(state.rng.bit_generator.state).encode()), _crc(step["action"])]
        row += [_crc(a) for _, a in world]
        row += [_crc(step["obs"]), _crc(step["mask"]), _crc(step["reward"])]
        row += [_crc(terms[:, k]) for k in range(terms.shape[1])]
        self.field_rows.append(row)
        per_agent = [a for name, a in world if name not in OBJECT_FIELDS]
        self.agent_rows.append(_rows(self.n, [*per_agent, step["action"], step["obs"], step["mask"],
                                              step["reward"], terms]))  # fmt: skip
        for a in obs_keys:  # the first format's running hashes, byte for byte
            i = int(a.split("_")[-1])
            self.h_obs.update(a.encode())
            self.h_obs.update(step["obs"][i].tobytes())
            self.h_obs.update(step["mask"][i].tobytes())
        if state.tick > 0:
            for a in reward_keys:
                i = int(a.split("_")[-1])
                self.h_rew.update(a.encode())
                self.h_rew.update(np.float64(step["reward"][i]).tobytes())
                self.h_rew.update(terms[i].tobytes())
            self.reward_sums += terms
            acted = step["action"][step["action"] >= 0]
            self.action_counts += np.bincount(acted, minlength=len(self.action_counts))

    def checkpoint(self, state: WorldState) -> None:
        cp = self.checkpoints
        cp["ticks"].append(state.tick)
        cp["digests"].append(state.digest())
        cp["obs"].append(self.h_obs.hexdigest())
        cp["rewards"].append(self.h_rew.hexdigest() if state.tick > 0 else "")


def _step_arrays(par: Any, obs: dict[str, dict[str, np.ndarray]], actions: dict[str, int],
                 rewards: dict[str, float], terms: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Seat-ordered arrays for one tick (-1 / zeros for an absent seat)."""
    names = par.possible_agents
    some = next(iter(obs.values()))
    blank_obs, blank_mask = np.zeros_like(some["observation"]), np.zeros_like(some["action_mask"])
    return {
        "action": np.array([actions.get(a, -1) for a in names], dtype=np.int64),
        "obs": np.stack([obs[a]["observation"] if a in obs else blank_obs for a in names]),
        "mask": np.stack([obs[a]["action_mask"] if a in obs else blank_mask for a in names]),
        "reward": np.array([rewards.get(a, 0.0) for a in names], dtype=np.float64),
        "terms": np.asarray(terms, dtype=np.float32),
    }


def run_case(case: Case, every: int = EVERY) -> Trace:
    """Roll ``case`` out with its scripted policy and return its trace."""
    par = townlet_env.parallel_env(max_ticks=case.ticks, **dict(case.env_kwargs))
    town = par.unwrapped
    obs, _ = par.reset(seed=case.seed)
    if case.on_reset is not None:
        case.on_reset(town.world, town.rules, np.random.default_rng(2_000 + case.seed))
    hook = case.hook(town) if case.hook is not None else None
    rng = np.random.default_rng(1_000 + case.seed)
    expert = ScriptedExpert(town.rules, seed=case.seed) if case.policy == "expert" else None
    names = action_names(town.config.action_mode)
    rec = _Recorder(town.world, len(names))
    n_terms = len(TERMS)
    rec.tick(town.world, _step_arrays(par, obs, {}, {}, np.zeros((rec.n, n_terms))), sorted(obs), [])
    rec.checkpoint(town.world)
    for tick in range(1, case.ticks + 1):
        if expert is not None and tick > case.idle_until:
            actions = expert.act_dict(par)
        elif case.policy == "wait" or tick <= case.idle_until:
            actions = dict.fromkeys(par.agents, 0)
        else:
            masks = np.stack([obs[a]["action_mask"] for a in par.agents])
            scores = np.where(masks > 0, rng.random(masks.shape), -1.0)
            actions = dict(zip(par.agents, scores.argmax(axis=1).tolist(), strict=True))
        obs, rewards, _, _, _ = par.step(actions)
        if hook is not None:
            hook(town.world)
        rec.tick(town.world, _step_arrays(par, obs, actions, rewards, town.reward_terms), sorted(obs), sorted(rewards))
        if tick % every == 0 or tick == case.ticks:
            rec.checkpoint(town.world)
    seat_names = list(par.possible_agents)
    sums = {a: {t: float(rec.reward_sums[i, k]) for k, t in enumerate(TERMS)} for i, a in enumerate(seat_names)}
    return Trace(
        rec.field_names,
        seat_names,
        np.array(rec.field_rows, dtype=np.uint16),
        np.stack(rec.agent_rows),
        rec.checkpoints,
        sums,
        {name: int(c) for name, c in zip(names, rec.action_counts, strict=True)},
    )
