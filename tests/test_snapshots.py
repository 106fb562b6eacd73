"""Snapshots: a town saved mid-episode resumes bit for bit in a fresh process; bad files are refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from tests.snapshot_replay import CONDITIONS, POLICIES, Case, record
from townlet_env.snapshots import Autosaver, SnapshotError, register_migration, unregister_migration
from townlet_env.snapshots.format import checksum

ROOT = Path(__file__).resolve().parents[1]


def _resume_matrix(tmp_path: Path, seeds: tuple[int, ...], ticks: int) -> dict[str, tuple[int, int]]:
    """Record every case here, resume them all in one fresh process, compare tick by tick."""
    cases, expected, saved_at = [], {}, {}
    for seed in seeds:
        for mode, policy in POLICIES:
            for condition in CONDITIONS:
                case, step, rows = record(Case(seed, mode, policy, condition, ticks), tmp_path)
                cases.append(case)
                expected[case.name], saved_at[case.name] = rows, step
    spec, out = tmp_path / "cases.json", tmp_path / "out.json"
    spec.write_text(json.dumps([c.__dict__ for c in cases]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "tests.snapshot_replay", str(spec), str(out)], cwd=ROOT, env=env, check=True)
    result = json.loads(out.read_text())
    assert Path(result["townlet_env"]).resolve().is_relative_to(ROOT), "the fresh process ran another checkout"
    for name, rows in expected.items():
        got = result["traces"][name]
        for i, (want, have) in enumerate(zip(rows, got, strict=True)):
            assert want == have, f"{name}: saved at step {saved_at[name]}, diverged {i + 1} ticks after load"
    return {name: (saved_at[name], len(rows)) for name, rows in expected.items()}


def test_resume_in_a_fresh_process_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    checked = _resume_matrix(tmp_path, seeds=(0,), ticks=300)
    assert len(checked) == len(POLICIES) * len(CONDITIONS)


@pytest.mark.slow
def test_resume_acceptance_2000_ticks_3_seeds(tmp_path: Path) -> None:
    checked = _resume_matrix(tmp_path, seeds=(0, 1, 2), ticks=2000)
    assert len(checked) == 3 * len(POLICIES) * len(CONDITIONS)
    print(json.dumps(checked, indent=1))


def _same(a: Any, b: Any, where: str = "state") -> None:
    """Trees equal, arrays with the same dtype and values."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}.{i}")
    else:
        assert a == b, where


def test_every_part_of_the_state_comes_back(tmp_path: Path) -> None:
    env = townlet_env.parallel_env(map="small", num_agents=12, max_ticks=300)
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    while env.unwrapped.world.tick < 250 or not env.unwrapped.last_events:
        env.step({a: int(rng.integers(0, env.unwrapped.n_actions)) for a in env.agents})
    path = townlet_env.save_snapshot(env, tmp_path / "s.npz")
    loaded = townlet_env.load_snapshot(path)
    town, back = env.unwrapped, loaded.unwrapped
    _same(town.state_dict(), back.state_dict(), "env")
    _same(env.state_dict(), loaded.state_dict(), "guard")
    assert back.last_events == town.last_events and back.agents == town.agents
    assert back.world.digest() == town.world.digest()
    for agent in town.possible_agents:  # the action spaces' RNGs continue identically
        assert [loaded.action_space(agent).sample() for _ in range(5)] == [
            env.action_space(agent).sample() for _ in range(5)
        ]
    for _ in range(80):  # through the episode's end and a reset without a seed (the episode RNG)
        if not env.agents:
            assert loaded.reset()[0].keys() == env.reset()[0].keys()
        actions = {a: int(rng.integers(0, town.n_actions)) for a in env.agents}
        assert loaded.step(actions)[1] == env.step(actions)[1]
    assert back.world.digest() == town.world.digest()


def _town(steps: int = 30, **kw: Any) -> Any:
    env = townlet_env.parallel_env(num_agents=4, **kw)
    env.reset(seed=3)
    for _ in range(steps):
        env.step(dict.fromkeys(env.agents, 0))
    return env


