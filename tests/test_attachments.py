"""Attachments: ops components hook into every tick and hand their state to snapshots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.actions import Option
from townlet_env.attachments import AttachmentError


class Recorder:
    """Records the hooks it sees; forces seat 0 to WAIT; counts ticks as its state."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.ticks = 0

    def before_step(self, env: Any, actions: np.ndarray) -> None:
        self.calls.append(("before", env.world.tick))
        actions[0] = int(Option.WAIT)

    def after_step(self, env: Any) -> None:
        self.calls.append(("after", env.world.tick))
        self.ticks += 1

    def after_reset(self, env: Any) -> None:
        self.calls.append(("reset", env.world.tick))

    def state_dict(self) -> dict[str, Any]:
        return {"ticks": self.ticks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ticks = int(state["ticks"])


def test_hooks_run_in_tick_order_and_may_override_actions() -> None:
    par = townlet_env.parallel_env(num_agents=2, max_ticks=3)
    rec = Recorder()
    par.unwrapped.attachments.attach("rec", rec)
    par.reset(seed=0)
    par.step({"agent_0": int(Option.SLEEP), "agent_1": int(Option.WAIT)})
    assert rec.calls == [("reset", 0), ("before", 0), ("after", 1)]
    assert par.unwrapped.world.option[0] == int(Option.WAIT), "before_step overrides the seat's action"


def test_saved_state_waits_for_its_component() -> None:
    town = townlet_env.parallel_env(num_agents=2).unwrapped
    town.attachments.restore({"rec": {"ticks": 7}})
    rec = Recorder()
    town.attachments.attach("rec", rec)
    assert rec.ticks == 7
    assert town.attachments.state_dicts() == {"rec": {"ticks": 7}}


def test_a_name_attaches_once_and_detach_names_what_is_there() -> None:
    town = townlet_env.parallel_env(num_agents=2).unwrapped
    town.attachments.attach("rec", Recorder())
    with pytest.raises(AttachmentError, match="'rec' is already attached"):
        town.attachments.attach("rec", Recorder())
    town.attachments.detach("rec")
    assert town.attachments.after_step == []
    with pytest.raises(AttachmentError, match="no attachment named 'rec'"):
        town.attachments.detach("rec")
