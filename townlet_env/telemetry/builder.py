"""Frames into messages: full snapshots, and per-tick diffs computed on arrays.

A diff compares each per-seat column (position, each need, wallet, ...) with the previous
frame's in one vectorised step and converts only the changed entries to JSON values, so a
quiet tick costs a few array comparisons. The small sections (queues, KPIs, stability)
are diffed as dicts; the lists of this tick's ``events`` and ``narration`` lines are
replaced whole. ``changes`` holds changed entries only and ``removed`` the paths of
deleted keys, so that :func:`townlet_env.telemetry.client.apply_diff` of every diff onto the
first snapshot gives :meth:`MessageBuilder.full_state` exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from townlet_env.config import NEEDS
from townlet_env.jsonable import jsonable
from townlet_env.kpis import KpiTracker
from townlet_env.telemetry import SCHEMA_VERSION
from townlet_env.telemetry.frames import Frame, Names
from townlet_env.world.events import Event
from townlet_env.world.state import WorldState

TIE_FIELDS = ("trust", "familiarity", "rivalry")
#: Decimals published for each rounded column: enough for a dashboard, and rounding keeps
#: tiny float drifts from turning into diffs every tick.
DECIMALS = {"needs": 3, "wallet": 2, "reward": 4, "return": 2, "ties": 3}
#: The per-seat fields, as columns of one matrix per frame (``pos`` takes two).
AGENT_COLUMNS = (
    "generation",
    "alive",
    "pos_y",
    "pos_x",
    *NEEDS,
    "wallet",
    "job",
    "option",
    "running",
    "waiting",
    "exit_pending",
    "reward",
    "return",
)
_NEED_COLS = frozenset(range(4, 4 + len(NEEDS)))
_BOOL_COLS = frozenset((1, AGENT_COLUMNS.index("exit_pending")))
_FIELD = {1: "present", AGENT_COLUMNS.index("exit_pending"): "exit_pending"}
_SCALE = np.ones(len(AGENT_COLUMNS))
for _name in ("wallet", "reward", "return"):
    _SCALE[AGENT_COLUMNS.index(_name)] = 10.0 ** DECIMALS[_name]
_SCALE[4 : 4 + len(NEEDS)] = 10.0 ** DECIMALS["needs"]


def _lookup(names: Sequence[str] | None) -> Callable[[int], str | None]:
    """Index -> name, with -1 (or no names at all) -> ``None``."""
    if names is None:
        return lambda _i: None
    return lambda i: names[i] if i >= 0 else None


def dict_diff(old: Mapping[str, Any], new: Mapping[str, Any], path: tuple[str, ...], removed: list) -> dict:
    """The entries of ``new`` that differ from ``old`` (recursing into dicts); deleted keys'
    paths are appended to ``removed``. Lists and scalars are replaced whole.
    """
    changes: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            changes[key] = value
            continue
        before = old[key]
        if isinstance(value, dict) and isinstance(before, dict):
            sub = dict_diff(before, value, (*path, key), removed)
            if sub:
                changes[key] = sub
        elif before != value or type(before) is not type(value):  # 1 == 1.0 == True, but not in JSON
            changes[key] = value
    removed.extend([*path, key] for key in old if key not in new)
    return changes


class MessageBuilder:
    """Turns a sequence of frames into snapshot and diff messages (one thread uses it)."""

    def __init__(self, names: Names, kpi_every: int = 60) -> None:
        self.names = names
        self.kpi_every = kpi_every
        self._kpi = KpiTracker(len(names.seats))
        self._kpis: dict[str, Any] = {}
        self._seat = names.seats
        lookups = {"job": names.jobs, "option": names.options, "running": names.affordances, "waiting": names.objects}
        self._lookup = {c: _lookup(lookups[name]) for c, name in enumerate(AGENT_COLUMNS) if name in lookups}
        self._agents: np.ndarray | None = None  # float64[N, len(AGENT_COLUMNS)] of the last frame
        self._tie_other: np.ndarray = np.zeros(0)
        self._tie_vals: np.ndarray = np.zeros(0)
        self._ties: list[dict[str, Any]] = []
        self._sections: dict[str, Any] = {}
        self._last_seq = -1
        self._tick = 0

    # --- per-seat columns ----------------------------------------------------------------
    def _matrix(self, a: Mapping[str, np.ndarray]) -> np.ndarray:
        """Every per-seat field of a frame as one float64 matrix (rounded), one row a seat."""
        m = np.empty((len(self._seat), len(AGENT_COLUMNS)))
        m[:, 0] = a["generation"]
        m[:, 1] = a["alive"]
        m[:, 2:4] = a["pos"]
        m[:, 4 : 4 + len(NEEDS)] = a["needs"]
        for c, name in enumerate(AGENT_COLUMNS[7:], 7):
            m[:, c] = a[name]
        np.multiply(m, _SCALE, out=m)
        np.round(m, out=m)
        np.divide(m, _SCALE, out=m)  # k / 10**d is the float nearest the d-decimal number
        return m

    def _fill(self, agents: dict[str, dict], m: np.ndarray, rows: list[int], cols: list[int]) -> None:
        """Write entries ``(rows[j], cols[j])`` of ``m`` into ``agents`` (seat name -> fields)."""
        seats, lookup = self._seat, self._lookup
        for i, c, v in zip(rows, cols, m[rows, cols].tolist(), strict=True):
            seat = seats[i]
            fields = agents.get(seat)
            if fields is None:
                fields = agents[seat] = {}
            if c == 0:
                fields["identity"] = f"{seat}#g{int(v)}"
            elif c < 4 and c > 1:
                fields["pos"] = [int(m[i, 2]), int(m[i, 3])]
            elif c in _NEED_COLS:
                fields.setdefault("needs", {})[AGENT_COLUMNS[c]] = v
            elif c in lookup:
                fields[AGENT_COLUMNS[c]] = lookup[c](int(v))
            elif c in _BOOL_COLS:
                fields[_FIELD[c]] = bool(v)
            else:
                fields[AGENT_COLUMNS[c]] = v

    def _tie_row(self, i: int) -> dict[str, Any]:
        others = self._tie_other[i].tolist()
        vals = self._tie_vals[i].tolist()
        return {
            self._seat[o]: dict(zip(TIE_FIELDS, v, strict=True)) for o, v in zip(others, vals, strict=True) if o >= 0
        }

    def _queues(self, a: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Busy objects only: holder and waiters in service order (join tick, wait age, seat)."""
        seats, objects = self._seat, self.names.objects
        queues: dict[str, Any] = {m: {"holder": seats[h], "waiters": []} for m, h in self._held(a["holder"])}
        waiting = a["waiting"]
        who = np.flatnonzero(waiting >= 0)
        if who.size:
            order = who[np.lexsort((who, -a["wait_age"][who], a["joined_tick"][who]))]
            for i, o in zip(order.tolist(), waiting[order].tolist(), strict=True):
                queues.setdefault(objects[o], {"holder": None, "waiters": []})["waiters"].append(seats[i])
        return queues

    def _held(self, holder: np.ndarray) -> list[tuple[str, int]]:
        held = np.flatnonzero(holder >= 0)
        return [(self.names.objects[m], h) for m, h in zip(held.tolist(), holder[held].tolist(), strict=True)]

    def _events(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        seats, objects = self._seat, self.names.objects
        return [
            {
                "kind": e.kind.name.lower(),
                "agent": seats[e.agent] if e.agent >= 0 else None,
                "other": seats[e.other] if e.other >= 0 else None,
                "obj": objects[e.obj] if e.obj >= 0 else None,
                "value": float(e.value),
            }
            for e in events
        ]

    def _small_sections(self, frame: Frame) -> dict[str, Any]:
        cols, stability = frame.arrays, frame.stability
        return {
            "queues": self._queues(cols),
            "events": self._events(frame.events),
            "kpis": self._kpis,
            "stability": self._stability(stability),
            "narration": list(frame.narration),
            "rewards": {
                "tick": round(float(cols["reward"].sum(dtype=np.float64)), DECIMALS["reward"]),
                "episode": round(float(cols["return"].sum(dtype=np.float64)), DECIMALS["return"]),
            },
        }

    @staticmethod
    def _stability(section: Mapping[str, Any]) -> dict[str, Any]:
        metrics = jsonable(section["metrics"])
        return {
            "alerts": jsonable(section["alerts"]),
            "metrics": metrics if isinstance(metrics, dict) else {"value": metrics},
        }

    # --- messages ------------------------------------------------------------------------
    def build(self, frame: Frame) -> dict[str, Any]:
        """The message for ``frame``: a snapshot when asked for or first, else a diff.

        A diff is taken against the last frame built, whose message's seq it names as
        ``base``: when frames were dropped in between (``seq > base + 1``), it spans
        several ticks and still rebuilds the state exactly (only the dropped ticks' events
        are lost).
        """
        self._account(frame)
        message = self._snapshot(frame) if frame.snapshot or self._agents is None else self._diff(frame)
        self._last_seq = frame.seq
        return message

    def _account(self, frame: Frame) -> None:
        """Feed the KPI tracker (a new one each episode); refresh the report every ``kpi_every`` ticks.

        The tracker runs here, off the tick thread, on the frames' array copies (it reads
        them by name like a WorldState). Ticks whose frames were dropped are not counted:
        the report's ``ticks`` says how many were.
        """
        if frame.snapshot and frame.tick == 0:
            self._kpi = KpiTracker(len(self._seat))
        else:
            a = frame.arrays
            self._kpi.update(cast(WorldState, SimpleNamespace(**a)), frame.events, a["reward"])
        if frame.tick % self.kpi_every == 0 or not self._kpis or frame.snapshot:
            self._kpis = jsonable(asdict(self._kpi.report()))

    def kpi_state(self) -> dict[str, Any]:
        """The KPI tracker's state (call when no frame is being built)."""
        return self._kpi.state_dict()

    def load_kpi_state(self, state: Mapping[str, Any]) -> None:
        """Continue the KPI tracker from :meth:`kpi_state`'s output."""
        self._kpi.load_state_dict(state)

    def skip(self, seq: int) -> None:
        """Another kind of message (health) took ``seq``: the next diff's base."""
        self._last_seq = seq

    def _envelope(self, frame: Frame, kind: str) -> dict[str, Any]:
        self._tick = frame.tick
        return {"schema_version": SCHEMA_VERSION, "seq": frame.seq, "tick": frame.tick, "kind": kind}

    def _take(self, frame: Frame) -> np.ndarray:
        """The frame's agent matrix; keeps its ties (rounded) as the current ones."""
        a = frame.arrays
        self._tie_other = a["tie_other"]
        self._tie_vals = np.round(a["tie_vals"].astype(np.float64), DECIMALS["ties"])
        return self._matrix(a)

    def _snapshot(self, frame: Frame) -> dict[str, Any]:
        self._agents = self._take(frame)
        self._ties = [self._tie_row(i) for i in range(len(self._seat))]
        self._sections = self._small_sections(frame)
        return {**self._envelope(frame, "snapshot"), **self.full_state()}

    def full_state(self) -> dict[str, Any]:
        """Every section of the last built frame, fresh from its arrays (not from diffs)."""
        m = self._agents
        if m is None:
            return {}
        agents: dict[str, dict] = {}
        rows, cols = np.indices(m.shape).reshape(2, -1).tolist()
        self._fill(agents, m, rows, cols)
        ties = {self._seat[i]: dict(row) for i, row in enumerate(self._ties)}
        return {"agents": agents, "relationships": ties, **self._sections}

    def _diff(self, frame: Frame) -> dict[str, Any]:
        prev, prev_other, prev_vals = self._agents, self._tie_other, self._tie_vals
        assert prev is not None  # build() sends the first frame to _snapshot
        m = self._take(frame)
        agents: dict[str, dict] = {}
        rows, cols = np.nonzero(m != prev)
        if rows.size:
            self._fill(agents, m, rows.tolist(), cols.tolist())
        changes: dict[str, Any] = {"agents": agents} if agents else {}
        removed: list[list[str]] = []
        moved = (self._tie_other != prev_other).any(axis=1) | (self._tie_vals != prev_vals).any(axis=(1, 2))
        ties = self._tie_changes(np.flatnonzero(moved).tolist(), removed)
        if ties:
            changes["relationships"] = ties
        sections = self._small_sections(frame)
        for key, value in sections.items():
            before = self._sections[key]
            if value is before or value == before:  # the common case, compared in C
                continue
            if isinstance(value, dict) and isinstance(before, dict):
                sub = dict_diff(before, value, (key,), removed)
                if sub:
                    changes[key] = sub
            else:
                changes[key] = value
        self._agents, self._sections = m, sections
        return {**self._envelope(frame, "diff"), "base": self._last_seq, "changes": changes, "removed": removed}

    def _tie_changes(self, seats: list[int], removed: list) -> dict:
        out: dict[str, Any] = {}
        for i in seats:
            row = self._tie_row(i)
            seat = self._seat[i]
            sub = dict_diff(self._ties[i], row, ("relationships", seat), removed)
            if sub:
                out[seat] = sub
            self._ties[i] = row
        return out
