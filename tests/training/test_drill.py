"""The release drill and ``townlet promote``: real weights swap, the gate is never bypassed,
and each decision has its exit code."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch
import yaml

import townlet_env
from training.drill import run_drill
from training.experiment import ExperimentConfig
from training.ppo import PPOConfig, make_model, save_checkpoint
from training.registry import Registry
from training.release_cli import PROMOTE, RELEASES, ROLLBACK
from training.vec_env import TownVecEnv

pytestmark = pytest.mark.train
TINY = Path(__file__).parents[2] / "experiments" / "tiny.yaml"


#: Untrained policies switch options at random: the alerts that brings are allowed here (the
#: gate's alert path has its own tests in test_gate.py).
NOISY = ["option_thrashing", "affordance_failures_exceeded", "reward_variance_spike"]


def _experiment(**promote: object) -> ExperimentConfig:
    data = yaml.safe_load(TINY.read_text())
    data["promote"] = {**data["promote"], "window_ticks": 30, "allowed_alerts": NOISY, **promote}
    return ExperimentConfig.model_validate(data)


def _policy(path: Path, seed: int, variant: str = "hybrid") -> Path:
    """An untrained policy for the tiny town with a random action head drawn from ``seed``.

    SB3 initialises the action head near zero (near-uniform actions for any seed), so the
    head is redrawn at unit scale: two seeds then act visibly differently.
    """
    env = TownVecEnv(functools.partial(townlet_env.parallel_env, obs_variant=variant, num_agents=4, max_ticks=8))
    try:
        model = make_model(env, PPOConfig(seed=seed, n_steps=8, batch_size=8))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in model.policy.action_net.parameters():
                param.copy_(torch.randn(param.shape, generator=generator))
        return save_checkpoint(model, path)
    finally:
        env.close()


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("policies")
    return _policy(folder / "old.zip", 1), _policy(folder / "new.zip", 2)


def test_drill_swaps_weights_and_rolls_back(tmp_path: Path, policies: tuple[Path, Path]) -> None:
    report = run_drill(_experiment(), *policies, tmp_path / "drill")
    assert report["passed"], report["steps"]
    release_old, promote_new, rollback = report["steps"]
    assert release_old["matches_old"] == report["probe_rows"] > 0
    assert promote_new["matches_new"] == report["probe_rows"] and promote_new["differs_from_old"] > 0
    assert rollback["serving"] == release_old["serving"] != promote_new["serving"]
    assert rollback["matches_old"] == report["probe_rows"]
    assert [e["kind"] for e in report["history"]] == ["release", "release", "rollback"]
    assert "Release drill: PASSED" in (tmp_path / "drill" / "report.md").read_text()
    assert json.loads((tmp_path / "drill" / "report.json").read_text())["passed"] is True


def test_drill_never_forces_a_held_candidate(tmp_path: Path, policies: tuple[Path, Path]) -> None:
    report = run_drill(_experiment(floors={"self_sufficiency": 2.0}), *policies, tmp_path / "drill")
    assert not report["passed"]
    assert report["steps"] == [{**report["steps"][0], "decision": "HOLD", "release": None, "ok": False}]
    assert Registry(tmp_path / "drill" / "registry").current() is None


def _run_dir(tmp_path: Path, cfg: ExperimentConfig, policy: Path) -> Path:
    run = tmp_path / "runs" / cfg.name
    (run / "anneal").mkdir(parents=True)
    (run / "experiment.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    (run / "anneal" / "manifest.json").write_text(json.dumps({"result": {"last_good": str(policy)}}))
    return run


def test_promote_exit_codes_and_history(tmp_path: Path, policies: tuple[Path, Path], capsys) -> None:
    old, new = policies
    registry = Registry(tmp_path / "runs" / "tiny-registry")
    assert PROMOTE([str(_run_dir(tmp_path / "a", _experiment(), old)), "--registry", str(registry.root)]) == 0
    first = registry.current()
    assert first is not None and "released" in capsys.readouterr().out

    held = _run_dir(tmp_path / "b", _experiment(floors={"self_sufficiency": 2.0}), new)
    assert PROMOTE([str(held), "--registry", str(registry.root)]) == 3
    assert "HOLD" in capsys.readouterr().out and registry.current() == first

    compact = _policy(tmp_path / "compact.zip", 3, "compact")  # trained for another layout than the town's
    failed = _run_dir(tmp_path / "c", _experiment(), compact)
    assert PROMOTE([str(failed), "--registry", str(registry.root)]) == 4
    assert "parity" in capsys.readouterr().out and registry.current() == first

    assert PROMOTE([str(_run_dir(tmp_path / "d", _experiment(), new)), "--registry", str(registry.root)]) == 0
    second = registry.current()
    assert second != first and registry.policy_path(second or "").read_bytes() == new.read_bytes()
    assert PROMOTE([str(_run_dir(tmp_path / "e", _experiment(), new)), "--registry", str(registry.root)]) == 0
    assert "recorded the windows of the serving release" in capsys.readouterr().out
    assert registry.green_streak(second or "") == 4  # promotion's 2 windows + the re-evaluation's 2

    assert ROLLBACK(["--registry", str(registry.root)]) == 0
    assert registry.current() == first
    assert RELEASES(["--registry", str(registry.root)]) == 0
    listing = capsys.readouterr().out
    assert f"serving {first}" in listing and "rollback" in listing
    assert PROMOTE([str(tmp_path / "missing"), "--registry", str(registry.root)]) == 1
