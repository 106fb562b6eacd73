"""Behaviour cloning: held-out accuracy, the gate (and weak models failing it), checkpoints."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

th = pytest.importorskip("torch")
pytest.importorskip("imitation")
pytest.importorskip("sb3_contrib")

from imitation.data.types import DictObs  # noqa: E402
from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from training.bc import BCConfig, env_for, evaluate, gate, predict, split_seeds, train_bc  # noqa: E402
from training.datasets import load_dataset, to_transitions  # noqa: E402
from training.policy import PolicyArch, load_into, make_policy, policy_kwargs  # noqa: E402

pytestmark = pytest.mark.train
th.set_num_threads(1)

# CI-sized: 20k training decision points, 3 epochs (2 no longer beat the keep-current
# baseline once the town got contention); the full figure comes from `python -m training.bc`.
SMALL = BCConfig(epochs=3, max_train_samples=20_000, seed=0)


def dict_obs(data: Any) -> DictObs:
    assert isinstance(data.obs, DictObs)
    return data.obs


@pytest.fixture(scope="module")
def trained(dataset_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    out = tmp_path_factory.mktemp("bc")
    result, policy = train_bc(dataset_path, SMALL, out)
    return result, policy, out


def test_held_out_accuracy_passes_the_gate(trained: tuple[Any, Any, Path]) -> None:
    result, _, _ = trained
    ev = result.held_out
    assert result.train_seeds == (0, 1) and result.eval_seeds == (2,)
    assert ev.accuracy >= 0.90, ev
    assert ev.persistence_baseline is not None and ev.accuracy > ev.persistence_baseline
    assert ev.masked_violations == 0
    assert result.passed, result.reasons
    assert set(ev.per_action) == {"wait", "eat", "cook", "wash", "sleep", "work", "chat", "go_home"}
    assert sum(ev.support.values()) == ev.n
    for name, acc in ev.per_action.items():
        assert (acc is None) == (ev.support[name] == 0)


def test_untrained_and_scrambled_models_fail_the_gate(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)
    town = env_for(ds)
    _, held = split_seeds(ds, SMALL)
    data = to_transitions(ds, seeds=held)
    th.manual_seed(0)
    untrained = make_policy(town.layout, town.observation_space("agent_0"), town.action_space("agent_0"))
    ev = evaluate(untrained, data, town.layout, ds.action_names)
    assert ev.masked_violations == 0, "even an untrained policy must only predict allowed actions"
    assert not gate(ev, SMALL)[0]
    # A model that learnt only "keep the current option" scores its baseline, and must fail too.
    assert ev.persistence_baseline is not None
    persistence = replace(ev, accuracy=ev.persistence_baseline)
    passed, reasons = gate(persistence, SMALL)
    assert not passed and any("does not beat keep-current-option" in r for r in reasons)


def test_labels_scrambled_in_training_fail(dataset_path: Path, tmp_path: Path) -> None:
    """Training on a copy whose labels are permuted (still mask-valid) must not pass."""
    ds = load_dataset(dataset_path)
    town = env_for(ds)
    train_seeds, held = split_seeds(ds, SMALL)
    train = to_transitions(ds, seeds=train_seeds)
    rng = np.random.default_rng(0)
    mask = dict_obs(train).get("action_mask")
    noise = rng.random(mask.shape)
    noise[mask == 0] = -1
    scrambled = noise.argmax(axis=1)  # a uniformly random allowed action: an honest "weak expert"
    from imitation.algorithms.bc import BC

    from training.bc import MaskedBCLoss

    policy = make_policy(town.layout, town.observation_space("agent_0"), town.action_space("agent_0"))
    data = replace(train, acts=scrambled)[:5000]
    bc = BC(
        observation_space=policy.observation_space,
        action_space=policy.action_space,
        rng=rng,
        policy=policy,
        demonstrations=data,
        batch_size=256,
    )
    bc.loss_calculator = MaskedBCLoss(0.0, 0.0)  # type: ignore[assignment]
    bc.train(n_epochs=1, progress_bar=False)
    ev = evaluate(policy, to_transitions(ds, seeds=held), town.layout, ds.action_names)
    assert ev.accuracy < 0.9 and not gate(ev, SMALL)[0]


def test_saved_weights_seed_maskable_ppo(trained: tuple[Any, Any, Path], dataset_path: Path, rows_env: Any) -> None:
    result, policy, out = trained
    ds = load_dataset(dataset_path)
    town = env_for(ds)
    assert result.checkpoint == str(out / "policy.pt") and (out / "bc_result.json").is_file()
    venv = DummyVecEnv([functools.partial(rows_env, "hybrid")])
    model = MaskablePPO(
        "MultiInputPolicy", venv, n_steps=8, batch_size=8, seed=0, policy_kwargs=policy_kwargs(town.layout)
    )
    load_into(model.policy, out / "policy.pt", town.layout)
    data = to_transitions(ds, seeds=result.eval_seeds)[:2000]
    obs, mask = dict_obs(data).get("observation"), dict_obs(data).get("action_mask")
    np.testing.assert_array_equal(predict(model.policy, obs, mask), predict(policy, obs, mask))


def test_config_is_strict_and_split_is_disjoint(dataset_path: Path) -> None:
    with pytest.raises(ValueError, match="extra"):
        BCConfig(epoch=3)  # type: ignore[call-arg]
    ds = load_dataset(dataset_path)
    train, held = split_seeds(ds, BCConfig(holdout_seeds=(0,)))
    assert held == (0,) and train == (1, 2)
    with pytest.raises(ValueError, match="at least one training and one held-out seed"):
        split_seeds(ds, BCConfig(holdout_seeds=(7,)))
    assert PolicyArch() == PolicyArch(**SMALL.arch)
