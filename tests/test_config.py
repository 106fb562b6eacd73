"""Config loading: typos and bad values are refused with the file and dotted key named;
the shipped default loads; the identity hash covers the manifest bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import townlet_env
from townlet_env import ConfigError, TownConfig, load_config, make_config
from townlet_env.config import DATA_DIR


def write_config(tmp_path: Path, **changes: object) -> Path:
    """The shipped default with ``changes`` merged (``a__b`` means nested key ``a.b``)."""
    data = yaml.safe_load((DATA_DIR / "default.yaml").read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = tmp_path / "town.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_default_loads() -> None:
    cfg = load_config()
    assert isinstance(cfg, TownConfig)
    assert cfg.config_id == "townlet-default-v1"
    assert cfg.num_agents == 8 and cfg.map == "town48"
    assert cfg.map_path().is_file() and cfg.manifest_path().is_file()
    assert set(cfg.jobs) == {"office", "cafe"}


def test_make_config_overrides_and_builds_a_town() -> None:
    cfg = make_config(num_agents=3)
    assert cfg.num_agents == 3
    assert cfg.config_id == load_config().config_id, "other keys keep their defaults"
    par = townlet_env.parallel_env(cfg)
    assert par.possible_agents == ["agent_0", "agent_1", "agent_2"]


def test_nested_overrides_merge_instead_of_replacing() -> None:
    cfg = make_config(rewards={"clip": {"per_tick": 0.2}})
    assert cfg.rewards.clip.per_tick == 0.2
    assert cfg.rewards.clip.per_episode == load_config().rewards.clip.per_episode
    assert cfg.rewards.survival == load_config().rewards.survival


def test_config_is_frozen() -> None:
    cfg = make_config()
    with pytest.raises(ValueError, match="frozen"):
        cfg.num_agents = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "dotted"),
    [
        ("num_agentz", "num_agentz"),
        ("rewards__clip__per_tik", "rewards.clip.per_tik"),
        ("queues__cooldown", "queues.cooldown"),
    ],
)
def test_typo_key_names_file_and_dotted_key(tmp_path: Path, key: str, dotted: str) -> None:
    path = write_config(tmp_path, **{key: 1})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{dotted}:" in message
    assert "unknown key" in message


@pytest.mark.parametrize(
    ("key", "value", "dotted"),
    [
        ("num_agents", "many", "num_agents"),
        ("num_agents", 0, "num_agents"),
        ("rewards__clip__per_tick", -1.0, "rewards.clip.per_tick"),
        ("jobs__office__start", 2000, "jobs.office.start"),
        ("needs__initial_low", 1.5, "needs.initial_low"),
        ("obs_variant", "tiny", "obs_variant"),
    ],
)
def test_bad_type_or_range_names_the_key(tmp_path: Path, key: str, value: object, dotted: str) -> None:
    path = write_config(tmp_path, **{key: value})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: {dotted}:" in message


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write_config(tmp_path, num_agents=-1, seed="x", rewards__clip__per_tik=1)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for dotted in ("num_agents", "seed", "rewards.clip.per_tik"):
        assert f"{dotted}:" in message


def test_overrides_are_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"max_ticks"):
        make_config(max_ticks=0)
    with pytest.raises(ConfigError, match=r"lifecycle=.* \(keyword argument\): .*respawn_delay"):
        make_config(lifecycle={"respawn_delay": (5, 1)})


def test_missing_file_and_non_mapping_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_config(missing)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml"):
        load_config(listy)
    broken = tmp_path / "broken.yaml"
    broken.write_text("num_agents: [1,\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_config(broken)


def test_identity_is_stable_and_covers_values() -> None:
    assert make_config().identity() == make_config().identity()
    assert make_config(seed=1).identity() != make_config().identity()


def test_identity_changes_when_the_manifest_bytes_change(tmp_path: Path) -> None:
    manifest = tmp_path / "affordances.yaml"
    shutil.copyfile(DATA_DIR / "affordances.yaml", manifest)
    cfg = make_config(manifest=str(manifest))
    assert cfg.manifest_path() == manifest
    before = cfg.identity()
    assert cfg.identity() == before
    manifest.write_text(manifest.read_text() + "\n# edited\n")
    assert cfg.identity() != before, "same config values, different manifest bytes"


def test_identity_changes_when_the_map_bytes_change(tmp_path: Path) -> None:
    town = tmp_path / "small.txt"
    shutil.copyfile(DATA_DIR / "maps" / "small.txt", town)
    cfg = make_config(map=str(town))
    before = cfg.identity()
    town.write_text(town.read_text() + "\n")
    assert cfg.identity() != before


def test_duplicate_key_in_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("config_id: dup\nnum_agents: 4\nnum_agents: 6\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 3: duplicate key 'num_agents' \(first on line 2\)"):
        load_config(path)


def test_job_order_in_the_yaml_does_not_change_the_town() -> None:
    base = make_config()
    data = base.model_dump()
    data["jobs"] = dict(reversed(list(data["jobs"].items())))
    reordered = TownConfig.model_validate(data)
    assert list(reordered.jobs) != list(base.jobs)
    assert reordered.identity() == base.identity()
    a = townlet_env.parallel_env(base)
    b = townlet_env.parallel_env(reordered)
    assert a.unwrapped.layout.signature() == b.unwrapped.layout.signature()
    a.reset(seed=3)
    b.reset(seed=3)
    assert a.unwrapped.world.digest() == b.unwrapped.world.digest()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"obs_variant": "bogus"}, "obs_variant='bogus' (keyword argument): choose 'full', 'hybrid' or 'compact'"),
        ({"action_mode": "prim"}, "action_mode='prim' (keyword argument): choose 'option' or 'primitive'"),
        ({"max_tick": 3}, "max_tick=3 (keyword argument): unknown key"),
        ({"needs": {"decay": {"hunger": "x"}}}, "needs.decay.hunger='x' (keyword argument): Input should be a valid"),
    ],
)
def test_a_bad_keyword_argument_is_blamed_not_the_file(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        townlet_env.parallel_env(**kwargs)
    assert str(err.value).startswith(message)
    assert "default.yaml" not in str(err.value)


def test_stability_thresholds_do_not_change_the_identity() -> None:
    """Alert thresholds are ops settings, not dynamics: retuning one keeps snapshots valid."""
    base = make_config()
    assert make_config(stability={"window_ticks": 500}).identity() == base.identity()
    assert make_config(max_ticks=2880).identity() != base.identity()
