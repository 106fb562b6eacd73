"""The console's append-only audit log: one JSON line per command decision.

A command gets one line when it is answered (``phase: "submit"``) and, if it was queued, a
second when it is applied at the start of a tick (``phase: "apply"``). Lines carry the
token's fingerprint, never the token, and a short summary of the result.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

SUMMARY_CHARS = 240  #: the longest result summary kept in a line


def summary(reply: dict[str, Any]) -> str:
    """A one-line digest of a reply's result or error, cut to :data:`SUMMARY_CHARS`."""
    body = reply.get("result") if reply.get("ok") else reply.get("error", {}).get("message")
    text = json.dumps(body, sort_keys=True, default=str) if not isinstance(body, str) else body
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


class AuditLog:
    """Appends lines to ``path`` (created with its folder); ``path=None`` keeps no file."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, *, phase: str, tick: int, cmd: str | None, role: str | None, issuer: str, reply: dict) -> None:
        """Append the line for one reply (``issuer`` is the token fingerprint)."""
        if self.path is None:
            return
        err = None if reply.get("ok") else reply.get("error", {}).get("code")
        line = {
            "time": round(time.time(), 3),
            "phase": phase,
            "tick": tick,
            "cmd_id": reply.get("cmd_id"),
            "cmd": cmd,
            "role": role,
            "issuer": issuer,
            "ok": bool(reply.get("ok")),
            "error": err,
            "summary": summary(reply),
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        # One write of the whole line on an O_APPEND descriptor: lines never interleave or tear.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
