"""Golden rollouts: the environment does today exactly what it did when the goldens were recorded.

``tests/golden/`` holds, per case of ``training.golden.CASES`` (the environment's cases and
capture's stress scenarios), per-tick fingerprints of every world field, observation, mask,
action and reward term, checkpoint digests, reward sums per term and the action histogram.
A refactor keeps every one of them; a change meant to alter the environment re-records them
with ``townlet golden record --reason "..."`` (see docs/ops.md). This module needs no torch:
``make test-light`` runs the environment pin too. The kernel test runs every numba kernel as
plain Python (``py_func``) and checks that the compiled town agrees.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import numba
import numpy as np
import pytest

import townlet_env
from townlet_env.golden.store import GOLDEN_DIR, compare, load_recording
from townlet_env.golden.trace import Case, run_case
from training import golden

RECORDING = load_recording(GOLDEN_DIR)
BY_NAME = {c.name: c for c in golden.CASES}


@pytest.mark.parametrize("case", golden.CASES, ids=lambda c: c.name)
def test_golden_rollout(case: Case) -> None:
    problem = compare(GOLDEN_DIR, case.name, run_case(case), RECORDING)
    assert problem is None, problem.message() + " -- if meant, re-record: townlet golden record --reason '...'"


def test_every_case_is_recorded_with_a_reason() -> None:
    assert sorted(RECORDING["cases"]) == sorted(BY_NAME), "re-record: the case list changed"
    assert len(RECORDING["why"]) >= golden.MIN_REASON, "the goldens must say why they were recorded"
    signoff = json.loads((GOLDEN_DIR / "signoff.json").read_text())
    assert {"reason", "recorded_at", "obs_signature", "reward_config_id", "config_id"} <= set(signoff)
    assert signoff["reason"] == RECORDING["why"], "digests.json and signoff.json come from different recordings"


def test_the_sign_off_matches_the_environment_it_signs() -> None:
    """A change of observation layout or reward config without re-recording is visible here."""
    from townlet_env.golden.store import signoff_identity

    signoff = json.loads((GOLDEN_DIR / "signoff.json").read_text())
    now = signoff_identity()
    for key in ("obs_signature", "reward_config_id", "config_id"):
        assert signoff[key] == now[key], f"signoff.json {key} is stale: re-record the goldens with a reason"


def _kernels() -> list[tuple[Any, str, Any]]:
    """(module, attribute, dispatcher) for every numba kernel bound in a townlet_env module."""
    found = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("townlet_env"):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, numba.core.registry.CPUDispatcher):
                found.append((module, attr, value))
    return found


def _records(ticks: int, action_mode: str) -> tuple[list[str], np.ndarray]:
    """Per tick: world digest and observation hash, and the rewards, on a small crowded town."""
    par = townlet_env.parallel_env(map="small", num_agents=6, action_mode=action_mode, max_ticks=ticks,
                                   obs_variant="full")  # fmt: skip
    obs, _ = par.reset(seed=5)
    rng = np.random.default_rng(5)
    out, rewards_per_tick = [par.unwrapped.world.digest()], []
    for tick in range(1, ticks + 1):
        masks = np.stack([obs[a]["action_mask"] for a in par.agents])
        scores = np.where(masks > 0, rng.random(masks.shape), -1.0)
        obs, rewards, *_ = par.step(dict(zip(par.agents, scores.argmax(axis=1).tolist(), strict=True)))
        h = hashlib.blake2b(digest_size=16)
        for a in sorted(obs):
            h.update(obs[a]["observation"].tobytes())
            h.update(obs[a]["action_mask"].tobytes())
        out.append(f"tick {tick}: {par.unwrapped.world.digest()} {h.hexdigest()}")
        rewards_per_tick.append([rewards[a] for a in par.possible_agents])
    return out, np.array(rewards_per_tick)


@pytest.mark.parametrize("action_mode", ["option", "primitive"])
def test_python_kernels_agree_with_compiled(monkeypatch: pytest.MonkeyPatch, action_mode: str) -> None:
    """Each kernel's ``py_func`` (the Python source numba compiles) gives the same town.

    World digests and observations must match bit for bit. Rewards may differ in the last
    float32 place: numba computes ``float32 * float`` in float64 and rounds once, NumPy 2
    keeps float32 throughout.
    """
    ticks = 150
    townlet_env.parallel_env(map="small", num_agents=6, action_mode=action_mode)  # import every module
    kernels = _kernels()
    assert len(kernels) >= 5, "the kernels moved: update _kernels()"
    compiled, compiled_rewards = _records(ticks, action_mode)
    for module, attr, dispatcher in kernels:
        monkeypatch.setattr(module, attr, dispatcher.py_func)
    python, python_rewards = _records(ticks, action_mode)
    for a, b in zip(compiled, python, strict=True):
        assert a == b, f"py_func and compiled kernels disagree first at {a.split(':')[0]}"
    np.testing.assert_allclose(python_rewards, compiled_rewards, rtol=1e-6, atol=1e-9)


def _with_override(monkeypatch: pytest.MonkeyPatch, **override: Any) -> None:
    """Inject a one-line config change into every town the goldens build."""
    original = townlet_env.parallel_env
    monkeypatch.setattr(townlet_env, "parallel_env", lambda *a, **kw: original(*a, **{**kw, **override}))


def test_a_changed_reward_weight_names_tick_agent_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hunger weight of the needs term 1.0 -> 1.01: the world is untouched, the reward is not."""
    weights = {"hunger": 1.01, "hygiene": 0.6, "energy": 0.8}
    _with_override(monkeypatch, rewards={"needs_weights": weights})
    case = BY_NAME["breakfast-no-contention"]
    problem = compare(GOLDEN_DIR, case.name, run_case(case), RECORDING)
    assert problem is not None
    assert (problem.tick, problem.agent, problem.field) == (1, "agent_0", "reward")
    assert "reward.needs" in problem.fields and "needs" not in problem.fields  # the world is unchanged
    assert "first difference at tick 1, agent agent_0, field reward" in problem.message()


