"""``townlet run`` twice from scratch on one machine: identical BC accuracy and evaluation figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.train, pytest.mark.slow]


def test_the_tiny_experiment_run_twice_gives_identical_figures() -> None:
    script = ROOT / "scripts" / "check_reproducible.py"
    out = subprocess.run([sys.executable, str(script), "experiments/tiny.yaml", "--runs", "2", "--parallel"],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "reproducible: all" in out.stdout
    assert "bc/held_out_accuracy" in out.stdout and "eval/normalised_score" in out.stdout
