"""Reading a telemetry stream: version checks, state reconstruction, readers.

>>> state = TelemetryState()
>>> for message in read_jsonl("out.jsonl"):  # doctest: +SKIP
...     state.apply(message)
>>> state.state["agents"]["agent_0"]["wallet"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from townlet_env.telemetry import SCHEMA_PATH, SCHEMA_VERSION

#: Keys of every message that are not part of the state.
ENVELOPE = ("schema_version", "seq", "tick", "kind")


class TelemetryVersionError(ValueError):
    """A message's schema version is malformed or has a newer major than this client reads."""


class NewerSchemaWarning(UserWarning):
    """A message has a newer minor schema version: readable, but it may carry unknown fields."""


def _parse(version: Any) -> tuple[int, int]:
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise TelemetryVersionError(f"telemetry message: schema_version {version!r} is not 'major.minor' (e.g. '1.0')")
    return int(parts[0]), int(parts[1])


def check_version(message: Mapping[str, Any], supported: str = SCHEMA_VERSION) -> tuple[int, int]:
    """Check ``message["schema_version"]`` against the version this client reads.

    Returns:
        The message's ``(major, minor)``.

    Raises:
        TelemetryVersionError: the version is missing, malformed, or has a newer major.

    Warns:
        NewerSchemaWarning: same major, newer minor (unknown fields are ignored).

    """
    major, minor = _parse(message.get("schema_version"))
    own_major, own_minor = _parse(supported)
    if major > own_major:
        raise TelemetryVersionError(
            f"telemetry schema_version {major}.{minor} is newer than this client reads ({supported}); "
            "upgrade townlet to read this stream"
        )
    if major == own_major and minor > own_minor:
        warnings.warn(
            f"telemetry schema_version {major}.{minor} is newer than {supported}; unknown fields are ignored",
            NewerSchemaWarning,
            stacklevel=2,
        )
    return major, minor


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists copied, scalars shared): several times
    faster than :func:`copy.deepcopy`, which matters at one merge per tick per subscriber.
    """
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def deep_merge(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into ``target`` in place: dicts recursively, anything else replaced
    (by a copy, so later merges never write into the message).
    """
    for key, value in changes.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            deep_merge(current, value)
        else:
            target[key] = clone(value)


def remove_paths(target: dict[str, Any], paths: list[list[str]]) -> None:
    """Delete each key path (e.g. ``["queues", "stove_3"]``) from ``target``; absent paths are ignored."""
    for path in paths:
        node: Any = target
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)


class TelemetryState:
    """The state a stream describes, rebuilt by applying its messages in order.

    Attributes:
        state: the sections (agents, queues, relationships, events, kpis, stability, rewards).
        seq: the last applied message's sequence number (-1 before any).
        tick: the tick the state describes.
        consistent: ``False`` from a diff whose ``base`` is not the last applied message
            (something was lost on the way) until the next snapshot.
        gaps: how often that happened.
        skipped: ticks the publisher dropped under backpressure (diffs spanning them).
        health: the last ``health`` message's payload.

    """

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.seq = -1
        self.tick = -1
        self.consistent = False
        self.health: dict[str, Any] = {}
        self.snapshots = 0
        self.gaps = 0
        self.skipped = 0

    def apply(self, message: Mapping[str, Any]) -> None:
        """Apply one message (checks its version first)."""
        check_version(message)
        seq = int(message["seq"])
        kind = message.get("kind", "snapshot")
        if kind == "snapshot":
            self.state = {k: clone(v) for k, v in message.items() if k not in ENVELOPE}
            self.consistent = True
            self.snapshots += 1
        elif kind == "diff":
            base = int(message.get("base", seq - 1))
            if base != self.seq:
                self.gaps += 1
                self.consistent = False  # the diff's base never arrived: wait for a snapshot
            elif self.consistent:
                deep_merge(self.state, message.get("changes", {}))
                remove_paths(self.state, message.get("removed", []))
                self.skipped += seq - base - 1
        elif kind == "health":
            self.health = dict(message.get("health", {}))
        self.seq = seq
        self.tick = int(message["tick"])


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The messages of a JSONL telemetry file, in order."""
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not a JSON telemetry message ({exc.msg})") from None


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema of this version's messages."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def validator() -> Any:
    """A ``jsonschema`` validator for messages (needs the ``[ops]`` extra)."""
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def stream(url: str, *, open_timeout: float = 10.0) -> Iterator[dict[str, Any]]:
    """Messages from a telemetry WebSocket (e.g. ``ws://127.0.0.1:8765/telemetry``), version-checked.

    Stops when the server closes the connection. Needs the ``[ops]`` extra (``websockets``).
    """
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    with connect(url, open_timeout=open_timeout, max_size=None) as ws:
        try:
            for text in ws:
                message = json.loads(text)
                check_version(message)
                yield message
        except ConnectionClosedOK:
            return
