"""``townlet console``: send one command to a running town's console over WebSocket.

``townlet console health`` or ``townlet console teleport agent=agent_0 y=5 x=7 --wait``.
The town serves its console at ``ws://HOST:PORT/console``; the token comes from ``--token``,
else ``$TOWNLET_ADMIN_TOKEN``, else ``$TOWNLET_VIEWER_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from townlet_env.console.auth import ADMIN_ENV, VIEWER_ENV

HELP = "send a command to a running town's console (townlet console COMMAND key=value ...)"
DEFAULT_PORT = 8765


def _value(text: str) -> Any:
    """A ``key=value`` value: JSON if it parses (numbers, true, lists), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_args_pairs(pairs: list[str]) -> dict[str, Any]:
    """``["agent=agent_0", "y=5"]`` -> ``{"agent": "agent_0", "y": 5}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"argument {pair!r} is not key=value (e.g. agent=agent_0)")
        out[key] = _value(text)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cmd", metavar="COMMAND", help="a console command (health, snapshot, teleport, ...)")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help="the command's arguments")
    p.add_argument("--host", default="127.0.0.1", help="the town's host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the town's port (default {DEFAULT_PORT})")
    p.add_argument("--token", default=None, help=f"bearer token (default ${ADMIN_ENV}, else ${VIEWER_ENV})")
    p.add_argument("--cmd-id", default=None, help="idempotency id (default: a fresh one); resend to replay")
    p.add_argument("--dry-run", action="store_true", help="preview what an admin command would change")
    p.add_argument("--wait", action="store_true", help="for a queued command, wait for its final result")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for replies (default 10)")


def run(args: argparse.Namespace) -> int:
    """Send the command; print the reply as JSON; exit 0 if it succeeded, else 1."""
    try:
        command_args = parse_args_pairs(args.pairs)
    except ValueError as exc:
        print(f"townlet console: {exc}", file=sys.stderr)
        return 1
    token = args.token or os.environ.get(ADMIN_ENV) or os.environ.get(VIEWER_ENV)
    envelope = {
        "cmd_id": args.cmd_id or uuid.uuid4().hex,
        "cmd": args.cmd,
        "args": command_args,
        "token": token,
        "dry_run": args.dry_run,
    }
    url = f"ws://{args.host}:{args.port}/console"
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=args.timeout) as ws:
            reply = _exchange(ws, envelope, args.timeout)
            deadline = time.monotonic() + args.timeout
            # A replay of the same envelope returns the latest reply: the final one once applied.
            while args.wait and _queued(reply) and time.monotonic() < deadline:
                time.sleep(0.2)
                reply = _exchange(ws, envelope, args.timeout)
    except (OSError, TimeoutError, WebSocketException) as exc:
        print(f"townlet console: cannot reach {url} ({exc}); is `townlet serve` running there?", file=sys.stderr)
        return 1
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("ok") else 1


def _exchange(ws: Any, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
    ws.send(json.dumps(envelope))
    reply = json.loads(ws.recv(timeout=timeout))
    return reply if isinstance(reply, dict) else {"ok": False, "error": {"code": "bad_reply", "message": str(reply)}}


def _queued(reply: dict[str, Any]) -> bool:
    return bool(reply.get("ok")) and reply.get("result", {}).get("status") == "queued"


#: The ``townlet`` command table entry: (help, handler, adds the arguments).
COMMAND = (HELP, run, add_arguments)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``console`` to a ``townlet`` subparsers object."""
    p = subparsers.add_parser("console", help=HELP)
    add_arguments(p)
    p.set_defaults(handler=run)
    return p