def _disk(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _refused(path: Path, match: str, **kw: Any) -> None:
    before = _disk(path.parent)
    with pytest.raises(SnapshotError, match=match) as info:
        townlet_env.load_snapshot(path, **kw)
    assert "\n" not in str(info.value) and str(path.name) in str(info.value)
    assert _disk(path.parent) == before, "a refused load changed files on disk"


def _rewrite(src: Path, dst: Path, edit: Any) -> None:
    """Copy a snapshot with ``edit(header, arrays)`` applied, checksum recomputed (a valid file)."""
    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays.pop("header").tobytes())
    edit(header, arrays)
    header["sha256"] = checksum(header, arrays)
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, header=raw, **arrays)
    dst.write_bytes(buffer.getvalue())


def test_truncated_bit_flipped_and_tampered_files_are_refused(tmp_path: Path) -> None:
    good = townlet_env.save_snapshot(_town(), tmp_path / "good.npz")
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.npz", "truncated or corrupt")
    digest = townlet_env.load_snapshot(good).unwrapped.world.digest()
    refused = 0
    for i, at in enumerate(np.linspace(0, len(data) - 1, 80).astype(int).tolist()):
        flipped = bytearray(data)
        flipped[at] ^= 1 << (i % 8)
        (tmp_path / "flip.npz").write_bytes(bytes(flipped))
        try:
            loaded = townlet_env.load_snapshot(tmp_path / "flip.npz")
        except SnapshotError as exc:
            assert "\n" not in str(exc) and "flip.npz" in str(exc)
            refused += 1
        else:  # a flip in zip metadata the reader ignores (a timestamp): the town must be the same
            assert loaded.unwrapped.world.digest() == digest, f"byte {at} flipped: loaded a different town"
    assert refused >= 50, f"only {refused} of 80 bit flips refused"  # 65 when written; the rest hit zip metadata

    def bump(header: dict, arrays: dict) -> None:
        arrays["state.world.needs"] = arrays["state.world.needs"] + np.float32(0.01)

    _rewrite(good, tmp_path / "tampered.npz", bump)
    with np.load(tmp_path / "tampered.npz") as archive:  # keep the stale checksum: only the sha256 can tell
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["header"].tobytes())
    header["sha256"] = json.loads(np.load(good)["header"].tobytes())["sha256"]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez_compressed(tmp_path / "tampered.npz", **arrays)
    _refused(tmp_path / "tampered.npz", "checksum mismatch")
    _refused(tmp_path / "missing.npz", "no such snapshot file")
    townlet_env.load_snapshot(good)  # the original still loads


def test_newer_major_schema_is_refused_newer_minor_loads(tmp_path: Path) -> None:
    good = townlet_env.save_snapshot(_town(), tmp_path / "good.npz")
    _rewrite(good, tmp_path / "major.npz", lambda h, a: h.update(schema_version="2.0"))
    _refused(tmp_path / "major.npz", r"schema 2.0 is newer than this townlet's 1.0; upgrade townlet")
    _rewrite(good, tmp_path / "minor.npz", lambda h, a: h.update(schema_version="1.7"))
    with pytest.warns(UserWarning, match="schema 1.7 is newer than 1.0 .same major.: loading it"):
        townlet_env.load_snapshot(tmp_path / "minor.npz")


