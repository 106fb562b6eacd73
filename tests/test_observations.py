"""Observations: every one inside its space for long random rollouts, the published layout
is coherent, and the layout signature refuses other variants / action modes.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import townlet_env
from townlet_env.observations.layout import ObservationSignatureError, check_signature

VARIANTS = ("full", "hybrid", "compact")
MODES = ("option", "primitive")
TICKS = 2_000
# Hunger empties in ~12 ticks: identities faint and seats sit vacant, then are refilled.
STARVING = {"decay": {"hunger": 0.05, "hygiene": 0.0004, "energy": 0.0005}}


class _SpaceCheck:
    """Vectorised per-tick check of a batch of observations against the shared space."""

    def __init__(self, par: Any) -> None:
        agent = par.possible_agents[0]
        space = par.observation_space(agent)
        assert isinstance(space, spaces.Dict)
        assert set(space.spaces) == {"observation", "action_mask"}
        assert all(par.observation_space(a) is space for a in par.possible_agents)
        box, mask = space["observation"], space["action_mask"]
        assert isinstance(box, spaces.Box) and isinstance(mask, spaces.Box)
        assert box.dtype == np.float32 and mask.dtype == np.int8
        self.space, self.low, self.high = space, box.low, box.high
        self.size = box.shape[0]
        self.n_actions = par.action_space(agent).n
        assert mask.shape == (self.n_actions,)
        self.layout = par.unwrapped.layout
        self.i_present = self.layout.index("present")
        self.i_needs = [self.layout.index(n) for n in ("hunger", "hygiene", "energy")]

    def __call__(self, par: Any, obs: dict[str, Any], tick: int) -> None:
        agents = list(par.agents)
        assert set(obs) >= set(agents), f"tick {tick}: live agents without observations"
        if not agents:
            return
        batch = [obs[a]["observation"] for a in agents]
        masks = [obs[a]["action_mask"] for a in agents]
        assert all(isinstance(o, np.ndarray) and o.dtype == np.float32 and o.shape == (self.size,) for o in batch)
        assert all(isinstance(m, np.ndarray) and m.dtype == np.int8 and m.shape == (self.n_actions,) for m in masks)
        x, m = np.stack(batch), np.stack(masks)
        assert not np.isnan(x).any(), f"tick {tick}: NaN in {self._where(x, np.isnan(x))}"
        below, above = x < self.low, x > self.high
        assert not below.any(), f"tick {tick}: below low in {self._where(x, below)}"
        assert not above.any(), f"tick {tick}: above high in {self._where(x, above)}"
        assert np.isin(m, (0, 1)).all(), f"tick {tick}: mask values other than 0/1"
        assert (m.sum(axis=1) >= 1).all(), f"tick {tick}: an agent has no legal action"
        seats = [par.unwrapped.seat_index[a] for a in agents]
        state = par.unwrapped.world
        np.testing.assert_array_equal(x[:, self.i_present], state.alive[seats].astype(np.float32))
        np.testing.assert_allclose(x[:, self.i_needs], state.needs[seats], atol=1e-6)
        if tick % 50 == 0:
            for a in agents:
                assert self.space.contains(obs[a]), f"tick {tick}: {a}'s observation is outside its space"

    def _where(self, x: np.ndarray, bad: np.ndarray) -> str:
        rows, cols = np.nonzero(bad)
        names = [self._name(int(c)) for c in cols[:5]]
        return f"{names} values {x[rows[:5], cols[:5]].tolist()}"

    def _name(self, col: int) -> str:
        layout = self.layout
        if col < layout.map_size:
            c, rest = divmod(col, layout.window * layout.window)
            return f"map[{layout.map_channels[c]}]+{rest}"
        return layout.feature_names[col - layout.map_size]


def _run(par: Any, ticks: int, seed: int, valid_actions: Any) -> int:
    """Roll ``ticks`` ticks (resetting when the episode truncates); return the resets seen."""
    check = _SpaceCheck(par)
    rng = np.random.default_rng(seed)
    obs, _ = par.reset(seed=seed)
    check(par, obs, 0)
    resets = 0
    for tick in range(1, ticks + 1):
        obs, *_ = par.step(valid_actions({a: obs[a] for a in par.agents}, rng))
        check(par, obs, tick)
        if not par.agents:
            obs, _ = par.reset()
            resets += 1
            check(par, obs, tick)
    return resets


@pytest.mark.parametrize("variant", VARIANTS)
def test_observations_stay_in_space(variant: str, valid_actions: Any) -> None:
    par = townlet_env.parallel_env(obs_variant=variant, max_ticks=1_500)
    assert _run(par, TICKS, seed=21, valid_actions=valid_actions) == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_observations_stay_in_space_primitive_and_deaths(variant: str, valid_actions: Any) -> None:
    """Primitive mode, with starving agents so vacant seats and respawns are encoded too."""
    par = townlet_env.parallel_env(obs_variant=variant, action_mode="primitive", max_ticks=500, needs=STARVING)
    _run(par, 400, seed=22, valid_actions=valid_actions)
    assert (par.unwrapped.world.generation > 0).any(), "no seat was refilled: deaths were not exercised"


def test_space_check_rejects_out_of_range_values() -> None:
    """The checker itself fails on a bad observation (so the rollouts above can fail)."""
    par = townlet_env.parallel_env(obs_variant="compact", num_agents=2)
    obs, _ = par.reset(seed=0)
    check = _SpaceCheck(par)
    check(par, obs, 0)
    bad = {a: {"observation": o["observation"].copy(), "action_mask": o["action_mask"]} for a, o in obs.items()}
    bad["agent_1"]["observation"][check.layout.index("time_sin")] = -1.5
    with pytest.raises(AssertionError, match="time_sin"):
        check(par, bad, 0)
    bad["agent_1"]["observation"][check.layout.index("time_sin")] = np.nan
    with pytest.raises(AssertionError, match="NaN"):
        check(par, bad, 0)


# --- signatures -------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "mode"), list(itertools.product(VARIANTS, MODES)))
def test_signature_matches_same_env(variant: str, mode: str) -> None:
    a = townlet_env.parallel_env(obs_variant=variant, action_mode=mode, num_agents=2).unwrapped
    b = townlet_env.parallel_env(obs_variant=variant, action_mode=mode, num_agents=5, seed=9).unwrapped
    sig = a.layout.signature()
    check_signature(sig, a.layout)
    check_signature(sig, b.layout)  # seats and seed are not part of the contract
    assert sig["variant"] == variant and sig["action_mode"] == mode


@pytest.mark.parametrize(("expected", "actual"), list(itertools.permutations(VARIANTS, 2)))
def test_signature_refuses_another_variant(expected: str, actual: str) -> None:
    sig = townlet_env.parallel_env(obs_variant=expected, num_agents=2).unwrapped.layout.signature()
    layout = townlet_env.parallel_env(obs_variant=actual, num_agents=2).unwrapped.layout
    with pytest.raises(ObservationSignatureError, match=rf"variant: expected '{expected}'.*'{actual}'"):
        check_signature(sig, layout)


@pytest.mark.parametrize("variant", VARIANTS)
def test_signature_refuses_another_action_mode(variant: str) -> None:
    sig = townlet_env.parallel_env(obs_variant=variant, action_mode="option", num_agents=2).unwrapped.layout.signature()
    layout = townlet_env.parallel_env(obs_variant=variant, action_mode="primitive", num_agents=2).unwrapped.layout
    with pytest.raises(ObservationSignatureError, match=r"action_mode: expected 'option'.*'primitive'") as info:
        check_signature(sig, layout)
    assert "variant:" not in str(info.value), "only the differing fields are named"


def test_signature_refuses_a_tampered_version_or_window() -> None:
    layout = townlet_env.parallel_env(num_agents=2).unwrapped.layout
    sig = dict(layout.signature())
    sig["version"] = int(str(sig["version"])) + 1
    with pytest.raises(ObservationSignatureError, match=r"version"):
        check_signature(sig, layout)
    wider = townlet_env.parallel_env(num_agents=2, observations={"window": 7}).unwrapped.layout
    with pytest.raises(ObservationSignatureError, match=r"map_shape"):
        check_signature(layout.signature(), wider)


# --- layout sanity ----------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "mode"), list(itertools.product(VARIANTS, MODES)))
def test_layout_is_coherent(variant: str, mode: str) -> None:
    par = townlet_env.parallel_env(obs_variant=variant, action_mode=mode, num_agents=3)
    layout = par.unwrapped.layout
    obs, _ = par.reset(seed=0)
    vec = obs["agent_0"]["observation"]
    assert layout.variant == variant and layout.action_mode == mode
    assert layout.n_actions == par.action_space("agent_0").n
    assert vec.shape == (layout.size,) == par.observation_space("agent_0")["observation"].shape
    s = layout.map_slice
    assert s.start == 0 and s.stop - s.start == math.prod(layout.map_shape) == layout.map_size
    assert layout.feature_slice.start == s.stop and layout.feature_slice.stop == layout.size
    dupes = sorted({n for n in layout.feature_names if layout.feature_names.count(n) > 1})
    assert not dupes, f"feature names must be unique; repeated: {dupes}"
    assert len(layout.feature_names) == layout.size - layout.map_size
    assert all(layout.index(n) == layout.map_size + k for k, n in enumerate(layout.feature_names))
    if variant == "compact":
        assert layout.map_shape[0] == 0 and layout.map_size == 0 and layout.window == 0
    else:
        c, h, w = layout.map_shape
        assert c == len(layout.map_channels) > 0 and h == w == layout.window and h % 2 == 1
        assert len(set(layout.map_channels)) == c
        grid = vec[s].reshape(layout.map_shape)
        solid = [ch for ch in ("wall", "blocked") if ch in layout.map_channels]
        assert len(solid) == 1, f"one wall/blocked channel expected in {layout.map_channels}"
        wall = grid[layout.map_channels.index(solid[0])]
        assert wall[h // 2, w // 2] == 0.0, "an agent never stands on a wall"
        assert wall.sum() > 0, "the window of an agent at home shows some wall"


def test_variants_differ_in_the_expected_direction() -> None:
    sizes = {v: townlet_env.parallel_env(obs_variant=v, num_agents=2).unwrapped.layout for v in VARIANTS}
    assert sizes["full"].map_size > sizes["hybrid"].map_size > sizes["compact"].map_size == 0
    # hybrid and compact carry the same non-map features (landmarks); full trades them for channels
    assert sizes["hybrid"].feature_names == sizes["compact"].feature_names
    assert set(sizes["full"].feature_names) < set(sizes["hybrid"].feature_names)


def test_unknown_variant_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"obs_variant"):
        townlet_env.parallel_env(obs_variant="Hybrid")


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_columns_cover_every_feature_once(variant: str) -> None:
    """The block writers' column records, read from the layout by name, hit each feature column once."""
    env = townlet_env.parallel_env(obs_variant=variant, num_agents=2).unwrapped
    layout, cols = env.layout, env.variant.encoder.columns
    seen: list[int] = []
    for record in (cols.own, cols.landmarks, cols.social):
        for field, value in zip(record._fields, record, strict=True):
            if field != "n_friends":  # a count, not a column
                seen += np.atleast_1d(value).tolist()
    assert cols.map_start == layout.map_slice.start
    assert sorted(seen) == list(range(layout.map_size, layout.size)), "a feature is written twice or never"
