"""Command envelopes and replies: their shape, their size limits, and how they are parsed.

An envelope is ``{"cmd_id", "cmd", "args", "token", "dry_run"}``; a reply is
``{"cmd_id", "ok": true, "result"}`` or ``{"cmd_id", "ok": false, "error": {"code", "message"}}``.
Size limits are checked before anything else, so a hostile payload costs little.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from townlet_env.console.errors import ConsoleError

MAX_ENVELOPE_BYTES = 16 * 1024  #: the largest envelope, as JSON text
MAX_STRING = 1024  #: the longest string anywhere in ``args``
MAX_ARGS = 16  #: the most keys ``args`` may hold
MAX_DEPTH = 3  #: how deeply lists and objects may nest inside ``args``
CMD_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


class Envelope(BaseModel):
    """One command as a client sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cmd_id: StrictStr = Field(pattern=CMD_ID_PATTERN)
    cmd: StrictStr = Field(min_length=1, max_length=64)
    args: dict[StrictStr, Any] = Field(default_factory=dict)
    token: StrictStr | None = Field(default=None, max_length=512)
    dry_run: StrictBool = False


def ok(cmd_id: str | None, result: dict[str, Any]) -> dict[str, Any]:
    """A success reply."""
    return {"cmd_id": cmd_id, "ok": True, "result": result}


def error(cmd_id: str | None, exc: ConsoleError) -> dict[str, Any]:
    """A refusal reply."""
    return {"cmd_id": cmd_id, "ok": False, "error": {"code": exc.code, "message": exc.message}}


def _check_value(value: Any, where: str, depth: int) -> None:
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise ConsoleError("too_large", f"{where}: a string of {len(value)} characters; the limit is {MAX_STRING}")
    if isinstance(value, list | dict):
        if depth >= MAX_DEPTH:
            raise ConsoleError("too_large", f"{where}: nested deeper than {MAX_DEPTH} levels; flatten the arguments")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            _check_value(item, f"{where}.{key}", depth + 1)


def parse(payload: dict[str, Any] | str | bytes) -> Envelope:
    """Check ``payload``'s size and shape; return the envelope.

    Raises:
        ConsoleError: ``too_large`` or ``bad_request``, naming the field and how to fix it.

    """
    if isinstance(payload, bytes | str):
        if len(payload) > MAX_ENVELOPE_BYTES:
            raise ConsoleError("too_large", f"envelope of {len(payload)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise ConsoleError("bad_request", f"envelope is not JSON ({exc}); send one JSON object") from None
    if not isinstance(payload, dict):
        raise ConsoleError("bad_request", f"envelope is a {type(payload).__name__}; send a JSON object")
    try:
        size = len(json.dumps(payload, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise ConsoleError("bad_request", "envelope holds values that are not JSON (or NaN); send plain JSON") from None
    if size > MAX_ENVELOPE_BYTES:
        raise ConsoleError("too_large", f"envelope of {size} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    args = payload.get("args")
    if isinstance(args, dict):
        if len(args) > MAX_ARGS:
            raise ConsoleError("too_large", f"args has {len(args)} keys; the limit is {MAX_ARGS}")
        _check_value(args, "args", 0)
    try:
        return Envelope.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "envelope"
        raise ConsoleError(
            "bad_request",
            f"envelope field {field!r}: {first['msg']}; an envelope is "
            '{"cmd_id": "<id>", "cmd": "<command>", "args": {...}, "token": "<token>", "dry_run": false}',
        ) from None


def cmd_id_of(payload: Any) -> str | None:
    """The envelope's ``cmd_id`` if it is a sane string, for replies to envelopes that fail to parse."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload) if len(payload) <= MAX_ENVELOPE_BYTES else None
        except (ValueError, RecursionError):
            return None
    cmd_id = payload.get("cmd_id") if isinstance(payload, dict) else None
    return cmd_id if isinstance(cmd_id, str) and 0 < len(cmd_id) <= 128 else None
