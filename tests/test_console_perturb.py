"""The console's perturbation commands: admin only, dry runs change nothing, bad args are refused."""

from __future__ import annotations

from typing import Any

import townlet_env
from tests.console_helpers import TOKENS, VIEWER, digest, send, wait_all
from tests.console_helpers import town as plain_town
from townlet_env.console import Console, RateLimit
from townlet_env.world.events import EventKind, PerturbationKind

OFF = {k: {"per_day": 0.0} for k in ("price_spike", "power_outage", "water_outage", "arranged_meet", "city_event")}


def town() -> tuple[Any, Console]:
    env = townlet_env.parallel_env(perturbations={"enabled": True, **OFF})
    env.reset(seed=0)
    return env, Console(env, environ=TOKENS, rate_limit=RateLimit(per_second=1e9, burst=10**9))


def code(reply: dict) -> str:
    assert not reply["ok"], reply
    return reply["error"]["code"]


def test_perturb_is_admin_only_and_a_dry_run_changes_nothing() -> None:
    env, console = town()
    assert code(send(console, "perturb", token=VIEWER, kind="city_event")) == "forbidden"
    before = digest(env)
    reply = send(console, "perturb", dry_run=True, kind="price_spike", key="meal", magnitude=1.5)
    assert reply["ok"] and reply["result"]["status"] == "dry_run"
    assert reply["result"]["would"]["key"] == "meal"
    assert digest(env) == before and console.status()["pending"] == 0
    assert not env.unwrapped.attachments.get("perturbations").active


def test_perturb_applies_at_the_next_tick_and_end_perturbation_undoes_it() -> None:
    env, console = town()
    rules, w = env.unwrapped.rules, env.unwrapped.world
    assert send(console, "perturb", kind="price_spike", key="shower", magnitude=3, duration=500)["ok"]
    wait_all(env)
    assert w.price_factor[rules.opt_wash] == 3.0
    starts = [e for e in env.unwrapped.last_events if e.kind == EventKind.PERTURBATION_START]
    assert [int(e.value) for e in starts] == [PerturbationKind.PRICE_SPIKE]
    view = send(console, "perturbations", token=VIEWER)["result"]
    assert view["available"] and view["active"][0]["key"] == "shower"
    ident = view["active"][0]["id"]
    assert send(console, "end_perturbation", id=ident)["ok"]
    wait_all(env)
    assert w.price_factor[rules.opt_wash] == 1.0 and not send(console, "perturbations")["result"]["active"]


def test_bad_arguments_are_refused_with_a_reason() -> None:
    env, console = town()
    before = digest(env)
    assert code(send(console, "perturb", kind="earthquake")) == "invalid_args"
    assert code(send(console, "perturb", kind="price_spike", key="grocer")) == "not_found"
    assert code(send(console, "perturb", kind="city_event", key="meal")) == "invalid_args"
    assert code(send(console, "perturb", kind="power_outage", targets=[1, 2])) == "invalid_args"
    assert code(send(console, "perturb", kind="arranged_meet", targets=[1, 1])) == "invalid_args"
    assert code(send(console, "perturb", kind="arranged_meet", targets=[1, "agent_99"])) == "not_found"
    assert code(send(console, "perturb", kind="city_event", duration=0)) == "invalid_args"
    assert code(send(console, "end_perturbation", id=7)) == "not_found"
    reply = send(console, "perturb", kind="price_spike", magnitude=-2)
    assert code(reply) == "invalid_args" and "usage" in reply["error"]["message"]
    assert digest(env) == before
    send(console, "perturb", kind="city_event")
    send(console, "perturb", kind="arranged_meet", targets=["agent_1", 2])
    wait_all(env)
    assert "already running" in send(console, "perturb", kind="city_event")["error"]["message"]
    assert "already has a meet" in send(console, "perturb", kind="arranged_meet", targets=[2, 3])["error"]["message"]


def test_a_town_without_perturbations_says_how_to_turn_them_on() -> None:
    _env, console = plain_town()
    reply = send(console, "perturb", kind="city_event")
    assert code(reply) == "conflict" and "perturbations.enabled: true" in reply["error"]["message"]
    assert send(console, "perturbations", token=VIEWER)["result"]["available"] is False
