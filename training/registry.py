"""The release registry: candidates, immutable releases, an atomic pointer and a history log.

On disk, under one root (default ``runs/registry``)::

    candidates/<cid>/policy.zip, identity.json     a policy offered for promotion
    releases/<rid>/policy.zip, identity.json, gate.json   a released policy (never changed)
    current.json                                   the pointer: which release serves, and the stack below it
    history.jsonl                                  append-only: releases, rollbacks, evaluation windows

Releasing swaps real weights: the candidate's files are copied into a new release folder
(written under a temp name, fsynced, renamed into place), then the pointer is replaced
atomically (temp file + fsync + ``os.replace`` + folder fsync), then the event is
appended to the history. The pointer is the single source of truth, so a process killed
at any point leaves exactly the old or the new release serving. Every command takes a
file lock and first repairs what a crash can leave: temp files and folders, a release
folder the pointer never reached, a torn last history line, and a history that lacks the
pointer's last event (it is copied from the pointer, which carries it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from townlet_env.atomic import fsync_dir, write_json_atomic
from training.release_identity import Identity, check_town, file_sha256

POINTER = "current.json"
HISTORY = "history.jsonl"
POLICY = "policy.zip"
IDENTITY = "identity.json"
POINTER_FORMAT = 1


class RegistryError(RuntimeError):
    """A registry operation was refused or the registry is damaged; the message says why."""


def _no_step(name: str) -> None:
    """Called between the steps of a release and a rollback (tests crash the process here)."""


#: Replaced by crash-safety tests to kill the process between steps (see ``_step`` calls).
STEP_HOOK: Callable[[str], None] = _no_step


def _copy_durable(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with dst.open("rb") as fh:
        os.fsync(fh.fileno())


class Registry:
    """A registry rooted at ``root`` (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- reading -------------------------------------------------------------------------

    def pointer(self) -> dict[str, Any]:
        path = self.root / POINTER
        if not path.exists():
            return {"format": POINTER_FORMAT, "seq": 0, "release": None, "previous": [], "event": None}
        data = json.loads(path.read_text())
        if data.get("format") != POINTER_FORMAT:
            raise RegistryError(f"{path}: pointer format {data.get('format')!r}; this townlet reads {POINTER_FORMAT}")
        return dict(data)

    def current(self) -> str | None:
        """The serving release's id (None before the first release)."""
        with self._locked():
            return self.pointer()["release"]

    def history(self) -> list[dict[str, Any]]:
        with self._locked():
            return self._read_history()

    def identity(self, release: str) -> Identity:
        return Identity.from_json(json.loads((self._release_dir(release) / IDENTITY).read_text()))

    def policy_path(self, release: str) -> Path:
        """The release's weights after checking their hash against its identity."""
        folder = self._release_dir(release)
        path, want = folder / POLICY, self.identity(release).policy_sha256
        if file_sha256(path) != want:
            raise RegistryError(f"{path}: weights do not match the release's policy_sha256 {want[:12]}; refusing them")
        return path

    def windows(self, release: str) -> list[dict[str, Any]]:
        """Every evaluation window recorded for ``release``, oldest first."""
        return [w for e in self.history() if e.get("release") == release for w in e.get("windows", [])]

    def green_streak(self, release: str) -> int:
        """Green windows in a row at the end of ``release``'s recorded windows."""
        streak = 0
        for window in self.windows(release):
            streak = streak + 1 if window.get("green") else 0
        return streak

    def load_policy(self, town: Any, release: str | None = None) -> Any:
        """The release's ``MaskablePPO`` (default: the serving one), refused unless ``town`` matches.

        Raises:
            RegistryError: no release, or damaged weights.
            IdentityMismatch: the town's observation signature or config differs.

        """
        rid = release if release is not None else self.current()
        if rid is None:
            raise RegistryError(f"{self.root}: no release yet; promote a candidate first (townlet promote RUN_DIR)")
        check_town(self.identity(rid), town, f"release {rid}")
        path = self.policy_path(rid)
        from sb3_contrib import MaskablePPO  # heavy; only loading needs it

        return MaskablePPO.load(os.fspath(path), device="cpu")

    # --- writing -------------------------------------------------------------------------

    def add_candidate(self, policy: str | Path, identity: Identity) -> str:
        """Copy ``policy`` in as a candidate; its id is content-addressed (re-adding is a no-op)."""
        if file_sha256(policy) != identity.policy_sha256:
            raise RegistryError(f"{policy}: file hash differs from the identity's policy_sha256")
        cid = f"c-{identity.policy_sha256[:12]}"
        with self._locked():
            self._repair()
            target = self.root / "candidates" / cid
            if not target.exists():
                self._place(target, Path(policy), identity, {})
        return cid

    def release(self, candidate: str, gate: Mapping[str, Any], reason: str = "") -> str:
        """Make ``candidate`` the serving release; return the new release id.

        ``gate`` is the gate's report (stored beside the weights); its ``windows`` are
        recorded in the history as the release's first evaluation windows.
        """
        with self._locked():
            self._repair()
            source = self.root / "candidates" / candidate
            if not (source / IDENTITY).exists():
                raise RegistryError(f"{source}: no such candidate; add it with Registry.add_candidate")
            identity = Identity.from_json(json.loads((source / IDENTITY).read_text()))
            old = self.pointer()
            rid = f"r{old['seq'] + 1:04d}-{identity.policy_sha256[:8]}"
            self._place(self.root / "releases" / rid, source / POLICY, identity, gate)
            STEP_HOOK("release_dir_in_place")
            previous = [*old["previous"], old["release"]] if old["release"] else []
            event = self._event(old, "release", rid, reason, windows=gate.get("windows", []))
            self._swap_pointer(rid, previous, event)
            return rid

    def rollback(self, reason: str = "") -> str:
        """Serve the release before the current one again; return its id."""
        with self._locked():
            self._repair()
            old = self.pointer()
            if not old["previous"]:
                raise RegistryError(f"{self.root}: nothing to roll back to (release {old['release']} is the first)")
            rid = old["previous"][-1]
            self._swap_pointer(rid, old["previous"][:-1], self._event(old, "rollback", rid, reason))
            return str(rid)

    def record_windows(self, release: str, windows: Sequence[Mapping[str, Any]], reason: str) -> None:
        """Append evaluation windows of ``release`` (e.g. a re-evaluation) to the history."""
        with self._locked():
            self._repair()
            self._release_dir(release)
            event = self._event(self.pointer(), "windows", release, reason, windows=list(windows))
            self._append_history(event)

    def repair(self) -> list[str]:
        """Fix what a crash left behind (every command does this first); return what was done."""
        with self._locked():
            return self._repair()

    # --- internals -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _release_dir(self, release: str) -> Path:
        folder = self.root / "releases" / release
        if not (folder / IDENTITY).exists():
            raise RegistryError(f"{folder}: no such release (townlet releases lists them)")
        return folder

    def _event(self, old: Mapping[str, Any], kind: str, rid: str, reason: str, **extra: Any) -> dict[str, Any]:
        seq = old["seq"] + (kind != "windows")
        return {"seq": seq, "time": time.time(), "kind": kind, "release": rid, "from": old["release"],
                "reason": reason, **extra}  # fmt: skip

    def _place(self, target: Path, policy: Path, identity: Identity, gate: Mapping[str, Any]) -> None:
        """Write a candidate or release folder under a temp name, fsync it, rename it into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        _copy_durable(policy, tmp / POLICY)
        write_json_atomic(tmp / IDENTITY, identity.to_json())
        if gate:
            write_json_atomic(tmp / "gate.json", dict(gate), default=str)
        STEP_HOOK("release_dir_written")
        os.rename(tmp, target)
        fsync_dir(target.parent)

    def _swap_pointer(self, rid: str, previous: list[str], event: dict[str, Any]) -> None:
        body = {"format": POINTER_FORMAT, "seq": event["seq"], "release": rid, "previous": previous, "event": event}
        path = self.root / POINTER
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{POINTER}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        STEP_HOOK("pointer_temp_written")
        os.replace(tmp, path)
        fsync_dir(self.root)
        STEP_HOOK("pointer_swapped")
        self._append_history(event)
        STEP_HOOK("history_appended")

    def _append_history(self, event: Mapping[str, Any]) -> None:
        with (self.root / HISTORY).open("a") as fh:
            fh.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _read_history(self) -> list[dict[str, Any]]:
        path = self.root / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _repair(self) -> list[str]:
        done: list[str] = []
        for folder in (self.root, self.root / "releases", self.root / "candidates"):
            for leftover in folder.glob(".*.tmp") if folder.is_dir() else ():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                done.append(f"removed leftover {leftover.relative_to(self.root)}")
        path = self.root / HISTORY
        if path.exists():
            raw = path.read_bytes()
            keep = raw[: raw.rfind(b"\n") + 1]
            if keep != raw:  # a torn last line: the append that wrote it never finished
                with path.open("r+b") as fh:
                    fh.truncate(len(keep))
                    os.fsync(fh.fileno())
                done.append("truncated a torn last history line")
        pointer, history = self.pointer(), self._read_history()
        logged = max((e["seq"] for e in history if e.get("kind") != "windows"), default=0)
        if pointer["event"] is not None and pointer["seq"] > logged:
            self._append_history(pointer["event"])
            history.append(pointer["event"])
            done.append(f"appended the pointer's {pointer['event']['kind']} of {pointer['release']} to the history")
        known = {e["release"] for e in history} | {pointer["release"]}
        releases = self.root / "releases"
        for folder in sorted(releases.iterdir()) if releases.is_dir() else ():
            if folder.name not in known:  # placed, but the pointer never reached it: never released
                shutil.rmtree(folder)
                done.append(f"removed unreleased folder releases/{folder.name}")
        return done
