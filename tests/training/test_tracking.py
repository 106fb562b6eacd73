"""W&B tracking: an offline run is complete on disk when ``Tracker.finish`` returns."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("wandb")

from training.tracking import Tracker, TrackingConfig, read_offline_run

pytestmark = pytest.mark.train


def _offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = Tracker(TrackingConfig(), tmp_path, "t", {"name": "t"})
    for i in range(rows):
        tracker.log({"k": i, "wide": "x" * 2000})  # wide rows cross the log's 32 KiB blocks
    tracker.finish()
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    return run


def test_every_row_is_on_disk_when_finish_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _offline_run(tmp_path, monkeypatch, rows=60)
    logged = read_offline_run(run)
    assert logged.series("k") == list(range(60))
    assert logged.config["name"] == "t"


def test_a_truncated_log_is_refused_not_read_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _offline_run(tmp_path, monkeypatch, rows=60)
    (log,) = run.glob("run-*.wandb")
    log.write_bytes(log.read_bytes()[:40_000])
    with pytest.raises(ValueError, match="no exit record"):
        read_offline_run(run)
