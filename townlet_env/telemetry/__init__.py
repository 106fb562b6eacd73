"""Versioned telemetry: a stream of JSON messages describing a live town.

The first message of a stream (and the first each new WebSocket subscriber gets) is a full
``snapshot``; later messages are per-tick ``diff`` s that deep-merge onto it, plus periodic
``health`` messages about the stream itself. Every message validates against the JSON
Schema shipped at :data:`SCHEMA_PATH`.

* :class:`~townlet_env.telemetry.publisher.TelemetryPublisher` attaches to a town and
  publishes without ever blocking its tick loop.
* :mod:`~townlet_env.telemetry.transports`: JSONL file and stdout;
  :mod:`~townlet_env.telemetry.server`: a loopback WebSocket server.
* :mod:`~townlet_env.telemetry.client`: version checks, state reconstruction, a reader.

Importing this package loads neither ``websockets`` nor ``jsonschema``.
"""

from __future__ import annotations

from pathlib import Path

#: The schema version every message carries as ``schema_version`` ("major.minor"). A new
#: optional field bumps the minor (old clients warn and go on); a change that breaks
#: readers (a renamed or retyped field, a new required one) bumps the major.
SCHEMA_VERSION = "1.1"
#: The JSON Schema (draft 2020-12) of this version's messages, shipped with the package.
SCHEMA_PATH = Path(__file__).parent / "schemas" / f"telemetry-{SCHEMA_VERSION}.json"

__all__ = ["SCHEMA_PATH", "SCHEMA_VERSION"]
