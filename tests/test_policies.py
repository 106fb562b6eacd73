"""Controllers and policies by name, without the training extras: the built-ins, mixed
control, the registry's errors, and the entry points the training package declares.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env import cli, policies
from townlet_env.controllers import MixedController, RandomController, ScriptedController, drive, town_arrays
from townlet_env.policies import POLICY_GROUP, PolicyError, PolicyOptions, make_controller
from townlet_env.scripted import ScriptedExpert

ROOT = Path(__file__).parents[1]


def small_town(**kw: Any) -> Any:
    return townlet_env.parallel_env(map="small", num_agents=4, max_ticks=200, **kw)


def test_scripted_policy_plays_as_the_expert_does() -> None:
    env, twin = small_town(), small_town()
    obs, _ = env.reset(seed=4)
    twin.reset(seed=4)
    controller = make_controller("scripted", env, PolicyOptions(seed=4))
    expert = ScriptedExpert(twin.unwrapped.rules, seed=4)
    for _ in range(60):
        actions = drive(controller, env, obs)
        assert actions == expert.act_dict(twin)
        obs, *_ = env.step(actions)
        twin.step(actions)


def test_random_policy_respects_masks_and_its_seed() -> None:
    def play(seed: int) -> list[dict[str, int]]:
        env = small_town()
        obs, _ = env.reset(seed=0)
        controller = make_controller("random", env, PolicyOptions(seed=seed))
        out = []
        for _ in range(30):
            actions = drive(controller, env, obs)
            mask = env.unwrapped.action_masks()
            assert all(mask[env.unwrapped.seat_index[a], act] for a, act in actions.items())
            out.append(actions)
            obs, *_ = env.step(actions)
        return out

    assert play(1) == play(1)
    assert play(1) != play(2)


class Constant:
    def __init__(self, action: int) -> None:
        self.action, self.resets = action, 0

    def reset(self, rules: Any, episode_seed: int) -> None:
        self.resets += 1

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.full(len(mask), self.action, dtype=np.int64)


def test_mixed_control_merges_the_chosen_seats() -> None:
    main, others = Constant(7), Constant(1)
    mixed = MixedController(main, others, lambda seed, n: [seed % n, seed % n, n - 1])
    mixed.reset(None, 5)
    assert main.resets == others.resets == 1
    out = mixed.act(None, np.zeros((6, 3), np.float32), np.ones((6, 9), np.int8))
    assert out.tolist() == [1, 1, 1, 1, 1, 7] and mixed.chosen(6).tolist() == [5]
    mixed.reset(None, 2)
    assert mixed.act(None, np.zeros((4, 3), np.float32), np.ones((4, 9), np.int8)).tolist() == [1, 1, 7, 7]


def test_town_arrays_leave_absent_seats_empty() -> None:
    env = small_town()
    obs, _ = env.reset(seed=0)
    del obs["agent_2"]
    rows, mask = town_arrays(env, obs)
    assert rows.shape == (4, env.unwrapped.layout.size) and mask.shape[0] == 4
    assert not rows[2].any() and rows[0].any()


def test_unknown_policies_and_stray_checkpoints_name_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policies, "_entry_points", list)
    env = small_town()
    with pytest.raises(PolicyError, match=r"--policy: unknown policy 'smart'; choose one of \['random', 'scripted'\]"):
        make_controller("smart", env)
    with pytest.raises(PolicyError, match=r"--policy learned comes with the training extras; install .*\[train\]"):
        make_controller("learned", env)
    with pytest.raises(PolicyError, match="--checkpoint: policy 'scripted' takes no checkpoint"):
        make_controller("scripted", env, PolicyOptions(checkpoint="x.zip"))
    assert isinstance(make_controller("random", env), RandomController)
    assert isinstance(make_controller("scripted", env), ScriptedController)


def test_a_policy_whose_extras_are_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What importing a module that needs torch raises where torch is not installed.
    (tmp_path / "needs_torch_policy.py").write_text("raise ImportError(\"No module named 'torch'\", name='torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = EntryPoint("learned", "needs_torch_policy:make", POLICY_GROUP)
    monkeypatch.setattr(policies, "_entry_points", lambda: [entry])
    with pytest.raises(PolicyError, match=r"--policy learned: needs the training extras \(torch is not installed\)"):
        make_controller("learned", small_town())
    assert "learned" in policies.policy_names()


def test_the_soak_command_reports_a_bad_policy_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(policies, "_entry_points", list)
    status = cli.main(["soak", "--days", "1", "--policy", "mixed", "--checkpoint", "x.zip", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and "townlet soak: --policy: unknown policy 'mixed'" in err and "pip install" in err
    assert not (tmp_path / "telemetry.jsonl").exists()  # refused before anything was written


def test_pyproject_registers_learned_and_mixed_from_training() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][POLICY_GROUP]
    assert declared == {"learned": "training.learned:learned_policy", "mixed": "training.learned:mixed_policy"}
