"""Strict YAML reading shared by configs, manifests and experiments.

``yaml.safe_load`` silently keeps the last of two equal keys, so two affordances (or two
config sections) with the same name would merge without a word; this loader refuses them,
naming the line of each copy. Like ``safe_load`` it builds plain data only.
"""

from __future__ import annotations

from typing import Any

import yaml


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
