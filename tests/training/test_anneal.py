"""The anneal: a reproducible schedule, the rollback guard, and a sabotaged stage rolled back."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")

from training.anneal import AnnealConfig, AnnealResult, StageContext, run_anneal  # noqa: E402
from training.evaluate import HELD_OUT_SEED, EvalConfig  # noqa: E402
from training.guard import AnnealSchedule, MetricRule, RollbackGuard  # noqa: E402
from training.ppo import PPOConfig, policy_parameters  # noqa: E402
from training.vec_env import TownVecEnv  # noqa: E402

pytestmark = pytest.mark.train

TOWN = {"map": "small", "num_agents": 4, "max_ticks": 64}
SMALL_NET = {"net_arch": [16]}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_schedule_is_reproducible_nested_and_validated() -> None:
    s = AnnealSchedule()
    assert s.shares == (0.2, 0.4, 0.6, 0.8, 1.0) and s.n_stages == 5
    assert [s.n_learned(k, 10) for k in range(5)] == [2, 4, 6, 8, 10]
    assert [s.n_learned(k, 4) for k in range(5)] == [1, 2, 2, 3, 4]
    for seed in range(20):
        seats = [s.assignment(k, seed, 10) for k in range(5)]
        assert seats == [AnnealSchedule().assignment(k, seed, 10) for k in range(5)]
        assert all(set(a) <= set(b) for a, b in itertools.pairwise(seats)), "later stages extend earlier ones"
        assert seats[-1] == tuple(range(10)) and list(seats[0]) == sorted(seats[0])
    assert len({s.assignment(0, seed, 10) for seed in range(20)}) > 5, "seats vary with the episode seed"
    assert s.chooser(2)(7, 10) == s.assignment(2, 7, 10)
    for bad in [(), (0.0, 1.0), (0.5, 0.2), (0.2, 1.5)]:
        with pytest.raises(ValueError, match="shares"):
            AnnealSchedule(bad)


def test_guard_measures_worsening_in_the_right_direction() -> None:
    base = {"self_sufficiency": 1.0, "lateness": 0.0, "mean_daily_return": 8.0, "starvation_incidents": 0.0}
    guard = RollbackGuard()
    assert guard.check(base, base, base).ok
    better = {**base, "lateness": 0.0, "mean_daily_return": 9.0}
    assert guard.check(better, base, base).ok
    late = {**base, "lateness": 0.2}  # 0.2 / floor 0.5 = 40%
    verdict = guard.check(late, base, base)
    assert not verdict.ok and len(verdict.reasons) == 2 and all("lateness" in r for r in verdict.reasons)
    assert verdict.drops["previous stage"]["lateness"] == pytest.approx(0.4)
    poor = {**base, "mean_daily_return": 5.0}  # 37.5 % below the baseline, 0 % below the previous stage
    assert not RollbackGuard().check(poor, poor, base).ok
    assert RollbackGuard(baseline_tolerance=None).check(poor, poor, base).ok
    assert MetricRule("x", True, 1.0).drop(-2.0, -1.0) == pytest.approx(1.0)


def test_config_keeps_eval_seeds_out_of_the_training_range() -> None:
    with pytest.raises(ValueError, match="outside the training seed range"):
        AnnealConfig(eval=EvalConfig(seeds=(5,)))
    with pytest.raises(ValueError, match="extra"):
        AnnealConfig(stages=3)  # type: ignore[call-arg]


def all_wait(model: Any) -> None:
    """Sabotage: the policy head always prefers WAIT (a broken, idle policy)."""
    head = model.policy.action_net
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-20.0)
        head.bias[0] = 20.0


def test_sabotaged_stage_is_rolled_back_and_the_share_held(tmp_path: Path) -> None:
    cfg = AnnealConfig(
        shares=(0.25, 1.0),
        town=TOWN,
        n_towns=1,
        timesteps_per_stage=32,
        ppo=PPOConfig(n_steps=8, batch_size=16, n_epochs=1),
        eval=EvalConfig(seeds=(HELD_OUT_SEED,), max_ticks=720),
        baseline_tolerance=None,  # an untrained policy is far below the expert; judge stage to stage
        max_holds=1,
    )
    seen: list[tuple[int, int, dict[str, np.ndarray]]] = []

    def trainer(model: Any, env: TownVecEnv, ctx: StageContext) -> None:
        seen.append((ctx.stage, ctx.attempt, policy_parameters(model)))
        assert env.n_learned == {0: 1, 1: 4}[ctx.stage]
        if (ctx.stage, ctx.attempt) == (1, 0):
            all_wait(model)

    record = run_anneal(cfg, tmp_path, policy_kwargs=SMALL_NET, train_stage=trainer)

    on_disk = json.loads((tmp_path / "anneal_results.json").read_text())
    assert on_disk == json.loads(json.dumps(record.to_json()))
    assert AnnealResult.from_json(on_disk).to_json() == on_disk, "the file reads back into the same record"
    first, sabotaged, retry = on_disk["stages"][:3]  # the file keeps its keys
    assert first["action"] == "advance" and first["reasons"] == [] and "restored" not in first
    assert sabotaged["action"] == "rollback" and sabotaged["share"] == 1.0
    assert sabotaged["reasons"] and all("vs previous stage" in r for r in sabotaged["reasons"])
    assert sabotaged["restored"] == first["checkpoint"] == record.last_good
    assert (retry["stage"], retry["attempt"], retry["share"]) == (1, 1, 1.0), "the share is held"
    assert [a.advanced for a in record.stages[:2]] == [True, False]
    # The retry started from the last good checkpoint, not from the sabotaged weights.
    (_, _, good), (_, _, at_retry) = seen[1], seen[2]
    assert seen[2][:2] == (1, 1)
    for k, v in good.items():
        np.testing.assert_array_equal(at_retry[k], v)
    assert record.status in {"held", "complete"}
    if record.status == "held":
        assert record.held_at_share == 1.0 and len(record.stages) == 3
    assert Path(sabotaged["checkpoint"]).exists() and Path(first["checkpoint"]).exists()


def test_real_ppo_stages_run_end_to_end(tmp_path: Path) -> None:
    from townlet_env.controllers import scripted_expert

    cfg = AnnealConfig(
        shares=(0.5, 1.0),
        town=TOWN,
        n_towns=1,
        timesteps_per_stage=64,
        ppo=PPOConfig(n_steps=16, batch_size=32, n_epochs=1),
        eval=EvalConfig(seeds=(HELD_OUT_SEED,), max_ticks=64),
        tolerance=1e6,
        baseline_tolerance=None,
    )
    record = run_anneal(cfg, tmp_path, policy_kwargs=SMALL_NET, expert=scripted_expert)
    assert record.status == "complete"
    assert [(s.stage, s.learned_seats_per_town) for s in record.stages] == [(0, 2), (1, 4)]
    assert record.stages[1].timesteps > record.stages[0].timesteps >= 64
    assert (tmp_path / "logs" / "stage1_try0" / "progress.csv").exists()
