"""The promotion gate: a table of every decision path, the sequencing rules, golden sign-off,
and one integration test that plays real windows with the stability monitor attached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import townlet_env
from training.gate import EXIT_CODES, Decision, GateConfig, GateInputs, KpiBand, WindowObservation, decide
from training.registry import Registry
from training.release_identity import identity_of
from training.sequencing import (
    SequencingError,
    check_base_release,
    golden_problems,
    golden_signoff,
    perturbations_key,
    social_rewards_key,
)

pytestmark = pytest.mark.train

RELEASE = {"self_sufficiency": 0.9, "lateness": 0.1, "mean_daily_return": 1.0, "stuck_reservations": 0.0}
CFG = GateConfig(
    windows=2,
    window_ticks=100,
    bands={
        "self_sufficiency": KpiBand(better="higher", tolerance=0.05),
        "lateness": KpiBand(better="lower", tolerance=0.05),
        "mean_daily_return": KpiBand(better="higher", tolerance=0.1),
    },
    floors={"self_sufficiency": 0.5},
    ceilings={"stuck_reservations": 0.0},
    allowed_alerts=("rivalry_spike",),
)


def _w(index: int = 0, alerts: dict | None = None, agreement: float | None = 0.9, base: bool = True, **kpis: float):
    return WindowObservation(index, 100, {**RELEASE, **kpis}, alerts or {},
                             release_kpis=dict(RELEASE) if base else None, agreement=agreement)  # fmt: skip


def _two(**kw) -> tuple[WindowObservation, ...]:
    return (_w(0, **kw), _w(1, **kw))


# (case, inputs, config, decision, a reason fragment)
CASES = [
    ("equal to the release", GateInputs(_two(), release="r1"), CFG, Decision.PROMOTE,
     "2 green windows against release r1"),
    ("first release, floors only", GateInputs(_two(base=False, agreement=None)), CFG, Decision.PROMOTE,
     "first release"),
    ("better return but starving",
     GateInputs(_two(mean_daily_return=2.0, alerts={"starvation_spike": 4}), release="r1"), CFG, Decision.HOLD,
     "starvation_spike (4 ticks) not in allowed_alerts"),
    ("allowed alert", GateInputs(_two(alerts={"rivalry_spike": 2}), release="r1"), CFG, Decision.PROMOTE, "green"),
    ("self-sufficiency out of band", GateInputs(_two(self_sufficiency=0.8), release="r1"), CFG, Decision.HOLD,
     "self_sufficiency 0.800 vs release 0.900: out of band"),
    ("lateness rises out of band", GateInputs(_two(lateness=0.2), release="r1"), CFG, Decision.HOLD,
     "lateness 0.200 vs release 0.100"),
    ("lateness falls: better", GateInputs(_two(lateness=0.0), release="r1"), CFG, Decision.PROMOTE, "green"),
    ("below a floor", GateInputs(_two(base=False, self_sufficiency=0.4)), CFG, Decision.HOLD, "below the floor 0.5"),
    ("above a ceiling", GateInputs(_two(stuck_reservations=3.0), release="r1"), CFG, Decision.HOLD,
     "stuck_reservations 3.000 above the ceiling 0"),
    ("shadow disagrees", GateInputs(_two(agreement=0.2), release="r1"),
     CFG.model_copy(update={"shadow": CFG.shadow.model_copy(update={"min_agreement": 0.5})}), Decision.HOLD,
     "shadow agreement 0.200 below 0.5"),
    ("shadow disagreement not required", GateInputs(_two(agreement=0.2), release="r1"),
     CFG.model_copy(update={"shadow": CFG.shadow.model_copy(update={"min_agreement": 0.5, "required": False})}),
     Decision.PROMOTE, "green"),
    ("one red window of two", GateInputs((_w(0), _w(1, alerts={"lateness_spike": 1})), release="r1"), CFG,
     Decision.HOLD, "window 2: stability alert lateness_spike"),
    ("too few windows", GateInputs((_w(0),), release="r1"), CFG, Decision.HOLD, "1 of 2 windows evaluated"),
    ("signature mismatch", GateInputs(_two(), parity=("observation signature mismatch: variant",), release="r1"),
     CFG, Decision.FAIL, "parity: observation signature mismatch"),
    ("layout change without sign-off", GateInputs(_two(), golden=("observation layout changed",), release="r1"),
     CFG, Decision.FAIL, "golden sign-off: observation layout changed"),
    ("a KPI is not a number", GateInputs(_two(mean_daily_return=float("nan")), release="r1"), CFG, Decision.FAIL,
     "not numbers"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "inputs", "cfg", "expected", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(case: str, inputs: GateInputs, cfg: GateConfig, expected: Decision, fragment: str) -> None:
    result = decide(inputs, cfg)
    assert result.decision is expected, result.reasons
    assert result.exit_code == EXIT_CODES[expected]
    text = " | ".join(result.reasons) if fragment != "green" else "green"
    assert fragment in text, result.reasons
    if expected is Decision.PROMOTE:
        assert all(w["green"] for w in result.windows)


def test_every_decision_has_its_own_exit_code() -> None:
    codes = [EXIT_CODES[d] for d in Decision]
    assert len(set(codes)) == 3 and EXIT_CODES[Decision.PROMOTE] == 0
    assert not {1, 2} & set(codes), "1 and 2 mean bad input and usage errors"


def test_unknown_kpi_in_config_is_named() -> None:
    with pytest.raises(ValueError, match=r"floors: unknown KPI \['self_suficiency'\]"):
        GateConfig(floors={"self_suficiency": 0.5})


# --------------------------------------------------------------------------- sequencing


@pytest.mark.parametrize(
    ("town", "social", "perturbed"),
    [
        ({}, None, None),
        ({"rewards": {"social_stage": "C1"}}, "rewards.social_stage", None),
        ({"rewards": {"social_stage": "C2"}}, "rewards.social_stage", None),
        ({"rewards": {"social_stage": "OFF"}}, None, None),
        ({"perturbations": {"enabled": True}}, None, "perturbations.enabled"),
        ({"perturbations": {"enabled": False}}, None, None),
    ],
)
def test_gated_feature_probes(town: dict, social: str | None, perturbed: str | None) -> None:
    assert social_rewards_key(town) == social
    assert perturbations_key(town) == perturbed


def _released(tmp_path: Path, greens: list[bool]) -> Registry:
    registry = Registry(tmp_path / "registry")
    policy = tmp_path / "p.zip"
    policy.write_bytes(b"w")
    ident = identity_of(townlet_env.parallel_env(max_ticks=4), policy, "base")
    windows = [{"index": i, "green": g} for i, g in enumerate(greens)]
    registry.release(registry.add_candidate(policy, ident), {"windows": windows})
    return registry


SOCIAL = {"rewards": {"social_stage": "C1"}}


def test_social_rewards_without_a_release_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SequencingError, match=r"has no release \(missing: window 1, window 2\)"):
        check_base_release(SOCIAL, Registry(tmp_path / "empty"), "social")


def test_social_rewards_name_the_missing_windows(tmp_path: Path) -> None:
    registry = _released(tmp_path, [True, False, True])
    with pytest.raises(SequencingError) as err:
        check_base_release(SOCIAL, registry, "social")
    text = str(err.value)
    assert "rewards.social_stage" in text and registry.current() in text  # type: ignore[operator]
    assert "recorded: window 1 green, window 2 red, window 3 green; missing green: window 4" in text


def test_social_rewards_run_after_two_green_windows(tmp_path: Path) -> None:
    check_base_release(SOCIAL, _released(tmp_path, [False, True, True]), "social")
    check_base_release({}, Registry(tmp_path / "empty"), "plain")  # nothing gated: no release needed


def test_layout_or_reward_change_needs_a_golden_signoff(tmp_path: Path) -> None:
    policy = tmp_path / "p.zip"
    policy.write_bytes(b"w")
    old = identity_of(townlet_env.parallel_env(obs_variant="hybrid", max_ticks=4), policy, "a")
    new = identity_of(townlet_env.parallel_env(obs_variant="compact", max_ticks=4), policy, "b")
    assert golden_problems(new, None, None) == []  # a first release changes nothing
    assert golden_problems(old, old, None) == []
    problems = golden_problems(new, old, None)
    assert any("observation layout changed" in p and "no sign-off record" in p for p in problems)

    golden = tmp_path / "golden"
    golden.mkdir()
    record = {"reason": "compact layout v2", "recorded_at": "2025-01-01T00:00:00Z", "obs_signature": new.obs_signature,
              "reward_config_id": new.reward_config_id, "config_id": new.config_id}  # fmt: skip
    (golden / "signoff.json").write_text(json.dumps(record))
    assert golden_problems(new, old, golden_signoff(golden)) == []
    (golden / "signoff.json").write_text(json.dumps({**record, "obs_signature": old.obs_signature}))
    assert golden_problems(new, old, golden_signoff(golden))
    (golden / "signoff.json").write_text(json.dumps({**record, "reason": " "}))
    with pytest.raises(SequencingError, match="lacks"):
        golden_signoff(golden)


# --------------------------------------------------------------------------- real windows


def test_real_windows_feed_the_decision() -> None:
    """Scripted play in real towns: the monitor's windows become gate windows; a starving town holds."""
    pytest.importorskip("torch")
    import functools

    from townlet_env.controllers import RandomController, ScriptedController
    from training.gate_windows import Shadow, play_windows

    cfg = GateConfig(windows=2, window_ticks=40, seeds=(3_000_000,), floors={}, ceilings={})
    make_town = functools.partial(townlet_env.parallel_env, num_agents=3, obs_variant="compact")
    shadow = Shadow(ScriptedController(), ScriptedController(), RandomController())
    windows, streak = play_windows(make_town, ScriptedController(), cfg, shadow)
    assert [w.index for w in windows] == [0, 1] and all(w.ticks == 40 for w in windows)
    assert all(w.release_kpis == w.kpis for w in windows)  # the same scripted play, same seed
    assert all(0.0 <= (w.agreement or 0.0) < 1.0 for w in windows)  # random greedy rarely matches
    assert streak == 2 and decide(GateInputs(windows, release="r1"), cfg).decision is Decision.PROMOTE

    # Every need counts as starving: the monitor alerts, the window is red, the gate holds.
    starving = {"stability": {"starvation": {"need_threshold": 1.0, "min_duration_ticks": 1}}}
    hungry = functools.partial(townlet_env.parallel_env, num_agents=3, obs_variant="compact", **starving)
    windows, streak = play_windows(hungry, ScriptedController(), cfg)
    assert windows[0].alerts.get("starvation_spike", 0) > 0 and streak == 0
    result = decide(GateInputs(windows), cfg)
    assert result.decision is Decision.HOLD and "starvation_spike" in result.reasons[0]
