"""Versioned trajectory datasets: a directory of ``.npz`` shards plus ``manifest.json``.

One shard holds every agent-episode of one ``(scenario, seed)`` rollout, rows grouped by
agent-episode in time order (see :data:`SHARD_ARRAYS`). Vacant-seat steps are never
recorded; ``done`` is True on the last row of each agent-episode (its identity ended, or
the day was truncated); ``decision`` marks rows whose mask allows more than one action
(inside an option's commit window the label is forced, so it teaches nothing).

The manifest records the format and dataset version, the townlet version, each scenario's
config and config identity, the observation signature, the seeds, per-shard counts and a
SHA-256 per file. :func:`training.audit.audit` re-checks all of it; ``townlet dataset audit PATH`` runs it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from townlet_env.atomic import write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    from imitation.data.types import Transitions

FORMAT = "townlet-trajectories"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

#: Shard arrays: name -> (dtype, shape), "T" = rows, "E" = agent-episodes, "D" = obs size,
#: "A" = number of actions.
SHARD_ARRAYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "observation": ("float32", ("T", "D")),
    "action_mask": ("int8", ("T", "A")),
    "action": ("int64", ("T",)),
    "reward": ("float32", ("T",)),
    "done": ("bool", ("T",)),
    "decision": ("bool", ("T",)),
    "episode": ("int32", ("T",)),
    "tick": ("int32", ("T",)),
    "final_observation": ("float32", ("E", "D")),
    "final_action_mask": ("int8", ("E", "A")),
    "episode_seat": ("int32", ("E",)),
    "episode_generation": ("int32", ("E",)),
    "episode_truncated": ("bool", ("E",)),
}


class DatasetError(ValueError):
    """A dataset is missing, malformed or fails its audit (one line per problem)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shard_name(scenario: str, seed: int) -> str:
    return f"{scenario}-seed{seed:05d}.npz"


def decision_action_counts(arrays: dict[str, np.ndarray], n_actions: int) -> list[int]:
    """Label counts per action over the decision-point rows of one shard."""
    return np.bincount(arrays["action"][arrays["decision"]], minlength=n_actions).astype(int).tolist()


