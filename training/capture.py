"""Capture: roll the scripted expert over scenarios and seeds into a versioned dataset.

Reads top to bottom: build each scenario's town, reset it with the seed, apply the
scenario's reset tweak (then one unrecorded ``WAIT`` tick), and step until truncation,
recording every *present* seat's observation, mask, the expert's action, the guarded
reward and whether its agent-episode ended. A seat's agent-episode ends when its identity
ends (death or eviction; the seat then sits vacant and is not recorded until a new
identity arrives, which starts a new agent-episode) or when the day is truncated.

Run it: ``python -m training.capture OUT --seeds 0 1 2 --scenarios baseline contention``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

import townlet_env
from townlet_env.actions import Option, action_names
from townlet_env.config import TownConfig, deep_merge
from townlet_env.controllers import ExpertFactory, expert_actions, scripted_expert
from training.datasets import DatasetWriter
from training.expert import check_option_mode
from training.progress import Progress
from training.scenarios import SCENARIOS, Scenario, get_scenario

#: Town settings that a capture section must not set itself: the town config owns them.
TOWN_OWNED = ("obs_variant", "action_mode")


class CaptureConfig(BaseModel):
    """What to capture. Every scenario is run once per seed.

    The observation variant and the action mode are the town's: set them in ``overrides``
    (or, in an experiment, under ``town``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    seeds: tuple[int, ...] = tuple(range(8))
    max_ticks: int | None = Field(None, ge=2, description="None: the config's (one sim day)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="base config overrides for every scenario")
    expert_seed: int = Field(0, ge=0, description="expert RNG seed = expert_seed * 100003 + episode seed")

    @model_validator(mode="before")
    @classmethod
    def _town_owned(cls, data: Any) -> Any:
        owned = [key for key in TOWN_OWNED if isinstance(data, dict) and key in data]
        if owned:
            raise ValueError(f"{owned[0]} is a town setting: set it under town (or in capture overrides), not here")
        return data


def scenario_config(base: TownConfig, scenario: Scenario, cfg: CaptureConfig, seed: int) -> TownConfig:
    """The town config of one rollout: ``base`` with the scenario's overrides, the seed and the length."""
    fields: dict[str, Any] = {"seed": seed}
    if cfg.max_ticks is not None:
        fields["max_ticks"] = cfg.max_ticks
    config = TownConfig.model_validate(deep_merge(base.model_dump(), {**scenario.overrides(base), **fields}))
    check_option_mode(config, f"capture scenario {scenario.name!r}")
    return config


def rollout(
    town_cfg: TownConfig,
    scenario: Scenario,
    seed: int,
    expert_factory: ExpertFactory,
    expert_seed: int,
    on_tick: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One day of one scenario under the expert: shard arrays (see ``SHARD_ARRAYS``) and
    notes for the manifest (what the scenario's hook did, if it says). ``on_tick(1)`` is
    called after every tick (progress reports).

    Raises:
        ValueError: the expert chose an action its mask forbids (naming seat and tick).

    """
    env = townlet_env.parallel_env(town_cfg)
    town = env.unwrapped
    expert = expert_factory(town.rules, expert_seed)
    obs, infos = env.reset(seed=seed)
    if scenario.on_reset is not None:
        scenario.on_reset(town.world, town.rules, np.random.default_rng([seed, 7]))
        obs, _, _, _, infos = env.step(dict.fromkeys(env.agents, int(Option.WAIT)))
    hook = scenario.hook(town) if scenario.hook is not None else None
    open_eps: dict[int, dict[str, Any]] = {}
    episodes: list[dict[str, Any]] = []
    while env.agents:
        tick, generation = town.world.tick, town.world.generation.copy()
        mask = town.action_masks()
        acts = expert_actions(expert, town.world, mask)
        bad = np.flatnonzero(mask[np.arange(len(acts)), acts] == 0)
        if bad.size:
            raise ValueError(
                f"{scenario.name} seed {seed}: expert chose masked action {acts[bad[0]]} "
                f"for seat {bad[0]} at tick {tick}"
            )
        actions = {a: int(acts[town.seat_index[a]]) for a in env.agents}
        next_obs, rewards, terms, truncs, next_infos = env.step(actions)
        for agent, action in actions.items():
            if not infos[agent]["present"]:
                continue  # vacant seat: nothing to learn
            seat = town.seat_index[agent]
            ep = open_eps.setdefault(seat, {"seat": seat, "generation": int(generation[seat]), "rows": []})
            ep["rows"].append((obs[agent]["observation"], obs[agent]["action_mask"], action, rewards[agent], tick))
            ended = bool(next_infos[agent]["identity_ended"] or terms[agent])
            if ended or truncs[agent]:
                ep["truncated"] = not ended
                ep["final"] = next_obs[agent]
                episodes.append(open_eps.pop(seat))
        if hook is not None:
            hook(town.world)
        if on_tick is not None:
            on_tick(1)
        obs, infos = next_obs, next_infos
    if open_eps:
        raise RuntimeError(f"episodes left open after the day ended: seats {sorted(open_eps)}")
    summary = getattr(hook, "summary", None)
    notes = {"hook": summary()} if summary is not None else {}
    return _to_arrays(episodes), notes


def _to_arrays(episodes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    rows = [r for ep in episodes for r in ep["rows"]]
    lengths = [len(ep["rows"]) for ep in episodes]
    masks = np.stack([r[1] for r in rows]).astype(np.int8)
    done = np.zeros(len(rows), dtype=bool)
    done[np.cumsum(lengths) - 1] = True
    return {
        "observation": np.stack([r[0] for r in rows]).astype(np.float32),
        "action_mask": masks,
        "action": np.array([r[2] for r in rows], dtype=np.int64),
        "reward": np.array([r[3] for r in rows], dtype=np.float32),
        "done": done,
        "decision": masks.sum(axis=1) > 1,
        "episode": np.repeat(np.arange(len(episodes), dtype=np.int32), lengths),
        "tick": np.array([r[4] for r in rows], dtype=np.int32),
        "final_observation": np.stack([ep["final"]["observation"] for ep in episodes]).astype(np.float32),
        "final_action_mask": np.stack([ep["final"]["action_mask"] for ep in episodes]).astype(np.int8),
        "episode_seat": np.array([ep["seat"] for ep in episodes], dtype=np.int32),
        "episode_generation": np.array([ep["generation"] for ep in episodes], dtype=np.int32),
        "episode_truncated": np.array([ep["truncated"] for ep in episodes], dtype=bool),
    }


def capture(
    cfg: CaptureConfig,
    out: str | Path,
    *,
    expert_factory: ExpertFactory = scripted_expert,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Capture every ``(scenario, seed)`` of ``cfg`` into a dataset folder at ``out``."""
    base = townlet_env.make_config(**cfg.overrides)
    scenarios = [get_scenario(name) for name in cfg.scenarios]
    configs = {s.name: scenario_config(base, s, cfg, base.seed) for s in scenarios}
    layouts = {name: townlet_env.parallel_env(c).unwrapped.layout for name, c in configs.items()}
    signatures = {name: lay.signature() for name, lay in layouts.items()}
    first = next(iter(signatures.values()))
    if any(sig != first for sig in signatures.values()):
        raise ValueError("scenarios disagree on the observation layout; capture them into separate datasets")
    probe = expert_factory(townlet_env.parallel_env(base).unwrapped.rules, 0)
    header = {
        "townlet_version": townlet_env.__version__,
        "observation_signature": first,
        "action_mode": base.action_mode,
        "action_names": action_names(base.action_mode),
        "expert": {"class": f"{type(probe).__module__}.{type(probe).__qualname__}", "seed": cfg.expert_seed},
        "capture_config": cfg.model_dump(mode="json"),
        "base_config_identity": base.identity(),
        "scenarios": {
            s.name: {
                "description": s.description,
                "tags": list(s.tags),
                "state_tweak": s.on_reset.__name__ if s.on_reset else None,
                "tick_hook": s.hook.__name__ if s.hook else None,
                "config_identity": configs[s.name].identity(),
                "config": configs[s.name].model_dump(mode="json"),
            }
            for s in scenarios
        },
    }
    writer = DatasetWriter(out, header, overwrite=overwrite)
    progress = Progress("capture", len(cfg.seeds) * sum(c.max_ticks for c in configs.values()), "ticks")
    try:
        for scenario in scenarios:
            for seed in cfg.seeds:
                t0 = time.perf_counter()
                town_cfg = scenario_config(base, scenario, cfg, seed)
                expert_seed = cfg.expert_seed * 100003 + seed
                arrays, notes = rollout(town_cfg, scenario, seed, expert_factory, expert_seed, progress.advance)
                entry = writer.add(scenario.name, seed, arrays, notes)
                if log is not None:
                    log(
                        f"{entry['file']}: {entry['steps']} steps, {entry['decision_points']} decisions, "
                        f"{entry['episodes']} agent-episodes in {time.perf_counter() - t0:.1f}s"
                    )
        return writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        progress.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.capture", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(8)))
    parser.add_argument("--max-ticks", type=int, default=None)
    parser.add_argument("--obs-variant", default="hybrid", choices=["full", "hybrid", "compact"])
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    cfg = CaptureConfig(
        scenarios=tuple(args.scenarios),
        seeds=tuple(args.seeds),
        max_ticks=args.max_ticks,
        overrides={"obs_variant": args.obs_variant},
    )
    t0 = time.perf_counter()
    path = capture(cfg, args.out, overwrite=args.overwrite, log=print)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
