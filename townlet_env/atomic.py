"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Every file the project writes for later reading (datasets, manifests, results, goldens,
snapshots) goes through here: the bytes land in a temp file in the same folder, are
fsynced, and replace the target with ``os.replace``; the folder is fsynced after the
rename so the new name survives a crash too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:  # any failure, interrupts included: never leave the temp file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, *, default: Any = None) -> None:
    """Write ``data`` as indented, key-sorted JSON (``default`` as in :func:`json.dumps`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=default) + "\n")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
