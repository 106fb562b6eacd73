"""PPO with parameter sharing over a :class:`~training.vec_env.TownVecEnv` (sb3-contrib ``MaskablePPO``).

Entry point :func:`train_ppo`: build (or resume) a ``MaskablePPO("MultiInputPolicy")``
whose network comes from ``training.policy.policy_kwargs(layout)``, warm-start it from
behaviour-cloning weights if given, learn, and return the model. Metrics go through
SB3's logger (``log_dir`` + ``log_formats``). Checkpoints are SB3 zips that also store the
observation signature; :func:`load_checkpoint` refuses one made for another layout.

Vacant seats: :class:`VacancyCallback` runs after every rollout (returns and advantages
are computed by then) and, for each stored row whose observation has ``present == 0``,
sets the advantage to 0 and the return target to the rollout's own value estimate.
Their policy-gradient and entropy terms are already exactly 0 (WAIT-only mask: a
deterministic masked distribution). What remains of those rows, stated plainly:

* they still count in each minibatch's means, which scales that minibatch's gradient by
  its share of present rows (deaths are rare, so the share is near 1), and they enter the
  per-minibatch advantage normalisation as zeros;
* their value loss is ``(V_old - V_new)^2``: no gradient on the first pass, afterwards a
  small pull back to the rollout-time estimate, never a fit to padding returns;
* ``rollout/vacant_fraction`` is logged so the share is visible.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import get_linear_fn

from townlet_env.atomic import write_bytes_atomic
from townlet_env.observations.layout import ObservationSignatureError, check_signature
from training import policy as policy_lib
from training.progress import ppo_callbacks
from training.vec_env import TownVecEnv

SIGNATURE_KEY = "observation_signature"


class PPOConfig(BaseModel):
    """PPO hyper-parameters (defaults follow the earlier design's, sized for small CPU runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(3e-4, gt=0)
    lr_schedule: Literal["constant", "linear"] = "constant"
    n_steps: int = Field(128, ge=1, description="steps per index per rollout")
    batch_size: int = Field(256, ge=2)
    n_epochs: int = Field(4, ge=1)
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    clip_range_vf: float | None = None
    ent_coef: float = Field(0.01, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    target_kl: float | None = None
    normalize_advantage: bool = True
    critic_warmup_timesteps: int = Field(
        0, ge=0, description="after a BC warm start, fit only the value head for this many agent-steps"
    )
    seed: int = 0
    device: str = "cpu"
    verbose: int = 0
    log_formats: tuple[str, ...] = ("csv",)


class VacancyCallback(BaseCallback):
    """Keeps vacant-seat rows out of the value fit (see the module docstring).

    Args:
        present_index: position of the ``present`` feature in the observation vector.

    """

    def __init__(self, present_index: int) -> None:
        super().__init__()
        self.present_index = present_index
        self.vacant_rows = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = cast(MaskablePPO, self.model).rollout_buffer
        obs = cast(dict[str, np.ndarray], buffer.observations)["observation"]
        vacant = obs[..., self.present_index] < 0.5
        buffer.advantages[vacant] = 0.0
        buffer.returns[vacant] = buffer.values[vacant]
        self.vacant_rows += int(vacant.sum())
        self.logger.record("rollout/vacant_fraction", float(vacant.mean()))


def make_model(
    env: TownVecEnv,
    config: PPOConfig,
    *,
    policy_kwargs: dict[str, Any] | None = None,
    bc_weights: str | os.PathLike[str] | None = None,
) -> MaskablePPO:
    """A fresh ``MaskablePPO`` on ``env``, warm-started from ``bc_weights`` when given.

    The network is ``training.policy.policy_kwargs(layout)``, with the architecture stored
    in the BC checkpoint when there is one (so its ``state_dict`` loads strictly).

    Raises:
        ObservationSignatureError: ``bc_weights`` were trained on another layout.
        CheckpointError: ``bc_weights`` is not a ``training.policy`` checkpoint.

    """
    bc = policy_lib.load_checkpoint(Path(bc_weights), env.layout) if bc_weights is not None else None
    if policy_kwargs is None:
        policy_kwargs = policy_lib.policy_kwargs(env.layout, bc.arch if bc is not None else None)
    lr: Any = config.learning_rate
    if config.lr_schedule == "linear":
        lr = get_linear_fn(config.learning_rate, 0.0, 1.0)
    model = MaskablePPO(
        "MultiInputPolicy",
        env,
        learning_rate=lr,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        clip_range_vf=config.clip_range_vf,
        normalize_advantage=config.normalize_advantage,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        target_kl=config.target_kl,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
    )
    setattr(model, SIGNATURE_KEY, json.loads(json.dumps(env.layout.signature())))  # as stored: JSON
    if bc is not None:
        model.policy.load_state_dict(bc.state_dict, strict=True)
    return model


def train_ppo(
    env: TownVecEnv,
    config: PPOConfig,
    total_timesteps: int,
    *,
    bc_weights: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    callbacks: Sequence[BaseCallback] = (),
    log_dir: str | os.PathLike[str] | None = None,
) -> MaskablePPO:
    """Train PPO on ``env`` for ``total_timesteps`` agent-steps and return the model.

    Args:
        env: the towns; every index is one learned seat.
        config: hyper-parameters.
        total_timesteps: agent-steps to collect (rounded up to whole rollouts by SB3).
        bc_weights: a ``training.policy`` checkpoint (as BC writes it) to start from.
        resume: a checkpoint from :func:`save_checkpoint` to continue instead (signature checked).
        policy_kwargs: override ``training.policy.policy_kwargs(layout)``.
        callbacks: further SB3 callbacks (the vacancy callback is always added).
        log_dir: where SB3's logger writes ``config.log_formats``; None keeps SB3's default.

    Raises:
        ObservationSignatureError: ``bc_weights`` or ``resume`` were made for another layout.

    """
    if resume is not None:
        model = load_checkpoint(resume, env, device=config.device)
        model.set_random_seed(config.seed)
    else:
        model = make_model(env, config, policy_kwargs=policy_kwargs, bc_weights=bc_weights)
        if bc_weights is not None and config.critic_warmup_timesteps:
            warm_up_critic(model, env, config.critic_warmup_timesteps, log_dir=log_dir, log_formats=config.log_formats)
    learn(model, env, total_timesteps, callbacks=callbacks, log_dir=log_dir, log_formats=config.log_formats)
    return model


def learn(
    model: MaskablePPO,
    env: TownVecEnv,
    total_timesteps: int,
    *,
    callbacks: Sequence[BaseCallback] = (),
    log_dir: str | os.PathLike[str] | None = None,
    log_formats: Sequence[str] = ("csv",),
) -> MaskablePPO:
    """``model.learn`` with the vacancy callback and, given ``log_dir``, SB3's logger writing there.

    The step counter continues across calls (``reset_num_timesteps=False``); the towns are
    reset at the start when the model has no current observation (fresh or just loaded).
    """
    if log_dir is not None:
        model.set_logger(configure(os.fspath(log_dir), list(log_formats)))
    present = VacancyCallback(env.layout.index("present"))
    progress = ppo_callbacks("ppo")
    return model.learn(total_timesteps, callback=[present, *callbacks, *progress], reset_num_timesteps=False)


def warm_up_critic(model: MaskablePPO, env: TownVecEnv, timesteps: int, **learn_kwargs: Any) -> MaskablePPO:
    """PPO for ``timesteps`` with everything but the value head frozen.

    Behaviour cloning trains the actor only; the critic starts random, and its first
    advantages would push a cloned policy around at random. Freezing the actor and the
    (shared) features extractor keeps the policy exactly as cloned while the value head
    fits its returns; the rollouts stay on-policy.
    """
    policy = model.policy
    critic = [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
    if not policy.share_features_extractor:
        critic += list(policy.vf_features_extractor.parameters())
    keep = {id(p) for p in critic}
    frozen = [p for p in policy.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    try:
        learn(model, env, timesteps, **learn_kwargs)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return model


def save_checkpoint(model: MaskablePPO, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (with its observation signature) to ``path`` atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    model.save(buffer, include=[SIGNATURE_KEY])
    write_bytes_atomic(target, buffer.getvalue())
    return target


def checkpoint_signature(path: str | os.PathLike[str]) -> dict[str, object]:
    """The observation signature stored in a checkpoint (without building the model)."""
    data, _, _ = load_from_zip_file(os.fspath(path), device="cpu")
    signature = (data or {}).get(SIGNATURE_KEY)
    if not isinstance(signature, dict):
        raise ObservationSignatureError(f"{path}: checkpoint has no observation signature; refusing to load it")
    return signature


def load_checkpoint(path: str | os.PathLike[str], env: TownVecEnv, *, device: str = "cpu") -> MaskablePPO:
    """Load a checkpoint onto ``env`` after checking its observation signature.

    Raises:
        ObservationSignatureError: the checkpoint was trained on another layout (or has no signature).

    """
    check_signature(checkpoint_signature(path), env.layout)
    return MaskablePPO.load(os.fspath(path), env=env, device=device)


def policy_parameters(model: MaskablePPO) -> dict[str, np.ndarray]:
    """A numpy copy of the policy weights (for comparisons and tests)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}