def test_a_changed_decay_rate_names_tick_agent_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hunger decaying 1% faster is caught at the first tick, in the needs array."""
    _with_override(monkeypatch, needs={"decay": {"hunger": 0.000909, "hygiene": 0.0004, "energy": 0.0005}})
    case = BY_NAME["idle-baseline"]
    problem = compare(GOLDEN_DIR, case.name, run_case(case), RECORDING)
    assert problem is not None
    assert (problem.tick, problem.agent, problem.field) == (1, "agent_0", "needs")
    assert "first difference at tick 1, agent agent_0, field needs" in problem.message()


def test_a_changed_observation_layout_names_tick_agent_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """One social-rival slot fewer in the observation: the world is untouched, the observation is not."""
    _with_override(monkeypatch, observations={"social_rivals": 1})
    case = BY_NAME["rivalry-decay"]
    problem = compare(GOLDEN_DIR, case.name, run_case(case), RECORDING)
    assert problem is not None
    assert (problem.tick, problem.agent, problem.field) == (0, "agent_0", "observation")
    assert "needs" not in problem.fields and "pos" not in problem.fields


def test_golden_check_cli_passes_then_fails_on_an_injected_change(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert golden.main(["check", "--case", "idle-baseline"]) == 0
    assert "golden check passed" in capsys.readouterr().out
    _with_override(monkeypatch, needs={"decay": {"hunger": 0.0009, "hygiene": 0.00041, "energy": 0.0005}})
    assert golden.main(["check", "--case", "idle-baseline"]) == 1
    out = capsys.readouterr()
    assert "idle-baseline: first difference at tick 1, agent agent_0, field needs" in out.out
    assert "re-record" in out.err


def test_golden_record_refuses_a_missing_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        golden.main(["record", "--reason", "oops"])
    assert "--reason" in capsys.readouterr().err


def test_golden_is_a_townlet_command() -> None:
    """``townlet golden`` (the entry point test_cli checks pyproject for) runs the check."""
    from training import cli as training_cli

    assert training_cli.GOLDEN(["check", "--case", "rivalry-decay"]) == 0
