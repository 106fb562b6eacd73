"""Sequencing rules the software enforces (DESIGN.md §1): what a release must have shown first.

* An experiment that turns on **social rewards** (C1/C2) or **perturbations** is refused
  unless the base release (the registry's serving release) has at least
  :data:`REQUIRED_GREEN` consecutive green evaluation windows recorded in the registry.
* A release that changes the **observation layout** or the **reward config** against the
  serving release is refused without a golden sign-off for the new values: goldens
  re-recorded on purpose, with a stated reason (``tests/golden/signoff.json``, written by
  the golden tooling).

The config probes are small functions over the resolved town config as a plain mapping,
so a renamed or added key (a social-reward stage, a ``perturbations`` section) is a
one-line change here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.registry import Registry
from training.release_identity import Identity

REQUIRED_GREEN = 2
SIGNOFF_FILE = "signoff.json"
#: Values of a social-reward stage key that mean "social rewards on" (stage OFF is off).
SOCIAL_ON_STAGES = frozenset({"C1", "C2"})


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def social_rewards_key(town: Mapping[str, Any]) -> str | None:
    """``rewards.social_stage`` when it turns social rewards on in ``town`` (C1 or C2)."""
    if str(_get(town, "rewards.social_stage")).upper() in SOCIAL_ON_STAGES:
        return "rewards.social_stage"
    return None


def perturbations_key(town: Mapping[str, Any]) -> str | None:
    """``perturbations`` when that section is present and enabled (None otherwise)."""
    section = town.get("perturbations")
    if isinstance(section, Mapping) and section.get("enabled", bool(section)) is True:
        return "perturbations.enabled"
    return None


def gated_features(town: Mapping[str, Any]) -> list[str]:
    """The keys of ``town`` that need a release with green windows first."""
    return [k for k in (social_rewards_key(town), perturbations_key(town)) if k is not None]


def check_base_release(town: Mapping[str, Any], registry: Registry, experiment: str) -> None:
    """Refuse ``experiment`` when it turns on a gated feature without a proven base release.

    Raises:
        SequencingError: naming the feature, the base release and the missing windows.

    """
    features = gated_features(town)
    if not features:
        return
    base = registry.current()
    what = f"experiment {experiment!r} turns on {', '.join(features)}"
    if base is None:
        missing = ", ".join(f"window {i + 1}" for i in range(REQUIRED_GREEN))
        raise SequencingError(
            f"{what}, which needs a base release with {REQUIRED_GREEN} consecutive green evaluation windows; "
            f"the registry {registry.root} has no release (missing: {missing}). Release a policy without it first."
        )
    windows = registry.windows(base)
    streak = registry.green_streak(base)
    if streak >= REQUIRED_GREEN:
        return
    seen = ", ".join(f"window {i + 1} {'green' if w.get('green') else 'red'}" for i, w in enumerate(windows)) or "none"
    missing = ", ".join(f"window {len(windows) + i + 1}" for i in range(REQUIRED_GREEN - streak))
    raise SequencingError(
        f"{what}, which needs {REQUIRED_GREEN} consecutive green evaluation windows of base release {base}; "
        f"recorded: {seen}; missing green: {missing}. Record them with `townlet promote RUN_DIR` on the "
        f"release's run (it re-evaluates the serving policy), or release a policy that passes them."
    )


class SequencingError(RuntimeError):
    """A sequencing rule refused an experiment or a release."""


@dataclasses.dataclass(frozen=True)
class Signoff:
    """A golden re-recording on purpose (``tests/golden/signoff.json``)."""

    reason: str
    recorded_at: str
    obs_signature: str
    reward_config_id: str
    config_id: str


def golden_signoff(golden_dir: str | Path = "tests/golden") -> Signoff | None:
    """The golden sign-off record, if the golden tooling wrote one.

    Raises:
        SequencingError: the file exists but lacks a field or a reason.

    """
    path = Path(golden_dir) / SIGNOFF_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    fields = [f.name for f in dataclasses.fields(Signoff)]
    missing = [f for f in fields if f not in data]
    if missing or not str(data.get("reason", "")).strip():
        raise SequencingError(f"{path}: sign-off record lacks {missing or ['a reason']}; re-record the goldens")
    return Signoff(**{f: str(data[f]) for f in fields})


def golden_problems(candidate: Identity, release: Identity | None, signoff: Signoff | None) -> list[str]:
    """Changes of ``candidate`` against ``release`` that no golden sign-off covers (empty: fine).

    A sign-off covers a candidate when it names the candidate's observation signature,
    reward config id and config (its ``config_id`` label or its town identity).
    """
    if release is None:
        return []
    fields = (("observation layout", "obs_signature"), ("reward config", "reward_config_id"),
              ("town config", "town_identity"))  # fmt: skip
    changed = [(name, getattr(release, a), getattr(candidate, a)) for name, a in fields
               if getattr(release, a) != getattr(candidate, a)]  # fmt: skip
    if not changed or (signoff is not None and covers(signoff, candidate)):
        return []
    found = "no sign-off record" if signoff is None else (
        f"the sign-off covers obs_signature {signoff.obs_signature}, reward_config_id {signoff.reward_config_id}, "
        f"config_id {signoff.config_id}"
    )  # fmt: skip
    return [
        f"{name} changed ({str(old)[:16]} -> {str(new)[:16]}) since the serving release; {found}. Re-record the "
        "goldens with a stated reason (townlet golden record --reason TEXT) before releasing"
        for name, old, new in changed
    ]


def covers(signoff: Signoff, candidate: Identity) -> bool:
    """Whether ``signoff`` was recorded for ``candidate``'s observation layout, rewards and config."""
    return (
        signoff.obs_signature == candidate.obs_signature
        and signoff.reward_config_id == candidate.reward_config_id
        and signoff.config_id in (candidate.config_id, candidate.town_identity)
    )
