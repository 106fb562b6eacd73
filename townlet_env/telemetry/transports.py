"""Telemetry transports that write JSON lines: a file and standard output.

The WebSocket transport lives in :mod:`townlet_env.telemetry.server`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class JsonlTransport:
    """Appends each message to a JSONL file, one message a line.

    The file is opened for appending, so a resumed stream continues the same file (its
    first line after the resume is a snapshot). Lines are flushed whenever the publisher's
    buffer runs empty.

    Args:
        path: the ``.jsonl`` file (its folder must exist).

    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"telemetry file {self.path}: folder {self.path.parent} does not exist; create it")
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def send(self, message: Mapping[str, Any], text: str) -> None:
        self._file.write(text)
        self._file.write("\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class StdoutTransport:
    """Writes each message as one line on standard output (NDJSON), for piping and demos."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def send(self, message: Mapping[str, Any], text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(text + "\n")

    def flush(self) -> None:
        (self._stream or sys.stdout).flush()

    def close(self) -> None:
        self.flush()


class MemoryTransport:
    """Keeps every message in a list (tests, and consumers in the same process)."""

    def __init__(self) -> None:
        self.messages: list[Mapping[str, Any]] = []
        self.texts: list[str] = []

    def send(self, message: Mapping[str, Any], text: str) -> None:
        self.messages.append(message)
        self.texts.append(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
