"""The soak harness and ``townlet serve`` on short runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from townlet_env.soak import KPI_BANDS, SoakDay, format_report, in_band, run_soak, summarise

pytest.importorskip("websockets")


def test_a_3_day_soak_reports_each_day_and_writes_its_artifacts(tmp_path: Path) -> None:
    report = run_soak(3, tmp_path, policy="scripted", seed=0)
    assert [d.day for d in report.days] == [1, 2, 3]
    assert report.memory_growth < 0.10, format_report(report)
    assert all(d.kpis_in_band for d in report.days), format_report(report)
    assert all(d.alerts == 0 for d in report.days)
    assert report.days[1].telemetry_bytes > report.days[0].telemetry_bytes > 0
    assert report.days[-1].snapshot_bytes > 0
    lines = (tmp_path / "telemetry.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "snapshot"
    assert len(list((tmp_path / "snapshots").glob("snapshot-*.npz"))) >= 1
    assert "healthy" in format_report(report)


def test_random_play_falls_out_of_band() -> None:
    """The band check can fail: random play over a day starves and misses shifts."""
    assert not in_band({"self_sufficiency": 0.2, "lateness": 0.5, "starvation_incidents": 3, "stuck_reservations": 0})
    assert in_band({"self_sufficiency": 1.0, "lateness": 0.0, "starvation_incidents": 0, "stuck_reservations": 0})
    assert set(KPI_BANDS) == {"self_sufficiency", "lateness", "starvation_incidents", "stuck_reservations"}


def _day(day: int, rate: float, rss: float) -> SoakDay:
    return SoakDay(day, rate, rss, 1.0, 0.0, 0, 0, True, 0, 0, 0)


def test_verdicts_catch_growth_and_drift() -> None:
    flat = summarise([_day(1, 900.0, 100.0), _day(2, 1000.0, 101.0), _day(3, 1000.0, 101.0), _day(4, 990.0, 102.0)])
    assert flat.healthy and flat.memory_growth == pytest.approx(0.02)
    leaking = summarise([_day(1, 1000.0, 100.0), _day(2, 1000.0, 120.0)])
    assert not leaking.healthy and leaking.memory_growth == pytest.approx(0.2)
    slowing = summarise([_day(d, 1000.0 if d < 5 else 800.0, 100.0) for d in range(1, 9)])
    assert not slowing.healthy and slowing.throughput_drift == pytest.approx(0.2)


def test_an_unknown_policy_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy 'smart'; choose one of"):
        run_soak(1, tmp_path, policy="smart")


@pytest.mark.train
def test_the_soak_logs_to_an_offline_wandb_run_under_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    from townlet_env.soak import log_to_wandb
    from training.tracking import read_offline_run

    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    report = replace(summarise([_day(1, 900.0, 100.0), _day(2, 950.0, 101.0)]), policy="mixed (0.5 of seats) x.zip")
    log_to_wandb(report, mode="offline", out_dir=tmp_path)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert run.series("day") == [1, 2] and run.series("env_steps_per_s") == [900.0, 950.0]
    assert run.summary["healthy"] is True and run.summary["memory_growth"] == pytest.approx(0.01)
    assert run.config["policy"] == "mixed (0.5 of seats) x.zip"
