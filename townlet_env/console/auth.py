"""Who may run what: bearer tokens to roles, and a token bucket per issuer.

Roles come from the token alone, never from anything the client claims. Tokens are read
from ``TOWNLET_VIEWER_TOKEN`` and ``TOWNLET_ADMIN_TOKEN`` when the console is built:

* an admin token runs every command; a viewer token runs viewer commands only;
* with no admin token configured, every admin command is refused (``forbidden``);
* with no viewer token configured, viewer commands need no token (a town on localhost is
  watchable by default); set ``TOWNLET_VIEWER_TOKEN`` to require one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from townlet_env.console.errors import ConsoleError

Role = Literal["viewer", "admin"]
VIEWER_ENV = "TOWNLET_VIEWER_TOKEN"
ADMIN_ENV = "TOWNLET_ADMIN_TOKEN"
ANONYMOUS = "anonymous"


def fingerprint(token: str | None) -> str:
    """A short stable name for a token, for the audit log and rate limits; never the token."""
    if token is None:
        return ANONYMOUS
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Tokens:
    """The configured tokens (``None``: not configured)."""

    viewer: str | None
    admin: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        """Read the tokens from the environment; an empty variable counts as unset."""
        env = os.environ if environ is None else environ
        return cls(viewer=env.get(VIEWER_ENV) or None, admin=env.get(ADMIN_ENV) or None)

    def role(self, token: str | None, needed: Role, cmd: str) -> Role:
        """The role ``token`` grants, checked against the role ``cmd`` needs.

        Raises:
            ConsoleError: ``unauthorized`` (a missing or unknown token) or ``forbidden``.

        """
        granted = self._match(token, cmd)
        if needed == "admin":
            if self.admin is None:
                raise ConsoleError("forbidden", f"{cmd}: admin commands are off; set {ADMIN_ENV} where the town runs")
            if granted is None:
                raise ConsoleError("unauthorized", f"{cmd}: no token; pass the admin token (--token or ${ADMIN_ENV})")
            if granted != "admin":
                raise ConsoleError("forbidden", f"{cmd}: needs the admin token; a viewer token runs viewer commands")
            return "admin"
        if granted is not None:
            return granted
        if self.viewer is None:
            return "viewer"  # no viewer token configured: viewing is open
        raise ConsoleError("unauthorized", f"{cmd}: no token; pass the viewer token (--token or ${VIEWER_ENV})")

    def _match(self, token: str | None, cmd: str) -> Role | None:
        if token is None:
            return None
        given = token.encode()
        # compare_digest against both, always: the time taken says nothing about which matched.
        is_admin = self.admin is not None and hmac.compare_digest(given, self.admin.encode())
        is_viewer = self.viewer is not None and hmac.compare_digest(given, self.viewer.encode())
        if is_admin:
            return "admin"
        if is_viewer:
            return "viewer"
        raise ConsoleError("unauthorized", f"{cmd}: the token matches no configured token; check --token")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per issuer: ``burst`` commands at once, refilled at ``per_second``."""

    per_second: float = 20.0
    burst: int = 40


class Buckets:
    """The token buckets of every issuer (by token fingerprint), on an injectable clock."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._level: dict[str, tuple[float, float]] = {}  # issuer -> (tokens, as of time)

    def take(self, issuer: str, cmd: str) -> None:
        """Spend one token of ``issuer``'s bucket.

        Raises:
            ConsoleError: ``rate_limited`` when the bucket is empty.

        """
        now = self.clock()
        level, since = self._level.get(issuer, (float(self.limit.burst), now))
        level = min(float(self.limit.burst), level + (now - since) * self.limit.per_second)
        if level < 1.0:
            self._level[issuer] = (level, now)
            wait = (1.0 - level) / self.limit.per_second if self.limit.per_second > 0 else float("inf")
            raise ConsoleError(
                "rate_limited",
                f"{cmd}: more than {self.limit.burst} commands at once or {self.limit.per_second:g}/s "
                f"from this token; retry in {wait:.2f} s",
            )
        self._level[issuer] = (level - 1.0, now)
        if len(self._level) > 4096:  # forget the stalest issuers; the cost is a fresh full bucket
            for key in sorted(self._level, key=lambda k: self._level[k][1])[:1024]:
                del self._level[key]
