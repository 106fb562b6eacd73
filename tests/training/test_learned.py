"""The ``learned`` and ``mixed`` policies: checkpoints (PPO zip, BC .pt) driving serve and soak."""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import townlet_env
from townlet_env import cli, policies
from townlet_env.controllers import MixedController, drive
from townlet_env.policies import POLICY_GROUP, PolicyError, PolicyOptions, make_controller
from townlet_env.scripted import ScriptedExpert
from training import policy as policy_lib
from training.learned import LearnedController, action_probabilities
from training.ppo import PPOConfig, make_model, save_checkpoint
from training.vec_env import TownVecEnv

pytestmark = pytest.mark.train

SMALL = {"map": "small", "num_agents": 4}
make_town = functools.partial(townlet_env.parallel_env, **SMALL)


@pytest.fixture(autouse=True)
def torch_threads() -> Any:
    """Serving sets torch to one thread; later tests in this process get theirs back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry points as ``pyproject.toml`` declares them (an editable install made before
    they were added would not list them).
    """
    entries = [
        EntryPoint("learned", "training.learned:learned_policy", POLICY_GROUP),
        EntryPoint("mixed", "training.learned:mixed_policy", POLICY_GROUP),
    ]
    monkeypatch.setattr(policies, "_entry_points", lambda: entries)


@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (seeded) MaskablePPO on the hybrid layout, saved as the anneal saves it."""
    model = make_model(TownVecEnv(make_town, 1), PPOConfig(seed=3), policy_kwargs={"net_arch": [16]})
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "ppo.zip")


def bc_pt(tmp_path: Path, **town: Any) -> Path:
    t = townlet_env.parallel_env(**{**SMALL, **town}).unwrapped
    arch = policy_lib.PolicyArch(cnn_out=16, mlp_hidden=16, pi=(16,), vf=(16,))
    policy = policy_lib.make_policy(t.layout, t.observation_space("agent_0"), t.action_space("agent_0"), arch)
    return policy_lib.save_checkpoint(tmp_path / "policy.pt", policy, t.layout, arch)


def test_learned_plays_the_checkpoint_on_every_seat(ppo_zip: Path) -> None:
    env = make_town(max_ticks=100)
    obs, _ = env.reset(seed=0)
    controller = make_controller("learned", env, PolicyOptions(checkpoint=str(ppo_zip), seed=0))
    assert isinstance(controller, LearnedController)
    core = env.unwrapped
    for _ in range(20):
        actions = drive(controller, env, obs)
        mask = core.action_masks()
        assert all(mask[core.seat_index[a], act] for a, act in actions.items())
        obs, *_ = env.step(actions)
    rows = np.stack([obs[a]["observation"] for a in env.possible_agents])
    probs = action_probabilities(controller.policy, rows, core.action_masks())
    assert probs.shape == (4, core.action_masks().shape[1]) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_bc_checkpoint_loads_too(tmp_path: Path) -> None:
    env = make_town(max_ticks=100)
    env.reset(seed=0)
    controller = make_controller("learned", env, PolicyOptions(checkpoint=str(bc_pt(tmp_path)), seed=0))
    assert isinstance(controller, LearnedController)


def test_mixed_gives_the_checkpoint_a_fixed_share_and_the_expert_the_rest(ppo_zip: Path) -> None:
    env, twin = make_town(max_ticks=100), make_town(max_ticks=100)
    obs, _ = env.reset(seed=0)
    twin.reset(seed=0)
    controller = make_controller("mixed", env, PolicyOptions(str(ppo_zip), learned_fraction=0.5, seed=7))
    assert isinstance(controller, MixedController)
    seats = controller.chosen(4).tolist()
    assert len(seats) == 2
    again = make_controller("mixed", env, PolicyOptions(str(ppo_zip), learned_fraction=0.5, seed=7))
    assert again.chosen(4).tolist() == seats  # type: ignore[attr-defined]
    others = [i for i in range(4) if i not in seats]
    expert = ScriptedExpert(twin.unwrapped.rules, seed=7)
    for _ in range(30):
        actions = drive(controller, env, obs)
        scripted = expert.act_dict(twin)
        assert all(actions[f"agent_{i}"] == scripted[f"agent_{i}"] for i in others)
        obs, *_ = env.step(actions)
        twin.step(actions)


def test_bad_checkpoints_and_options_name_the_option(ppo_zip: Path, tmp_path: Path) -> None:
    env = make_town(max_ticks=100)
    with pytest.raises(PolicyError, match=r"--policy learned needs --checkpoint PATH"):
        make_controller("learned", env, PolicyOptions())
    with pytest.raises(PolicyError, match=r"--checkpoint .*nowhere.zip: no such file"):
        make_controller("learned", env, PolicyOptions(checkpoint=str(tmp_path / "nowhere.zip")))
    junk = tmp_path / "junk.zip"
    junk.write_text("not a checkpoint")
    with pytest.raises(PolicyError, match=r"--checkpoint .*junk.zip: "):
        make_controller("learned", env, PolicyOptions(checkpoint=str(junk)))
    with pytest.raises(PolicyError, match=r"--learned-fraction 1.5: must be in \(0, 1\]"):
        make_controller("mixed", env, PolicyOptions(str(ppo_zip), learned_fraction=1.5))
    compact = bc_pt(tmp_path, obs_variant="compact")
    with pytest.raises(PolicyError, match=r"signature mismatch.*variant: expected 'compact'.*--obs-variant compact"):
        make_controller("learned", env, PolicyOptions(checkpoint=str(compact)))
    compact_town = make_town(max_ticks=100, obs_variant="compact")
    with pytest.raises(PolicyError, match=r"--checkpoint .*ppo.zip: observation signature mismatch"):
        make_controller("mixed", compact_town, PolicyOptions(checkpoint=str(ppo_zip)))


def test_a_one_day_soak_with_the_learned_policy_reports_its_table(ppo_zip: Path, tmp_path: Path) -> None:
    from townlet_env.soak import format_report, run_soak

    pytest.importorskip("websockets")
    report = run_soak(1, tmp_path, policy="learned", seed=0, options=PolicyOptions(str(ppo_zip)), **SMALL)
    assert [d.day for d in report.days] == [1] and report.policy == f"learned {ppo_zip}"
    day = report.days[0]
    assert day.telemetry_bytes > 0 and day.snapshot_bytes > 0 and day.rss_mib > 0
    # An untrained policy cannot keep a town fed and on time: the KPI bands say so.
    assert not day.kpis_in_band, format_report(report)
    assert "policy: learned" in format_report(report)


def test_serve_runs_the_mixed_policy(ppo_zip: Path, tmp_path: Path) -> None:
    from townlet_env.serve import ServeOptions, serve

    pytest.importorskip("websockets")
    opts = ServeOptions(
        policy="mixed", checkpoint=str(ppo_zip), learned_fraction=0.25, port=0, max_ticks=30,
        snapshot_root=str(tmp_path / "snaps"), audit_log=str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    assert serve(opts) == 30
    assert (tmp_path / "snaps" / "snapshot-000000030.npz").is_file()


def test_the_cli_refuses_a_mismatched_checkpoint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compact = bc_pt(tmp_path, obs_variant="compact")
    argv = ["soak", "--days", "1", "--policy", "learned", "--checkpoint", str(compact), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"townlet soak: --checkpoint {compact}: observation signature mismatch"), err
    assert err.count("\n") == 1
