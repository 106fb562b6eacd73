"""The experiment pipeline: YAML validation, W&B offline logging read back, skip-if-unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("wandb")

import yaml

from townlet_env.config import ConfigError
from training.datasets import sha256_file
from training.experiment import load_experiment
from training.pipeline import PipelineError, run_experiment
from training.registry import Registry
from training.release_cli import DRILL
from training.release_stages import preflight
from training.tracking import read_offline_run

pytestmark = pytest.mark.train
EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml"))
TINY = Path(__file__).parents[2] / "experiments" / "tiny.yaml"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_experiment_validates(path: Path) -> None:
    cfg = load_experiment(path)
    assert cfg.name == path.stem
    assert cfg.stages[0] in ("capture", "anneal")


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"bc": {"epocs": 2}}, "bc.epocs: unknown key"),
        ({"stages": ["bc", "capture"]}, "subsequence"),
        ({"stages": ["capture", "evaluate"]}, "stage 'evaluate' needs ['anneal']"),
        ({"capture": {"obs_variant": "full"}}, "obs_variant is a town setting"),
        ({"capture": {"overrides": {"obs_variant": "full"}}}, "capture.overrides.obs_variant"),
        ({"anneal": {"town": {"action_mode": "option"}}}, "anneal.town.action_mode"),
        ({"town": {"action_mode": "primitive"}}, "town.action_mode: training plays the option action space"),
        ({"evaluate": {"eval": {"seeds": [0]}}}, "are also capture seeds"),
        ({"town": {"num_agnets": 3}}, "num_agnets"),
        ({"promote": {"seeds": [1000000]}}, "promote.seeds [1000000] are capture or evaluation seeds"),
        ({"promote": {"seeds": [5]}}, "promote.seeds [5] lie in the anneal's training seeds"),
        ({"stages": ["anneal", "release"]}, "stage 'release' needs ['promote']"),
        ({"promote": {"floors": {"self_sufficency": 0.5}}}, "unknown KPI ['self_sufficency']"),
    ],
)
def test_bad_experiment_names_the_problem(tmp_path: Path, patch: dict, expected: str) -> None:
    data = yaml.safe_load(TINY.read_text())
    data.update(patch)
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(tmp_path, data))
    assert expected in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_tiny_pipeline_logs_offline_and_skips_unchanged_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs = tmp_path / "runs"
    data = yaml.safe_load(TINY.read_text())
    data["evaluate"]["video_ticks"] = 9
    path = _write(tmp_path, data)

    lines: list[str] = []
    cfg, first = run_experiment(path, runs, echo=lines.append)
    assert [r.status for r in first.values()] == ["ran"] * 6
    bc_result = json.loads((runs / "tiny" / "bc" / "bc_result.json").read_text())
    offline = sorted((runs / "tiny" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    logged = read_offline_run(offline[0])
    assert logged.series("bc/held_out_accuracy") == [pytest.approx(bc_result["held_out"]["accuracy"])]
    assert logged.series("ppo/stage0/train/value_loss"), "PPO metrics did not reach W&B through SB3's logger"
    evaluation = json.loads((runs / "tiny" / "evaluate" / "evaluation.json").read_text())
    assert logged.series("eval/normalised_score") == [pytest.approx(evaluation["normalised_score"])]
    assert logged.config["name"] == cfg.name
    assert (runs / "tiny" / "evaluate" / "learned.gif").stat().st_size > 0
    released = first["release"].result.release
    registry = Registry(runs / "tiny-registry")
    assert registry.current() == released and f"released policy: serving {released}" in lines[-1]
    assert registry.identity(released).policy_sha256 == sha256_file(Path(first["anneal"].result.last_good))
    assert logged.series("gate/decision") == ["PROMOTE"]
    assert logged.series("gate/window1/green") == [1] and logged.series("gate/window2/green") == [1]
    assert registry.green_streak(released) == 2

    _, second = run_experiment(path, runs, echo=lambda _: None)
    assert [r.status for r in second.values()] == ["skipped"] * 6

    data["bc"]["epochs"] = 3  # bc changes: capture is reused, everything downstream reruns
    _, third = run_experiment(_write(tmp_path, data), runs, echo=lambda _: None)
    assert {k: r.status for k, r in third.items()} == {
        "capture": "skipped",
        "bc": "ran",
        "anneal": "ran",
        "evaluate": "ran",
        "promote": "ran",
        "release": "ran",
    }
    assert third["promote"].result.compared_with == released  # gated against the serving release, in shadow
    assert registry.current() == third["release"].result.release != released

    # The drill on the tiny run (what CI runs): promote, serve, roll back, on a scratch registry.
    assert DRILL([str(runs / "tiny")]) == 0
    assert "Release drill: PASSED" in (runs / "tiny" / "drill" / "report.md").read_text()

    # Social rewards need a base release with two green windows; this registry's has them.
    social = {**data, "name": "tiny_social", "town": {**data["town"], "rewards": {"social_stage": "C1"}}}
    preflight(load_experiment(_write(tmp_path, social)), runs)
    with pytest.raises(PipelineError, match=r"missing: window 1, window 2"):
        preflight(load_experiment(_write(tmp_path, social)), tmp_path / "fresh-runs")


def test_tampered_output_reruns_its_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    runs = tmp_path / "runs"
    data = yaml.safe_load(TINY.read_text())
    data["stages"] = ["capture", "bc"]
    path = _write(tmp_path, data)
    run_experiment(path, runs, echo=lambda _: None)
    (runs / "tiny" / "bc" / "bc_result.json").write_text("{}")
    _, again = run_experiment(path, runs, echo=lambda _: None)
    assert {k: r.status for k, r in again.items()} == {"capture": "skipped", "bc": "ran"}


def test_failed_bc_gate_stops_the_run_without_a_bc_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.pipeline import PipelineError

    monkeypatch.setenv("WANDB_MODE", "disabled")
    data = yaml.safe_load(TINY.read_text())
    data["bc"]["threshold"] = 1.0  # unreachable: the gate must fail
    data["stages"] = ["capture", "bc", "anneal"]
    path = _write(tmp_path, data)
    with pytest.raises(PipelineError, match="BC gate failed"):
        run_experiment(path, tmp_path / "runs", echo=lambda _: None)
    assert (tmp_path / "runs" / "tiny" / "capture" / "manifest.json").exists()
    assert not (tmp_path / "runs" / "tiny" / "bc" / "manifest.json").exists()
    assert not (tmp_path / "runs" / "tiny" / "anneal").exists()


def test_townlet_run_reports_a_bad_experiment_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import RUN

    data = yaml.safe_load(TINY.read_text())
    data["anneal"]["sharez"] = [1.0]
    path = _write(tmp_path, data)
    assert RUN([str(path), "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "anneal.sharez" in err and str(path) in err
