"""Capture: the scripted expert over scenarios and seeds into an audited dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import townlet_env
from townlet_env.scripted import ScriptedExpert
from townlet_env.world.events import EventKind
from townlet_env.world.rules import Rules
from townlet_env.world.state import WorldState
from training.audit import audit
from training.capture import CaptureConfig, capture, rollout, scenario_config
from training.datasets import load_dataset
from training.scenarios import SCENARIOS, OutageHook, ScenarioError, get_scenario

LAYOUT = townlet_env.parallel_env().unwrapped.layout


def feature(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    return arrays["observation"][:, LAYOUT.index(name)]


def test_capture_writes_an_audited_versioned_dataset(dataset_path: Path) -> None:
    report = audit(dataset_path, expected=LAYOUT)
    assert report.ok, report.render()
    ds = load_dataset(dataset_path)
    m = ds.manifest
    assert m["format"] == "townlet-trajectories" and m["dataset_version"] == 1
    assert m["townlet_version"] == townlet_env.__version__
    assert m["observation_signature"] == json.loads(json.dumps(LAYOUT.signature()))
    assert m["expert"]["class"] == "townlet_env.scripted.ScriptedExpert"
    assert set(m["scenarios"]) == set(SCENARIOS) and m["seeds"] == [0, 1, 2]
    assert len(ds.shards) == len(SCENARIOS) * 3
    for entry in ds.shards:
        assert len(entry["sha256"]) == 64 and (dataset_path / entry["file"]).is_file()
    identities = {s["config_identity"] for s in m["scenarios"].values()}
    assert len(identities) == len(SCENARIOS) - 1  # late_commuter differs by a tweak, not config
    assert m["counts"]["steps"] == sum(s["steps"] for s in ds.shards) > 0


def test_rows_are_present_seats_with_done_at_each_episode_end(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)
    for entry in ds.shards:
        a = ds.load_shard(entry)
        assert (feature(a, "present") == 1.0).all(), entry["file"]
        np.testing.assert_array_equal(a["decision"], a["action_mask"].sum(axis=1) > 1)
        assert (~a["decision"]).any(), "commit windows give forced (non-decision) rows"
        last_rows = np.flatnonzero(a["done"])
        assert len(last_rows) == len(a["episode_seat"])
        truncated = a["episode_truncated"]
        max_ticks = ds.manifest["scenarios"][entry["scenario"]]["config"]["max_ticks"]
        assert (a["tick"][last_rows][truncated] == max_ticks - 1).all()
        assert (a["tick"][last_rows][~truncated] < max_ticks - 1).all()


def test_scenarios_change_what_the_expert_faces(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)

    def shard(name: str, seed: int = 0) -> dict[str, np.ndarray]:
        return ds.load_shard(ds.select([seed], [name])[0])

    base = shard("baseline")
    first = base["tick"] == 0
    low = shard("low_money")
    assert np.allclose(feature(low, "wallet")[low["tick"] == 0], 0.2 / 10.0)
    assert feature(base, "wallet")[first].min() > feature(low, "wallet")[low["tick"] == 0].max()
    late = shard("late_commuter")
    start = late["tick"] == late["tick"].min()
    assert late["tick"].min() == 1  # the unrecorded settling tick after the reset tweak
    assert feature(late, "energy")[start].max() < 0.31 < feature(base, "energy")[first].min()
    assert len(np.unique(shard("contention")["episode_seat"])) == 12
    outage = shard("outage")
    notes = ds.select([0], ["outage"])[0]["notes"]["hook"]
    assert notes["object_type"] == "shower" and notes["started_at"] is not None
    assert not np.array_equal(outage["observation"], base["observation"])


def test_price_change_scales_every_price() -> None:
    base = townlet_env.make_config()
    cfg = scenario_config(base, get_scenario("price_change"), CaptureConfig(), seed=4)
    assert cfg.seed == 4
    for key, price in base.economy.prices.items():
        assert cfg.economy.prices[key] == pytest.approx(1.5 * price)


def test_outage_is_the_real_one_started_mid_use() -> None:
    cfg = scenario_config(townlet_env.make_config(), get_scenario("outage"), CaptureConfig(), seed=1)
    env = townlet_env.parallel_env(cfg)
    env.reset(seed=1)
    town = env.unwrapped
    expert = ScriptedExpert(town.rules, seed=1)
    hook = OutageHook(town, "water_outage", earliest=0, latest=1440, duration=50)
    while hook.started_at is None and env.agents:
        env.step(expert.act_dict(env))
        hook(town.world)
    assert hook.started_at is not None and hook.interrupted >= 1
    assert town.world.out_of_service[hook.objects].all()
    assert not np.isin(town.world.using, hook.objects).any()
    env.step(expert.act_dict(env))
    assert town.action_masks()[:, townlet_env.Option.WASH].sum() == 0
    assert any(e.kind == EventKind.PERTURBATION_START for e in town.last_events)
    for _ in range(60):
        env.step(expert.act_dict(env))
    assert not town.world.out_of_service.any()


def test_rollout_refuses_an_expert_that_breaks_the_mask() -> None:
    class Rogue:
        def act(self, state: WorldState, mask: np.ndarray) -> np.ndarray:
            return np.full(state.n_agents, int(townlet_env.Option.WORK), dtype=np.int64)  # masked at midnight

    def factory(rules: Rules, seed: int) -> Any:
        return Rogue()

    cfg = scenario_config(townlet_env.make_config(), get_scenario("baseline"), CaptureConfig(max_ticks=5), 0)
    with pytest.raises(ValueError, match="masked action"):
        rollout(cfg, get_scenario("baseline"), 0, factory, 0)


def test_capture_is_deterministic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    cfg = CaptureConfig(scenarios=("baseline", "late_commuter"), seeds=(5,), max_ticks=60)
    a = capture(cfg, tmp_path / "a")
    b = capture(cfg, tmp_path / "b")
    da, db = load_dataset(a), load_dataset(b)
    for ea, eb in zip(da.shards, db.shards, strict=True):
        sa, sb = da.load_shard(ea), db.load_shard(eb)
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    with pytest.raises(ValueError, match="already exists"):
        capture(cfg, tmp_path / "a")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no partial folders left behind"


def test_unknown_scenario_and_unknown_keys_are_refused() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'blackout'"):
        get_scenario("blackout")
    with pytest.raises(ValueError, match="extra"):
        CaptureConfig(seedz=(1,))  # type: ignore[call-arg]


def test_the_town_config_owns_obs_variant_and_action_mode() -> None:
    with pytest.raises(ValueError, match="obs_variant is a town setting"):
        CaptureConfig(obs_variant="full")  # type: ignore[call-arg]
    compact = townlet_env.make_config(obs_variant="compact")
    assert scenario_config(compact, get_scenario("baseline"), CaptureConfig(), 0).obs_variant == "compact"
    primitive = townlet_env.make_config(action_mode="primitive")
    with pytest.raises(ValueError, match="capture scenario 'baseline': training plays the option action space"):
        scenario_config(primitive, get_scenario("baseline"), CaptureConfig(), 0)
