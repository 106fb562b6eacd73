"""The release registry: identity, atomic pointer, history, refusal of a mismatched town, and
crash safety (a process killed between any two steps of a release or a rollback)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import townlet_env
from training.registry import Registry, RegistryError
from training.release_identity import Identity, IdentityMismatch, check_town, file_sha256, identity_of

pytestmark = pytest.mark.train
ROOT = Path(__file__).parents[2]


def _policy(tmp_path: Path, name: str) -> tuple[Path, Identity]:
    """A stand-in policy file (the registry never reads the bytes) and an identity for the default town."""
    path = tmp_path / f"{name}.zip"
    path.write_bytes(f"weights of {name}".encode())
    town = townlet_env.parallel_env(obs_variant="compact", max_ticks=4)
    return path, identity_of(town, path, f"exp-{name}")


@pytest.fixture
def two(tmp_path: Path) -> tuple[Registry, str, str]:
    """A registry serving release r1 (policy a) with candidate b added."""
    registry = Registry(tmp_path / "registry")
    a, b = _policy(tmp_path, "a"), _policy(tmp_path, "b")
    r1 = registry.release(registry.add_candidate(*a), {"windows": [{"index": 0, "green": True}]}, "first")
    return registry, r1, registry.add_candidate(*b)


def test_release_and_rollback_swap_the_served_weights(two: tuple[Registry, str, str]) -> None:
    registry, r1, c2 = two
    r2 = registry.release(c2, {"decision": "PROMOTE"}, "second")
    assert registry.current() == r2 != r1
    assert registry.policy_path(r2).read_bytes() == b"weights of b"
    assert registry.identity(r2).experiment == "exp-b"
    assert json.loads((registry.root / "releases" / r2 / "gate.json").read_text()) == {"decision": "PROMOTE"}
    assert registry.rollback("bad") == r1
    assert registry.policy_path(registry.current() or "").read_bytes() == b"weights of a"
    kinds = [(e["kind"], e["release"], e["from"]) for e in registry.history()]
    assert kinds == [("release", r1, None), ("release", r2, r1), ("rollback", r1, r2)]
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()


def test_identity_names_every_source(tmp_path: Path) -> None:
    path, ident = _policy(tmp_path, "a")
    assert ident.policy_sha256 == file_sha256(path)
    assert ident.obs_variant == "compact" and len(ident.obs_signature) == 16
    assert ident.config_id == "townlet-default-v1" and len(ident.town_identity) == 64
    assert Identity.from_json(json.loads(json.dumps(ident.to_json()))) == ident
    seeded = townlet_env.parallel_env(obs_variant="compact", max_ticks=99, seed=7)
    check_town(ident, seeded)  # episode settings are not part of what a town simulates


def test_candidates_are_content_addressed(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "r")
    path, ident = _policy(tmp_path, "a")
    assert registry.add_candidate(path, ident) == registry.add_candidate(path, ident)
    with pytest.raises(RegistryError, match="file hash differs"):
        registry.add_candidate(path, dataclasses.replace(ident, policy_sha256="0" * 64))


def test_tampered_weights_are_refused(two: tuple[Registry, str, str]) -> None:
    registry, r1, _ = two
    (registry.root / "releases" / r1 / "policy.zip").write_bytes(b"swapped behind our back")
    with pytest.raises(RegistryError, match="do not match the release's policy_sha256"):
        registry.policy_path(r1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"obs_variant": "hybrid"}, "obs_signature"), ({"num_agents": 3}, "town_identity")],
)
def test_loading_into_another_town_is_refused(two: tuple[Registry, str, str], overrides: dict, field: str) -> None:
    registry, r1, _ = two
    other = townlet_env.parallel_env(**{"obs_variant": "compact", **overrides})
    with pytest.raises(IdentityMismatch) as err:
        registry.load_policy(other, r1)
    assert f"refusing to load release {r1} into this town" in str(err.value) and field in str(err.value)


def test_windows_and_green_streak(two: tuple[Registry, str, str]) -> None:
    registry, r1, _ = two
    assert registry.green_streak(r1) == 1
    registry.record_windows(r1, [{"index": 0, "green": False}], "re-evaluation")
    assert registry.green_streak(r1) == 0
    registry.record_windows(r1, [{"index": 0, "green": True}, {"index": 1, "green": True}], "re-evaluation")
    assert registry.green_streak(r1) == 2
    assert [w["green"] for w in registry.windows(r1)] == [True, False, True, True]


def test_torn_history_line_is_truncated(two: tuple[Registry, str, str]) -> None:
    registry, r1, _ = two
    with (registry.root / "history.jsonl").open("a") as fh:
        fh.write('{"seq": 2, "kind": "rel')
    assert registry.repair() == ["truncated a torn last history line"]
    assert [e["release"] for e in registry.history()] == [r1]


CRASH = """
import os, sys
from training import registry as reg
target = sys.argv[2]
reg.STEP_HOOK = lambda name: os._exit(70) if name == target else None
r = reg.Registry(sys.argv[1])
r.release(sys.argv[4], {"windows": []}, "crash test") if sys.argv[3] == "release" else r.rollback("crash test")
"""
#: (operation, step the process dies after, whether the new release serves afterwards)
POINTS = [
    ("release", "release_dir_written", False),
    ("release", "release_dir_in_place", False),
    ("release", "pointer_temp_written", False),
    ("release", "pointer_swapped", True),
    ("release", "history_appended", True),
    ("rollback", "pointer_temp_written", False),
    ("rollback", "pointer_swapped", True),
    ("rollback", "history_appended", True),
]


@pytest.mark.parametrize(("op", "step", "switched"), POINTS, ids=[f"{o}-{s}" for o, s, _ in POINTS])
def test_a_kill_between_steps_leaves_old_or_new_never_a_mix(
    two: tuple[Registry, str, str], op: str, step: str, switched: bool
) -> None:
    registry, r1, c2 = two
    if op == "rollback":
        registry.release(c2, {}, "second")
    before = registry.pointer()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CRASH, str(registry.root), step, op, c2], env=env, cwd=ROOT)
    assert done.returncode == 70, "the hook did not kill the process at that step"

    fixes = registry.repair()  # what the next command does first
    assert not list(registry.root.rglob(".*.tmp")), fixes
    after = registry.pointer()
    serving = after["release"]
    if not switched:
        assert serving == before["release"]
    elif op == "rollback":
        assert serving == r1
    else:
        assert serving != before["release"] and registry.identity(serving).experiment == "exp-b"
    registry.policy_path(serving)  # the served weights match their identity: no half-copied release
    history = [e for e in registry.history() if e["kind"] != "windows"]
    assert history[-1]["release"] == serving and history[-1]["seq"] == after["seq"]
    released = {e["release"] for e in history}
    assert {p.name for p in (registry.root / "releases").iterdir()} == released
    assert registry.repair() == []  # repaired once, clean after
    if op == "release":  # and the registry still works: the interrupted release can be redone
        again = registry.release(c2, {}, "retry") if not switched else registry.rollback("retry")
        assert registry.current() == again
