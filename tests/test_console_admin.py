"""Each admin command does what it says, through the simulation's own paths."""

from __future__ import annotations

import numpy as np
import pytest

import townlet_env
from tests.console_helpers import ADMIN, digest, floor_tile, send, town, wait_all
from townlet_env.console.overrides import NEVER


def _error(reply: dict) -> str:
    assert not reply["ok"], reply
    return reply["error"]["code"]


def test_teleport_refuses_walls_objects_and_off_map() -> None:
    env, console = town()
    town_map = env.unwrapped.rules.town
    wall = tuple(int(v) for v in np.argwhere(town_map.wall)[0])
    obj = tuple(int(v) for v in town_map.obj_pos[0])
    h, _w = town_map.shape
    before = digest(env)
    assert "wall" in send(console, "teleport", agent="agent_0", y=wall[0], x=wall[1])["error"]["message"]
    assert "object" in send(console, "teleport", agent="agent_0", y=obj[0], x=obj[1])["error"]["message"]
    assert _error(send(console, "teleport", agent="agent_0", y=h, x=0)) == "invalid_args"
    assert _error(send(console, "teleport", agent="agent_0", y=-1, x=0)) == "invalid_args"
    assert _error(send(console, "teleport", agent="agent_99", y=1, x=1)) == "not_found"
    assert _error(send(console, "teleport", agent="agent_0", y=1.5, x=1)) == "invalid_args"
    assert digest(env) == before and console.status()["pending"] == 0


def test_teleport_drops_a_running_affordance_and_frees_the_object() -> None:
    env, console = town()
    u = env.unwrapped
    w, _rules = u.world, u.rules
    for _ in range(2000):  # run with the expert's option (EAT) until someone holds an object
        if (w.holder >= 0).any():
            break
        env.step(dict.fromkeys(env.agents, 1))
    holders = np.flatnonzero(w.holder >= 0)
    assert holders.size, "nobody used an object"
    obj = int(holders[0])
    i = int(w.holder[obj])
    y, x = floor_tile(env, avoid=tuple(w.pos[i].tolist()))
    send(console, "teleport", agent=i, y=y, x=x)
    wait_all(env)
    assert w.pos[i].tolist() == [y, x] and w.running[i] == -1 and w.holder[obj] != i
    assert w.option[i] == 0


def test_kill_then_respawn() -> None:
    env, console = town()
    w = env.unwrapped.world
    send(console, "kill", agent="agent_3")
    wait_all(env)
    assert not w.alive[3]
    due = int(w.respawn_at[3])
    assert console.result(f"c{_last_id(console)}")["result"]["respawn_at"] == due
    assert _error(send(console, "kill", agent="agent_3")) == "conflict"  # vacant
    while w.tick <= due:
        wait_all(env)
    assert w.alive[3] and w.generation[3] == 1
    assert env.unwrapped.identity(3) == "agent_3#g1"


def test_a_kill_is_reported_as_that_ticks_death_like_an_eviction() -> None:
    """The tick a kill lands in reports it as the lifecycle reports an eviction: the event,
    the terminal reward term, ``identity_ended`` with its reason; the next tick does not.
    """
    from townlet_env.world.events import EventKind

    env, console = town()
    evicted = townlet_env.parallel_env()
    evicted.reset(seed=0)
    evicted.unwrapped.world.exit_pending[3] = True  # the lifecycle evicts seat 3 this tick
    send(console, "kill", agent="agent_3")
    tick = int(env.unwrapped.world.tick)
    _obs, rewards, terms, _trunc, infos = env.step(dict.fromkeys(env.agents, 0))
    _obs, ref_rewards, _terms, _trunc, ref_infos = evicted.step(dict.fromkeys(evicted.agents, 0))
    assert infos["agent_3"]["identity_ended"] and infos["agent_3"]["termination_reason"] == "evicted"
    assert infos["agent_3"]["identity"] == "agent_3#g0" and not infos["agent_3"]["present"]
    assert (ref_infos["agent_3"]["identity_ended"], ref_infos["agent_3"]["termination_reason"]) == (True, "evicted")
    terminal = env.unwrapped.reward_terms_names.index("terminal")
    assert env.unwrapped.reward_terms[3, terminal] == evicted.unwrapped.reward_terms[3, terminal] != 0
    assert rewards["agent_3"] == pytest.approx(ref_rewards["agent_3"])
    ends = [e for e in env.unwrapped.last_events if e.kind == EventKind.EVICTION]
    assert [(e.tick, e.agent) for e in ends] == [(tick, 3)]
    assert not any(terms.values())  # respawn on: the seat stays, as after any death
    _obs, _r, _t, _tr, infos = env.step(dict.fromkeys(env.agents, 0))
    assert not infos["agent_3"]["identity_ended"]
    assert not [e for e in env.unwrapped.last_events if e.kind == EventKind.EVICTION]


def _last_id(console) -> int:
    return max(int(k[1:]) for k in console._cache if k.startswith("c"))


def test_spawn_fills_a_vacant_seat_now() -> None:
    env, console = town()
    w = env.unwrapped.world
    assert _error(send(console, "spawn", agent="agent_5")) == "conflict"  # occupied
    send(console, "kill", agent="agent_5")
    wait_all(env)
    y, x = floor_tile(env)
    send(console, "spawn", agent="agent_5", pos=[y, x])
    wait_all(env)
    assert w.alive[5] and w.generation[5] == 1 and w.respawn_at[5] == -1
    _obs, *_, infos = env.step(dict.fromkeys(env.agents, 0))
    assert infos["agent_5"]["identity"] == "agent_5#g1" and infos["agent_5"]["present"]


