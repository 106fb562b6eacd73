"""The named features of each block and where each one sits in a layout's vector.

The name lists here are the one source of the feature order. The encoder's block writers
never hard-code a slot: :func:`columns` reads every feature's column out of the published
:class:`~townlet_env.observations.layout.ObservationLayout` by name, once per encoder, into
typed records the compiled writers index by field (``cols.hunger``, ``cols.option[q]``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from townlet_env.actions import Option
from townlet_env.observations.layout import ObservationLayout
from townlet_env.world.rules import Rules

NEEDS_AND_TIME = ("hunger", "hygiene", "energy", "wallet", "time_sin", "time_cos", "episode_progress")
SHIFT = ("has_job", "work_window", "on_shift", "at_work", "arrived", "late", "attendance", "to_shift")
ACTIVITY = ("committed", "using", "use_progress", "queued", "last_ok", "present")
COMMUTE = ("work_dist", "work_slack")
LANDMARK_EXTRAS = ("home", "own_bed", "target")  # after one landmark per object type, in this order
LANDMARK_FIELDS = ("dy", "dx", "dist")
TIE_FIELDS = ("trust", "familiarity", "rivalry", "dy", "dx", "present")
TIE_SUMMARY = ("ties", "trust_max", "rivalry_max")


def self_feature_names(rules: Rules) -> list[str]:
    """Needs, money, time, job state, option one-hot, activity, cooldowns, job one-hot, commute."""
    names = [*NEEDS_AND_TIME, *SHIFT, *(f"option_{o.name.lower()}" for o in Option), *ACTIVITY]
    names += [f"cooldown_{t}" for t in rules.manifest.object_types]
    return names + [f"job_{j}" for j in rules.job_names] + list(COMMUTE)


def landmark_names(rules: Rules) -> list[str]:
    """``lm_<mark>_<field>`` for each object type, then the home, own bed and target."""
    return [f"lm_{m}_{k}" for m in _marks(rules) for k in LANDMARK_FIELDS]


def social_names(rules: Rules) -> list[str]:
    """``<slot>_<field>`` for the friend then rival slots, then the tie summary."""
    return [f"{s}_{k}" for s in _slots(rules) for k in TIE_FIELDS] + list(TIE_SUMMARY)


def _marks(rules: Rules) -> list[str]:
    return [*rules.manifest.object_types, *LANDMARK_EXTRAS]


def _slots(rules: Rules) -> list[str]:
    cfg = rules.config.observations
    return [f"friend{i}" for i in range(cfg.social_friends)] + [f"rival{i}" for i in range(cfg.social_rivals)]


#: The self block's one-column features; ``SelfColumns.at[k]`` is the column of ``SELF_SCALARS[k]``.
SELF_SCALARS: tuple[str, ...] = (
    "hunger",
    "hygiene",
    "energy",
    "wallet",
    "time_sin",
    "time_cos",
    "episode_progress",
    "has_job",
    "work_window",
    "on_shift",
    "at_work",
    "arrived",
    "late",
    "attendance",
    "to_shift",
    "committed",
    "using",
    "use_progress",
    "queued",
    "last_ok",
    "present",
    "work_dist",
    "work_slack",
)
# Named positions in ``SelfColumns.at``, derived from SELF_SCALARS (so the two cannot drift).
# One int64 array unboxes in one step where 23 separate ints took 23 (the encode call is on
# the hot path).
HUNGER = SELF_SCALARS.index("hunger")
HYGIENE = SELF_SCALARS.index("hygiene")
ENERGY = SELF_SCALARS.index("energy")
WALLET = SELF_SCALARS.index("wallet")
TIME_SIN = SELF_SCALARS.index("time_sin")
TIME_COS = SELF_SCALARS.index("time_cos")
EPISODE_PROGRESS = SELF_SCALARS.index("episode_progress")
HAS_JOB = SELF_SCALARS.index("has_job")
WORK_WINDOW = SELF_SCALARS.index("work_window")
ON_SHIFT = SELF_SCALARS.index("on_shift")
AT_WORK = SELF_SCALARS.index("at_work")
ARRIVED = SELF_SCALARS.index("arrived")
LATE = SELF_SCALARS.index("late")
ATTENDANCE = SELF_SCALARS.index("attendance")
TO_SHIFT = SELF_SCALARS.index("to_shift")
COMMITTED = SELF_SCALARS.index("committed")
USING = SELF_SCALARS.index("using")
USE_PROGRESS = SELF_SCALARS.index("use_progress")
QUEUED = SELF_SCALARS.index("queued")
LAST_OK = SELF_SCALARS.index("last_ok")
PRESENT = SELF_SCALARS.index("present")
WORK_DIST = SELF_SCALARS.index("work_dist")
WORK_SLACK = SELF_SCALARS.index("work_slack")


class SelfColumns(NamedTuple):
    """Column of each self feature; the one-hot groups as arrays of columns."""

    at: np.ndarray  # int64[len(SELF_SCALARS)]: column of each one-column feature
    option: np.ndarray  # int64[len(Option)], by option id
    cooldown: np.ndarray  # int64[T], by object type
    job: np.ndarray  # int64[J], by job


class LandmarkColumns(NamedTuple):
    """Columns of each landmark's fields, by mark: object types, then home, own bed, target.

    Empty when the variant has no landmarks.
    """

    dy: np.ndarray  # int64[n_marks]
    dx: np.ndarray
    dist: np.ndarray


class SocialColumns(NamedTuple):
    """Columns of each tie slot's fields, by slot (friends first), and of the summary."""

    n_friends: int
    trust: np.ndarray  # int64[n_slots]
    familiarity: np.ndarray
    rivalry: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    present: np.ndarray
    ties: int
    trust_max: int
    rivalry_max: int


class Columns(NamedTuple):
    """Every block's columns in one layout."""

    map_start: int
    own: SelfColumns
    landmarks: LandmarkColumns
    social: SocialColumns


def _cols(layout: ObservationLayout, names: list[str]) -> np.ndarray:
    return np.array([layout.index(n) for n in names], dtype=np.int64)


def columns(rules: Rules, layout: ObservationLayout) -> Columns:
    """Look every feature's column up in ``layout`` by name (raises if a name is missing)."""
    one_hot: dict[str, Any] = {
        "option": _cols(layout, [f"option_{o.name.lower()}" for o in Option]),
        "cooldown": _cols(layout, [f"cooldown_{t}" for t in rules.manifest.object_types]),
        "job": _cols(layout, [f"job_{j}" for j in rules.job_names]),
    }
    own = SelfColumns(at=_cols(layout, list(SELF_SCALARS)), **one_hot)
    has_marks = any(n.startswith("lm_") for n in layout.feature_names)
    marks = _marks(rules) if has_marks else []
    lm = LandmarkColumns(*(_cols(layout, [f"lm_{m}_{k}" for m in marks]) for k in LANDMARK_FIELDS))
    slots = _slots(rules)
    slot_cols: dict[str, Any] = {k: _cols(layout, [f"{s}_{k}" for s in slots]) for k in TIE_FIELDS}
    summary: dict[str, Any] = {k: layout.index(k) for k in TIE_SUMMARY}
    social = SocialColumns(n_friends=rules.config.observations.social_friends, **slot_cols, **summary)
    return Columns(layout.map_slice.start, own, lm, social)
