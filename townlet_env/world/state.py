"""World state as a struct of numpy arrays; row ``i`` of every agent array is seat ``i``.

A *seat* (PettingZoo agent name ``agent_i``) is occupied by one *identity* at a time; when
that identity dies or is evicted, the seat is vacant for a delay and then refilled by a
new identity (``generation`` + 1) whose ``origin`` records the first identity of the seat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np

from townlet_env.world.rules import Rules

T = TypeVar("T")


@dataclass
class WorldState:
    """All mutable simulation state. ``digest()`` hashes every field, the RNG included."""

    tick: int
    rng: np.random.Generator
    # --- agents (seats) ---
    alive: np.ndarray  # bool[N]: seat occupied by a living identity
    generation: np.ndarray  # int32[N]
    born_tick: np.ndarray  # int32[N]
    pos: np.ndarray  # int16[N, 2] (y, x)
    needs: np.ndarray  # float32[N, 3]
    wallet: np.ndarray  # float32[N]
    job: np.ndarray  # int16[N], -1 unemployed
    home: np.ndarray  # int16[N]
    option: np.ndarray  # int8[N] current option (option mode)
    commit_until: np.ndarray  # int32[N]
    target: np.ndarray  # int32[N] object (or, for chat, seat) the option heads for; -1 none
    running: np.ndarray  # int16[N] affordance index, -1 none
    remaining: np.ndarray  # int32[N] ticks left of the running affordance
    using: np.ndarray  # int32[N] object in use, -1 none
    waiting: np.ndarray  # int32[N] object whose queue the agent is in, -1 none
    request: np.ndarray  # int16[N] affordance the agent queues for
    joined_tick: np.ndarray  # int32[N]
    wait_age: np.ndarray  # int32[N] ticks spent waiting since the last successful use
    conflict_flag: np.ndarray  # bool[N] conflict already raised for the current wait
    cooldown_until: np.ndarray  # int32[N, T] per object type
    chat_ready_at: np.ndarray  # int32[N]
    last_ok: np.ndarray  # bool[N] last action succeeded
    # employment (per seat, the current shift)
    arrived: np.ndarray  # bool[N] arrived at work this shift
    late: np.ndarray  # bool[N] arrival was late
    absent: np.ndarray  # bool[N] marked absent this shift
    on_time_ticks: np.ndarray  # int32[N]
    shifts: np.ndarray  # int32[N] shifts completed
    late_shifts: np.ndarray  # int32[N] shifts late or absent
    attendance: np.ndarray  # float32[N] mean on-time share of the last 3 shifts
    absences: np.ndarray  # int32[N, K] ticks of the last K absences (-inf-ish when none)
    # lifecycle
    zero_ticks: np.ndarray  # int32[N] consecutive ticks with some need at 0
    exit_pending: np.ndarray  # bool[N]
    respawn_at: np.ndarray  # int32[N], -1 when not vacant
    exits_today: int
    # relationships: K sparse ties per agent
    tie_other: np.ndarray  # int32[N, K], -1 empty
    tie_vals: np.ndarray  # float32[N, K, 3]: trust, familiarity, rivalry
    # --- objects ---
    holder: np.ndarray  # int32[M], -1 free
    stock: np.ndarray  # int32[M, S]
    # --- perturbations (neutral unless a scheduler changes them; see townlet_env/perturbations) ---
    price_factor: np.ndarray  # float32[A] multiplier on each affordance's price (price spikes)
    out_of_service: np.ndarray  # bool[M] object closed by an outage: nobody queues for or starts it
    paid: np.ndarray  # float32[N] what the running affordance cost at its start (refunded by outages)
    meet_partner: np.ndarray  # int32[N] the seat an arranged meet asks this one to meet (-1 none)
    exits_held_until: int  # no identity ends before this tick (city events and their grace)

    n_agents: int = field(init=False, repr=False)  # seats; a plain attribute, read on every hot path
    # Kernels bound to records of this state's arrays, by name, built on first use (see
    # world/simulation.py). A record holds references to the arrays above, which is why code
    # writes those arrays in place and never re-assigns them.
    kernels: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.n_agents = len(self.alive)
        self.kernels = {}

    def bound(self, key: str, rules: Any, build: Callable[[WorldState, Any], T]) -> T:
        """The kernel bundle ``key`` of this state, built by ``build(self, rules)`` when needed.

        Made on first use and again whenever the state is stepped under other ``rules``, and
        kept in :attr:`kernels`. It takes a builder rather than a closure because it runs
        several times a tick.
        """
        found = self.kernels.get(key)
        if found is None or found[0] is not rules:
            found = self.kernels[key] = (rules, build(self, rules))
        return found[1]

    def digest(self) -> str:
        """A stable hash of the whole state, RNG state included."""
        h = hashlib.blake2b(digest_size=16)
        h.update(str(self.tick).encode())
        h.update(str(self.exits_today).encode())
        h.update(str(self.exits_held_until).encode())
        h.update(repr(self.rng.bit_generator.state).encode())
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                h.update(f.name.encode())
                h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()


def new_state(rules: Rules, n_agents: int, rng: np.random.Generator) -> WorldState:
    """A town at midnight of day 0: everybody at home, needs drawn from the config range."""
    cfg = rules.config
    town = rules.town
    n_types, n_stock, n_obj = len(rules.type_capacity), len(rules.stock_keys), len(town.obj_type)
    k = cfg.relationships.max_ties
    seats = np.arange(n_agents)
    home = (seats % len(town.homes)).astype(np.int16)
    n_jobs = len(rules.job_names)
    job = (seats % n_jobs).astype(np.int16) if n_jobs else np.full(n_agents, -1, np.int16)
    stock = np.zeros((n_obj, n_stock), dtype=np.int32)
    for m, t in enumerate(town.obj_type):
        spec = list(rules.manifest.objects.values())[int(t)]
        for key, val in spec.stock.items():
            stock[m, rules.stock_keys.index(key)] = val
    needs = rng.uniform(cfg.needs.initial_low, cfg.needs.initial_high, size=(n_agents, 3))
    i32 = np.int32
    return WorldState(
        tick=0,
        rng=rng,
        alive=np.ones(n_agents, dtype=bool),
        generation=np.zeros(n_agents, i32),
        born_tick=np.zeros(n_agents, i32),
        pos=town.homes[home].copy(),
        needs=needs.astype(np.float32),
        wallet=np.full(n_agents, cfg.economy.starting_wallet, dtype=np.float32),
        job=job,
        home=home,
        option=np.zeros(n_agents, np.int8),
        commit_until=np.zeros(n_agents, i32),
        target=np.full(n_agents, -1, i32),
        running=np.full(n_agents, -1, np.int16),
        remaining=np.zeros(n_agents, i32),
        using=np.full(n_agents, -1, i32),
        waiting=np.full(n_agents, -1, i32),
        request=np.full(n_agents, -1, np.int16),
        joined_tick=np.zeros(n_agents, i32),
        wait_age=np.zeros(n_agents, i32),
        conflict_flag=np.zeros(n_agents, bool),
        cooldown_until=np.zeros((n_agents, n_types), i32),
        chat_ready_at=np.zeros(n_agents, i32),
        last_ok=np.ones(n_agents, bool),
        arrived=np.zeros(n_agents, bool),
        late=np.zeros(n_agents, bool),
        absent=np.zeros(n_agents, bool),
        on_time_ticks=np.zeros(n_agents, i32),
        shifts=np.zeros(n_agents, i32),
        late_shifts=np.zeros(n_agents, i32),
        attendance=np.ones(n_agents, np.float32),
        absences=np.full((n_agents, cfg.lifecycle.max_absent_shifts), -(10**8), i32),
        zero_ticks=np.zeros(n_agents, i32),
        exit_pending=np.zeros(n_agents, bool),
        respawn_at=np.full(n_agents, -1, i32),
        exits_today=0,
        tie_other=np.full((n_agents, k), -1, i32),
        tie_vals=np.zeros((n_agents, k, 3), np.float32),
        holder=np.full(n_obj, -1, i32),
        stock=stock,
        price_factor=np.ones(len(rules.aff_type), np.float32),
        out_of_service=np.zeros(n_obj, bool),
        paid=np.zeros(n_agents, np.float32),
        meet_partner=np.full(n_agents, -1, i32),
        exits_held_until=0,
    )
