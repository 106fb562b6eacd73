"""The snapshot file: one ``.npz`` (no pickle) holding the arrays and a JSON header.

A state tree (mappings, lists, JSON scalars and NumPy arrays, as ``state_dict()`` methods
return) is split in two: every array goes into the archive under a dotted key
(``world.needs``, ``attachments.stability.window``) and the tree keeps ``{"$array": key}``
in its place. The tree and the metadata are the header, stored as UTF-8 JSON in a uint8
member named ``header``. ``header["sha256"]`` covers the header (less that field) and every
array's key, dtype, shape and bytes, so one flipped bit anywhere is caught on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = "1.0"
FORMAT = "townlet-snapshot"
ARRAY_KEY = "$array"


class SnapshotError(ValueError):
    """A snapshot cannot be written or loaded; the message names the file and the fix."""


def split_tree(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """``tree`` as JSON values, its arrays moved into ``arrays`` under dotted keys."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "biufc":
            raise SnapshotError(f"state {prefix!r}: array of dtype {tree.dtype} is not snapshot-able; use numbers")
        key = prefix if prefix not in arrays else f"{prefix}#{len(arrays)}"  # {"a": {"b": x}} vs {"a.b": y}
        arrays[key] = tree
        return {ARRAY_KEY: key}
    if isinstance(tree, Mapping):
        if ARRAY_KEY in tree:
            raise SnapshotError(f"state {prefix!r}: the key {ARRAY_KEY!r} is reserved for arrays; rename it")
        return {str(k): split_tree(v, f"{prefix}.{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [split_tree(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree
    raise SnapshotError(f"state {prefix!r}: {type(tree).__name__} is not a JSON value or NumPy array")


def join_tree(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The inverse of :func:`split_tree`: placeholders replaced by their arrays."""
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_KEY}:
            return arrays[tree[ARRAY_KEY]]
        return {k: join_tree(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_tree(v, arrays) for v in tree]
    return tree


def checksum(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the header (less ``sha256``) and every array, in key order."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"\0{key}\0{value.dtype.str}\0{value.shape}\0".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """The file's bytes: ``header`` (its ``sha256`` filled in) and ``arrays``, as one npz."""
    if "header" in arrays:
        raise SnapshotError("state: the array key 'header' is reserved")
    header = {**header, "sha256": checksum(header, arrays)}
    raw = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # what np.savez_compressed writes
        for name, array in {"header": raw, **arrays}.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


# What zipfile, zlib and numpy raise on damaged bytes, depending on which field a flip hits.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError, OSError, KeyError,
            NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError)  # fmt: skip


def _members(path: Path) -> dict[str, np.ndarray]:
    """Every member of the npz, each checked against its zip CRC-32 before numpy parses it."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            raw = archive.read(info)  # raises BadZipFile on a CRC mismatch
            arrays[info.filename.removesuffix(".npy")] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    return arrays


def read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of the snapshot at ``path``, checked (format, version, checksum).

    Raises:
        SnapshotError: the file is missing, truncated, corrupt, not a snapshot, or newer.

    """
    try:
        arrays = _members(path)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot file; check the path") from None
    except _DAMAGED as exc:
        raise SnapshotError(
            f"{path}: truncated or corrupt snapshot ({type(exc).__name__}: {exc}); load an older snapshot from the "
            "same folder"
        ) from None
    raw = arrays.pop("header", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise SnapshotError(f"{path}: not a townlet snapshot (no header); pass a file written by save_snapshot")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SnapshotError(f"{path}: corrupt snapshot header; load an older snapshot from the same folder") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"{path}: not a townlet snapshot (format field); pass a file written by save_snapshot")
    check_version(path, header.get("schema_version"))
    if header.get("sha256") != checksum(header, arrays):
        raise SnapshotError(
            f"{path}: checksum mismatch, the file is corrupt (a flipped bit?); load an older snapshot instead"
        )
    return header, arrays


def check_version(path: Path, version: Any) -> None:
    """Refuse a missing version or another major; a newer minor of the same major loads, with a warning."""
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise SnapshotError(f"{path}: bad schema_version {version!r}; not a snapshot this townlet can read") from None
    ours, ours_minor = (int(x) for x in SCHEMA_VERSION.split("."))
    if major > ours:
        raise SnapshotError(
            f"{path}: snapshot schema {version} is newer than this townlet's {SCHEMA_VERSION}; "
            "upgrade townlet to load it"
        )
    minor = str(version).split(".")[1] if "." in str(version) else "0"
    if major == ours and minor.isdigit() and int(minor) > ours_minor:
        warnings.warn(
            f"{path}: snapshot schema {version} is newer than {SCHEMA_VERSION} (same major): loading it; "
            "state added since is ignored",
            stacklevel=4,
        )
    if major < ours:
        raise SnapshotError(
            f"{path}: snapshot schema {version} is older than {SCHEMA_VERSION} and has no reader; re-save it with "
            "the townlet that wrote it"
        )
