"""Versioned observation layouts and the signature check checkpoints use.

An observation is one float32 vector: the egocentric map (``C x w x w``, channel-major)
first, then named features. :class:`ObservationLayout` publishes where everything is, so
a policy can split the map back out for a CNN, and :meth:`ObservationLayout.signature`
is what a checkpoint records; :func:`check_signature` refuses any other layout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

#: Bump when any variant's layout changes; goldens and checkpoints record it.
LAYOUT_VERSION = 2  # 2: job one-hot, work_dist and work_slack self features
VARIANTS = ("full", "hybrid", "compact")


class ObservationSignatureError(ValueError):
    """A policy or checkpoint expects a different observation layout."""


@dataclass(frozen=True)
class ObservationLayout:
    variant: str
    version: int
    map_channels: tuple[str, ...]
    window: int  # 0 when the variant has no map
    feature_names: tuple[str, ...]
    action_mode: str
    n_actions: int

    @cached_property
    def map_shape(self) -> tuple[int, int, int]:
        return (len(self.map_channels), self.window, self.window)

    @cached_property
    def map_size(self) -> int:
        c, h, w = self.map_shape
        return c * h * w

    @cached_property
    def size(self) -> int:
        return self.map_size + len(self.feature_names)

    @property
    def map_slice(self) -> slice:
        return slice(0, self.map_size)

    @property
    def feature_slice(self) -> slice:
        return slice(self.map_size, self.size)

    def index(self, feature: str) -> int:
        """Position of a named feature in the observation vector."""
        return self.map_size + self.feature_names.index(feature)

    def signature(self) -> dict[str, object]:
        """What a checkpoint stores: variant, version, shapes, names and a hash of them."""
        body = asdict(self)
        body["map_shape"] = list(self.map_shape)
        body["size"] = self.size
        body["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, default=list).encode()).hexdigest()[:16]
        return body


def check_signature(expected: dict[str, object], layout: ObservationLayout) -> None:
    """Raise :class:`ObservationSignatureError` unless ``layout`` matches ``expected``.

    The message names each field that differs, e.g. a checkpoint trained on ``hybrid``
    loaded into a ``compact`` environment.
    """
    actual = layout.signature()
    diffs = [
        f"{key}: expected {expected.get(key)!r}, environment has {actual[key]!r}"
        for key in ("variant", "version", "action_mode", "n_actions", "map_shape", "size", "hash")
        if expected.get(key) != actual[key]
    ]
    if diffs:
        raise ObservationSignatureError(
            "observation signature mismatch (re-train, or make the env with the checkpoint's "
            "obs_variant/action_mode): " + "; ".join(diffs)
        )
