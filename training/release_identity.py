"""What a released policy *is*: the identity a registry stores beside its weights.

An :class:`Identity` names everything that gives a policy's actions their meaning: the town
config (its label and a hash of what it simulates), the affordance manifest's checksum, the
observation signature, the reward config, the dataset it was cloned from, the policy file
itself and where it came from (experiment, git commit). The registry refuses to load a
release into a town whose observation signature or config differs
(:func:`check_town`), and the gate uses the same fields for parity and golden sign-off.

The hashes here leave out what varies between evaluations of one town and does not change
what it simulates: ``seed`` and ``max_ticks`` (episode settings) and ``stability`` (alert
thresholds). Golden sign-off records (``training.sequencing``) compare against
:func:`reward_config_id` and the layout hash, so the golden tooling should import these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from townlet_env.config import TownConfig

#: Config keys that do not change what a town simulates, so they stay out of its identity.
EPISODE_KEYS = frozenset({"seed", "max_ticks", "stability"})


class IdentityMismatch(ValueError):
    """A policy was offered to a town it was not made for; the message names each field."""


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def town_identity(config: TownConfig) -> str:
    """SHA-256 over the config (less :data:`EPISODE_KEYS`) and the map and manifest bytes."""
    values = config.model_dump(mode="json", exclude=set(EPISODE_KEYS))
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode())
    digest.update(config.map_path().read_bytes())
    digest.update(config.manifest_path().read_bytes())
    return digest.hexdigest()


def reward_config_id(config: TownConfig) -> str:
    """The town's :meth:`TownConfig.reward_config_id` (the golden sign-off uses the same)."""
    return config.reward_config_id()


def manifest_sha256(config: TownConfig) -> str:
    return hashlib.sha256(config.manifest_path().read_bytes()).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(where: str | Path = ".") -> str | None:
    """The checkout's HEAD commit (``None`` outside a git checkout or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclasses.dataclass(frozen=True)
class Identity:
    """A policy's identity (stored as ``identity.json`` beside the weights)."""

    config_id: str  #: the town config's label (``config_id`` in the YAML)
    town_identity: str  #: :func:`town_identity`
    manifest_sha256: str
    obs_signature: str  #: the observation layout's signature hash
    obs_variant: str
    reward_config_id: str  #: :func:`reward_config_id`
    dataset_version: int | None  #: the capture dataset format (None: trained without capture)
    dataset_sha256: str | None  #: SHA-256 of the dataset's manifest.json
    policy_sha256: str
    experiment: str
    git_commit: str | None  #: the checkout's HEAD when the candidate was gated

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - set(data))
        if missing:
            raise ValueError(f"identity record is missing {missing}")
        return cls(**{k: data[k] for k in fields})


def identity_of(town: Any, policy: str | Path, experiment: str, dataset_manifest: str | Path | None = None) -> Identity:
    """The identity of ``policy`` trained for ``town`` (a Townlet env, core or wrapped).

    Args:
        town: the env whose config and observation layout the policy plays.
        policy: the checkpoint file.
        experiment: the experiment's name.
        dataset_manifest: the capture dataset's ``manifest.json`` (None: no dataset).

    """
    core = town.unwrapped
    config: TownConfig = core.config
    version, dataset_sha = None, None
    if dataset_manifest is not None and Path(dataset_manifest).is_file():
        version = json.loads(Path(dataset_manifest).read_text()).get("dataset_version")
        dataset_sha = file_sha256(dataset_manifest)
    return Identity(
        config_id=config.config_id,
        town_identity=town_identity(config),
        manifest_sha256=manifest_sha256(config),
        obs_signature=str(core.layout.signature()["hash"]),
        obs_variant=str(config.obs_variant),
        reward_config_id=reward_config_id(config),
        dataset_version=None if version is None else int(version),
        dataset_sha256=dataset_sha,
        policy_sha256=file_sha256(policy),
        experiment=experiment,
        git_commit=git_commit(),
    )


def town_differences(identity: Identity, town: Any) -> list[str]:
    """How ``town`` differs from the town ``identity`` was made for (empty: it matches)."""
    core = town.unwrapped
    config: TownConfig = core.config
    here = {
        "obs_signature": str(core.layout.signature()["hash"]),
        "town_identity": town_identity(config),
        "manifest_sha256": manifest_sha256(config),
        "reward_config_id": reward_config_id(config),
    }
    return [
        f"{key}: policy has {getattr(identity, key)!r}, town has {value!r}"
        for key, value in here.items()
        if getattr(identity, key) != value
    ]


def check_town(identity: Identity, town: Any, what: str = "policy") -> None:
    """Refuse ``town`` unless it has the observation signature and config ``identity`` names.

    Raises:
        IdentityMismatch: naming every differing field and how to fix it.

    """
    diffs = town_differences(identity, town)
    if diffs:
        raise IdentityMismatch(
            f"refusing to load {what} into this town: " + "; ".join(diffs) + " (build the town with the "
            f"config of experiment {identity.experiment!r}, or train and promote a policy for this one)"
        )