def test_wrong_config_identity_is_refused_unless_a_migration_applies(tmp_path: Path) -> None:
    manifest = tmp_path / "affordances.yaml"
    manifest.write_bytes((Path(townlet_env.__file__).parent / "data" / "affordances.yaml").read_bytes())
    env = _town(manifest=str(manifest))
    old = env.unwrapped.config.identity()
    path = townlet_env.save_snapshot(env, tmp_path / "snaps" / "s.npz")
    manifest.write_bytes(manifest.read_bytes() + b"\n# a comment changes the identity\n")
    new = townlet_env.parallel_env(num_agents=4, manifest=str(manifest)).unwrapped.config.identity()
    assert new != old
    _refused(path, f"saved under config identity {old}.*register a migration from {old}")
    seen = []
    register_migration(old, new, lambda data: seen.append(data.config["config_id"]) or data, name="comment-only")
    try:
        loaded = townlet_env.load_snapshot(path)
    finally:
        unregister_migration(old)
    assert seen == [env.unwrapped.config.config_id]
    provenance = loaded.unwrapped.attachments.get("snapshot")
    assert provenance.migrations == [{"from": old, "to": new, "name": "comment-only"}]
    assert loaded.unwrapped.world.digest() == env.unwrapped.world.digest()
    again = townlet_env.save_snapshot(loaded, tmp_path / "snaps" / "again.npz")  # the record travels on
    header = json.loads(np.load(again)["header"].tobytes())
    assert header["config_identity"] == new and header["migrations"][0]["name"] == "comment-only"
    with pytest.raises(ValueError, match="must change it"):
        register_migration(old, old, lambda d: d)


def test_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    env = _town()
    townlet_env.save_snapshot(env, outside / "s.npz")
    townlet_env.save_snapshot(env, root / "ok.npz", root=root)
    (root / "link.npz").symlink_to(outside / "s.npz")
    before = _disk(root), _disk(outside)
    for path, match in [
        ("../elsewhere/s.npz", r"'\.\.' is not allowed"),
        (str(outside / "s.npz"), "outside the snapshot root"),
        ("link.npz", "outside the snapshot root"),
    ]:
        with pytest.raises(SnapshotError, match=match):
            townlet_env.load_snapshot(path, root=root)
    with pytest.raises(SnapshotError, match="outside the snapshot root"):
        townlet_env.load_snapshot(root / "link.npz")  # no root: the path's own folder
    with pytest.raises(SnapshotError, match=r"'\.\.' is not allowed"):
        townlet_env.save_snapshot(env, "../x.npz", root=root)
    assert (_disk(root), _disk(outside)) == before
    assert townlet_env.load_snapshot("ok.npz", root=root).unwrapped.world.tick == 30


def test_overrides_that_change_the_town_are_refused(tmp_path: Path) -> None:
    path = townlet_env.save_snapshot(_town(), tmp_path / "s.npz")
    with pytest.raises(SnapshotError, match=r"cannot override \['seed'\]"):
        townlet_env.load_snapshot(path, seed=4)
    with pytest.raises(SnapshotError, match="max_ticks=10 must be an int above the saved tick 30"):
        townlet_env.load_snapshot(path, max_ticks=10)
    longer = townlet_env.load_snapshot(path, max_ticks=5000, obs_variant="full")
    assert longer.unwrapped.config.max_ticks == 5000 and longer.unwrapped.config.obs_variant == "full"
    with pytest.raises(SnapshotError, match="call reset"):
        townlet_env.save_snapshot(townlet_env.parallel_env(num_agents=2), tmp_path / "fresh.npz")


