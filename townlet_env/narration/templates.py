"""Narration templates: wordings per line kind, loaded from YAML and checked up front.

A templates file (``townlet_env/data/narration.yaml`` by default) has ``lines`` (every
line kind -> one or more wordings with ``{placeholder}`` fields), ``perturbations`` (every
:class:`~townlet_env.world.events.PerturbationKind` -> how a line names it) and optional
``names`` (display names for seats). Each kind may use only the placeholders listed in
:data:`PLACEHOLDERS`; a wording that names another one is refused at load time, naming
the file and the key. Which wording a line gets is a stable hash of its key and tick, so
the same run always reads the same.
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from townlet_env.narration.config import LINE_KINDS, LineKind
from townlet_env.world.events import PerturbationKind
from townlet_env.yamlfile import read_mapping, validate

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
_PAIR = frozenset({"agent", "other"})
_PAIR_AT = frozenset({"agent", "other", "object"})
#: The placeholders each line kind's wordings may use.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "friendship": _PAIR,
    "rivalry": _PAIR,
    "queue_conflict": _PAIR_AT,
    "queue_cut_in": _PAIR_AT,
    "object_blocked": _PAIR_AT,
    "shared_meal": _PAIR_AT,
    "coworker_helped": _PAIR,
    "shift_covered": _PAIR,
    "queue_handover": _PAIR_AT,
    "chat_blocked": _PAIR,
    "perturbation_start": frozenset({"perturbation"}),
    "perturbation_targeted": frozenset({"perturbation", "agent"}),
    "perturbation_end": frozenset({"perturbation"}),
    "arrival": frozenset({"agent"}),
    "departure": frozenset({"agent"}),
    "faint": frozenset({"agent", "need"}),
}
PERTURBATION_NAMES: tuple[str, ...] = tuple(k.name.lower() for k in PerturbationKind)


class TemplateError(ValueError):
    """A templates file is invalid; the message names the file and the key."""


class TemplateFile(BaseModel):
    """The templates file's contents (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: dict[LineKind, tuple[str, ...]]
    perturbations: dict[str, str]
    names: tuple[str, ...] = Field((), description="display names: seat i is names[i] when every seat has one")

    @model_validator(mode="after")
    def _check(self) -> TemplateFile:
        missing = [k for k in LINE_KINDS if k not in self.lines]
        if missing:
            raise ValueError(f"lines: missing kinds {missing}; every kind needs at least one wording")
        for kind, wordings in self.lines.items():
            if not wordings:
                raise ValueError(f"lines.{kind}: give at least one wording")
            for n, text in enumerate(wordings):
                used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
                bad = used - PLACEHOLDERS[kind]
                if bad:
                    raise ValueError(
                        f"lines.{kind}.{n}: unknown placeholders {sorted(bad)}; "
                        f"{kind} may use {sorted(PLACEHOLDERS[kind])}"
                    )
        if set(self.perturbations) != set(PERTURBATION_NAMES):
            raise ValueError(f"perturbations: name exactly {list(PERTURBATION_NAMES)}")
        if len(set(self.names)) != len(self.names) or any(not n.strip() for n in self.names):
            raise ValueError("names: display names must be distinct and non-empty")
        return self


class Templates:
    """Renders narration lines from a :class:`TemplateFile`.

    Args:
        spec: the validated file contents.
        seats: the town's seat names (``agent_0`` ...), the fallback display names.

    """

    def __init__(self, spec: TemplateFile, seats: tuple[str, ...]) -> None:
        self.spec = spec
        # Names only when every seat gets one: a town larger than the list keeps seat names,
        # so two residents never share a name.
        self.display = spec.names[: len(seats)] if len(spec.names) >= len(seats) else seats

    def name(self, seat: int) -> str:
        """The display name of a seat."""
        return self.display[seat]

    def perturbation(self, kind: int) -> str:
        """How lines name perturbation kind ``kind`` (an unknown id is named by its number)."""
        try:
            return self.spec.perturbations[PerturbationKind(kind).name.lower()]
        except ValueError:
            return f"disturbance #{kind}"

    def render(self, kind: str, key: str, tick: int, fields: Mapping[str, str]) -> str:
        """The text of a line: the wording chosen by a stable hash of ``key`` and ``tick``."""
        wordings = self.spec.lines[kind]  # type: ignore[index]
        pick = zlib.crc32(f"{key}@{tick}".encode()) % len(wordings)
        return wordings[pick].format_map(fields)


def load_templates(name: str, seats: tuple[str, ...]) -> Templates:
    """Load a templates file: a shipped name (``narration.yaml``) or a path.

    Raises:
        TemplateError: the file is missing, not YAML, or invalid; one line per problem.

    """
    path = Path(name)
    if not path.exists():
        path = DATA_DIR / name
    _, data = read_mapping(path, TemplateError)
    return Templates(validate(TemplateFile, data, str(path), TemplateError), seats)