class DatasetWriter:
    """Writes a dataset into a partial folder and moves it into place on :meth:`finish`.

    Args:
        path: the dataset folder to create.
        header: manifest fields known up front (signature, scenarios, expert, ...).
        overwrite: replace an existing dataset at ``path``.

    """

    def __init__(self, path: str | Path, header: dict[str, Any], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise DatasetError(f"{self.path}: already exists (pass overwrite=True to replace it)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.partial-"))
        self._tmp.chmod(0o755)
        self.header = header
        self.shards: list[dict[str, Any]] = []

    def add(
        self, scenario: str, seed: int, arrays: dict[str, np.ndarray], notes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write one shard (``arrays`` as in :data:`SHARD_ARRAYS`) and return its manifest entry."""
        name = shard_name(scenario, seed)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        write_bytes_atomic(self._tmp / name, buffer.getvalue())
        n_actions = int(arrays["action_mask"].shape[1])
        entry = {
            "file": name,
            "sha256": sha256_file(self._tmp / name),
            "scenario": scenario,
            "seed": int(seed),
            "steps": len(arrays["action"]),
            "decision_points": int(arrays["decision"].sum()),
            "episodes": len(arrays["episode_seat"]),
            "decision_action_counts": decision_action_counts(arrays, n_actions),
            "reward_sum": float(arrays["reward"].astype(np.float64).sum()),
            "notes": notes or {},
        }
        self.shards.append(entry)
        return entry

    def finish(self) -> Path:
        """Write ``manifest.json`` and move the dataset into place."""
        names = self.header.get("action_names", [])
        totals = np.sum([s["decision_action_counts"] for s in self.shards], axis=0).astype(int).tolist()
        manifest = {
            "format": FORMAT,
            "dataset_version": FORMAT_VERSION,
            **self.header,
            "seeds": sorted({s["seed"] for s in self.shards}),
            "shards": self.shards,
            "counts": {
                "shards": len(self.shards),
                "steps": sum(s["steps"] for s in self.shards),
                "decision_points": sum(s["decision_points"] for s in self.shards),
                "episodes": sum(s["episodes"] for s in self.shards),
                "decision_action_counts": dict(zip(names, totals, strict=True)),
            },
        }
        write_json_atomic(self._tmp / MANIFEST, manifest)
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


@dataclass(frozen=True)
class Dataset:
    """A dataset on disk: its folder and parsed manifest. Arrays load per shard."""

    path: Path
    manifest: dict[str, Any]

    @property
    def shards(self) -> list[dict[str, Any]]:
        return list(self.manifest["shards"])

    @property
    def signature(self) -> dict[str, Any]:
        return dict(self.manifest["observation_signature"])

    @property
    def action_names(self) -> list[str]:
        return list(self.manifest["action_names"])

    def select(
        self, seeds: Iterable[int] | None = None, scenarios: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Shard entries whose seed and scenario are in the given sets (``None``: any)."""
        seed_set = None if seeds is None else set(seeds)
        scen_set = None if scenarios is None else set(scenarios)
        return [
            s
            for s in self.shards
            if (seed_set is None or s["seed"] in seed_set) and (scen_set is None or s["scenario"] in scen_set)
        ]

    def load_shard(self, entry: dict[str, Any]) -> dict[str, np.ndarray]:
        with np.load(self.path / entry["file"], allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset's manifest (no audit: call :func:`training.audit.audit` for that).

    Raises:
        DatasetError: no readable manifest, or not a Townlet dataset of a known version.

    """
    root = Path(path)
    file = root / MANIFEST
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{file}: missing (is {root} a dataset folder?)") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{file}: not a {FORMAT} manifest")
    if manifest.get("dataset_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{file}: dataset_version {manifest.get('dataset_version')!r}; this townlet reads {FORMAT_VERSION}"
        )
    return Dataset(root, manifest)


def next_observations(arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    """The observation (or mask) that followed each row: the next row of the same
    agent-episode, or the episode's final observation after its last row.
    """
    rows = arrays[key]
    final = arrays["final_" + key]
    out = np.empty_like(rows)
    out[:-1] = rows[1:]
    last = arrays["done"]
    out[last] = final[arrays["episode"][last]]
    return out


def to_transitions(
    dataset: Dataset,
    *,
    decision_points_only: bool = True,
    seeds: Sequence[int] | None = None,
    scenarios: Sequence[str] | None = None,
) -> Transitions:
    """The selected rows as ``imitation`` transitions with ``DictObs`` observations.

    Args:
        dataset: a loaded dataset (audit it first).
        decision_points_only: keep only rows whose mask allowed more than one action.
        seeds: shard seeds to include (``None``: all).
        scenarios: scenario names to include (``None``: all).

    Raises:
        DatasetError: the selection is empty.

    """
    from imitation.data.types import DictObs, Transitions

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "mask", "next_obs", "next_mask", "acts", "dones")}
    for entry in dataset.select(seeds, scenarios):
        arrays = dataset.load_shard(entry)
        keep = arrays["decision"] if decision_points_only else np.ones(len(arrays["action"]), dtype=bool)
        parts["obs"].append(arrays["observation"][keep])
        parts["mask"].append(arrays["action_mask"][keep])
        parts["next_obs"].append(next_observations(arrays, "observation")[keep])
        parts["next_mask"].append(next_observations(arrays, "action_mask")[keep])
        parts["acts"].append(arrays["action"][keep])
        parts["dones"].append(arrays["done"][keep])
    if not parts["acts"] or sum(len(a) for a in parts["acts"]) == 0:
        raise DatasetError(f"{dataset.path}: no rows for seeds={seeds} scenarios={scenarios}")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    n = len(cat["acts"])
    return Transitions(
        obs=DictObs({"observation": cat["obs"], "action_mask": cat["mask"]}),
        acts=cat["acts"],
        infos=np.array([{}] * n, dtype=object),
        next_obs=DictObs({"observation": cat["next_obs"], "action_mask": cat["next_mask"]}),
        dones=cat["dones"].astype(bool),
    )
