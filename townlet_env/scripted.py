"""The scripted expert: a needs-driven daily routine in the learner's option action space.

:class:`ScriptedExpert` picks one :class:`~townlet_env.actions.Option` per seat from the
world state, the action mask and its own seeded RNG, for all seats at once with numpy, so
its actions are the behaviour-cloning labels. Each seat follows a day built around its
job's shift ``[start, end)``:

* **night** ``[bed, wake)``: sleep, where ``wake = start - prep_ticks`` and the night is
  one sleep affordance long (seats without a job wake at ``idle_wake``);
* **work phase**: from the moment the seat must leave (``start`` minus the BFS path length
  to its workplace minus ``travel_margin``) until the shift ends: WORK;
* **free time** (the rest): eat, wash, nap, go to work early once the morning chores are
  done, chat with a nearby friend, otherwise go home and wait.

Needs are met *ahead* of the next stretch in which they cannot be (the night, or the
commute and shift): within ``lead_ticks`` of it, a need whose projected level at the
stretch's end falls below ``floor`` is topped up; at any time a need below its ``low``
threshold is served. Hygiene looks past the short morning too, so showers happen in the
evening. A need below ``critical`` overrides work and sleep. Politeness: an agent already
eating, cooking or washing (walking, queued or in use) keeps at it unless a need turns
critical or the commute is due. Chats go only to the target the env would pick (best
friend, else nearest agent), when it is near and the speaker's rivalry toward it is at
most ``avoid_rivalry``. Rivals are avoided: a top-up (eat or wash with no need below its
low threshold) waits while rivals hold or queue for every object that could serve it (the
navigator already steers every agent to another object when one will do). COOK stands in
for EAT, for a seat below ``eat_low``, when no fridge is stocked or meals are unaffordable.
The mask is always respected (a committed seat takes its one allowed action).

Perturbations: an object out of service is masked or skipped by the env's target choice,
so the expert reroutes to another of the type, or serves another need while every object
of a type is out. During a price spike on a need's option it only tops that need up
halfway to its usual threshold (buying less at the high price) and judges meals
affordable at the spiked price. A seat asked to an arranged meet (``meet_partner``) goes
to the meeting place's option (EAT at the fridges) in free time, unless it is nearly full.

Everything that depends only on (job, minute of day) is tabulated once in the constructor,
so a call is a few dozen numpy operations whatever the number of seats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from townlet_env.actions import (
    N_OPTIONS,
    OPT_CHAT,
    OPT_COOK,
    OPT_EAT,
    OPT_GO_HOME,
    OPT_SLEEP,
    OPT_WAIT,
    OPT_WASH,
    OPT_WORK,
)
from townlet_env.config import TICKS_PER_DAY
from townlet_env.expert_params import (
    BEDTIME,
    FIELD,
    FREE,
    MORNING,
    SHIFT,
    SOON_AT,
    WORK_AT,
    ExpertParams,
    schedule_tables,
)
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from townlet_env.world.systems.navigation import chat_targets

KEEP, NEED = -1, -2  # in the priority list: continue the current option / serve the lowest need
#: Rule outcomes, highest priority first (see :meth:`ScriptedExpert.act`).
PRIORITY = np.array(
    [NEED, KEEP, OPT_CHAT, OPT_WORK, NEED, OPT_WORK, OPT_SLEEP, OPT_CHAT, OPT_CHAT, OPT_GO_HOME, OPT_WAIT]
)
_CRIT, _KEEP, _WORK_CHAT, _WORK, _WANT, _EARLY, _BED, _CHATTING, _CHAT, _AWAY, _IDLE = range(len(PRIORITY))


class ScriptedExpert:
    """Needs-driven routine over every seat at once (see the module docstring).

    Args:
        rules: the compiled rules of the town it plays.
        seed: seeds the expert's own RNG (drawn only when ``params.chat_prob < 1``).
        params: thresholds and times; defaults suit the shipped town.

    """

    def __init__(self, rules: Rules, seed: int = 0, params: ExpertParams | None = None) -> None:
        self.rules = rules
        self.params = params if params is not None else ExpertParams()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        town = rules.town
        self._ints, self._flags, self._thr = schedule_tables(rules, self.params)
        self._dist = town.dist
        self._home_field = town.first_home_field
        self._need_opts = np.array([OPT_EAT, OPT_WASH, OPT_SLEEP])
        self._is_chore = np.isin(np.arange(N_OPTIONS), [OPT_EAT, OPT_COOK, OPT_WASH])
        eat_type = rules.aff_type[rules.opt_eat]
        self._fridges = np.flatnonzero(town.obj_type == eat_type)
        self._showers = np.flatnonzero(town.obj_type == rules.aff_type[rules.opt_wash])
        self._meal_stock = rules.aff_consumes[rules.opt_eat]
        self._meal_price = float(rules.aff_price[rules.opt_eat])
        self._priced = np.array([rules.opt_eat, rules.opt_wash])  # affordances of the hunger, hygiene options
        self._low = np.array([self.params.eat_low, self.params.wash_low], dtype=np.float32)
        place = rules.config.perturbations.arranged_meet.place
        opts = {int(t): o for t, o in zip(rules.option_type.tolist(), (OPT_EAT, OPT_COOK, OPT_WASH), strict=True)}
        types = rules.manifest.object_types
        self._meet_opt = opts.get(types.index(place), OPT_WAIT) if place in types else OPT_WAIT
        self._chat_since = rules.config.options.commit_ticks - self.params.chat_ticks

    def reset(self, seed: int | None = None) -> None:
        """Restart the RNG (from ``seed``, or the constructor's seed)."""
        self.seed = self.seed if seed is None else seed
        self.rng = np.random.default_rng(self.seed)

    def state_dict(self) -> dict[str, Any]:
        """The seed and the RNG's bit-generator state, so a snapshot can carry the expert
        (attach it: ``env.unwrapped.attachments.attach("expert", expert)``).
        """
        return {"seed": self.seed, "rng": dict(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the same draws follow."""
        self.seed = int(state["seed"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]

    def act_dict(self, env: Any) -> dict[str, int]:
        """Actions for ``env.agents`` of a Townlet ParallelEnv (or a wrapper around one)."""
        town = env.unwrapped
        actions = self.act(town.world, town.action_masks())
        return {a: int(actions[town.seat_index[a]]) for a in env.agents}

    def act(self, state: WorldState, mask: np.ndarray) -> np.ndarray:
        """One valid option per seat: int64[N], ``mask[i, out[i]] == 1`` for every seat.

        Rules, highest priority first (columns of ``PRIORITY``): a critical need; finish a
        started chore; a chat with a coworker at arm's length; work when due; a need below
        its threshold; go to work early once the morning is done; go to bed near bedtime;
        keep walking to a chat partner; start a chat; go home; wait. Of several needs the
        lowest is served first (eat, wash or sleep).
        """
        p = self.params
        n = len(state.alive)
        minute = state.tick % TICKS_PER_DAY
        job = state.job
        ints = self._ints[job, minute]
        flags = self._flags[job, minute]
        y, x = state.pos[:, 0], state.pos[:, 1]
        travel = self._dist[ints[:, FIELD], y, x]
        working = travel >= ints[:, WORK_AT]
        soon = travel >= ints[:, SOON_AT]
        option = state.option
        needs = state.needs
        thr = self._thr[job, minute, soon + 2 * (option == OPT_SLEEP)]
        spiked = state.price_factor[self._priced] > 1.0
        if spiked.any():  # a price spike: top up only halfway to the usual threshold
            thr = thr.copy()
            thr[:, :2] = np.where(spiked, np.minimum(thr[:, :2], (thr[:, :2] + self._low) / 2), thr[:, :2])
        want = needs < thr
        crit = needs < p.critical
        allowed = mask != 0
        need_ok = allowed[:, self._need_opts]
        hungry = needs[:, 0] < p.eat_low  # cooking is for real hunger, not for topping up
        if (hungry & ~need_ok[:, 0]).any():
            need_ok[:, 0] |= hungry & allowed[:, OPT_COOK] & self._cook_instead(state)
        free = flags[:, FREE] & ~working

        # The need to serve, if any: the lowest of those wanted (critical ones are lowest).
        serve = (want | crit) & need_ok
        need_opt = self._need_opts[np.where(serve, needs, 2.0).argmin(axis=1)]
        if self._meet_opt != OPT_WAIT:  # an arranged meet: go to its place in free time
            meet = (state.meet_partner >= 0) & free & ~soon & allowed[:, self._meet_opt] & ~serve.any(axis=1)
            meet &= needs[:, 0] < p.meet_full
            need_opt = np.where(meet, self._meet_opt, need_opt)
            serve[meet, 0] = True

        hit = np.zeros((n, len(PRIORITY)), dtype=bool)
        hit[:, _CRIT] = (crit & need_ok).any(axis=1)
        hit[:, _KEEP] = self._is_chore[option] & ~(working & (state.running < 0))
        hit[:, _WORK] = working & allowed[:, OPT_WORK]
        hit[:, _WANT] = serve.any(axis=1)
        hit[:, _EARLY] = flags[:, MORNING] & soon & allowed[:, OPT_WORK]
        hit[:, _BED] = flags[:, BEDTIME]
        hit[:, _CHATTING] = (option == OPT_CHAT) & (state.commit_until > state.tick + self._chat_since)
        # Chats (every ``chat_every`` minutes): with a coworker at arm's length during the
        # shift, or with a friend nearby in free time when there is nothing better to do.
        chat = allowed[:, OPT_CHAT] & ((flags[:, SHIFT] & state.arrived) | (free & ~soon))
        if minute % p.chat_every == 0 and chat.any():
            chat &= ~hit[:, :_WORK_CHAT].any(axis=1) & (needs.min(axis=1) > p.chat_needs)
            chat[free] &= ~hit[free, _WORK:_CHAT].any(axis=1)
            if p.chat_prob < 1.0:
                chat &= self.rng.random(n) < p.chat_prob
            if chat.any():
                ok = self._chat_ok(state, chat, np.where(free, p.chat_range, 1))
                hit[:, _WORK_CHAT] = ok & ~free
                hit[:, _CHAT] = ok & free
        hit[:, _AWAY] = self._dist[self._home_field + state.home, y, x] != 0
        hit[:, _IDLE] = True
        rule = hit.argmax(axis=1)
        choice = PRIORITY[rule]
        choice = np.where(choice == NEED, need_opt, np.where(choice == KEEP, option, choice))
        choice = np.where((choice == OPT_EAT) & ~allowed[:, OPT_EAT] & hungry, OPT_COOK, choice)
        # A top-up (no need below its low threshold) waits while rivals hold every such object.
        topping = (rule == _WANT) & ~(needs[:, :2] < (p.eat_low, p.wash_low)).any(axis=1)
        topping &= np.isin(choice, (OPT_EAT, OPT_WASH)) & allowed[:, OPT_WAIT]
        if topping.any():
            choice = np.where(topping & self._rivals_everywhere(state, choice), OPT_WAIT, choice)
        rows = np.arange(n)
        valid = allowed[rows, choice]
        if not valid.all():  # committed seats, or a fallback that is masked
            fallback = np.where(allowed[:, OPT_GO_HOME] & hit[:, _AWAY], OPT_GO_HOME, OPT_WAIT)
            choice = np.where(valid, choice, fallback)
            choice = np.where(allowed[rows, choice], choice, allowed.argmax(axis=1))
        return choice.astype(np.int64)

    def _rivals_everywhere(self, state: WorldState, choice: np.ndarray) -> np.ndarray:
        """Per seat: every object its EAT/WASH ``choice`` could use is held or queued for by a
        rival (rivalry above ``avoid_rivalry``); False for other choices.
        """
        out = np.zeros(len(choice), dtype=bool)
        held = np.where(state.using >= 0, state.using, state.waiting)  # the object each seat occupies
        for opt, objs in ((OPT_EAT, self._fridges), (OPT_WASH, self._showers)):
            seats = np.flatnonzero(choice == opt)
            if seats.size == 0 or objs.size == 0:
                continue
            rival = (state.tie_vals[seats, :, 2] > self.params.avoid_rivalry) & (state.tie_other[seats] >= 0)
            where = held[np.maximum(state.tie_other[seats], 0)]  # [S, K] object of each tie's other
            taken = np.isin(where, objs) & rival
            out[seats] = np.array([np.isin(objs, where[k][taken[k]]).all() for k in range(len(seats))])
        return out

    def _cook_instead(self, state: WorldState) -> np.ndarray:
        """Per seat: cooking is the way to food (no stocked fridge, or meals unaffordable)."""
        stocked = bool((state.stock[self._fridges] >= self._meal_stock).all(axis=1).any())
        price = self._meal_price * float(state.price_factor[self.rules.opt_eat])
        return (state.wallet < price) | (not stocked)

    def _chat_ok(self, state: WorldState, chat: np.ndarray, reach: np.ndarray) -> np.ndarray:
        """Per seat: the env's chat target (best friend, else nearest) is within ``reach`` and no rival."""
        seats = np.flatnonzero(chat)
        target = chat_targets(seats, state.tie_other, state.tie_vals, state.alive, state.pos)
        found = target >= 0
        seats, target = seats[found], target[found]
        rivalry = np.where(state.tie_other[seats] == target[:, None], state.tie_vals[seats, :, 2], 0.0).max(axis=1)
        d = np.abs(state.pos[seats].astype(np.int32) - state.pos[target]).sum(axis=1)
        ok = np.zeros(len(chat), dtype=bool)
        ok[seats] = (rivalry <= self.params.avoid_rivalry) & (d <= reach[seats])
        return ok
