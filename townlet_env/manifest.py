"""The affordance manifest: objects and what agents can do with them, validated fail-fast.

The manifest is the only source of affordances. :func:`load_manifest` validates every
entry (types, ranges, cross references, preconditions, hooks) and raises
:class:`ManifestError` with one line per problem, each naming the file, the entry and the
field. The SHA-256 of the file's bytes is kept so it can be part of the config identity.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from townlet_env.config import NEEDS
from townlet_env.expressions import ATTRIBUTE_ROOTS, Expression, ExpressionError, compile_expression
from townlet_env.yamlfile import read_mapping, validate

#: Hooks that may be named, per stage. Each is implemented in world/systems/affordances.py.
HOOK_ALLOWLIST: dict[str, frozenset[str]] = {
    "before": frozenset(),
    "after": frozenset({"shared_meal"}),
    "fail": frozenset(),
}
#: Single-character glyphs the map reserves for terrain and spawn markers.
RESERVED_GLYPHS = frozenset("#.,+hE ")
#: The manifest format version this package reads.
MANIFEST_VERSION = 1
#: Object types, affordance ids and stock keys must match this (``stock.<key>`` needs it).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ManifestError(ValueError):
    """The manifest is invalid; the message has one line per problem."""


class _Strict(BaseModel):
    # strict: YAML ``"15"`` or ``true`` is not silently taken for the integer 15 or 1.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ObjectSpec(_Strict):
    """An object type: its map glyph, how many may use one at once, and its stock."""

    glyph: str = Field(min_length=1, max_length=1, description="map character: printable ASCII, not reserved")
    capacity: int = Field(1, ge=0, le=1, description="1: one holder through a queue; 0: unlimited")
    stock: dict[str, int] = Field(default_factory=dict, description="named counters, each in [0, 10000]")
    restock: dict[str, int] = Field(default_factory=dict, description="refill level, daily")

    @field_validator("stock", "restock")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [k for k, v in value.items() if v < 0 or v > 10_000]
        if bad:
            raise ValueError(f"stock counts must lie in [0, 10000]: {bad}")
        return value

    @field_validator("glyph")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not (value.isascii() and value.isprintable() and not value.isspace()):
            raise ValueError(f"glyph {value!r} must be one printable ASCII character (map files are ASCII)")
        return value


class HookSpec(_Strict):
    """Hook names per stage; each must be in :data:`HOOK_ALLOWLIST` for its stage."""

    # strict=False only lets a YAML list become the tuple; the items stay strict strings.
    before: tuple[str, ...] = Field((), strict=False)
    after: tuple[str, ...] = Field((), strict=False)
    fail: tuple[str, ...] = Field((), strict=False)


class AffordanceSpec(_Strict):
    """Something an agent does at an object for ``duration`` ticks."""

    object: str = Field(min_length=1, description="object type it is done at")
    duration: int = Field(gt=0, le=1440, description="ticks (sim minutes) it takes")
    price: str | None = Field(None, min_length=1, description="economy price key charged once at start")
    effects: dict[str, float] = Field(default_factory=dict, description="needs, on completion")
    per_tick: dict[str, float] = Field(default_factory=dict, description="needs, each tick")
    consumes: dict[str, int] = Field(default_factory=dict, description="object stock, at start")
    produces: dict[str, int] = Field(default_factory=dict, description="stock, on completion")
    produces_into: str | None = Field(None, description="object type receiving `produces`")
    preconditions: str | None = Field(None, description="expression that must be true to start")
    hooks: HookSpec = Field(default_factory=HookSpec)

    @field_validator("effects")
    @classmethod
    def _effects(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_need_map(value, limit=1.0)

    @field_validator("per_tick")
    @classmethod
    def _per_tick(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_need_map(value, limit=0.05)

    @field_validator("consumes", "produces")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [k for k, v in value.items() if not 0 < v <= 100]
        if bad:
            raise ValueError(f"counts must lie in [1, 100]: {bad}")
        return value


def _check_need_map(value: dict[str, float], limit: float) -> dict[str, float]:
    unknown = sorted(set(value) - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown needs {unknown}; use {list(NEEDS)}")
    bad = [k for k, v in value.items() if not -limit <= v <= limit]
    if bad:
        raise ValueError(f"values must lie in [-{limit}, {limit}]: {bad}")
    return value


class ManifestModel(_Strict):
    """The whole file: a format version, object types and affordances."""

    version: int
    objects: dict[str, ObjectSpec] = Field(min_length=1)
    affordances: dict[str, AffordanceSpec] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != MANIFEST_VERSION:
            raise ValueError(f"unsupported version {value}; this package reads version {MANIFEST_VERSION}")
        return value


class Manifest(BaseModel):
    """A validated manifest with compiled preconditions and the file's SHA-256."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: str
    sha256: str
    objects: dict[str, ObjectSpec]
    affordances: dict[str, AffordanceSpec]
    preconditions: dict[str, Expression]

    @property
    def object_types(self) -> list[str]:
        """Object type names in manifest order (their index is the type id)."""
        return list(self.objects)

    @property
    def affordance_ids(self) -> list[str]:
        return list(self.affordances)


