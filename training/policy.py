"""The shared policy network: a layout-aware features extractor and checkpoint files.

Used by BC and PPO alike, so BC weights seed PPO directly::

    model = MaskablePPO("MultiInputPolicy", vec_env, policy_kwargs=policy_kwargs(layout))
    load_into(model.policy, "runs/bc/policy.pt", layout)

:class:`TownletExtractor` splits the ``observation`` vector by the env's
:class:`~townlet_env.observations.layout.ObservationLayout`: the map part goes through a
small CNN (reshaped to ``map_shape``), the named features through an MLP, and the two are
concatenated. ``action_mask`` is never an input: masking belongs to the Maskable policy's
distribution. A checkpoint stores the layout signature and refuses any other layout.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from townlet_env.atomic import write_bytes_atomic
from townlet_env.observations.layout import ObservationLayout, check_signature

CHECKPOINT_FORMAT = "townlet-policy"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a Townlet policy checkpoint of a known version."""


@dataclass(frozen=True)
class PolicyArch:
    """Sizes of the network. Stored in checkpoints; defaults are small enough for CPU."""

    cnn_channels: tuple[int, ...] = (16, 32)
    cnn_out: int = 128
    mlp_hidden: int = 128
    pi: tuple[int, ...] = (128,)
    vf: tuple[int, ...] = (128,)


class TownletExtractor(BaseFeaturesExtractor):
    """CNN on the egocentric map + MLP on the named features, concatenated.

    Args:
        observation_space: the env's ``Dict`` space (``observation`` and ``action_mask``).
        map_shape: ``(C, H, W)`` of the map part; ``(0, 0, 0)`` for ``compact`` (no CNN).
        n_features: number of named features after the map.
        cnn_channels: output channels of the two 3x3 convolutions.
        cnn_out: width of the map embedding.
        mlp_hidden: width of the feature embedding.

    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        map_shape: Sequence[int],
        n_features: int,
        cnn_channels: Sequence[int] = (16, 32),
        cnn_out: int = 128,
        mlp_hidden: int = 128,
    ) -> None:
        c, h, w = (int(v) for v in map_shape)
        self.map_shape = (c, h, w)
        self.map_size = c * h * w
        self.n_features = int(n_features)
        obs_shape = observation_space["observation"].shape
        size = int(obs_shape[0]) if obs_shape else -1
        if size != self.map_size + self.n_features:
            raise ValueError(
                f"observation has {size} values but map_shape {self.map_shape} + {n_features} features "
                f"make {self.map_size + self.n_features}: the policy was built for another layout"
            )
        has_map = self.map_size > 0
        super().__init__(observation_space, features_dim=(cnn_out if has_map else 0) + mlp_hidden)
        self.cnn: nn.Module | None = None
        if has_map:
            c1, c2 = cnn_channels
            conv = nn.Sequential(
                nn.Conv2d(c, c1, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c1, c2, kernel_size=3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            with th.no_grad():
                flat = int(conv(th.zeros(1, c, h, w)).shape[1])
            self.cnn = nn.Sequential(conv, nn.Linear(flat, cnn_out), nn.ReLU())
        self.mlp = nn.Sequential(
            nn.Linear(self.n_features, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, mlp_hidden), nn.ReLU()
        )

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        x = observations["observation"]
        feats = self.mlp(x[:, self.map_size :])
        if self.cnn is None:
            return feats
        grid = x[:, : self.map_size].reshape(-1, *self.map_shape)
        return th.cat([self.cnn(grid), feats], dim=1)


def policy_kwargs(layout: ObservationLayout, arch: PolicyArch | None = None) -> dict[str, Any]:
    """``policy_kwargs`` for ``MaskablePPO("MultiInputPolicy", ...)`` or
    ``MaskableMultiInputActorCriticPolicy`` on ``layout``'s observations.
    """
    arch = arch or PolicyArch()
    return {
        "features_extractor_class": TownletExtractor,
        "features_extractor_kwargs": {
            "map_shape": tuple(layout.map_shape),
            "n_features": len(layout.feature_names),
            "cnn_channels": tuple(arch.cnn_channels),
            "cnn_out": arch.cnn_out,
            "mlp_hidden": arch.mlp_hidden,
        },
        "net_arch": {"pi": list(arch.pi), "vf": list(arch.vf)},
        "activation_fn": nn.ReLU,
    }


def make_policy(
    layout: ObservationLayout,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    arch: PolicyArch | None = None,
    lr: float = 3e-4,
) -> Any:
    """A fresh ``MaskableMultiInputActorCriticPolicy`` with this module's network."""
    if not isinstance(observation_space, spaces.Dict) or not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"expected a Dict observation space and a Discrete action space, got {observation_space}")
    from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy

    return MaskableMultiInputActorCriticPolicy(
        observation_space, action_space, lambda _: lr, **policy_kwargs(layout, arch)
    )


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: weights, the layout signature, the architecture and metadata."""

    state_dict: dict[str, th.Tensor]
    signature: dict[str, Any]
    arch: PolicyArch
    meta: dict[str, Any]


def save_checkpoint(
    path: str | Path, policy: nn.Module, layout: ObservationLayout, arch: PolicyArch, meta: dict[str, Any] | None = None
) -> Path:
    """Write the policy's ``state_dict`` with the layout signature, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "signature": layout.signature(),
        "arch": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(arch).items()},
        "meta": meta or {},
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
    }
    buffer = io.BytesIO()
    th.save(body, buffer)
    write_bytes_atomic(target, buffer.getvalue())
    return target


def load_checkpoint(path: str | Path, layout: ObservationLayout | None = None) -> Checkpoint:
    """Read a checkpoint; with ``layout``, refuse it unless the signatures match.

    Raises:
        CheckpointError: not a Townlet policy checkpoint (or an unknown version).
        ObservationSignatureError: the checkpoint was trained on another layout.

    """
    body = th.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(body, dict) or body.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    if body.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {body.get('version')!r}, expected {CHECKPOINT_VERSION}")
    if layout is not None:
        check_signature(body["signature"], layout)
    raw = body["arch"]
    arch = PolicyArch(
        cnn_channels=tuple(raw["cnn_channels"]),
        cnn_out=int(raw["cnn_out"]),
        mlp_hidden=int(raw["mlp_hidden"]),
        pi=tuple(raw["pi"]),
        vf=tuple(raw["vf"]),
    )
    return Checkpoint(body["state_dict"], body["signature"], arch, body.get("meta", {}))


def load_into(policy: nn.Module, path: str | Path, layout: ObservationLayout) -> Checkpoint:
    """Load a checkpoint's weights into ``policy`` (strict), after the signature check."""
    ckpt = load_checkpoint(path, layout)
    policy.load_state_dict(ckpt.state_dict, strict=True)
    return ckpt
