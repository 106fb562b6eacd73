"""A trained policy as a town controller, and the ``learned`` and ``mixed`` policies.

:class:`LearnedController` plays a trained sb3-contrib maskable policy through the
:class:`townlet_env.controllers.Controller` protocol; the evaluation, the anneal and the
pipeline's videos use it, and so do ``townlet serve`` and ``townlet soak`` through the
``townlet.policies`` entry points this module's :func:`learned_policy` and
:func:`mixed_policy` are registered under (``pyproject.toml``)::

    townlet soak --days 1 --policy learned --checkpoint runs/poc/anneal/checkpoints/stage3_try0.zip
    townlet serve --policy mixed --checkpoint runs/poc/bc/policy.pt --learned-fraction 0.5

:func:`load_policy` reads either checkpoint the training writes: a ``MaskablePPO`` zip
(:func:`training.ppo.save_checkpoint`) or a BC ``policy.pt``
(:func:`training.policy.save_checkpoint`), and refuses one trained on another
observation layout.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_contrib import MaskablePPO

from townlet_env.controllers import Controller, MixedController, ScriptedController
from townlet_env.observations.layout import ObservationSignatureError, check_signature
from townlet_env.policies import PolicyError, PolicyOptions
from training import policy as policy_lib
from training.guard import AnnealSchedule
from training.ppo import checkpoint_signature

#: What a damaged, truncated or foreign checkpoint file raises while being read.
_UNREADABLE = (OSError, ValueError, RuntimeError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError)


class LearnedController:
    """A trained sb3-contrib maskable policy (``MaskablePPO`` or its ``.policy``).

    By default it samples from the masked action distribution, as the policy acts in
    training, with its own generator seeded by the episode seed: results are reproducible
    and the global torch RNG is left alone. ``deterministic=True`` takes the most likely
    valid action instead (greedy play can loop where sampling does not).
    """

    def __init__(self, model: Any, deterministic: bool = False) -> None:
        self.policy = getattr(model, "policy", model)
        self.deterministic = deterministic
        self.rng = np.random.default_rng(0)

    def reset(self, rules: Any, episode_seed: int) -> None:
        self.rng = np.random.default_rng([episode_seed, 0x1EA2])

    def act(self, state: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        probs = action_probabilities(self.policy, obs, mask)
        if self.deterministic:
            return probs.argmax(axis=1).astype(np.int64)
        pick = (probs.cumsum(axis=1) < self.rng.random((len(probs), 1))).sum(axis=1)
        last_valid = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)  # if rounding leaves u > sum(p)
        return np.minimum(pick, last_valid).astype(np.int64)


def action_probabilities(policy: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float[N, A]: the masked policy's action probabilities (exactly 0 where masked)."""
    policy.set_training_mode(False)
    tensor, _ = policy.obs_to_tensor({"observation": obs, "action_mask": mask})
    with torch.no_grad():
        dist = policy.get_distribution(tensor, action_masks=mask)
    return dist.distribution.probs.cpu().numpy()


def is_ppo_zip(path: Path) -> bool:
    """Whether ``path`` is an SB3 model zip (a ``data`` member) rather than a torch ``.pt``.

    Both are zip archives since torch 1.6, so the suffix would not do.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "data" in archive.namelist()


def load_policy(path: str | os.PathLike[str], env: Any) -> Any:
    """The maskable policy stored at ``path`` (a PPO zip or a BC ``.pt``), on the CPU, for ``env``.

    Raises:
        PolicyError: no such file, not a Townlet checkpoint, or trained on another
            observation layout than ``env``'s (the message names ``--checkpoint`` and the
            fields that differ).

    """
    where = f"--checkpoint {os.fspath(path)}"
    file = Path(path)
    if not file.is_file():
        raise PolicyError(f"{where}: no such file; give a .zip from PPO (anneal checkpoints) or a .pt from BC")
    layout = env.unwrapped.layout
    try:
        if is_ppo_zip(file):
            _check_layout(checkpoint_signature(file), layout)
            return MaskablePPO.load(os.fspath(file), device="cpu").policy
        ckpt = policy_lib.load_checkpoint(file)
        _check_layout(ckpt.signature, layout)
        agent = env.possible_agents[0]
        policy = policy_lib.make_policy(layout, env.observation_space(agent), env.action_space(agent), ckpt.arch)
        policy.load_state_dict(ckpt.state_dict, strict=True)
        return policy
    except _UNREADABLE as exc:  # ObservationSignatureError and CheckpointError are ValueErrors
        raise PolicyError(f"{where}: {exc}") from exc


def _check_layout(signature: dict[str, Any], layout: Any) -> None:
    """The signature check, with the command-line fix when only the variant differs."""
    try:
        check_signature(signature, layout)
    except ObservationSignatureError as exc:
        variant = signature.get("variant")
        if variant != layout.variant and signature.get("action_mode") == layout.action_mode:
            raise ObservationSignatureError(f"{exc}; run the town with --obs-variant {variant}") from None
        raise


def _checkpoint(options: PolicyOptions, name: str) -> str:
    if options.checkpoint is None:
        raise PolicyError(f"--policy {name} needs --checkpoint PATH (a .zip from PPO or a .pt from BC)")
    return options.checkpoint


def _serving(policy: Any) -> LearnedController:
    """The controller serve and soak run, on one torch thread: a town's batch is a handful of
    rows, where a second thread only adds hand-over cost and takes a core from the
    simulation (measured 6x faster per tick on a loaded 2-core machine).
    """
    torch.set_num_threads(1)
    return LearnedController(policy)


def learned_policy(env: Any, options: PolicyOptions) -> Controller:
    """``--policy learned``: the checkpoint drives every seat (sampling, seeded by ``--seed``)."""
    return _serving(load_policy(_checkpoint(options, "learned"), env))


def mixed_policy(env: Any, options: PolicyOptions) -> Controller:
    """``--policy mixed``: the checkpoint drives ``--learned-fraction`` of the seats, the
    scripted expert the rest.

    The seats are the anneal's assignment for that share (:class:`AnnealSchedule`), drawn
    from ``--seed``: the same seed gives the same seats, and they stay fixed while the
    town runs (episodes that restart keep them).
    """
    fraction = options.learned_fraction
    if not 0.0 < fraction <= 1.0:
        raise PolicyError(f"--learned-fraction {fraction:g}: must be in (0, 1] (the share of learned seats)")
    learned = _serving(load_policy(_checkpoint(options, "mixed"), env))
    return MixedController(learned, ScriptedController(), AnnealSchedule((fraction,)).chooser(0))
