"""The dataset audit: every check a dataset must pass before training reads it.

Per shard: listed file present, SHA-256 as recorded, every array of :data:`SHARD_ARRAYS`
with its dtype and a consistent shape, finite values, masks of 0/1 with at least one
allowed action, every action allowed by its mask, ``decision`` equal to "mask allows more
than one action", agent-episodes contiguous with ``done`` on exactly their last row, and
counts equal to the manifest's. Per dataset: no unlisted shards, totals, and the
observation signature, both against each scenario's recorded config rebuilt with the
installed townlet and (optionally) against the layout the caller is about to train for.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

import townlet_env
from townlet_env.config import TownConfig
from townlet_env.env import TownletParallelEnv
from townlet_env.observations.layout import ObservationLayout, ObservationSignatureError, check_signature
from training.datasets import MANIFEST, SHARD_ARRAYS, Dataset, DatasetError, load_dataset, sha256_file


@dataclass(frozen=True)
class AuditReport:
    """Outcome of :func:`audit`: ``ok`` iff there are no problems; each problem names its file."""

    path: Path
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        head = f"{self.path}: {'OK' if self.ok else f'FAILED ({len(self.problems)} problems)'}"
        lines = [head, *(f"  problem: {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)]
        if self.counts:
            lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.problems:
            raise DatasetError(self.render())


def _check_arrays(name: str, arrays: dict[str, np.ndarray], sig: dict[str, Any]) -> list[str]:
    """Names, dtypes and shapes; returns problems (empty when the shard is well formed)."""
    out = []
    missing = sorted(set(SHARD_ARRAYS) - set(arrays))
    extra = sorted(set(arrays) - set(SHARD_ARRAYS))
    if missing:
        out.append(f"{name}: missing arrays {missing}")
    if extra:
        out.append(f"{name}: unexpected arrays {extra}")
    if missing:
        return out
    dims = {
        "T": len(arrays["action"]),
        "E": len(arrays["episode_seat"]),
        "D": int(sig.get("size", -1)),
        "A": int(sig.get("n_actions", -1)),
    }
    for key, (dtype, shape) in SHARD_ARRAYS.items():
        arr = arrays[key]
        want = tuple(dims[d] for d in shape)
        if arr.dtype != np.dtype(dtype):
            out.append(f"{name}: {key} has dtype {arr.dtype}, expected {dtype}")
        if arr.shape != want:
            out.append(f"{name}: {key} has shape {arr.shape}, expected {want} ({'x'.join(shape)})")
    return out


def _check_content(name: str, a: dict[str, np.ndarray], entry: dict[str, Any]) -> list[str]:
    out = []
    for key in ("observation", "final_observation", "reward"):
        bad = int((~np.isfinite(a[key])).sum())
        if bad:
            out.append(f"{name}: {key} has {bad} non-finite values")
    for key in ("action_mask", "final_action_mask"):
        if not np.isin(a[key], (0, 1)).all():
            out.append(f"{name}: {key} has values other than 0/1")
    mask, act = a["action_mask"], a["action"]
    if (mask.sum(axis=1) == 0).any():
        out.append(f"{name}: {int((mask.sum(axis=1) == 0).sum())} rows allow no action at all")
    n_actions = mask.shape[1]
    out_of_range = (act < 0) | (act >= n_actions)
    if out_of_range.any():
        out.append(f"{name}: {int(out_of_range.sum())} actions outside [0, {n_actions})")
    allowed = mask[np.arange(len(act)), np.clip(act, 0, n_actions - 1)] == 1
    bad_rows = np.flatnonzero(~allowed & ~out_of_range)
    if bad_rows.size:
        out.append(f"{name}: {bad_rows.size} actions not allowed by their mask (first at row {int(bad_rows[0])})")
    if not np.array_equal(a["decision"], mask.sum(axis=1) > 1):
        out.append(f"{name}: decision flags disagree with the masks (decision = mask allows > 1 action)")
    ep, n_ep = a["episode"], len(a["episode_seat"])
    if len(ep) and (np.any(np.diff(ep) < 0) or ep[0] != 0 or ep[-1] != n_ep - 1 or np.any(np.diff(ep) > 1)):
        out.append(f"{name}: agent-episodes are not contiguous 0..{n_ep - 1}")
    else:
        last = np.ones(len(ep), dtype=bool)
        last[:-1] = ep[1:] != ep[:-1]
        if not np.array_equal(a["done"], last):
            out.append(f"{name}: done is not set on exactly the last row of each agent-episode")
        same = ep[1:] == ep[:-1]
        if np.any(np.diff(a["tick"])[same] <= 0):
            out.append(f"{name}: ticks do not increase within an agent-episode")
    expect = {
        "steps": len(act),
        "decision_points": int(a["decision"].sum()),
        "episodes": n_ep,
        "decision_action_counts": np.bincount(act[a["decision"]], minlength=n_actions).astype(int).tolist(),
    }
    for key, value in expect.items():
        if entry.get(key) != value:
            out.append(f"{name}: manifest says {key}={entry.get(key)!r}, file has {value!r}")
    return out


def _check_signature(ds: Dataset, expected: ObservationLayout | None) -> list[str]:
    out = []
    sig = ds.manifest.get("observation_signature")
    if not isinstance(sig, dict):
        return [f"{MANIFEST}: observation_signature missing"]
    for scen, info in ds.manifest.get("scenarios", {}).items():
        try:
            layout = TownletParallelEnv(TownConfig.model_validate(info["config"])).layout
            check_signature(sig, layout)
        except ValidationError as exc:
            out.append(f"{MANIFEST}: scenario {scen!r}: recorded config no longer validates: {exc.errors()[0]['msg']}")
        except ObservationSignatureError as exc:
            out.append(f"{MANIFEST}: scenario {scen!r}: {exc}")
        except (ValueError, OSError, KeyError) as exc:
            out.append(f"{MANIFEST}: scenario {scen!r}: cannot rebuild the town: {exc!r}")
    if expected is not None:
        try:
            check_signature(sig, expected)
        except ObservationSignatureError as exc:
            out.append(f"{MANIFEST}: against the requested layout: {exc}")
    return out


def audit(path: str | Path, expected: ObservationLayout | None = None) -> AuditReport:
    """Verify a dataset folder; never raises for a bad dataset (see :class:`AuditReport`).

    Args:
        path: the dataset folder.
        expected: if given, the layout the dataset must match (e.g. the env about to train).

    """
    root = Path(path)
    try:
        ds = load_dataset(root)
    except DatasetError as exc:
        return AuditReport(root, (str(exc),))
    problems: list[str] = []
    notes: list[str] = []
    sig = ds.manifest.get("observation_signature", {})
    if ds.manifest.get("townlet_version") != townlet_env.__version__:
        notes.append(f"captured with townlet {ds.manifest.get('townlet_version')}, installed {townlet_env.__version__}")
    listed = [s.get("file") for s in ds.shards]
    if len(set(listed)) != len(listed):
        problems.append(f"{MANIFEST}: a shard file is listed twice")
    unlisted = sorted(p.name for p in root.glob("*.npz") if p.name not in listed)
    problems += [f"{n}: shard not listed in {MANIFEST}" for n in unlisted]
    known_scenarios = set(ds.manifest.get("scenarios", {}))
    for entry in ds.shards:
        name = str(entry.get("file"))
        file = root / name
        if not file.is_file():
            problems.append(f"{name}: listed in {MANIFEST} but missing")
            continue
        digest = sha256_file(file)
        if digest != entry.get("sha256"):
            recorded = str(entry.get("sha256"))[:12]
            problems.append(f"{name}: SHA-256 mismatch (manifest {recorded}…, file {digest[:12]}…)")
        if entry.get("scenario") not in known_scenarios:
            problems.append(f"{name}: scenario {entry.get('scenario')!r} not described in {MANIFEST}")
        try:
            arrays = ds.load_shard(entry)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            problems.append(f"{name}: unreadable: {exc!r}")
            continue
        shape_problems = _check_arrays(name, arrays, sig)
        problems += shape_problems
        if not shape_problems:
            problems += _check_content(name, arrays, entry)
    counts = ds.manifest.get("counts", {})
    for key in ("steps", "decision_points", "episodes"):
        total = sum(int(s.get(key, 0)) for s in ds.shards)
        if counts.get(key) != total:
            problems.append(f"{MANIFEST}: counts.{key}={counts.get(key)!r} but the shards sum to {total}")
    problems += _check_signature(ds, expected)
    summary = {k: counts.get(k) for k in ("shards", "steps", "decision_points", "episodes")}
    return AuditReport(root, tuple(problems), tuple(notes), summary)
