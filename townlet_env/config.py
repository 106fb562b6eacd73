"""Typed configuration: pydantic models (frozen, ``extra="forbid"``) and YAML loading.

Every config has a ``config_id`` (a human label) and an :meth:`TownConfig.identity` hash
that covers the config values and the bytes of the map and affordance manifest it names,
so two runs with the same identity simulate the same town.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from townlet_env.narration.config import NarrationConfig
from townlet_env.perturbations.config import PerturbationConfig
from townlet_env.social_config import QueueConfig, RelationshipConfig
from townlet_env.stability.config import StabilityConfig
from townlet_env.strict import Strict
from townlet_env.yamlfile import read_mapping, validate

#: The one time constant: 1 tick is 1 sim minute, so a sim day is 1,440 ticks.
TICKS_PER_DAY = 1440
#: Needs, in the column order used by every array in the package.
NEEDS: tuple[str, ...] = ("hunger", "hygiene", "energy")

NeedName = Literal["hunger", "hygiene", "energy"]
ObsVariant = Literal["full", "hybrid", "compact"]
ActionMode = Literal["option", "primitive"]
SocialStage = Literal["OFF", "C1", "C2"]

DATA_DIR = Path(str(resources.files("townlet_env") / "data"))


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the file and the key."""


class NeedsConfig(Strict):
    """Per-tick decay of each need (satiation in [0, 1], 1 = fully satisfied)."""

    decay: dict[NeedName, float] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "hunger": 0.0009,
            "hygiene": 0.0004,
            "energy": 0.0005,
        }
    )
    initial_low: float = Field(0.6, ge=0.0, le=1.0)
    initial_high: float = Field(0.9, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> NeedsConfig:
        missing = set(NEEDS) - set(self.decay)
        if missing:
            raise ValueError(f"decay is missing needs {sorted(missing)}")
        if any(not 0.0 <= v <= 0.1 for v in self.decay.values()):
            raise ValueError("decay rates must lie in [0, 0.1] per tick")
        if self.initial_low > self.initial_high:
            raise ValueError("initial_low must not exceed initial_high")
        return self


class JobConfig(Strict):
    """A daily shift at a workplace object type, paid per tick of work."""

    workplace: str
    affordance: str
    start: int = Field(ge=0, lt=TICKS_PER_DAY, description="minute of day the shift starts")
    end: int = Field(gt=0, le=TICKS_PER_DAY, description="minute of day the shift ends")
    wage: float = Field(0.01, ge=0.0, le=1.0, description="money per tick worked")
    late_penalty: float = Field(0.1, ge=0.0)
    absence_penalty: float = Field(0.2, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> JobConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start (shifts do not cross midnight)")
        return self


class EmploymentConfig(Strict):
    grace_ticks: int = Field(10, ge=0, le=120)
    absent_after_ticks: int = Field(60, ge=1, le=480)


class EconomyConfig(Strict):
    """Prices are named so affordances can refer to them (``price: meal``)."""

    prices: dict[str, float] = Field(default_factory=lambda: {"meal": 1.0, "ingredients": 0.6, "shower": 0.3})
    starting_wallet: float = Field(4.0, ge=0.0)
    restock_minute: int = Field(300, ge=0, lt=TICKS_PER_DAY)
    meals_per_day: float = Field(3.0, gt=0.0, description="basket: meals an agent buys a day")
    showers_per_day: float = Field(1.0, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> EconomyConfig:
        bad = [k for k, v in self.prices.items() if v < 0]
        if bad:
            raise ValueError(f"prices must be >= 0: {bad}")
        return self


class LifecycleConfig(Strict):
    faint_after_ticks: int = Field(30, ge=1, description="ticks a need may sit at 0")
    respawn: bool = Field(True, description="refill a seat with a new identity after a death")
    respawn_delay: tuple[int, int] = (5, 20)
    max_absent_shifts: int = Field(3, ge=1, description="absences in 7 days before eviction")
    daily_exit_cap: int = Field(2, ge=0)
    respawn_needs: float = Field(0.8, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> LifecycleConfig:
        lo, hi = self.respawn_delay
        if not 0 < lo <= hi:
            raise ValueError("respawn_delay must be (low, high) with 0 < low <= high")
        return self


class ClipConfig(Strict):
    per_tick: float = Field(0.1, gt=0.0, le=10.0)
    per_episode: float = Field(50.0, gt=0.0)
    death_window_ticks: int = Field(10, ge=0, le=1440)


class RewardConfig(Strict):
    """Per-tick reward terms; see docs/environment.md for the formulas."""

    needs_weights: dict[NeedName, float] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "hunger": 1.0,
            "hygiene": 0.6,
            "energy": 0.8,
        }
    )
    needs_scale: float = Field(0.02, ge=0.0, le=1.0)
    survival: float = Field(0.005, ge=0.0, le=0.1)
    wage_scale: float = Field(1.0, ge=0.0, le=10.0)
    punctuality_bonus: float = Field(0.05, ge=0.0, le=0.5)
    lateness_penalty: float = Field(-0.05, le=0.0)
    social_stage: SocialStage = "OFF"  # OFF: no social term; C1: successful chats pay; C2: C1 + avoid_bonus
    avoid_bonus: float = Field(0.005, ge=0.0, le=0.02)  # C2: paid per RIVAL_AVOIDED event
    chat_base: float = Field(0.01, ge=0.0, le=0.1)
    chat_trust: float = Field(0.03, ge=0.0, le=0.1)
    chat_familiarity: float = Field(0.02, ge=0.0, le=0.1)
    faint_penalty: float = Field(-1.0, ge=-5.0, le=0.0)
    eviction_penalty: float = Field(-2.0, ge=-5.0, le=0.0)
    clip: ClipConfig = Field(default_factory=ClipConfig)

    @model_validator(mode="after")
    def _check(self) -> RewardConfig:
        if set(self.needs_weights) != set(NEEDS):
            raise ValueError(f"needs_weights must name exactly {list(NEEDS)}")
        return self


class ObservationConfig(Strict):
    window: int = Field(11, ge=3, le=31, description="egocentric map window (odd)")
    social_friends: int = Field(2, ge=0, le=8)
    social_rivals: int = Field(2, ge=0, le=8)

    @model_validator(mode="after")
    def _check(self) -> ObservationConfig:
        if self.window % 2 == 0:
            raise ValueError("window must be odd so the agent sits at its centre")
        return self


class OptionConfig(Strict):
    """How option-mode intents map onto the manifest, and the commit window."""

    commit_ticks: int = Field(15, ge=1, le=240)
    hard_need_threshold: float = Field(0.1, ge=0.0, le=1.0)
    affordances: dict[Literal["eat", "cook", "wash", "sleep"], str] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "eat": "eat_meal",
            "cook": "cook_meal",
            "wash": "take_shower",
            "sleep": "sleep",
        }
    )


