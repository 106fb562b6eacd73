"""Rules as data: the config, manifest and map compiled into arrays the systems index.

Everything the systems need per affordance, job or object type is an array row here, so a
system handles every agent with a few numpy calls instead of per-agent Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from townlet_env.actions import Option
from townlet_env.config import NEEDS, TownConfig
from townlet_env.expressions import Expression
from townlet_env.manifest import Manifest, load_manifest
from townlet_env.world.map import TownMap, parse_map


class RulesError(ValueError):
    """Config and manifest disagree (an unknown affordance, job or price)."""


@dataclass(frozen=True)
class Rules:
    config: TownConfig
    option_mode: bool  # config.action_mode == "option"; the code reads this, never the string
    manifest: Manifest
    town: TownMap
    stock_keys: tuple[str, ...]
    # per object type
    type_capacity: np.ndarray  # int8[T]
    type_restock: np.ndarray  # int32[T, S], -1 = no restock
    type_default_aff: np.ndarray  # int16[T]: first affordance of the type (primitive interact)
    # per affordance
    aff_type: np.ndarray  # int16[A]
    aff_duration: np.ndarray  # int32[A]
    aff_price: np.ndarray  # float32[A]
    aff_effects: np.ndarray  # float32[A, 3]
    aff_per_tick: np.ndarray  # float32[A, 3]
    aff_consumes: np.ndarray  # int32[A, S]
    aff_produces: np.ndarray  # int32[A, S]
    aff_produce_target: np.ndarray  # int32[A, M]: object receiving produce, per source object
    aff_shared_meal: np.ndarray  # bool[A]
    aff_need: np.ndarray  # int64[A]: the need the affordance serves most (its largest effect), -1 none
    aff_precondition: tuple[Expression | None, ...]
    # per job
    job_names: tuple[str, ...]
    job_start: np.ndarray  # int32[J]
    job_end: np.ndarray
    job_wage: np.ndarray  # float32[J]
    job_late_penalty: np.ndarray
    job_absence_penalty: np.ndarray
    job_type: np.ndarray  # int16[J] workplace object type
    job_affordance: np.ndarray  # int16[J]
    # option affordances (eat, cook, wash, sleep) as affordance indices
    opt_eat: int
    opt_cook: int
    opt_wash: int
    opt_sleep: int
    option_price: np.ndarray  # float32[3]: price of eat, cook, wash
    option_type: np.ndarray  # int64[3]: object type of eat, cook, wash
    option_affordance: np.ndarray  # int16[8]: affordance per Option (-1 none; WORK per job)
    decay: np.ndarray  # float32[3]
    need_weights: np.ndarray  # float32[3]

    @property
    def n_affordances(self) -> int:
        return len(self.aff_type)

    def daily_basket(self) -> float:
        """Money an agent spends a day on meals and hygiene at list prices."""
        eco = self.config.economy
        meal = float(self.aff_price[self.opt_eat])
        shower = float(self.aff_price[self.opt_wash])
        return eco.meals_per_day * meal + eco.showers_per_day * shower


def _served_need(effects: np.ndarray) -> int:
    """The need column an affordance's completion raises most, or -1 when it raises none."""
    return int(np.argmax(effects)) if effects.max() > 0 else -1


