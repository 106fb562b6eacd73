"""MaskablePPO over ``TownVecEnv``: masks respected, vacancy neutralised, checkpoints checked."""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")

from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

import townlet_env  # noqa: E402
from townlet_env.observations.layout import ObservationSignatureError  # noqa: E402
from training import policy as policy_lib  # noqa: E402
from training.ppo import (  # noqa: E402
    PPOConfig,
    checkpoint_signature,
    load_checkpoint,
    make_model,
    policy_parameters,
    save_checkpoint,
    train_ppo,
    warm_up_critic,
)
from training.vec_env import TownVecEnv  # noqa: E402

pytestmark = pytest.mark.train

SMALL: dict[str, Any] = {"map": "small", "num_agents": 4}
HARSH: dict[str, Any] = {
    **SMALL,
    "needs": {"decay": {"hunger": 0.05, "hygiene": 0.001, "energy": 0.001}},
    "lifecycle": {"faint_after_ticks": 3, "respawn_delay": (4, 6)},
}
TINY = PPOConfig(n_steps=32, batch_size=64, n_epochs=2, seed=0)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def venv(n_towns: int = 2, **overrides: Any) -> TownVecEnv:
    return TownVecEnv(functools.partial(townlet_env.parallel_env, **{**SMALL, **overrides}), n_towns, seed=0)


class MaskAudit(BaseCallback):
    """Checks every sampled action against the mask it was sampled under; keeps the last buffer's stats."""

    def __init__(self, layout: Any) -> None:
        super().__init__()
        self.layout = layout
        self.steps = 0
        self.vacant_rows: list[dict[str, np.ndarray]] = []

    def _on_step(self) -> bool:
        masks, actions = self.locals["action_masks"], self.locals["actions"].reshape(-1)
        assert masks[np.arange(len(actions)), actions].all(), "a masked action was sampled"
        self.steps += 1
        return True

    def _on_rollout_end(self) -> None:  # runs after VacancyCallback (registered first)
        buf: Any = self.model.rollout_buffer  # type: ignore[attr-defined]
        present = buf.observations["observation"][..., self.layout.index("present")]
        vacant = present < 0.5
        self.vacant_rows.append(
            {
                "advantages": buf.advantages[vacant].copy(),
                "returns": buf.returns[vacant].copy(),
                "values": buf.values[vacant].copy(),
                "log_probs": buf.log_probs[vacant].copy(),
                "present_advantages": buf.advantages[~vacant].copy(),
            }
        )


def test_tiny_learn_never_samples_a_masked_action(tmp_path: Path) -> None:
    env = venv(max_ticks=64)
    audit = MaskAudit(env.layout)
    model = train_ppo(env, TINY, 512, callbacks=[audit], log_dir=tmp_path)
    assert model.num_timesteps >= 512 and audit.steps * env.num_envs == model.num_timesteps
    assert env.invalid_actions == 0
    assert model.ep_info_buffer, "episode stats reach SB3's logger"
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    assert rows and "rollout/vacant_fraction" in rows[0] and "train/value_loss" in rows[-1]


def test_vacant_rows_are_kept_out_of_the_fit() -> None:
    env = venv(n_towns=1, **HARSH, max_ticks=200)
    audit = MaskAudit(env.layout)
    train_ppo(env, TINY, 256, callbacks=[audit])
    vacant = {k: np.concatenate([r[k] for r in audit.vacant_rows]) for k in audit.vacant_rows[0]}
    assert len(vacant["advantages"]) >= 8, "the harsh town should leave seats vacant"
    np.testing.assert_array_equal(vacant["advantages"], 0.0)
    np.testing.assert_array_equal(vacant["returns"], vacant["values"])
    np.testing.assert_allclose(vacant["log_probs"], 0.0, atol=1e-6)  # WAIT-only: deterministic
    assert np.abs(vacant["present_advantages"]).max() > 0.0


def test_checkpoint_round_trip_and_signature_refusal(tmp_path: Path) -> None:
    env = venv(n_towns=1, max_ticks=32)
    model = train_ppo(env, TINY, 64)
    path = save_checkpoint(model, tmp_path / "ckpt.zip")
    assert checkpoint_signature(path)["hash"] == env.layout.signature()["hash"]
    loaded = load_checkpoint(path, venv(n_towns=3, max_ticks=32))
    assert loaded.n_envs == 12
    for k, v in policy_parameters(model).items():
        np.testing.assert_array_equal(policy_parameters(loaded)[k], v)
    with pytest.raises(ObservationSignatureError, match="variant"):
        load_checkpoint(path, venv(n_towns=1, obs_variant="compact"))
    bare = tmp_path / "bare.zip"
    model.save(bare, exclude=["observation_signature"])  # as a plain SB3 model would be
    with pytest.raises(ObservationSignatureError, match="no observation signature"):
        load_checkpoint(bare, env)
    resumed = train_ppo(env, TINY, 64, resume=path)
    assert resumed.num_timesteps == model.num_timesteps + TINY.n_steps * env.num_envs  # one more rollout


def test_warm_start_from_bc_weights(tmp_path: Path) -> None:
    env = venv(n_towns=1, max_ticks=32)
    arch = policy_lib.PolicyArch(cnn_channels=(4, 8), cnn_out=16, mlp_hidden=16, pi=(16,), vf=(16,))
    obs_space: Any = env.observation_space
    act_space: Any = env.action_space
    bc_policy = policy_lib.make_policy(env.layout, obs_space, act_space, arch)
    path = policy_lib.save_checkpoint(tmp_path / "bc.pt", bc_policy, env.layout, arch)
    model = make_model(env, TINY, bc_weights=path)
    for k, v in bc_policy.state_dict().items():
        np.testing.assert_array_equal(policy_parameters(model)[k], v.numpy())
    model.learn(64)  # the warm-started model trains
    compact = venv(n_towns=1, obs_variant="compact")
    with pytest.raises(ObservationSignatureError):
        make_model(compact, TINY, bc_weights=path)


def test_critic_warmup_moves_only_the_value_head() -> None:
    env = venv(n_towns=1, max_ticks=32)
    model = make_model(env, TINY)
    before = policy_parameters(model)
    warm_up_critic(model, env, 128)
    after = policy_parameters(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and all(k.startswith(("value_net.", "mlp_extractor.value_net.")) for k in changed)
    assert all(p.requires_grad for p in model.policy.parameters()), "everything trains again afterwards"
