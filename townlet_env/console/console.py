"""The :class:`Console`: authenticated, rate-limited, idempotent commands against a live town.

``submit`` is thread-safe (a WebSocket server thread may call it while the main thread runs
ticks). Viewer commands are answered at once, never in the middle of a tick; admin commands
are checked, queued, and applied at the start of the next tick by ``before_step``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from townlet_env.console.audit import AuditLog
from townlet_env.console.auth import Buckets, RateLimit, Tokens, fingerprint
from townlet_env.console.commands import COMMANDS, Command
from townlet_env.console.envelope import Envelope, cmd_id_of, error, ok, parse
from townlet_env.console.errors import ConsoleError
from townlet_env.console.overrides import Overrides
from townlet_env.console.town import core

BUSY_TIMEOUT_S = 5.0  #: how long a viewer command waits for a running tick to end


def _request_key(e: Envelope) -> str:
    """What a replay must repeat exactly: the command, its arguments, and dry_run."""
    text = json.dumps({"cmd": e.cmd, "args": e.args, "dry_run": e.dry_run}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Console:
    """Operator commands for one town, attached to it as ``"console"``.

    Args:
        env: the town (``parallel_env()``'s env or the core env).
        audit_path: the JSONL audit log; ``None`` keeps none.
        rate_limit: the token bucket each issuer (token) gets.
        snapshot_root: the folder ``save_snapshot``/``load_snapshot`` may use; ``None`` refuses both.
        cache_size: how many replies (by ``cmd_id``) are kept for replays.
        max_pending: how many admin commands may wait for the next tick.
        clock: seconds, for the rate limit (tests pass a fake one).
        environ: where to read the tokens (default ``os.environ``).

    """

    def __init__(
        self,
        env: Any,
        *,
        audit_path: str | Path | None = None,
        rate_limit: RateLimit | None = None,
        snapshot_root: str | Path | None = None,
        cache_size: int = 1024,
        max_pending: int = 256,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.env = env
        self.core = core(env)
        self.tokens = Tokens.from_env(environ)
        self.buckets = Buckets(rate_limit or RateLimit(), clock)
        self.audit = AuditLog(audit_path)
        self.snapshot_root = None if snapshot_root is None else Path(snapshot_root).resolve()
        self.cache_size, self.max_pending = cache_size, max_pending
        self.overrides = Overrides()
        self.possessed: dict[int, dict[str, int]] = {}
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()  # cmd_id -> issuer, key, reply
        self._pending: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._busy = False  # a tick is running: between before_step and after_step
        self.core.attachments.attach("console", self)

    # --- the client side -------------------------------------------------------------------
    def submit(self, envelope: dict[str, Any] | str | bytes) -> dict[str, Any]:
        """Answer one envelope with a reply dict (never raises for bad input)."""
        with self._cond:
            cmd_id, cmd, role, issuer = cmd_id_of(envelope), None, None, "unknown"
            try:
                e = parse(envelope)
                cmd_id, cmd, issuer = e.cmd_id, e.cmd, fingerprint(e.token)
                command = COMMANDS.get(e.cmd)
                role = self.tokens.role(e.token, command.role if command else "viewer", e.cmd)
                if command is None:
                    raise ConsoleError("unknown_command", f"no command {e.cmd!r}; commands are {sorted(COMMANDS)}")
                reply = self._replay(e, issuer)
                if reply is not None:
                    self.audit.record(phase="replay", tick=self._tick(), cmd=cmd, role=role, issuer=issuer, reply=reply)
                    return reply
                self.buckets.take(issuer, e.cmd)
                try:
                    reply = ok(e.cmd_id, self._run(command, e, role, issuer))
                except ConsoleError as exc:
                    reply = error(e.cmd_id, exc)
                self._remember(e.cmd_id, issuer, _request_key(e), reply)
            except ConsoleError as exc:
                reply = error(cmd_id, exc)
            self.audit.record(phase="submit", tick=self._tick(), cmd=cmd, role=role, issuer=issuer, reply=reply)
            return reply

    def handle_text(self, text: str) -> str:
        """The WebSocket handler: one JSON envelope in, one JSON reply out."""
        return json.dumps(self.submit(text))

    def result(self, cmd_id: str) -> dict[str, Any] | None:
        """The latest reply for ``cmd_id``: the final one once a queued command has been applied."""
        with self._cond:
            entry = self._cache.get(cmd_id)
            return None if entry is None else entry["reply"]

    def status(self) -> dict[str, Any]:
        """The console's own state, for ``health``."""
        names = self.core.possible_agents
        return {
            "pending": len(self._pending),
            "possessed": [names[i] for i in sorted(self.possessed)],
            "overrides": self.overrides.to_json(),
            "admin_enabled": self.tokens.admin is not None,
            "viewer_token_required": self.tokens.viewer is not None,
        }

    def _replay(self, e: Envelope, issuer: str) -> dict[str, Any] | None:
        entry = self._cache.get(e.cmd_id)
        if entry is None:
            return None
        if entry["issuer"] != issuer or entry["key"] != _request_key(e):
            raise ConsoleError(
                "conflict", f"{e.cmd}: cmd_id {e.cmd_id!r} was used for another command; use a fresh one"
            )
        return entry["reply"]

    def _remember(self, cmd_id: str, issuer: str, key: str, reply: dict[str, Any]) -> None:
        self._cache[cmd_id] = {"issuer": issuer, "key": key, "reply": reply}
        self._cache.move_to_end(cmd_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _run(self, command: Command, e: Envelope, role: str, issuer: str) -> dict[str, Any]:
        args = self._args(command, e.args)
        if not self._cond.wait_for(lambda: not self._busy, timeout=BUSY_TIMEOUT_S):
            raise ConsoleError("conflict", f"{e.cmd}: the town has been mid-tick for {BUSY_TIMEOUT_S} s; retry")
        if command.role == "viewer":
            return dict(command.run(self.core, args, self))
        plan = command.run(self.core, args, self)
        if e.dry_run:
            return {"status": "dry_run", "would": plan.preview}
        if len(self._pending) >= self.max_pending:
            raise ConsoleError(
                "conflict", f"{e.cmd}: {self.max_pending} commands already wait for the next tick; retry"
            )
        self._pending.append({"cmd_id": e.cmd_id, "cmd": e.cmd, "args": e.args, "role": role, "issuer": issuer})
        return {"status": "queued", "apply_at_tick": self._tick(), "would": plan.preview}

    @staticmethod
    def _args(command: Command, raw: dict[str, Any]) -> BaseModel:
        try:
            return command.args.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "args"
            raise ConsoleError(
                "invalid_args", f"{command.name}: argument {where!r}: {first['msg']}; usage: {command.usage()}"
            ) from None

    def _tick(self) -> int:
        return int(self.core.world.tick)

    # --- the town side: attachment hooks -----------------------------------------------------
    def before_step(self, env: Any, actions: np.ndarray) -> None:
        """Apply the queued admin commands, then override possessed seats' actions."""
        with self._cond:
            self._busy = True
            pending, self._pending = self._pending, []
            for item in pending:
                self._apply(item)
            world = env.world
            for i, held in list(self.possessed.items()):
                if not world.alive[i] or int(world.generation[i]) != held["generation"]:
                    del self.possessed[i]  # the possessed identity ended: its successor is free
                else:
                    actions[i] = held["action"]
            if pending:
                env.refresh_action_masks()

    def _apply(self, item: dict[str, Any]) -> None:
        command = COMMANDS[item["cmd"]]
        tick = self._tick()
        try:
            plan = command.run(self.core, self._args(command, item["args"]), self)
            reply = ok(item["cmd_id"], {"status": "applied", "tick": tick, **plan.apply()})
        except ConsoleError as exc:
            reply = error(item["cmd_id"], exc)
        entry = self._cache.get(item["cmd_id"])
        if entry is not None:
            entry["reply"] = reply
        else:  # evicted from the cache while queued: keep the final reply all the same
            self._remember(item["cmd_id"], item["issuer"], "", reply)
        self.audit.record(
            phase="apply", tick=tick, cmd=item["cmd"], role=item["role"], issuer=item["issuer"], reply=reply
        )

    def after_step(self, env: Any) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def after_reset(self, env: Any) -> None:
        with self._cond:
            self._busy = False
            self.possessed.clear()  # a reset seats new identities everywhere
            self._cond.notify_all()

    # --- snapshots -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The replay cache, the pending queue, overrides and possessions, as JSON values."""
        with self._cond:
            return {
                "cache": [{"cmd_id": k, **v} for k, v in self._cache.items()],
                "pending": [dict(p) for p in self._pending],
                "overrides": self.overrides.to_json(),
                "possessed": [{"seat": i, **held} for i, held in sorted(self.possessed.items())],
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state and re-apply the overrides to the town's rules."""
        with self._cond:
            self._cache = OrderedDict(
                (str(c["cmd_id"]), {"issuer": c["issuer"], "key": c["key"], "reply": c["reply"]})
                for c in state.get("cache", [])
            )
            self._pending = [dict(p) for p in state.get("pending", [])]
            self.possessed = {
                int(p["seat"]): {"generation": int(p["generation"]), "action": int(p["action"])}
                for p in state.get("possessed", [])
            }
            self.adopt_overrides(state)

    def adopt_overrides(self, state: Mapping[str, Any] | None) -> None:
        """Take the overrides of a saved console state (none: the config as written) and apply them."""
        self.overrides = Overrides.from_json(dict((state or {}).get("overrides", {})))
        self.overrides.apply(self.core)
