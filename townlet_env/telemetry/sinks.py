"""Where a publisher's output goes: message transports and frame sinks.

A :class:`Transport` gets each message built (JSONL file, stdout, memory); a
:class:`FrameSink` (the WebSocket server) gets the raw frames and builds the messages
itself, in another process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from townlet_env.telemetry.frames import Frame, Names

#: Errors a transport may raise while sending; the worker counts them and carries on.
TRANSPORT_ERRORS = (OSError, ValueError, RuntimeError)


class Transport(Protocol):
    """Where messages go. ``send`` runs on the publisher's worker thread."""

    def send(self, message: Mapping[str, Any], text: str) -> None:
        """Deliver one message (``text`` is its JSON encoding, without a newline)."""

    def flush(self) -> None:
        """Push out anything buffered (called when the worker has nothing left to send)."""

    def close(self) -> None:
        """Release the transport's resources."""


class FrameSink(Protocol):
    """Takes raw frames and builds the messages itself (in another process).

    See :class:`townlet_env.telemetry.server.TelemetryServer`.
    """

    @property
    def url(self) -> str:
        """Where it serves."""

    def bind(self, names: Names, kpi_every: int) -> None:
        """A publisher attached: start a fresh message builder for this town."""

    def ready(self) -> bool:
        """Whether it can take a frame this tick (tick thread; counts the ticks it misses)."""

    def offer(self, frame: Frame) -> None:
        """Take one tick's frame (tick thread: must never block)."""

    def offer_health(self, seq: int, tick: int, health: Mapping[str, Any]) -> None:
        """Publish a ``health`` message (tick thread: must never block)."""

    def load_kpi(self, state: Mapping[str, Any]) -> None:
        """Continue the KPI tracker from a saved state."""

    def request_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The built state after every frame sent so far, and the KPI tracker's state."""

    def fanout_health(self) -> dict[str, Any]:
        """The sink's own health (its process alive, its counters)."""

    def flush(self, timeout: float) -> bool:
        """Write out what it holds, waiting up to ``timeout`` s; ``False`` if some is left."""

    def close(self) -> None:
        """Release the sink's resources."""
