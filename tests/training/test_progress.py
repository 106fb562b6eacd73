"""Progress reports: a bar with rate and ETA on a terminal, plain lines every few seconds in a log."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.callbacks import ProgressBarCallback

from training import progress as progress_lib
from training.capture import CaptureConfig, capture
from training.progress import MODE_ENV, Progress, ppo_callbacks, progress_mode


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_come_every_few_seconds_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    with Progress("capture", 100, "ticks", stream=out, every_s=5.0, clock=clock, mode="plain") as p:
        p.advance(10)
        clock.now += 1.0
        p.advance(10)  # 1 s in: too soon for a line
        assert out.getvalue() == ""
        clock.now += 4.0
        p.advance(30)  # 5 s in: 50 ticks at 10 ticks/s, 50 left
    lines = out.getvalue().splitlines()
    assert lines[0] == "[capture] 50/100 ticks (50.0%), 10.0 ticks/s, ETA 0:00:05"
    assert lines[1] == "[capture] 50 ticks in 5.0s (10.0 ticks/s)"
    assert len(lines) == 2


def test_a_terminal_gets_a_bar_with_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODE_ENV, raising=False)
    out = Terminal()
    assert progress_mode(out) == "bar" and progress_mode(io.StringIO()) == "plain"
    with Progress("bc", 8, "batches", stream=out) as p:
        for _ in range(8):
            p.advance()
    text = out.getvalue()
    assert "[bc]" in text and "8/8" in text and "batches/s" in text and "<00:00" in text  # elapsed<remaining


def test_the_environment_variable_chooses_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "off")
    out = io.StringIO()
    with Progress("eval", 3, "ticks", stream=out) as p:
        p.advance(3)
    assert out.getvalue() == "" and ppo_callbacks() == []
    monkeypatch.setenv(MODE_ENV, "bar")
    assert isinstance(ppo_callbacks()[0], ProgressBarCallback)  # SB3's own bar, reused
    monkeypatch.setenv(MODE_ENV, "plain")
    assert type(ppo_callbacks()[0]).__name__ == "PlainProgress"
    monkeypatch.setenv(MODE_ENV, "fancy")
    with pytest.raises(ValueError, match="TOWNLET_PROGRESS='fancy'"):
        progress_mode()


def test_capture_reports_its_ticks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(MODE_ENV, "plain")
    monkeypatch.setattr(progress_lib, "PLAIN_EVERY_S", 0.0)
    cfg = CaptureConfig(scenarios=("baseline",), seeds=(0, 1), max_ticks=20, overrides={"num_agents": 2})
    capture(cfg, tmp_path / "ds")
    err = capsys.readouterr().err.splitlines()
    assert "[capture] 1/40 ticks (2.5%)" in err[0] and "ETA" in err[0]
    assert err[-1].startswith("[capture] 40 ticks in ")
