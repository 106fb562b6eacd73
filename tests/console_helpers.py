"""Shared setup for the console tests: a small town with a console and known tokens."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

import townlet_env
from townlet_env.console import Console, RateLimit

ADMIN = "admin-secret-token-123"
VIEWER = "viewer-secret-token-456"
TOKENS = {"TOWNLET_ADMIN_TOKEN": ADMIN, "TOWNLET_VIEWER_TOKEN": VIEWER}
_ids = itertools.count()


def town(tmp_path: Path | None = None, environ: dict[str, str] | None = None, **kw: Any) -> tuple[Any, Console]:
    """A reset town (seed 0) with a console; the audit log goes to ``tmp_path/audit.jsonl``."""
    env = townlet_env.parallel_env()
    env.reset(seed=0)
    kw.setdefault("rate_limit", RateLimit(per_second=1e9, burst=10**9))
    audit = None if tmp_path is None else tmp_path / "audit.jsonl"
    console = Console(env, audit_path=audit, environ=TOKENS if environ is None else environ, **kw)
    return env, console


def send(console: Console, cmd: str, token: str | None = ADMIN, dry_run: bool = False, **args: Any) -> dict:
    """Submit ``cmd`` with a fresh cmd_id."""
    envelope = {"cmd_id": f"c{next(_ids)}", "cmd": cmd, "args": args, "token": token, "dry_run": dry_run}
    return console.submit(envelope)


def wait_all(env: Any) -> None:
    """One tick in which every seat WAITs."""
    env.step(dict.fromkeys(env.agents, 0))


def digest(env: Any) -> str:
    return env.unwrapped.world.digest()


def floor_tile(env: Any, avoid: tuple[int, int] | None = None) -> tuple[int, int]:
    """A walkable tile (not ``avoid``)."""
    walkable = env.unwrapped.rules.town.walkable
    for y, x in zip(*np.nonzero(walkable), strict=True):
        if (int(y), int(x)) != avoid:
            return int(y), int(x)
    raise AssertionError("no walkable tile")