def _cross_check(model: ManifestModel, prices: set[str] | None) -> tuple[list[str], dict[str, Expression]]:
    problems: list[str] = []
    compiled: dict[str, Expression] = {}
    glyphs: dict[str, str] = {}
    for name, obj in model.objects.items():
        where = f"objects.{name}"
        if not _IDENTIFIER.fullmatch(name):
            problems.append(f"{where}: object type {name!r} must be an identifier (letters, digits, _)")
        for field in ("stock", "restock"):
            bad_keys = [k for k in getattr(obj, field) if not _IDENTIFIER.fullmatch(k)]
            if bad_keys:
                problems.append(f"{where}.{field}: keys {bad_keys} must be identifiers (letters, digits, _)")
        if obj.glyph in RESERVED_GLYPHS:
            problems.append(f"{where}.glyph: {obj.glyph!r} is reserved for terrain")
        if obj.glyph in glyphs:
            problems.append(f"{where}.glyph: {obj.glyph!r} is already used by {glyphs[obj.glyph]}")
        glyphs[obj.glyph] = name
        extra = sorted(set(obj.restock) - set(obj.stock))
        if extra:
            problems.append(f"{where}.restock: keys {extra} are not in stock")
    for aid, aff in model.affordances.items():
        where = f"affordances.{aid}"
        if not _IDENTIFIER.fullmatch(aid):
            problems.append(f"{where}: affordance id {aid!r} must be an identifier (letters, digits, _)")
        if aid in model.objects:
            problems.append(f"{where}: id {aid!r} is also an object type; ids must be unique")
        host = model.objects.get(aff.object)
        if host is None:
            problems.append(f"{where}.object: unknown object type {aff.object!r}")
        elif missing := sorted(set(aff.consumes) - set(host.stock)):
            problems.append(f"{where}.consumes: {aff.object} has no stock {missing}")
        if aff.produces and aff.produces_into is None:
            problems.append(f"{where}.produces_into: required when produces is set")
        if aff.produces_into is not None and not aff.produces:
            problems.append(f"{where}.produces_into: set but produces is empty; add produces or remove it")
        if aff.produces_into is not None:
            target = model.objects.get(aff.produces_into)
            if target is None:
                problems.append(f"{where}.produces_into: unknown object type {aff.produces_into!r}")
            elif missing := sorted(set(aff.produces) - set(target.stock)):
                problems.append(f"{where}.produces: {aff.produces_into} has no stock {missing}")
        if aff.price is not None and prices is not None and aff.price not in prices:
            problems.append(f"{where}.price: {aff.price!r} is not an economy price {sorted(prices)}")
        for stage in ("before", "after", "fail"):
            for hook in getattr(aff.hooks, stage):
                if hook not in HOOK_ALLOWLIST[stage]:
                    allowed = sorted(HOOK_ALLOWLIST[stage]) or "none"
                    problems.append(f"{where}.hooks.{stage}: {hook!r} is not allowed (allowed: {allowed})")
        if aff.preconditions is not None:
            try:
                expr = compile_expression(aff.preconditions)
            except ExpressionError as exc:
                problems.append(f"{where}.preconditions: {exc}")
                continue
            for key in sorted(expr.names):
                root, _, attr = key.partition(".")
                # with an unknown object the .object line above says it all
                if host is not None and root in ATTRIBUTE_ROOTS and attr not in host.stock:
                    problems.append(f"{where}.preconditions: {aff.object} has no stock {attr!r}")
            compiled[aid] = expr
    return problems, compiled


def load_manifest(path: str | Path, prices: set[str] | None = None) -> Manifest:
    """Load and validate a manifest.

    Args:
        path: the YAML file.
        prices: economy price keys that ``price`` may name; ``None`` skips that check.

    Raises:
        ManifestError: one line per problem, each naming file, entry and field.

    """
    path = Path(path)
    raw, data = read_mapping(path, ManifestError, "a mapping with version, objects, affordances")
    model = validate(ManifestModel, data, str(path), ManifestError)
    problems, compiled = _cross_check(model, prices)
    if problems:
        raise ManifestError("\n".join(f"{path}: {p}" for p in problems))
    return Manifest(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        objects=model.objects,
        affordances=model.affordances,
        preconditions=compiled,
    )
