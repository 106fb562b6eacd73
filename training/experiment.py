"""Experiment configs: one YAML file chains capture -> bc -> anneal -> evaluate -> promote -> release.

Each section is the stage's own pydantic model (``extra="forbid"``), so a typo names the
section and key. ``town`` holds the config overrides every stage shares (observation
variant, agents, map, ...); the validator checks that the stages agree with it and with
each other (stage order, held-out seeds disjoint from training seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

import townlet_env
from townlet_env.config import ConfigError
from townlet_env.yamlfile import read_mapping, validate
from training.anneal import STAGE_SEED_STRIDE, AnnealConfig
from training.bc import BCConfig
from training.capture import TOWN_OWNED, CaptureConfig
from training.evaluate import EvalConfig
from training.expert import check_option_mode
from training.gate import GateConfig
from training.tracking import TrackingConfig

StageName = Literal["capture", "bc", "anneal", "evaluate", "promote", "release"]
STAGE_ORDER: tuple[StageName, ...] = ("capture", "bc", "anneal", "evaluate", "promote", "release")
#: A stage needs the outputs of these earlier stages when it runs.
REQUIRES: dict[str, tuple[str, ...]] = {
    "capture": (),
    "bc": ("capture",),
    "anneal": (),
    "evaluate": ("anneal",),
    "promote": ("anneal",),
    "release": ("promote",),
}


class EvaluateConfig(BaseModel):
    """The final evaluation of the released policy against scripted and random play."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eval: EvalConfig = EvalConfig()
    video_ticks: int = Field(180, ge=0, description="ticks of rollout video per policy (0: none)")


class ReleaseConfig(BaseModel):
    """The release stage: serve the promoted candidate (the registry is ``promote.registry``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("pipeline release", description="recorded in the registry's history")


class ExperimentConfig(BaseModel):
    """A whole experiment; see ``experiments/poc.yaml`` for a commented example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0, description="seeds every stage's global generators (see training/determinism.py)")
    torch_threads: int = Field(1, ge=1, description="torch threads in every stage: results depend on the count")
    stages: tuple[StageName, ...] = STAGE_ORDER
    town: dict[str, Any] = Field(default_factory=dict, description="config overrides shared by every stage")
    capture: CaptureConfig = CaptureConfig()
    bc: BCConfig = BCConfig()
    anneal: AnnealConfig = AnnealConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    promote: GateConfig = GateConfig()
    release: ReleaseConfig = ReleaseConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        order = [STAGE_ORDER.index(s) for s in self.stages]
        if order != sorted(set(order)):
            raise ValueError(f"stages must be a subsequence of {list(STAGE_ORDER)} without repeats")
        for stage in self.stages:
            missing = [r for r in REQUIRES[stage] if r not in self.stages]
            if missing:
                raise ValueError(f"stage {stage!r} needs {missing} in stages")
        try:
            town = townlet_env.make_config(**self.town)
        except ConfigError as exc:
            raise ValueError(f"town: {exc}") from None
        check_option_mode(town, "town.action_mode")
        for where, overrides in (("capture.overrides", self.capture.overrides), ("anneal.town", self.anneal.town)):
            for key in TOWN_OWNED:
                if key in overrides:
                    raise ValueError(f"{where}.{key}: every stage plays the same town; set {key} once under town")
        clash = set(self.evaluate.eval.seeds) & set(self.capture.seeds) if "capture" in self.stages else set()
        if clash:
            raise ValueError(f"evaluate.eval.seeds {sorted(clash)} are also capture seeds; held-out means unseen")
        self._gate_seeds_held_out()
        return self

    def _gate_seeds_held_out(self) -> None:
        if "promote" not in self.stages:
            return
        seen = set(self.evaluate.eval.seeds) | set(self.anneal.eval.seeds)
        seen |= set(self.capture.seeds) if "capture" in self.stages else set()
        clash = set(self.promote.seeds) & seen
        if clash:
            raise ValueError(f"promote.seeds {sorted(clash)} are capture or evaluation seeds; gate on unseen towns")
        top = self.anneal.seed + STAGE_SEED_STRIDE * (len(self.anneal.shares) + 1)
        trained = sorted(s for s in self.promote.seeds if self.anneal.seed <= s < top)
        if trained:
            raise ValueError(f"promote.seeds {trained} lie in the anneal's training seeds [{self.anneal.seed}, {top})")

    def stage_town(self, stage: StageName) -> dict[str, Any]:
        """The town overrides a stage runs with."""
        if stage == "anneal":
            return {**self.town, **self.anneal.town}
        return dict(self.town)

    def capture_config(self) -> CaptureConfig:
        """The capture section with the shared town overrides under its own."""
        return self.capture.model_copy(update={"overrides": {**self.town, **self.capture.overrides}})

    def anneal_config(self) -> AnnealConfig:
        return self.anneal.model_copy(update={"town": self.stage_town("anneal")})


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML.

    Raises:
        ConfigError: naming the file and each offending key.

    """
    source = Path(path)
    _, data = read_mapping(source, ConfigError)
    return validate(ExperimentConfig, data, str(source), ConfigError)
