"""What each pipeline stage hands the next: typed, frozen summaries with a JSON form.

A stage's summary is stored under ``result`` in its ``manifest.json`` (the keys below are
that file's keys) and read back when a rerun skips the stage, so a later stage reads the
same typed value whether the stage ran now or earlier. The evaluate stage's summary is
:class:`training.evaluate.Scores`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class CaptureSummary:
    """The captured dataset and its counts (as the dataset manifest's ``counts``)."""

    dataset: str
    shards: int
    steps: int
    decision_points: int
    episodes: int
    decision_action_counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaptureSummary:
        return cls(
            str(data["dataset"]),
            int(data["shards"]),
            int(data["steps"]),
            int(data["decision_points"]),
            int(data["episodes"]),
            dict(data["decision_action_counts"]),
        )

    def headline(self) -> str:
        return f"{self.steps:,} steps, {self.decision_points:,} decisions, {self.shards} shards"


@dataclasses.dataclass(frozen=True)
class BCSummary:
    """The cloned policy's checkpoint and its held-out accuracy."""

    checkpoint: str
    held_out_accuracy: float
    per_action: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BCSummary:
        return cls(str(data["checkpoint"]), float(data["held_out_accuracy"]), dict(data["per_action"]))

    def headline(self) -> str:
        return f"held-out accuracy {self.held_out_accuracy:.3f}"


@dataclasses.dataclass(frozen=True)
class AnnealSummary:
    """How the anneal ended and the policy it released."""

    status: str
    last_good: str
    stages: int  #: stage attempts made, rollbacks included

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnnealSummary:
        return cls(str(data["status"]), str(data["last_good"]), int(data["stages"]))

    def headline(self) -> str:
        return f"{self.status} after {self.stages} stage attempts"


class PipelineError(RuntimeError):
    """A stage's gate failed; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class PromoteSummary:
    """The promotion gate's decision on the run's candidate."""

    candidate: str
    decision: str  #: PROMOTE, HOLD or FAIL
    compared_with: str | None  #: the serving release it was compared against
    reasons: tuple[str, ...]
    report: str  #: the gate report (``gate.json``)
    serving: bool  #: the candidate already is the serving release (a re-evaluation)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromoteSummary:
        return cls(str(data["candidate"]), str(data["decision"]), data["compared_with"], tuple(data["reasons"]),
                   str(data["report"]), bool(data["serving"]))  # fmt: skip

    def headline(self) -> str:
        against = f"against {self.compared_with}" if self.compared_with else "first release"
        return f"{self.decision} ({against}): {self.reasons[0] if self.reasons else ''}"


@dataclasses.dataclass(frozen=True)
class ReleaseSummary:
    """The release the run ended with."""

    release: str
    candidate: str
    policy_sha256: str
    previous: str | None  #: the release served before (None: the first release)
    registry: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleaseSummary:
        return cls(str(data["release"]), str(data["candidate"]), str(data["policy_sha256"]), data["previous"],
                   str(data["registry"]))  # fmt: skip

    def headline(self) -> str:
        return f"serving {self.release} (policy {self.policy_sha256[:12]}) from {self.registry}"


def upstream_result(records: Mapping[str, Any], stage: str, kind: type[R]) -> R:
    """The result ``records[stage]`` holds, checked to be a ``kind``.

    Raises:
        PipelineError: the record holds something else (a damaged or foreign manifest).

    """
    result = records[stage].result
    if not isinstance(result, kind):
        raise PipelineError(f"the {stage} stage's record holds {type(result).__name__}, not a {kind.__name__}")
    return result
