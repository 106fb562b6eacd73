"""A released policy's goldens: recorded in one process, reproduced by a fresh one.

A tiny PPO policy is trained for one rollout and saved; its golden episodes are recorded
here, then ``townlet golden check --policy`` runs in a subprocess (a fresh interpreter
loading the checkpoint from disk) and must reproduce every recorded action. A policy with
other weights must fail the same check, naming the first disagreement.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")

import townlet_env  # noqa: E402
from training import golden_policy  # noqa: E402
from training.ppo import PPOConfig, learn, make_model, save_checkpoint  # noqa: E402
from training.vec_env import TownVecEnv  # noqa: E402

pytestmark = pytest.mark.train
ROOT = Path(__file__).resolve().parents[2]
TOWN = {"map": "small", "num_agents": 3, "obs_variant": "compact"}
TICKS = 80


def _tiny_policy(path: Path, seed: int, sharpen: float = 1.0) -> Path:
    """Trained for one rollout; ``sharpen`` scales the action head (another policy, same start)."""
    env = TownVecEnv(functools.partial(townlet_env.parallel_env, **{**TOWN, "max_ticks": 64}), 1, seed=seed)
    try:
        model = make_model(env, PPOConfig(n_steps=32, batch_size=48, n_epochs=1, seed=seed))
        learn(model, env, 96)
        with torch.no_grad():
            model.policy.action_net.weight.mul_(sharpen)
        return save_checkpoint(model, path)
    finally:
        env.close()


def _check_in_fresh_process(policy: Path, recording: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from training.golden import main; sys.exit(main(sys.argv[1:]))"
    argv = ["check", "--policy", str(policy), "--recording", str(recording)]
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A tiny trained policy and its golden recording."""
    folder = tmp_path_factory.mktemp("release")
    policy = _tiny_policy(folder / "release.zip", seed=0)
    out = folder / "release.zip.golden.json"
    return policy, out, golden_policy.record_policy(policy, TOWN, "first release of the tiny test policy", out, TICKS)


def test_a_released_policy_reproduces_its_golden_actions_in_a_fresh_process(
    released: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    policy, out, doc = released
    episodes = doc["episodes"].values()
    assert all(sum(e["action_histogram"].values()) > 0 for e in episodes)
    assert len({json.dumps(e["action_histogram"]) for e in episodes}) == len(golden_policy.SEEDS)  # seeds differ

    same = _check_in_fresh_process(policy, out)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "action agreement 1.0000" in same.stdout

    other = _tiny_policy(tmp_path / "other.zip", seed=0, sharpen=30.0)
    changed = _check_in_fresh_process(other, out)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "first disagreement: seed" in changed.stdout and "policy golden check FAILED" in changed.stdout


def test_reward_sums_outside_the_tolerance_fail(released: tuple[Path, Path, dict]) -> None:
    policy, _, recorded = released
    doc = json.loads(json.dumps(recorded))
    seed = next(iter(doc["episodes"]))
    doc["episodes"][seed]["reward_sums"]["survival"] += 10.0  # as if the survival reward had changed
    result = golden_policy.check_policy(policy, doc)
    assert result.agreement == 1.0
    assert not result.passed and any("reward sum survival" in r for r in result.reasons)