class TownConfig(Strict):
    """The whole simulation config. Paths are resolved against the shipped data folder."""

    config_id: str = Field(min_length=1)
    seed: int = Field(0, ge=0)
    map: str = "town48"
    manifest: str = "affordances.yaml"
    num_agents: int = Field(8, ge=1, le=512)
    max_ticks: int = Field(TICKS_PER_DAY, ge=1)
    action_mode: ActionMode = "option"
    obs_variant: ObsVariant = "hybrid"
    needs: NeedsConfig = Field(default_factory=NeedsConfig)
    jobs: dict[str, JobConfig] = Field(default_factory=dict)
    employment: EmploymentConfig = Field(default_factory=EmploymentConfig)
    economy: EconomyConfig = Field(default_factory=EconomyConfig)
    queues: QueueConfig = Field(default_factory=QueueConfig)
    relationships: RelationshipConfig = Field(default_factory=RelationshipConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    rewards: RewardConfig = Field(default_factory=RewardConfig)
    observations: ObservationConfig = Field(default_factory=ObservationConfig)
    options: OptionConfig = Field(default_factory=OptionConfig)
    stability: StabilityConfig = Field(default_factory=StabilityConfig)
    narration: NarrationConfig = Field(default_factory=NarrationConfig)
    perturbations: PerturbationConfig = Field(default_factory=PerturbationConfig)

    @model_validator(mode="after")
    def _check_perturbations(self) -> TownConfig:
        self.perturbations.check_prices(self.economy.prices)
        return self

    def map_path(self) -> Path:
        """The ASCII map file: a shipped map name, or a path to a ``.txt`` file."""
        path = Path(self.map)
        return path if path.suffix == ".txt" else DATA_DIR / "maps" / f"{self.map}.txt"

    def manifest_path(self) -> Path:
        path = Path(self.manifest)
        return path if path.is_absolute() or path.exists() else DATA_DIR / self.manifest

    def identity(self) -> str:
        """SHA-256 over the config values and the map and manifest bytes.

        The ``stability`` and ``narration`` sections are left out: they decide when operators
        are alerted and what they are told, not what the town does, so retuning them keeps
        snapshots and datasets valid. So is a disabled ``perturbations`` section, which
        changes nothing either.
        """
        skip = {"stability", "narration"} | (set() if self.perturbations.enabled else {"perturbations"})
        values = self.model_dump(mode="json", exclude=skip)
        digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode())
        digest.update(self.map_path().read_bytes())
        digest.update(self.manifest_path().read_bytes())
        return digest.hexdigest()

    def reward_config_id(self) -> str:
        """A short hash (16 hex digits) of the ``rewards`` section: the golden sign-off and
        the release registry compare it to tell a reward change.
        """
        rewards = json.dumps(self.rewards.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(rewards).hexdigest()[:16]


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; nested mappings merge key by key, other values replace."""
    out = dict(base)
    for key, value in overrides.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, **overrides: Any) -> TownConfig:
    """Load a town config from YAML (default: the shipped ``default.yaml``).

    Args:
        path: YAML file, or the name of a shipped config (``"crowded"`` loads
            ``townlet_env/data/crowded.yaml``); ``None`` loads ``townlet_env/data/default.yaml``.
        **overrides: top-level keys to replace; nested mappings are merged.

    Raises:
        ConfigError: naming the file and every offending key.

    """
    source = Path(path) if path is not None else DATA_DIR / "default.yaml"
    shipped = DATA_DIR / f"{source}.yaml"
    if path is not None and not source.suffix and not source.exists() and shipped.exists():
        source = shipped  # a shipped config by name: "default", "crowded"
    _, data = read_mapping(source, ConfigError)
    return validate(TownConfig, deep_merge(data, overrides), str(source), ConfigError, overrides)


def make_config(**overrides: Any) -> TownConfig:
    """The default config with ``overrides`` merged in (``make_config(num_agents=16)``)."""
    return load_config(None, **overrides)