class Counter:
    """A tiny stateful attachment: a tick counter and an array."""

    def __init__(self) -> None:
        self.ticks = 0
        self.history = np.zeros(3, dtype=np.int64)

    def after_step(self, town: Any) -> None:
        self.ticks += 1
        self.history[self.ticks % 3] = town.world.tick

    def state_dict(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "nested": {"history": self.history.copy(), "note": ["a", 1.5, None]}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert state["nested"]["note"] == ["a", 1.5, None]
        self.ticks = int(state["ticks"])
        self.history = np.array(state["nested"]["history"])


def test_attachment_state_round_trips(tmp_path: Path) -> None:
    env = townlet_env.parallel_env(num_agents=3)
    counter = Counter()
    env.unwrapped.attachments.attach("counter", counter)
    env.unwrapped.attachments.restore({"later": {"x": np.arange(4)}})  # a component not attached yet
    env.reset(seed=1)
    for _ in range(7):
        env.step({})
    path = townlet_env.save_snapshot(env, tmp_path / "s.npz")
    loaded = townlet_env.load_snapshot(path)
    fresh = Counter()
    loaded.unwrapped.attachments.attach("counter", fresh)
    assert fresh.ticks == 7 and fresh.history.tolist() == counter.history.tolist()
    assert fresh.history.dtype == np.int64
    assert loaded.unwrapped.attachments.state_dicts()["later"]["x"].tolist() == [0, 1, 2, 3]


def test_the_stability_monitor_resumes_exactly(tmp_path: Path) -> None:
    from townlet_env.stability import StabilityMonitor

    env = townlet_env.parallel_env(map="small", num_agents=12)
    StabilityMonitor(env)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    plan = [{a: int(rng.integers(0, env.unwrapped.n_actions)) for a in env.possible_agents} for _ in range(500)]
    for t in range(300):
        env.step(plan[t])
    path = townlet_env.save_snapshot(env, tmp_path / "s.npz")
    loaded = townlet_env.load_snapshot(path)
    monitor = StabilityMonitor(loaded)  # attaching hands it the saved state
    _same(env.unwrapped.attachments.get("stability").state_dict(), monitor.state_dict(), "stability")
    for t in range(300, 500):
        env.step({a: plan[t][a] for a in env.agents})
        loaded.step({a: plan[t][a] for a in loaded.agents})
    _same(env.unwrapped.attachments.get("stability").state_dict(), monitor.state_dict(), "stability")
    assert loaded.unwrapped.world.digest() == env.unwrapped.world.digest()


def test_the_narrator_resumes_exactly(tmp_path: Path) -> None:
    from tests.test_narration import Injector
    from townlet_env.narration.narrator import Narrator
    from townlet_env.world.events import EventKind
    from townlet_env.world.systems.relationships import set_tie

    # Conflicts every few ticks (dedupe and cooldown memory must travel) and ties pushed over
    # the thresholds after the save (the tie baseline must travel).
    plan = {t: [(EventKind.QUEUE_CONFLICT, t % 5, (t + 1) % 5, 0)] for t in range(1, 400, 3)}
    ties = {260: (0, 1, (0.9, 0.5, 0.0)), 300: (2, 3, (0.0, 0.2, 0.9)), 330: (1, 0, (0.95, 0.6, 0.0))}

    def town_of(env: Any) -> Narrator:
        env.unwrapped.attachments.attach("injector", Injector(plan))
        return Narrator(env)

    def run(env: Any, narrator: Narrator, ticks: range, rng_plan: list) -> list:
        told = []
        for t in ticks:
            if t in ties:
                i, j, values = ties[t]
                set_tie(env.unwrapped.world, i, j, np.array(values, np.float32))
            env.step({a: rng_plan[t][a] for a in env.agents})
            told.append([line.to_json() for line in narrator.lines])
        return told

    rng = np.random.default_rng(4)
    env = townlet_env.parallel_env(map="small", num_agents=6)
    steps = [{a: int(rng.integers(0, env.unwrapped.n_actions)) for a in env.possible_agents} for _ in range(400)]
    narrator = town_of(env)
    env.reset(seed=4)
    run(env, narrator, range(200), steps)
    path = townlet_env.save_snapshot(env, tmp_path / "s.npz")
    loaded = townlet_env.load_snapshot(path)
    resumed = town_of(loaded)  # attaching hands it the saved state
    _same(narrator.state_dict(), resumed.state_dict(), "narration")
    expected = run(env, narrator, range(200, 400), steps)
    assert run(loaded, resumed, range(200, 400), steps) == expected
    assert any(line["kind"] == "friendship" for lines in expected for line in lines)
    assert sum(map(len, expected)) > 5
    _same(narrator.state_dict(), resumed.state_dict(), "narration")


def test_array_keys_that_collide_once_dotted_stay_apart(tmp_path: Path) -> None:
    env = _town()
    state = {"a": {"b": np.arange(2)}, "a.b": np.arange(3)}
    env.unwrapped.attachments.restore({"x": state})
    loaded = townlet_env.load_snapshot(townlet_env.save_snapshot(env, tmp_path / "s.npz"))
    _same(state, loaded.unwrapped.attachments.state_dicts()["x"], "x")


def test_autosave_cadence_retention_and_exact_resume(tmp_path: Path) -> None:
    env = townlet_env.parallel_env(num_agents=4, map="small")
    saver = Autosaver(env, tmp_path / "auto", every_ticks=10, keep=2)
    assert env.unwrapped.attachments.get("autosave") is saver
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    plan = [{a: int(rng.integers(0, env.unwrapped.n_actions)) for a in env.possible_agents} for _ in range(90)]
    for t in range(51):
        env.step(plan[t])
    assert sorted(p.name for p in (tmp_path / "auto").iterdir()) == ["snapshot-000000040.npz", "snapshot-000000050.npz"]
    assert len(saver.saved) == 5
    resumed = townlet_env.load_snapshot(saver.latest())  # tick 50, saved when tick 51 began
    first = resumed.step(plan[50])
    env2 = townlet_env.parallel_env(num_agents=4, map="small")
    env2.reset(seed=5)
    for t in range(50):
        env2.step(plan[t])
    assert env2.step(plan[50])[1] == first[1]
    for t in range(51, 90):
        assert env2.step(plan[t])[1] == resumed.step(plan[t])[1], f"rewards differ at tick {t + 1}"
    assert env2.unwrapped.world.digest() == resumed.unwrapped.world.digest()


WRITER = """
import hashlib, os, signal, sys, townlet_env
path, mode = sys.argv[1], sys.argv[2]
env = townlet_env.parallel_env(num_agents=512, max_ticks=10**6)
env.reset(seed=0)
env.step({})
townlet_env.save_snapshot(env, path)
print(env.unwrapped.world.digest(), hashlib.sha256(open(path, "rb").read()).hexdigest(), flush=True)
env.step({})
die = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
if mode == "half":  # SIGKILL with half of the bytes in the temp file
    real = os.fdopen
    class Half:
        def __init__(self, fh): self.fh = fh
        def __enter__(self): return self
        def __exit__(self, *a): self.fh.close()
        def write(self, data): self.fh.write(data[: len(data) // 2]); self.fh.flush(); die()
    os.fdopen = lambda fd, m: Half(real(fd, m))
elif mode == "fsync":  # SIGKILL with the temp file complete but not yet renamed
    os.fsync = die
while True:  # mode "loop": killed from outside, somewhere in a save
    townlet_env.save_snapshot(env, path)
"""


def _writer(path: Path, mode: str) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert proc.stdout is not None
    digest, sha = proc.stdout.readline().split()
    return proc, digest, sha


@pytest.mark.parametrize("mode", ["half", "fsync", "loop"])
def test_a_writer_killed_mid_save_leaves_the_previous_snapshot_loadable(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "s.npz"
    proc, digest, sha = _writer(path, mode)
    if mode == "loop":
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    if mode != "loop":
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, "the previous snapshot's bytes changed"
        assert [p for p in tmp_path.iterdir() if p.suffix == ".tmp"], "the writer died before writing anything"
        assert townlet_env.load_snapshot(path).unwrapped.world.digest() == digest
    else:  # the last complete save: the state was the same in every save of the loop
        assert townlet_env.load_snapshot(path).unwrapped.world.tick == 2


def test_a_save_that_dies_halfway_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _town()
    path = townlet_env.save_snapshot(env, tmp_path / "s.npz")
    before = path.read_bytes()
    env.step({})

    def die(fd: int) -> None:
        raise KeyboardInterrupt  # the process is interrupted after the temp file was written

    monkeypatch.setattr("townlet_env.atomic.os.fsync", die)
    with pytest.raises(KeyboardInterrupt):
        townlet_env.save_snapshot(env, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"], "the temp file was left behind"
    assert townlet_env.load_snapshot(path).unwrapped.world.tick == 30
