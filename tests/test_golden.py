"""Golden rollouts: the town does today exactly what it did when the goldens were recorded.

``tests/golden/digests.json`` holds, per case of ``tests/golden/rollouts.py``, the world
digest, an observation hash and a reward hash every ``EVERY`` ticks. A refactor keeps every
one of them; a change meant to alter behaviour re-records them with
``python scripts/record_goldens.py --why "..."`` (see CONTRIBUTING.md). The second test runs
every numba kernel as plain Python (``py_func``) and checks that the compiled town agrees.
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
from tests.golden.rollouts import CASES, GOLDEN_PATH, Case, run_case

GOLDEN = json.loads(GOLDEN_PATH.read_text())


def _first_difference(case: Case, recorded: dict[str, Any], actual: dict[str, list[str]]) -> str | None:
    """A readable account of the first checkpoint where ``actual`` leaves ``recorded``."""
    ticks = recorded["ticks"]
    for k, tick in enumerate(ticks):
        for key, what in (("digests", "world digest"), ("obs", "observation hash"), ("rewards", "reward hash")):
            if recorded[key][k] != actual[key][k]:
                since = ticks[k - 1] + 1 if k else 0
                return (
                    f"{case.name}: {what} differs first at tick {tick} (the last match was tick "
                    f"{ticks[k - 1] if k else 'none'}, so the dynamics changed in ticks {since}..{tick}); "
                    f"recorded {recorded[key][k]}, now {actual[key][k]}. If the change is meant to alter "
                    "behaviour, re-record with scripts/record_goldens.py --why '...'"
                )
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_rollout(case: Case) -> None:
    recorded = GOLDEN["cases"][case.name]
    actual = run_case(case)
    assert len(actual["digests"]) == len(recorded["ticks"]), f"{case.name}: checkpoint count changed"
    problem = _first_difference(case, recorded, actual)
    assert problem is None, problem


def test_every_case_is_recorded() -> None:
    assert sorted(GOLDEN["cases"]) == sorted(c.name for c in CASES), "re-record: the case list changed"
    assert GOLDEN["why"], "the goldens must say why they were recorded"


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


def test_a_changed_decay_rate_fails_naming_the_tick() -> None:
    """The pin is sensitive: hunger decaying 1% faster is caught, and the message names a tick."""
    case = CASES[0]
    decay = {"hunger": 0.000909, "hygiene": 0.0004, "energy": 0.0005}  # the default's hunger, 1% faster
    changed = Case(case.name, case.seed, case.ticks, case.policy, (*case.env_kwargs, ("needs", {"decay": decay})))
    problem = _first_difference(changed, GOLDEN["cases"][case.name], run_case(changed))
    assert problem is not None
    assert "world digest differs first at tick 100" in problem
