"""Reading a YAML file into a validated model, with errors that name the file and the key.

Configs, manifests and training experiments all load the same way: read the bytes, parse
them with :class:`UniqueKeyLoader` (``yaml.safe_load`` silently keeps the last of two equal
keys, so two affordances or config sections with one name would merge without a word; this
loader refuses them, naming the line of each copy), require a mapping at the top level,
and validate it with a pydantic model. Every failure on that path becomes one exception of
the caller's error class whose message has one line per problem, ``FILE: dotted.key:
message``, so a user can go straight to the offending line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

#: What the top level of a file must be, said in the error when it is not.
MAPPING = "a mapping of keys to values"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, e.g. two affordances with one id."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; SafeLoader reports it below
                continue
            if first is not None:
                raise DuplicateKeyError(
                    f"line {line}: duplicate key {key!r} (first on line {first}); "
                    "ids and fields must be unique, so rename or merge one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str | bytes) -> Any:
    """Parse YAML text with :class:`UniqueKeyLoader` (a ``SafeLoader``: no arbitrary objects).

    Raises:
        DuplicateKeyError: a mapping repeats a key.
        yaml.YAMLError: the text is not valid YAML.

    """
    return yaml.load(text, Loader=UniqueKeyLoader)


def format_validation_error(source: str, err: ValidationError, overrides: Mapping[str, Any] | None = None) -> str:
    """One line per problem: ``source: dotted.key: message``.

    A problem in one of ``overrides`` (keyword arguments merged over the file) blames the
    keyword argument and its value instead of the file: ``obs_variant='bogus' (keyword
    argument): choose 'full', 'hybrid' or 'compact'``.
    """
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against docs/environment.md)"
        elif e["type"] == "literal_error":
            msg = f"choose {e.get('ctx', {}).get('expected', msg)}"
        found, value = _lookup(overrides or {}, e["loc"])
        where = f"{loc}={value!r} (keyword argument)" if found else f"{source}: {loc}"
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def _lookup(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    """Whether ``loc`` names a value inside ``data``, and that value."""
    value: Any = data
    for key in loc:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return bool(loc), value


def read_mapping(path: Path, error: type[ValueError], top_level: str = MAPPING) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its YAML mapping.

    Args:
        path: the YAML file.
        error: the exception class to raise (``ConfigError``, ``ManifestError``, ...).
        top_level: what the top level must be, for the message when it is not a mapping.

    Raises:
        error: the file is missing or unreadable, is not valid YAML, repeats a key, or its
            top level is not a mapping; the message starts with the path.

    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = load_yaml(raw)
    except DuplicateKeyError as exc:
        raise error(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise error(f"{path}: not valid YAML: {detail}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be {top_level}")
    return raw, data


def validate(
    model: type[ModelT], data: Any, source: str, error: type[ValueError], overrides: Mapping[str, Any] | None = None
) -> ModelT:
    """``model.model_validate(data)``, with a validation failure raised as ``error``.

    Args:
        model: the pydantic model.
        data: the merged mapping to validate.
        source: the file (or other origin) that ``data`` came from, named in messages.
        error: the exception class to raise.
        overrides: keyword arguments merged into ``data``; problems in them blame the argument.

    Raises:
        error: one line per problem, each naming ``source`` (or the keyword argument) and the dotted key.

    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(source, exc, overrides)) from None
