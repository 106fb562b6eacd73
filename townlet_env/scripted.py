"""The scripted expert: a needs-driven daily routine in the learner's option action space.

:class:`ScriptedExpert` picks one :class:`~townlet_env.actions.Option` per seat from the
world state, the action mask and its own seeded RNG, for all seats at once with numpy, so
its actions are the behaviour-cloning labels. Each seat follows a day built around its
job's shift ``[start, end)``:

* **night** ``[bed, wake)``: sleep, where ``wake = start - prep_ticks`` and the night is
  one sleep affordance long (unemployed seats wake at ``idle_wake``);
* **work phase**: from the moment the seat must leave (``start`` minus the BFS distance
  to its workplace minus ``travel_margin``) until the shift ends: WORK;
* **free time** (the rest): eat, wash, nap, go to work early once the morning chores are
  done, sometimes chat with a friend, otherwise go home and wait.

Needs are met *ahead* of the next stretch in which they cannot be (night or work): within
``lead_ticks`` of it, a need whose projected level at the stretch's end falls below
``floor`` is topped up; at any time a need below its ``low`` threshold is served. A need
below ``critical`` overrides work and sleep. Politeness: an agent already eating, cooking
or washing (walking, queued or in use) keeps at it unless another need turns critical or
staying in the queue would make it late. Chats go only to the target the env would pick
(best friend, else nearest agent), and never to one the speaker holds a rivalry above
``avoid_rivalry`` toward. The mask is always respected (a committed seat takes its one
allowed action).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

WAIT, EAT, COOK, WASH = int(Option.WAIT), int(Option.EAT), int(Option.COOK), int(Option.WASH)
SLEEP, WORK, CHAT, GO_HOME = int(Option.SLEEP), int(Option.WORK), int(Option.CHAT), int(Option.GO_HOME)
HUNGER, HYGIENE, ENERGY = 0, 1, 2
# Columns of the per-job schedule table.
_START, _END, _WAKE, _BED, _FIELD, _HAS, _SHIFT = range(7)


@dataclass(frozen=True)
class ExpertParams:
    """Thresholds (needs in [0, 1]) and times (ticks) of the routine."""

    prep_ticks: int = 180  #: wake this long before the shift starts
    idle_wake: int = 420  #: wake minute of seats without a job
    travel_margin: int = 12  #: leave for work this much earlier than the path length
    lead_ticks: int = 150  #: top needs up this long before the night or the commute
    after_block: int = 45  #: ticks after a night/shift before food can be reached
    floor: float = 0.36  #: projected level a need must keep through the next stretch
    eat_low: float = 0.42  #: eat whenever hunger is below this
    eat_cap: float = 0.8  #: never eat above this
    wash_low: float = 0.4
    wash_cap: float = 0.85
    nap_energy: float = 0.22  #: nap in free time below this energy
    wake_energy: float = 0.85  #: a nap lasts until this energy
    rested: float = 0.97  #: at night, stay up (at home) above this energy
    bed_early: int = 30  #: head to bed this long before bedtime when nothing else is due
    critical: float = 0.16  #: a need this low overrides work and sleep
    chat_prob: float = 1.0  #: chance per eligible tick of starting a chat (1: deterministic)
    chat_needs: float = 0.4  #: chat only with every need above this
    chat_range: int = 12  #: chat only with a target within this Manhattan distance
    chat_ticks: int = 40  #: give up a chat that has not reached its partner by then
    avoid_rivalry: float = 0.3  #: never chat toward a target with more rivalry than this
    work_drain: tuple[float, float, float] = (0.0, 0.0001, 0.0002)  #: extra decay at work


class ScriptedExpert:
    """Needs-driven routine over every seat at once (see the module docstring).

    Args:
        rules: the compiled rules of the town it plays.
        seed: seeds the expert's own RNG (used only for chat initiation).
        params: thresholds and times; defaults suit the shipped town.

    """

    def __init__(self, rules: Rules, seed: int = 0, params: ExpertParams | None = None) -> None:
        self.rules = rules
        self.params = p = params if params is not None else ExpertParams()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        town = rules.town
        sleep_len = int(rules.aff_duration[rules.opt_sleep])
        self._night = sleep_len
        rows = []
        for j in range(len(rules.job_start)):
            start, end = int(rules.job_start[j]), int(rules.job_end[j])
            wake = (start - p.prep_ticks) % TICKS_PER_DAY
            rows.append([start, end, wake, (wake - sleep_len) % TICKS_PER_DAY, int(rules.job_type[j]), 1, end - start])
        rows.append([0, 0, p.idle_wake, (p.idle_wake - sleep_len) % TICKS_PER_DAY, 0, 0, 0])  # job -1
        self._rows = np.array(rows, dtype=np.int32)
        self._decay = rules.decay.astype(np.float64) + np.asarray(p.work_drain) * 0.5
        self._home_field = town.first_home_field
        eat_type = rules.aff_type[rules.opt_eat]
        self._fridges = np.flatnonzero(town.obj_type == eat_type)
        self._meal_stock = rules.aff_consumes[rules.opt_eat]
        self._meal_price = float(rules.aff_price[rules.opt_eat])
        self._commit = rules.config.options.commit_ticks

    def reset(self, seed: int | None = None) -> None:
        """Restart the RNG (from ``seed``, or the constructor's seed)."""
        self.seed = self.seed if seed is None else seed
        self.rng = np.random.default_rng(self.seed)

    def act_dict(self, env: Any) -> dict[str, int]:
        """Actions for ``env.agents`` of a Townlet ParallelEnv (or a wrapper around one)."""
        town = env.unwrapped
        actions = self.act(town.state, town.action_masks())
        return {a: int(actions[town.seat_index[a]]) for a in env.agents}

    def act(self, state: WorldState, mask: np.ndarray) -> np.ndarray:
        """One valid option per seat: int64[N], ``mask[i, out[i]] == 1`` for every seat."""
        p, rules = self.params, self.rules
        n = state.n_agents
        day = TICKS_PER_DAY
        minute = state.tick % day
        allowed = mask.astype(bool)
        row = self._rows[state.job]
        y, x = state.pos[:, 0], state.pos[:, 1]
        dist = rules.town.dist
        travel = dist[row[:, _FIELD], y, x].astype(np.int32)
        at_home = dist[self._home_field + state.home, y, x] == 0
        has = row[:, _HAS].astype(bool)

        until_start = (row[:, _START] - minute) % day
        until_wake = (row[:, _WAKE] - minute) % day
        until_bed = (row[:, _BED] - minute) % day
        night = (minute - row[:, _BED]) % day < self._night
        in_shift = has & ((minute - row[:, _START]) % day < row[:, _SHIFT])
        until_leave = until_start - travel - p.travel_margin
        working = in_shift | (has & (until_leave <= 0))
        bed_first = ~has | (until_bed < until_leave)
        until_block = np.where(night, 0, np.where(bed_first, until_bed, until_leave))
        # Ticks until each need can next be served: the end of the coming night (or shift).
        # Hygiene looks past the short morning as well, so showers happen in the evening.
        shift_end = until_start + row[:, _SHIFT]
        sleepy = night | bed_first
        horizon = np.empty((n, 3), dtype=np.int32)
        horizon[:, HUNGER] = np.where(sleepy, until_wake, shift_end)
        evening = bed_first & ~night
        horizon[:, HYGIENE] = np.where(evening & has, until_wake + p.prep_ticks + row[:, _SHIFT], horizon[:, HUNGER])
        horizon[:, ENERGY] = 0

        needs = state.needs
        proj = needs - self._decay * (horizon + p.after_block)
        soon = until_block <= p.lead_ticks
        crit = needs < p.critical
        free = ~working & ~night
        eat_ok = allowed[:, EAT] | (allowed[:, COOK] & self._cook_instead(state))
        want_eat = eat_ok & ~working & (
            (needs[:, HUNGER] < p.eat_low) | (soon & (proj[:, HUNGER] < p.floor) & (needs[:, HUNGER] < p.eat_cap))
        )
        want_wash = allowed[:, WASH] & ~working & (
            (needs[:, HYGIENE] < p.wash_low)
            | (soon & (proj[:, HYGIENE] < p.floor) & (needs[:, HYGIENE] < p.wash_cap))
        )
        option = state.option
        napping = (option == SLEEP) & (needs[:, ENERGY] < p.wake_energy)

        # Lowest priority first; each np.where overrides what came before.
        choice = np.where(at_home, WAIT, GO_HOME)
        chat = free & ~soon & allowed[:, CHAT] & (needs > p.chat_needs).all(axis=1)
        if p.chat_prob < 1.0:
            chat &= self.rng.random(n) < p.chat_prob
        if chat.any():
            chat &= self._chat_ok(state, chat)
            choice = np.where(chat, CHAT, choice)
        choice = np.where(free & bed_first & (until_bed <= p.bed_early), SLEEP, choice)
        choice = np.where(free & has & soon & allowed[:, WORK], WORK, choice)
        tired = (needs[:, ENERGY] < p.nap_energy) | (evening & (needs[:, ENERGY] < p.floor)) | napping
        choice = np.where(free & tired, SLEEP, choice)
        choice = np.where(night & ((needs[:, ENERGY] < p.rested) | (option == SLEEP)), SLEEP, choice)
        choice = np.where(want_wash, WASH, choice)
        choice = np.where(want_eat, EAT, choice)
        choice = np.where(working & allowed[:, WORK], WORK, choice)
        choice = np.where(crit[:, ENERGY], SLEEP, choice)
        choice = np.where(crit[:, HYGIENE] & allowed[:, WASH], WASH, choice)
        choice = np.where(crit[:, HUNGER] & eat_ok, EAT, choice)

        # Politeness: finish a started meal, cooking or shower (walking, queued or in use).
        chore = (option == EAT) | (option == COOK) | (option == WASH)
        if chore.any():
            need_of = np.array([0, HUNGER, HUNGER, HYGIENE, 0, 0, 0, 0])[option]
            other_crit = (crit.sum(axis=1) > crit[np.arange(n), need_of]) & chore
            late = working & (state.running < 0)
            keep = chore & ~other_crit & ~late & allowed[np.arange(n), option]
            choice = np.where(keep, option, choice)
        chatting = (option == CHAT) & ((choice == WAIT) | (choice == GO_HOME))
        chatting &= state.tick - (state.commit_until - self._commit) < p.chat_ticks
        choice = np.where(chatting, CHAT, choice)

        # COOK stands in for EAT when no meal can be bought but ingredients can.
        cook = (choice == EAT) & ~allowed[:, EAT]
        choice = np.where(cook, COOK, choice)
        rows = np.arange(n)
        valid = allowed[rows, choice]
        if not valid.all():
            fallback = np.where(allowed[:, GO_HOME] & ~at_home, GO_HOME, WAIT)
            choice = np.where(valid, choice, fallback)
            valid = allowed[rows, choice]
            choice = np.where(valid, choice, np.argmax(allowed, axis=1))
        return choice.astype(np.int64)

    def _cook_instead(self, state: WorldState) -> np.ndarray:
        """Per seat: cooking is the way to food (no stocked fridge, or meals unaffordable)."""
        stocked = bool((state.stock[self._fridges] >= self._meal_stock).all(axis=1).any())
        return (state.wallet < self._meal_price) | (not stocked)

    def _chat_ok(self, state: WorldState, chat: np.ndarray) -> np.ndarray:
        """Per seat: the env's chat target (best friend, else nearest) is close and no rival."""
        p = self.params
        seats = np.flatnonzero(chat)
        others = state.tie_other[seats]
        vals = state.tie_vals[seats]
        score = vals[:, :, 0] + vals[:, :, 1] - vals[:, :, 2]
        valid = (others >= 0) & (score > 0) & state.alive[np.maximum(others, 0)]
        best = np.argmax(np.where(valid, score, -np.inf), axis=1)
        friend = np.where(valid.any(axis=1), others[np.arange(seats.size), best], -1)
        alive = np.flatnonzero(state.alive)
        pos = state.pos.astype(np.int32)
        d = np.abs(pos[seats][:, None, :] - pos[alive][None, :, :]).sum(axis=2)
        d[seats[:, None] == alive[None, :]] = 1 << 20
        target = np.where(friend >= 0, friend, alive[np.argmin(d, axis=1)])
        rivalry = np.where(others == target[:, None], vals[:, :, 2], 0.0).max(axis=1)
        reach = np.abs(pos[seats] - pos[target]).sum(axis=1) <= p.chat_range
        ok = np.zeros(state.n_agents, dtype=bool)
        ok[seats] = (rivalry <= p.avoid_rivalry) & reach & (alive.size > 1)
        return ok
