"""Social reward stages: OFF pays nothing, C1 pays chats, C2 adds the rival-avoidance bonus.

No social reward reaches an agent with a need deficit above 0.85, and chatting all day does
not pay: a seat that only chats earns clearly less over 3 sim days than the same seat under
the expert, same seeds, with C1 on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.config import TICKS_PER_DAY
from townlet_env.rewards.engine import SOCIAL_NEED_FLOOR, T_SOCIAL, reward_terms
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.events import Event, EventKind
from townlet_env.world.systems.employment import ShiftOutcome

SPAMMER = "agent_0"


def _spam(mask_row: np.ndarray, option: int) -> int:
    """The chat-all-day controller: CHAT whenever allowed, else the committed option, else WAIT."""
    if mask_row[Option.CHAT]:
        return int(Option.CHAT)
    return option if mask_row[option] else int(Option.WAIT)


def _roll(stage: str, seed: int, days: int, spam: bool) -> tuple[float, list[float]]:
    """Seat 0's return (chat-spamming when ``spam``, else the expert) and every tick's social terms."""
    env = townlet_env.parallel_env(max_ticks=days * TICKS_PER_DAY, rewards={"social_stage": stage})
    env.reset(seed=seed)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=seed)
    total, social = 0.0, []
    while env.agents:
        actions = expert.act_dict(env)
        if spam:
            actions[SPAMMER] = _spam(town.action_masks()[0], int(town.world.option[0]))
        _, rewards, _, _, _ = env.step(actions)
        total += rewards[SPAMMER]
        social.extend(town.reward_terms[:, T_SOCIAL].tolist())
    return total, social


def test_off_never_pays_a_social_term_and_c1_does() -> None:
    _, off = _roll("OFF", seed=0, days=1, spam=True)
    assert not any(off), "OFF paid a social term"
    _, c1 = _roll("C1", seed=0, days=1, spam=True)
    assert any(v > 0 for v in c1), "the same play under C1 pays chats (so the OFF check can fail)"


@pytest.mark.parametrize("seed", [0, 1])
def test_chatting_all_day_earns_clearly_less_than_the_expert(seed: int) -> None:
    expert_return, _ = _roll("C1", seed, days=3, spam=False)
    spam_return, _ = _roll("C1", seed, days=3, spam=True)
    assert spam_return < expert_return - 5.0, (spam_return, expert_return)


@pytest.fixture
def town() -> Any:
    def make(stage: str) -> Any:
        env = townlet_env.parallel_env(num_agents=3, rewards={"social_stage": stage})
        env.reset(seed=0)
        core = env.unwrapped
        core.world.needs[:] = 0.9
        return core

    return make


def _social(core: Any, partner: np.ndarray | None, events: list[Event]) -> np.ndarray:
    n = core.world.n_agents
    terms, totals = reward_terms(core.world, core.rules, ShiftOutcome.zeros(n), partner, np.zeros(n, np.int8), events)
    assert totals == pytest.approx(terms.sum(axis=1))
    return terms[:, T_SOCIAL]


AVOIDED = [Event(0, EventKind.RIVAL_AVOIDED, 1, other=2, obj=0)]
CHAT = np.array([2, -1, 0], dtype=np.int32)  # seats 0 and 2 chatted


@pytest.mark.parametrize(
    ("stage", "chat_paid", "avoid_paid"), [("OFF", False, False), ("C1", True, False), ("C2", True, True)]
)
def test_what_each_stage_pays(town: Any, stage: str, chat_paid: bool, avoid_paid: bool) -> None:
    core = town(stage)
    cfg = core.rules.config.rewards
    social = _social(core, CHAT, AVOIDED)
    assert bool(social[0] == pytest.approx(cfg.chat_base)) is chat_paid  # no tie yet: the base only
    assert bool(social[2] > 0) is chat_paid
    assert bool(social[1] == pytest.approx(cfg.avoid_bonus)) is avoid_paid
    assert bool(social[1] == 0) is not avoid_paid


def test_no_social_reward_above_a_need_deficit_of_0_85(town: Any) -> None:
    core = town("C2")
    core.world.needs[0, 2] = SOCIAL_NEED_FLOOR - 0.01  # deficit just above 0.85
    core.world.needs[1, 0] = SOCIAL_NEED_FLOOR - 0.01
    social = _social(core, CHAT, AVOIDED)
    assert social[0] == 0 and social[1] == 0
    assert social[2] > 0, "the chat partner whose needs are fine is still paid"
    core.world.needs[0, 2] = SOCIAL_NEED_FLOOR  # a deficit of exactly 0.85 is allowed
    assert _social(core, CHAT, AVOIDED)[0] > 0


def test_the_stage_is_validated() -> None:
    with pytest.raises(townlet_env.ConfigError, match="social_stage"):
        townlet_env.parallel_env(rewards={"social_stage": "C9"})
