"""Dataset format, audit (and what it catches), transitions and the label distribution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import townlet_env
from training.audit import audit
from training.cli import DATASET
from training.datasets import MANIFEST, load_dataset, sha256_file, to_transitions

pytest.importorskip("imitation")
pytestmark = pytest.mark.train

HYBRID = townlet_env.parallel_env().unwrapped.layout
COMPACT = townlet_env.parallel_env(obs_variant="compact").unwrapped.layout


@pytest.fixture
def copy(dataset_path: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset_path, tmp_path / "ds"))


def rewrite(path: Path, file: str, changes: dict[str, np.ndarray], fix_hash: bool = True) -> None:
    """Replace arrays in one shard; with ``fix_hash`` also update the manifest's SHA-256."""
    with np.load(path / file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez_compressed(path / file, **arrays)
    if fix_hash:
        manifest = json.loads((path / MANIFEST).read_text())
        for entry in manifest["shards"]:
            if entry["file"] == file:
                entry["sha256"] = sha256_file(path / file)
        (path / MANIFEST).write_text(json.dumps(manifest))


def first_shard(path: Path) -> str:
    return str(load_dataset(path).shards[0]["file"])


def test_clean_dataset_passes_the_cli(dataset_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert DATASET(["audit", str(dataset_path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_tampered_byte_fails_naming_the_file(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = first_shard(copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    report = audit(copy)
    assert not report.ok
    assert any(p.startswith(f"{name}: SHA-256 mismatch") for p in report.problems), report.problems
    assert DATASET(["audit", str(copy)]) == 1
    assert f"{name}: SHA-256 mismatch" in capsys.readouterr().out


def test_action_outside_its_mask_is_caught_even_with_a_fixed_hash(copy: Path) -> None:
    name = first_shard(copy)
    a = load_dataset(copy).load_shard(load_dataset(copy).shards[0])
    forced = np.flatnonzero(~a["decision"])[0]
    action = a["action"].copy()
    action[forced] = np.flatnonzero(a["action_mask"][forced] == 0)[0]
    rewrite(copy, name, {"action": action})
    problems = audit(copy).problems
    assert any(p.startswith(f"{name}: 1 actions not allowed by their mask") for p in problems), problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reward": "float64"}, "reward has dtype float64, expected float32"),
        ({"observation": "nan"}, "observation has 1 non-finite values"),
        ({"decision": "flip"}, "decision flags disagree with the masks"),
        ({"done": "clear"}, "done is not set on exactly the last row"),
    ],
)
def test_structural_problems_are_named(copy: Path, change: dict[str, str], message: str) -> None:
    name = first_shard(copy)
    a = load_dataset(copy).load_shard(load_dataset(copy).shards[0])
    key, how = next(iter(change.items()))
    arr = a[key].copy()
    if how == "float64":
        arr = arr.astype(np.float64)
    elif how == "nan":
        arr[3, 7] = np.nan
    elif how == "flip":
        arr[0] = not arr[0]
    else:
        arr[np.flatnonzero(arr)[0]] = False
    rewrite(copy, name, {key: arr})
    problems = audit(copy).problems
    assert any(p.startswith(f"{name}: {message}") for p in problems), problems


def test_missing_unlisted_and_miscounted_files(copy: Path) -> None:
    shards = load_dataset(copy).shards
    (copy / shards[0]["file"]).unlink()
    shutil.copy(copy / shards[1]["file"], copy / "stray.npz")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["shards"][2]["steps"] += 1
    (copy / MANIFEST).write_text(json.dumps(manifest))
    problems = audit(copy).problems
    assert f"{shards[0]['file']}: listed in {MANIFEST} but missing" in problems
    assert f"stray.npz: shard not listed in {MANIFEST}" in problems
    assert any(p.startswith(f"{shards[2]['file']}: manifest says steps=") for p in problems)
    assert any(p.startswith(f"{MANIFEST}: counts.steps=") for p in problems)


def test_signature_mismatch_is_refused(dataset_path: Path, copy: Path) -> None:
    problems = audit(dataset_path, expected=COMPACT).problems
    assert any("observation signature mismatch" in p and "variant" in p for p in problems), problems
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["observation_signature"]["hash"] = "0" * 16
    (copy / MANIFEST).write_text(json.dumps(manifest))
    problems = audit(copy).problems
    assert any(p.startswith(f"{MANIFEST}: scenario 'baseline': observation signature mismatch") for p in problems)


def test_not_a_dataset(tmp_path: Path) -> None:
    report = audit(tmp_path)
    assert not report.ok and "manifest.json: missing" in report.problems[0]
    assert DATASET(["audit", str(tmp_path)]) == 1


def test_transitions_are_dictobs_with_true_next_observations(dataset_path: Path) -> None:
    from imitation.data.types import DictObs

    ds = load_dataset(dataset_path)
    entry = ds.select([0], ["low_money"])[0]  # has deaths: identity-ended episodes
    a = ds.load_shard(entry)
    every = to_transitions(ds, decision_points_only=False, seeds=[0], scenarios=["low_money"])
    assert isinstance(every.obs, DictObs) and isinstance(every.next_obs, DictObs)
    assert len(every) == entry["steps"] and every.dones.dtype == bool
    assert set(every.obs.keys()) == {"observation", "action_mask"}
    np.testing.assert_array_equal(every.acts, a["action"])
    nxt = every.next_obs.get("observation")
    inner = np.flatnonzero(~a["done"])
    np.testing.assert_array_equal(nxt[inner], a["observation"][inner + 1])
    ends = np.flatnonzero(a["done"])
    np.testing.assert_array_equal(nxt[ends], a["final_observation"])
    decisions = to_transitions(ds, seeds=[0], scenarios=["low_money"])
    assert len(decisions) == entry["decision_points"] < len(every)
    assert isinstance(decisions.obs, DictObs)
    assert (decisions.obs.get("action_mask").sum(axis=1) > 1).all()


def test_decision_labels_cover_at_least_five_actions(dataset_path: Path) -> None:
    counts = load_dataset(dataset_path).manifest["counts"]["decision_action_counts"]
    total = sum(counts.values())
    common = {name for name, n in counts.items() if n >= 0.02 * total}
    assert len(common) >= 5, counts
