"""The golden recording on disk, and the comparison that names the first difference.

Layout of a recording directory (``tests/golden/`` for the repository's pin)::

    digests.json        why / recorded_at_commit / recorded_on / every, and per case: the
                        checkpoint ticks, world digests, observation and reward hashes
                        (the first format, unchanged), reward sums per agent and term, the
                        action histogram and the names of the fingerprinted fields
    traces/CASE.npz     per-tick fingerprints: ``fields`` uint16[ticks+1, fields] and
                        ``agents`` uint16[ticks+1, seats]
    signoff.json        the golden sign-off: reason, time, and the observation signature,
                        reward config and config identity the goldens were recorded under

``compare`` reads the per-tick tables first: the first row that differs gives the tick,
the fields and the agents. The checkpoint digests, reward sums and histogram are checked
after that, so a difference the fingerprints miss is still caught.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import townlet_env
from townlet_env.atomic import write_bytes_atomic, write_json_atomic
from townlet_env.golden.trace import EVERY, Trace

#: The repository's recording (an editable install keeps ``tests/`` beside the package).
GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden"
DIGESTS = "digests.json"
SIGNOFF = "signoff.json"
TRACES = "traces"
CHECKPOINT_KEYS = (("digests", "world digest"), ("obs", "observation hash"), ("rewards", "reward hash"))


class GoldenError(RuntimeError):
    """A recording is missing or unreadable; the message says how to make one."""


@dataclass(frozen=True)
class Mismatch:
    """Where a fresh run first leaves the recording."""

    case: str
    tick: int
    field: str
    agent: str | None
    fields: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    detail: str = ""

    def message(self) -> str:
        """One line: case, first tick, agent and field, and what else differs at that tick."""
        who = f", agent {self.agent}" if self.agent else ""
        extra = [f"fields {_some(self.fields)}" if len(self.fields) > 1 else "",
                 f"agents {_some(self.agents)}" if len(self.agents) > 1 else ""]  # fmt: skip
        also = "; at that tick also " + " and ".join(e for e in extra if e) if any(extra) else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.case}: first difference at tick {self.tick}{who}, field {self.field}{detail}{also}"


def _some(names: tuple[str, ...], limit: int = 8) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def signoff_identity() -> dict[str, str]:
    """The default town's observation signature, reward config id and config identity."""
    par = townlet_env.parallel_env()
    cfg = par.unwrapped.config
    return {
        "obs_signature": str(par.unwrapped.layout.signature()["hash"]),
        "reward_config_id": cfg.reward_config_id(),
        "config_id": cfg.identity(),
        "config_label": cfg.config_id,
    }


def write_recording(directory: Path, traces: dict[str, Trace], reason: str, commit: str) -> None:
    """Write ``digests.json``, one trace per case and the sign-off, each atomically."""
    now = datetime.now(timezone.utc)
    cases = {}
    (directory / TRACES).mkdir(parents=True, exist_ok=True)
    for name, trace in traces.items():
        buf = io.BytesIO()
        np.savez_compressed(buf, fields=trace.fields, agents=trace.agents)
        write_bytes_atomic(directory / TRACES / f"{name}.npz", buf.getvalue())
        cases[name] = {**trace.checkpoints, "reward_sums": trace.reward_sums, "actions": trace.actions,
                       "field_names": trace.field_names, "agent_names": trace.agent_names}  # fmt: skip
    doc = {"why": reason, "recorded_at_commit": commit, "recorded_on": now.strftime("%Y-%m-%d"), "every": EVERY}
    write_json_atomic(directory / DIGESTS, {**doc, "cases": cases})
    signoff = {"reason": reason, "recorded_at": now.isoformat(timespec="seconds"), **signoff_identity()}
    write_json_atomic(directory / SIGNOFF, {**signoff, "commit": commit, "cases": sorted(cases)})


def load_recording(directory: Path) -> dict[str, Any]:
    """``digests.json`` of ``directory``.

    Raises:
        GoldenError: no recording there.

    """
    path = directory / DIGESTS
    if not path.is_file():
        raise GoldenError(f"{path}: no golden recording; make one with: townlet golden record --reason '...'")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _load_trace(directory: Path, name: str) -> dict[str, np.ndarray] | None:
    path = directory / TRACES / f"{name}.npz"
    if not path.is_file():
        return None
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _first_row(recorded: dict[str, np.ndarray], trace: Trace, case: str, rec: dict[str, Any]) -> Mismatch | None:
    old_f, old_a = recorded["fields"], recorded["agents"]
    names = rec.get("field_names", trace.field_names)
    if names != trace.field_names or old_a.shape[1] != trace.agents.shape[1]:
        return Mismatch(case, 0, "layout", None, detail=f"fingerprinted fields/seats changed: {names} -> "
                        f"{trace.field_names}, {old_a.shape[1]} -> {trace.agents.shape[1]} seats")  # fmt: skip
    n = min(len(old_f), len(trace.fields))
    diff_f = (old_f[:n] != trace.fields[:n]).any(axis=1) | (old_a[:n] != trace.agents[:n]).any(axis=1)
    if not diff_f.any():
        if len(old_f) != len(trace.fields):
            return Mismatch(
                case, n, "ticks", None, detail=f"{len(old_f) - 1} ticks recorded, {len(trace.fields) - 1} run"
            )
        return None
    t = int(np.argmax(diff_f))
    fields = tuple(f for k, f in enumerate(names) if old_f[t, k] != trace.fields[t, k])
    agents = tuple(a for k, a in enumerate(trace.agent_names) if old_a[t, k] != trace.agents[t, k])
    return Mismatch(case, t, fields[0] if fields else "agent row", agents[0] if agents else None, fields, agents)


def compare(directory: Path, case: str, trace: Trace, recording: dict[str, Any]) -> Mismatch | None:
    """The first difference between a fresh ``trace`` and the recorded case, or ``None``."""
    rec = recording["cases"].get(case)
    if rec is None:
        return Mismatch(case, 0, "case", None, detail="not recorded; re-record with townlet golden record")
    recorded = _load_trace(directory, case)
    if recorded is not None:
        found = _first_row(recorded, trace, case, rec)
        if found is not None:
            return found
    ticks = rec["ticks"]
    if ticks != trace.checkpoints["ticks"]:
        return Mismatch(
            case, 0, "ticks", None, detail=f"checkpoints {ticks[:3]}... -> {trace.checkpoints['ticks'][:3]}..."
        )
    for k, tick in enumerate(ticks):
        for key, what in CHECKPOINT_KEYS:
            if rec[key][k] != trace.checkpoints[key][k]:
                since = ticks[k - 1] + 1 if k else 0
                return Mismatch(case, tick, what, None, detail=f"somewhere in ticks {since}..{tick}")
    for agent, sums in rec.get("reward_sums", trace.reward_sums).items():
        for term, value in sums.items():
            if trace.reward_sums[agent][term] != value:
                return Mismatch(case, ticks[-1], f"reward sum {term}", agent,
                                detail=f"recorded {value!r}, now {trace.reward_sums[agent][term]!r}")  # fmt: skip
    if rec.get("actions", trace.actions) != trace.actions:
        return Mismatch(case, ticks[-1], "action histogram", None, detail=f"{rec['actions']} -> {trace.actions}")
    return None
