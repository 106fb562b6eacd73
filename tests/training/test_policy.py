"""The layout-aware extractor, ``policy_kwargs`` for MaskablePPO, and checkpoint files."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

th = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")

from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

import townlet_env  # noqa: E402
from townlet_env.observations.layout import ObservationSignatureError  # noqa: E402
from training.policy import (  # noqa: E402
    CheckpointError,
    PolicyArch,
    TownletExtractor,
    load_checkpoint,
    load_into,
    make_policy,
    policy_kwargs,
    save_checkpoint,
)

pytestmark = pytest.mark.train
th.set_num_threads(1)


def town(variant: str) -> Any:
    return townlet_env.parallel_env(obs_variant=variant, seed=0).unwrapped


def batch(t: Any, n: int = 4, seed: int = 0) -> dict[str, Any]:
    obs, _ = t.reset(seed=seed)
    rows = [obs[a] for a in t.possible_agents[:n]]
    return {k: th.as_tensor(np.stack([r[k] for r in rows])) for k in ("observation", "action_mask")}


@pytest.mark.parametrize("variant", ["full", "hybrid", "compact"])
def test_extractor_splits_the_layout_and_ignores_the_mask(variant: str) -> None:
    t = town(variant)
    layout = t.layout
    kw = policy_kwargs(layout)["features_extractor_kwargs"]
    ext = TownletExtractor(t.observation_space("agent_0"), **kw)
    assert (ext.cnn is None) == (variant == "compact")
    b = batch(t)
    out = ext(b)
    assert out.shape == (4, ext.features_dim)
    flipped = {**b, "action_mask": 1 - b["action_mask"]}
    assert th.equal(ext(flipped), out), "action_mask must not be an input"
    if layout.map_size:
        poked = b["observation"].clone()
        poked[:, layout.map_slice] = 1.0 - poked[:, layout.map_slice]
        assert not th.allclose(ext({**b, "observation": poked}), out), "the map must reach the CNN"


def test_extractor_refuses_another_layout() -> None:
    hybrid, compact = town("hybrid"), town("compact")
    kw = policy_kwargs(compact.layout)["features_extractor_kwargs"]
    with pytest.raises(ValueError, match="built for another layout"):
        TownletExtractor(hybrid.observation_space("agent_0"), **kw)


def test_state_dict_loads_into_maskable_ppo_which_then_trains(tmp_path: Path, rows_env: Any) -> None:
    t = town("hybrid")
    arch = PolicyArch(cnn_out=32, mlp_hidden=32, pi=(32,), vf=(32,))
    policy = make_policy(t.layout, t.observation_space("agent_0"), t.action_space("agent_0"), arch)
    path = save_checkpoint(tmp_path / "bc" / "policy.pt", policy, t.layout, arch, {"note": "test"})
    venv = DummyVecEnv([functools.partial(rows_env, "hybrid")])
    model = MaskablePPO(
        "MultiInputPolicy",
        venv,
        n_steps=16,
        batch_size=8,
        n_epochs=1,
        seed=0,
        policy_kwargs=policy_kwargs(t.layout, arch),
    )
    ckpt = load_into(model.policy, path, t.layout)
    assert ckpt.arch == arch and ckpt.meta == {"note": "test"}
    for key, value in policy.state_dict().items():
        assert th.equal(model.policy.state_dict()[key], value), key
    model.learn(total_timesteps=32)
    assert not th.equal(model.policy.state_dict()["action_net.weight"], policy.state_dict()["action_net.weight"])


def test_checkpoint_signature_mismatch_is_refused(tmp_path: Path) -> None:
    t, other = town("hybrid"), town("compact")
    policy = make_policy(t.layout, t.observation_space("agent_0"), t.action_space("agent_0"))
    path = save_checkpoint(tmp_path / "policy.pt", policy, t.layout, PolicyArch())
    assert load_checkpoint(path, t.layout).signature == t.layout.signature()
    with pytest.raises(ObservationSignatureError, match="variant: expected 'hybrid'"):
        load_checkpoint(path, other.layout)
    th.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a townlet-policy checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt", "policy.pt"], "no temp files left"
