"""The three observation variants, thin wrappers over the one :class:`Encoder`.

* ``full``: 11x11 map with a blocked (wall or object) channel, one channel per object type, other agents and
  object occupancy; then self features and the social snippet.
* ``hybrid`` (default): a slimmer map (blocked, any object, agents, occupancy), plus
  landmark direction/distance fields; then self features and the social snippet.
* ``compact``: no map; self features, landmarks and the social snippet.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from townlet_env.observations.encoder import Encoder
from townlet_env.observations.features import landmark_names, self_feature_names, social_names
from townlet_env.observations.layout import LAYOUT_VERSION, VARIANTS, ObservationLayout
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState

SIGNED_SUFFIXES = ("_dy", "_dx", "_trust", "_familiarity")  # features that may be negative


class VariantError(ValueError):
    """An unknown observation variant was asked for."""


class Variant:
    """Encodes every seat's observation vector for one variant."""

    def __init__(self, rules: Rules, name: str, n_actions: int) -> None:
        if name not in VARIANTS:
            raise VariantError(f"unknown obs_variant {name!r}; choose one of {list(VARIANTS)}")
        types = rules.manifest.object_types
        window = rules.config.observations.window
        channels: tuple[str, ...]
        if name == "full":
            channels = ("blocked", *(f"object_{t}" for t in types), "agents", "occupied")
        elif name == "hybrid":
            channels = ("blocked", "objects", "agents", "occupied")
        else:
            channels, window = (), 0
        self.use_landmarks = name != "full"
        self._self = self_feature_names(rules)
        self._marks = landmark_names(rules) if self.use_landmarks else []
        self._social = social_names(rules)
        self.layout = ObservationLayout(
            variant=name,
            version=LAYOUT_VERSION,
            map_channels=channels,
            window=window,
            feature_names=tuple(self._self + self._marks + self._social),
            action_mode=rules.config.action_mode,
            n_actions=n_actions,
        )
        self.encoder = Encoder(rules, self.layout)

    def encode(self, state: WorldState) -> np.ndarray:
        """float32[N, size]: a fresh array every call (callers may keep it)."""
        layout = self.layout
        out = np.empty((state.n_agents, layout.size), dtype=np.float32)
        self.encoder.encode(state, out)
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-element (low, high) of the observation vector."""
        layout = self.layout
        low = np.zeros(layout.size, dtype=np.float32)
        high = np.ones(layout.size, dtype=np.float32)
        for i, name in enumerate(layout.feature_names, start=layout.map_size):
            if name == "wallet":
                high[i] = np.inf
            elif name in ("time_sin", "time_cos", "trust_max", "work_slack") or name.endswith(SIGNED_SUFFIXES):
                low[i] = -1.0
        return low, high

    def space(self) -> spaces.Dict:
        low, high = self.bounds()
        return spaces.Dict(
            {
                "observation": spaces.Box(low=low, high=high, dtype=np.float32),
                "action_mask": spaces.Box(low=0, high=1, shape=(self.layout.n_actions,), dtype=np.int8),
            }
        )