def build_rules(config: TownConfig) -> Rules:
    """Load the manifest and map named by ``config`` and cross-check the three."""
    manifest = load_manifest(config.manifest_path(), prices=set(config.economy.prices))
    town = parse_map(config.map_path(), manifest)
    types = manifest.object_types
    affs = manifest.affordance_ids
    stock_keys = tuple(sorted({k for o in manifest.objects.values() for k in o.stock}))
    s_index = {k: i for i, k in enumerate(stock_keys)}
    n_a, n_s, n_m = len(affs), len(stock_keys), len(town.obj_type)

    def need_vec(values: dict[str, float]) -> np.ndarray:
        return np.array([values.get(n, 0.0) for n in NEEDS], dtype=np.float32)

    def stock_vec(values: dict[str, int], fill: int = 0) -> np.ndarray:
        out = np.full(n_s, fill, dtype=np.int32)
        for key, val in values.items():
            out[s_index[key]] = val
        return out

    specs = [manifest.affordances[a] for a in affs]
    produce_target = np.full((n_a, n_m), -1, dtype=np.int32)
    for a, spec in enumerate(specs):
        if spec.produces_into is None:
            continue
        targets = np.flatnonzero(town.obj_type == types.index(spec.produces_into))
        if len(targets) == 0:
            continue
        for m in range(n_m):  # nearest target object by Manhattan distance
            d = np.abs(town.obj_pos[targets] - town.obj_pos[m]).sum(axis=1)
            produce_target[a, m] = targets[int(np.argmin(d))]

    problems = []
    for option_name, aff_id in config.options.affordances.items():
        if aff_id not in manifest.affordances:
            problems.append(f"options.affordances.{option_name}: unknown affordance {aff_id!r}")
    for name, job in config.jobs.items():
        if job.workplace not in manifest.objects:
            problems.append(f"jobs.{name}.workplace: unknown object type {job.workplace!r}")
        elif job.affordance not in manifest.affordances:
            problems.append(f"jobs.{name}.affordance: unknown affordance {job.affordance!r}")
        elif manifest.affordances[job.affordance].object != job.workplace:
            problems.append(f"jobs.{name}.affordance: {job.affordance!r} is not used at {job.workplace}")
    if "bed" not in manifest.objects:
        problems.append("manifest: an object type named 'bed' is required (homes sleep there)")
    if problems:
        raise RulesError("\n".join(f"{config.config_id}: {p}" for p in problems))

    # Jobs in name order: a config's identity hashes its keys sorted, so the order a YAML file
    # happens to list them in must not change which seat gets which job (or the layout).
    job_names = tuple(sorted(config.jobs))
    jobs = [config.jobs[name] for name in job_names]
    opt = config.options.affordances
    by_option: dict[str, str] = {str(k): v for k, v in opt.items()}  # options with no entry run none
    opt_specs = [manifest.affordances[opt[k]] for k in ("eat", "cook", "wash")]
    return Rules(
        config=config,
        option_mode=config.action_mode == "option",
        manifest=manifest,
        town=town,
        stock_keys=stock_keys,
        type_capacity=np.array([o.capacity for o in manifest.objects.values()], dtype=np.int8),
        type_default_aff=np.array(
            [next((i for i, s in enumerate(specs) if s.object == t), -1) for t in types], dtype=np.int16
        ),
        type_restock=np.stack([stock_vec(o.restock, -1) for o in manifest.objects.values()]),
        aff_type=np.array([types.index(s.object) for s in specs], dtype=np.int16),
        aff_duration=np.array([s.duration for s in specs], dtype=np.int32),
        aff_price=np.array([config.economy.prices[s.price] if s.price else 0.0 for s in specs], dtype=np.float32),
        aff_effects=np.stack([need_vec(s.effects) for s in specs]),
        aff_per_tick=np.stack([need_vec(s.per_tick) for s in specs]),
        aff_consumes=np.stack([stock_vec(s.consumes) for s in specs]),
        aff_produces=np.stack([stock_vec(s.produces) for s in specs]),
        aff_produce_target=produce_target,
        aff_shared_meal=np.array(["shared_meal" in s.hooks.after for s in specs]),
        aff_need=np.array([_served_need(need_vec(s.effects)) for s in specs], dtype=np.int64),
        aff_precondition=tuple(manifest.preconditions.get(a) for a in affs),
        job_names=job_names,
        job_start=np.array([j.start for j in jobs], dtype=np.int32),
        job_end=np.array([j.end for j in jobs], dtype=np.int32),
        job_wage=np.array([j.wage for j in jobs], dtype=np.float32),
        job_late_penalty=np.array([j.late_penalty for j in jobs], dtype=np.float32),
        job_absence_penalty=np.array([j.absence_penalty for j in jobs], dtype=np.float32),
        job_type=np.array([types.index(j.workplace) for j in jobs], dtype=np.int16),
        job_affordance=np.array([affs.index(j.affordance) for j in jobs], dtype=np.int16),
        opt_eat=affs.index(opt["eat"]),
        opt_cook=affs.index(opt["cook"]),
        opt_wash=affs.index(opt["wash"]),
        opt_sleep=affs.index(opt["sleep"]),
        option_price=np.array([config.economy.prices[s.price] if s.price else 0.0 for s in opt_specs], np.float32),
        option_type=np.array([types.index(s.object) for s in opt_specs], dtype=np.int64),
        option_affordance=np.array(
            [affs.index(by_option[o.name.lower()]) if o.name.lower() in by_option else -1 for o in Option], np.int16
        ),
        decay=need_vec({str(k): v for k, v in config.needs.decay.items()}),
        need_weights=need_vec({str(k): v for k, v in config.rewards.needs_weights.items()}),
    )