def test_possess_forces_wait_and_control_sets_the_action() -> None:
    env, console = town()
    seen = []

    class Recorder:
        def before_step(self, env, actions):
            seen.append(int(actions[2]))

    env.unwrapped.attachments.attach("recorder", Recorder())  # after the console: sees its overrides
    send(console, "possess", agent="agent_2")
    assert _error(send(console, "control", agent="agent_2", action="eat")) == "conflict"  # not possessed yet
    env.step(dict.fromkeys(env.agents, 4))  # everyone asks to SLEEP
    assert seen[-1] == 0
    assert _error(send(console, "possess", agent="agent_2")) == "conflict"
    assert _error(send(console, "control", agent="agent_2", action="fly")) == "invalid_args"
    send(console, "control", agent="agent_2", action="go_home")
    env.step(dict.fromkeys(env.agents, 4))
    assert seen[-1] == 7
    send(console, "release", agent="agent_2")
    env.step(dict.fromkeys(env.agents, 4))
    env.step(dict.fromkeys(env.agents, 4))
    assert seen[-1] == 4
    assert _error(send(console, "release", agent="agent_2")) == "conflict"


def test_set_need_price_exit_cap() -> None:
    env, console = town()
    u = env.unwrapped
    send(console, "set_need", agent="agent_1", need="hygiene", value=0.0)
    assert _error(send(console, "set_need", agent="agent_1", need="hygiene", value=1.5)) == "invalid_args"
    assert _error(send(console, "set_need", agent="agent_1", need="thirst", value=0.5)) == "invalid_args"
    send(console, "set_price", key="shower", value=0.75)
    assert _error(send(console, "set_price", key="caviar", value=1)) == "not_found"
    send(console, "set_exit_cap", cap=7)
    assert _error(send(console, "set_exit_cap", cap=-1)) == "invalid_args"
    wait_all(env)
    assert u.world.needs[1, 1] == 0.0  # decay clamps at 0
    assert float(u.rules.aff_price[u.rules.opt_wash]) == 0.75
    assert u.rules.config.lifecycle.daily_exit_cap == 7
    assert u.config.lifecycle.daily_exit_cap == 2  # the town's config (and identity) is unchanged


def test_mortality_off_nobody_faints() -> None:
    env, console = town()
    u = env.unwrapped
    send(console, "toggle_mortality", enabled=False)
    send(console, "possess", agent="agent_0")
    for need in ("hunger", "hygiene", "energy"):
        send(console, "set_need", agent="agent_0", need=need, value=0.0)
    wait_all(env)
    assert u.rules.config.lifecycle.faint_after_ticks == NEVER
    for _ in range(u.config.lifecycle.faint_after_ticks + 5):
        wait_all(env)
    assert u.world.alive[0] and u.world.zero_ticks[0] > u.config.lifecycle.faint_after_ticks
    send(console, "toggle_mortality")  # flips back on: the long-starved agent faints next tick
    wait_all(env)
    wait_all(env)
    assert not u.world.alive[0]


def test_set_relationship_both_directions() -> None:
    env, console = town()
    w = env.unwrapped.world
    send(console, "set_relationship", agent="agent_1", other="agent_2", trust=0.5, rivalry=0.25)
    assert _error(send(console, "set_relationship", agent="agent_1", other="agent_1", trust=0.5)) == "invalid_args"
    assert _error(send(console, "set_relationship", agent="agent_1", other="agent_2")) == "invalid_args"
    assert _error(send(console, "set_relationship", agent="agent_1", other="agent_2", rivalry=-0.5)) == "invalid_args"
    wait_all(env)
    from townlet_env.world.systems.relationships import tie

    assert tie(w, 1, 2)[0] == pytest.approx(0.5, abs=0.01) and tie(w, 2, 1)[2] == pytest.approx(0.25, abs=0.01)


def test_approve_and_defer_exits() -> None:
    env, console = town()
    w = env.unwrapped.world
    assert _error(send(console, "approve_exit", agent="agent_1")) == "conflict"
    wait_all(env)  # past minute 0, where the day's exit counter resets
    w.exit_pending[[1, 2]] = True
    send(console, "approve_exit", agent="agent_1")
    send(console, "defer_exit", agent="agent_2")
    wait_all(env)
    assert not w.alive[1] and w.exits_today == 1
    assert w.alive[2] and not w.exit_pending[2]


def test_admin_errors_name_the_command_and_argument() -> None:
    _env, console = town()
    reply = send(console, "teleport", agent="agent_0", y="north", x=3)
    assert reply["error"]["code"] == "invalid_args"
    assert "teleport" in reply["error"]["message"] and "'y'" in reply["error"]["message"]
    assert "usage: teleport {agent, y, x}" in reply["error"]["message"]
    reply = send(console, "set_need", agent="agent_0", need="hunger", value=0.5, extra=1)
    assert "'extra'" in reply["error"]["message"]
    assert send(console, "fly", token=ADMIN)["error"]["code"] == "unknown_command"
