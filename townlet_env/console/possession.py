"""Admin commands that possess agents: a possessed seat's action is set by the console.

The console overrides the seat's action in ``before_step`` every tick: WAIT, or the action a
``control`` command set. Possession ends on ``release`` or when the possessed identity ends.
"""

from __future__ import annotations

from typing import Any

from pydantic import StrictInt

from townlet_env.actions import action_names
from townlet_env.console.admin import AgentArgs, Plan, stop
from townlet_env.console.errors import ConsoleError
from townlet_env.console.town import alive_seat, seat


class ControlArgs(AgentArgs):
    action: StrictInt | str


def possess(env: Any, a: AgentArgs, console: Any) -> Plan:
    """Take over a living agent: it WAITs every tick (or does what ``control`` sets) until released."""
    i = alive_seat(env, a.agent, "possess")
    if i in console.possessed:
        raise ConsoleError("conflict", f"possess: {env.possible_agents[i]} is already possessed; release it first")

    def apply() -> dict[str, Any]:
        stop(env, i)
        console.possessed[i] = {"generation": int(env.world.generation[i]), "action": 0}
        return {"agent": env.possible_agents[i], "possessed": True, "action": action_names(_mode(env))[0]}

    return Plan({"agent": env.possible_agents[i], "possessed": "False -> True"}, apply)


def release(env: Any, a: AgentArgs, console: Any) -> Plan:
    """Hand a possessed agent back to its policy."""
    i = seat(env, a.agent, "release")
    if i not in console.possessed:
        raise ConsoleError("conflict", f"release: {env.possible_agents[i]} is not possessed; see health.console")

    def apply() -> dict[str, Any]:
        console.possessed.pop(i, None)
        return {"agent": env.possible_agents[i], "possessed": False}

    return Plan({"agent": env.possible_agents[i], "possessed": "True -> False"}, apply)


def control(env: Any, a: ControlArgs, console: Any) -> Plan:
    """Set the action a possessed agent takes every tick (an id or a name; masked ones WAIT)."""
    i = seat(env, a.agent, "control")
    if i not in console.possessed:
        raise ConsoleError("conflict", f"control: {env.possible_agents[i]} is not possessed; possess it first")
    names = action_names(_mode(env))
    action = names.index(a.action) if a.action in names else a.action
    if not isinstance(action, int) or not 0 <= action < len(names):
        raise ConsoleError("invalid_args", f"control: action={a.action!r} is no action; choose one of {names}")

    def apply() -> dict[str, Any]:
        console.possessed[i]["action"] = action
        return {"agent": env.possible_agents[i], "action": names[action]}

    return Plan(
        {"agent": env.possible_agents[i], "action": f"{names[console.possessed[i]['action']]} -> {names[action]}"},
        apply,
    )


def _mode(env: Any) -> str:
    return "option" if env.rules.option_mode else "primitive"
