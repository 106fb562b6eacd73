"""The console's error codes and the exception a command raises to refuse."""

from __future__ import annotations

from typing import Literal

#: Every ``error.code`` a console reply can carry.
ErrorCode = Literal[
    "bad_request",  # the envelope is not a JSON object of the documented shape
    "too_large",  # the payload or one of its strings is over the size limits
    "unauthorized",  # no token, or a token that matches no configured one
    "forbidden",  # the token's role may not run this command (or no admin token is configured)
    "unknown_command",  # ``cmd`` names no command
    "invalid_args",  # ``args`` do not fit the command (missing, extra, wrong type, out of range)
    "not_found",  # an agent, price key or snapshot file that does not exist
    "conflict",  # the command does not fit the town's state now (a vacant seat, a full queue, ...)
    "rate_limited",  # the issuer sent more commands than its token bucket allows
    "internal",  # a command failed in a way the console did not foresee (a bug: report it)
]


class ConsoleError(Exception):
    """A command refused with an error ``code`` and a one-line ``message`` saying how to fix it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
