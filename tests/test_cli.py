"""The ``townlet`` command line, called in-process through ``main([...])``."""

from __future__ import annotations

import hashlib
import runpy
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import yaml

import townlet_env.demo
from townlet_env import cli
from townlet_env.cli import main
from townlet_env.config import DATA_DIR

SHIPPED = DATA_DIR / "affordances.yaml"
DEFAULT_CONFIG = DATA_DIR / "default.yaml"


def manifest_file(tmp_path: Path, **edits: Any) -> Path:
    """The shipped manifest with ``affordances.<id>`` entries replaced or renamed."""
    data = yaml.safe_load(SHIPPED.read_text())
    for key, value in edits.items():
        data["affordances"][key] = value
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "town.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- validate-manifest


def test_valid_manifest_exits_0_with_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-manifest", str(SHIPPED)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert "6 objects, 6 affordances" in out
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() in out


def test_valid_manifest_against_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-manifest", str(SHIPPED), "--config", str(DEFAULT_CONFIG)]) == 0
    out, _ = capsys.readouterr()
    assert "consistent with config townlet-default-v1" in out


def test_invalid_manifest_exits_1_naming_entry_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"object": "freezer", "duration": 0}
    path = manifest_file(tmp_path, eat_meal=bad)
    assert main(["validate-manifest", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    # pydantic problems come first; this one is a range error on the duration
    assert lines == [f"{path}: affordances.eat_meal.duration: Input should be greater than 0"]


def test_every_problem_gets_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = manifest_file(
        tmp_path,
        eat_meal={"object": "freezer", "duration": 5},
        sleep={"object": "bed", "duration": 5, "preconditions": "os.system('x')"},
    )
    assert main(["validate-manifest", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"{path}: affordances.eat_meal.object: unknown object type 'freezer'")
    assert err[1].startswith(f"{path}: affordances.sleep.preconditions: function calls are not allowed")


def test_missing_manifest_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["validate-manifest", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: file not found\n"


def test_bad_yaml_exits_1_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nobjects: [unclosed\n")
    assert main(["validate-manifest", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: not valid YAML")
    assert err.count("\n") == 1


def test_manifest_price_unknown_to_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = yaml.safe_load(SHIPPED.read_text())["affordances"]["take_shower"]
    path = manifest_file(tmp_path, take_shower={**spec, "price": "spa"})
    # on its own the manifest is fine: prices live in the config
    assert main(["validate-manifest", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate-manifest", str(path), "--config", str(DEFAULT_CONFIG)]) == 1
    err = capsys.readouterr().err
    assert f"{path.resolve()}: affordances.take_shower.price: 'spa' is not an economy price" in err


def test_manifest_missing_an_option_affordance_for_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["affordances"]["wash_up"] = data["affordances"].pop("take_shower")
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate-manifest", str(path), "--config", str(DEFAULT_CONFIG)]) == 1
    err = capsys.readouterr().err
    assert "options.affordances.wash: unknown affordance 'take_shower'" in err


def test_manifest_with_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-manifest", str(SHIPPED), "--config", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: file not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- validate-config


def test_valid_config_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", str(DEFAULT_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{DEFAULT_CONFIG}: ok, config townlet-default-v1")
    assert out.count("\n") == 1


def test_config_typo_exits_1_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "config_id: typo\nnum_agnets: 4\neconomy: {start_wallet: 2}\n")
    assert main(["validate-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert sorted(err.splitlines()) == [
        f"{path}: economy.start_wallet: unknown key (check its spelling against docs/environment.md)",
        f"{path}: num_agnets: unknown key (check its spelling against docs/environment.md)",
    ]


def test_config_value_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "config_id: x\nnum_agents: 0\n")
    assert main(["validate-config", str(path)]) == 1
    assert f"{path}: num_agents: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_config_job_at_an_unknown_workplace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(
        tmp_path,
        "config_id: jobs\njobs:\n  mine: {workplace: mine, affordance: dig, start: 480, end: 960}\n",
    )
    assert main(["validate-config", str(path)]) == 1
    assert "jobs: jobs.mine.workplace: unknown object type 'mine'" in capsys.readouterr().err


def test_config_naming_a_broken_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = manifest_file(tmp_path, sleep={"object": "bed", "duration": 5000})
    path = config_file(tmp_path, f"config_id: x\nmanifest: {manifest}\n")
    assert main(["validate-config", str(path)]) == 1
    assert f"{manifest}: affordances.sleep.duration:" in capsys.readouterr().err


def test_missing_or_unreadable_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: file not found" in capsys.readouterr().err
    assert main(["validate-config", str(tmp_path)]) == 1  # a directory
    assert f"{tmp_path}: cannot read the file" in capsys.readouterr().err


def test_config_that_is_not_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "- a\n- b\n")
    assert main(["validate-config", str(path)]) == 1
    assert f"{path}: top level must be a mapping" in capsys.readouterr().err


# --------------------------------------------------------------------------- town


def test_town_passes_its_arguments_to_run_town(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_run_town(config_path: str | None, days: int, seed: int, num_agents: int | None) -> str:
        calls.append((config_path, days, seed, num_agents))
        return "REPORT"

    monkeypatch.setattr(townlet_env.demo, "run_town", fake_run_town)
    monkeypatch.setattr(townlet_env.demo, "format_report", lambda report: f"formatted {report}")
    assert main(["town", "--config", "x.yaml", "--days", "3", "--seed", "7", "--agents", "5"]) == 0
    assert main(["town"]) == 0
    assert calls == [("x.yaml", 3, 7, 5), (None, 1, 0, None)]
    assert capsys.readouterr().out == "formatted REPORT\nformatted REPORT\n"


def test_town_with_a_bad_config_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, "config_id: x\nseed: -1\n")
    assert main(["town", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(str(path))  # run_town may label it "(with overrides [...])"
    assert "seed: Input should be greater than or equal to 0" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["town", "--days", "0"], ["town", "--seed", "-1"], ["town", "--agents", "x"]])
def test_town_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "townlet town: error: argument" in capsys.readouterr().err


# --------------------------------------------------------------------------- run / dataset


class FakeCommand:
    """A registered command: records what it was called with."""

    def __init__(self, result: int = 3, help: str = "a fake command", error: Exception | None = None) -> None:
        self.help = help
        self.result = result
        self.error = error
        self.seen: list[list[str]] = []

    def __call__(self, argv: list[str]) -> int:
        self.seen.append(argv)
        if self.error is not None:
            raise self.error
        return self.result


def register(monkeypatch: pytest.MonkeyPatch, **commands: Any) -> None:
    """Stand in for the installed ``townlet.commands`` entry points (no reinstall needed)."""
    module = types.ModuleType("fake_townlet_commands")
    entries = []
    for name, command in commands.items():
        setattr(module, name.upper(), command)
        entries.append(EntryPoint(name, f"fake_townlet_commands:{name.upper()}", cli.COMMAND_GROUP))
    monkeypatch.setitem(sys.modules, "fake_townlet_commands", module)
    monkeypatch.setattr(cli, "_entry_points", lambda: entries)


@pytest.mark.parametrize("command", ["run", "dataset"])
def test_registered_commands_get_their_argv_untouched(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    fake = FakeCommand()
    register(monkeypatch, **{command: fake})
    rest = ["experiments/x.yaml", "--help", "--stage", "bc"]
    assert main([command, *rest]) == 3
    assert fake.seen == [rest]


def test_registered_commands_are_listed_in_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    register(monkeypatch, run=FakeCommand(help="run an experiment pipeline"), dataset=FakeCommand(help="dataset tools"))
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "run an experiment pipeline" in out and "dataset tools" in out and "validate-config" in out
    assert "pip install" not in out


def test_help_without_training_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_entry_points", list)
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "validate-manifest" in out and "pip install -e .[train]" in out
    assert main(["run", "experiments/poc.yaml"]) == 1
    assert "townlet run: no such command" in capsys.readouterr().err


def test_builtin_commands_win_over_a_registered_namesake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCommand()
    register(monkeypatch, town=fake)
    assert "town" not in cli.plugin_commands()
    with pytest.raises(SystemExit):
        main(["town", "--days", "0"])
    assert fake.seen == []


def test_training_extras_missing_at_import(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = types.ModuleType("fake_townlet_commands")

    def missing(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    module.__getattr__ = missing  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "fake_townlet_commands", module)
    entry = EntryPoint("run", "fake_townlet_commands:RUN", cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "_entry_points", lambda: [entry])
    assert main(["run", "experiments/x.yaml"]) == 1
    err = capsys.readouterr().err
    assert "townlet run: needs the training extras (torch is not installed)" in err
    assert "pip install -e .[train]" in err


def test_training_extras_missing_when_a_stage_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = ModuleNotFoundError("No module named 'stable_baselines3'", name="stable_baselines3")
    register(monkeypatch, dataset=FakeCommand(error=error))
    assert main(["dataset", "audit", "x"]) == 1
    assert "pip install -e .[train]" in capsys.readouterr().err


def test_an_unrelated_import_error_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    register(
        monkeypatch, run=FakeCommand(error=ModuleNotFoundError("No module named 'typo_module'", name="typo_module"))
    )
    with pytest.raises(ModuleNotFoundError, match="typo_module"):
        main(["run"])


def test_a_registered_command_whose_module_is_gone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fake_townlet_commands", None)  # makes the import fail
    entry = EntryPoint("run", "fake_townlet_commands:RUN", cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "_entry_points", lambda: [entry])
    assert main(["run"]) == 1
    assert "townlet run: fake_townlet_commands:RUN cannot be imported" in capsys.readouterr().err


def test_pyproject_registers_the_training_commands() -> None:
    """The entry points the lead's reinstall will register resolve to training's commands."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    group = project["entry-points"][cli.COMMAND_GROUP]
    assert set(group) == {"run", "dataset", "golden", "promote", "rollback", "releases", "drill"}
    for name, value in group.items():
        command = EntryPoint(name, value, cli.COMMAND_GROUP).load()
        assert callable(command) and "[train] extra" in command.help


# --------------------------------------------------------------------------- entry points


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: townlet" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m townlet_env", "validate-manifest", str(SHIPPED)])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("townlet_env", run_name="__main__")
    assert info.value.code == 0
    assert "6 objects, 6 affordances" in capsys.readouterr().out
