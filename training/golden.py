"""``townlet golden record|check``: the golden rollouts of the environment and of a released policy.

The environment half compares exactly: every case of :data:`CASES` (the environment's own
cases from :mod:`townlet_env.golden.cases` plus capture's stress scenarios) is rolled out
with its scripted policy and must match the recording in ``tests/golden/`` tick for tick;
the first difference is printed as tick, agent and field. The policy half
(:mod:`training.golden_policy`, ``--policy PATH``) checks a released policy against the
actions and reward sums it was recorded with, within stated tolerances.

This module imports no torch (the policy half is imported only when ``--policy`` is given),
so the environment pin also runs where only the environment is installed.

    townlet golden record --reason "needs: hunger decays 5% faster (issue 42)"
    townlet golden check
    townlet golden record --policy runs/poc/anneal/last_good.zip --experiment experiments/poc.yaml --reason "release 3"
    townlet golden check --policy runs/poc/anneal/last_good.zip
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import townlet_env
from townlet_env.golden.cases import ENV_CASES
from townlet_env.golden.store import GOLDEN_DIR, GoldenError, Mismatch, compare, load_recording, write_recording
from townlet_env.golden.trace import Case, run_case
from training.scenarios import SCENARIOS, Scenario

STRESS_TICKS = 900  # past the outage's latest start (720) and its 180-tick window


def _stress(scenario: Scenario) -> Case:
    overrides = scenario.overrides(townlet_env.make_config())
    return Case(f"stress-{scenario.name}", 8, STRESS_TICKS, "expert", tuple(sorted(overrides.items())),
                on_reset=scenario.on_reset, hook=scenario.hook, description=scenario.description)  # fmt: skip


#: Every golden case, in recording order: the environment's, then capture's stress scenarios.
CASES: tuple[Case, ...] = ENV_CASES + tuple(_stress(s) for s in SCENARIOS.values())
MIN_REASON = 10


def _pick(names: Sequence[str] | None) -> tuple[Case, ...]:
    if not names:
        return CASES
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GoldenError(f"--case: unknown case(s) {unknown}; known: {list(known)}")
    return tuple(known[n] for n in names)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=GOLDEN_DIR, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def record(reason: str, directory: Path = GOLDEN_DIR, echo: bool = True) -> int:
    """Roll every case out and write the recording and the sign-off; the number of cases."""
    traces = {}
    for case in CASES:
        if echo:
            print(f"recording {case.name} ({case.ticks} ticks)", flush=True)
        traces[case.name] = run_case(case)
    write_recording(directory, traces, reason.strip(), _commit())
    return len(traces)


def check(directory: Path = GOLDEN_DIR, names: Sequence[str] | None = None, echo: bool = True) -> list[Mismatch]:
    """Every case against the recording; the mismatches (empty: the tree matches)."""
    recording = load_recording(directory)
    found = []
    for case in _pick(names):
        problem = compare(directory, case.name, run_case(case), recording)
        if echo:
            print(f"FAIL {problem.message()}" if problem else f"ok   {case.name}", flush=True)
        if problem is not None:
            found.append(problem)
    if not names:
        stale = sorted(set(recording["cases"]) - {c.name for c in CASES})
        found += [Mismatch(n, 0, "case", None, detail="recorded but no longer a case") for n in stale]
    return found


def main(argv: Sequence[str]) -> int:
    """``townlet golden record|check ...``: exit 0 on success, 1 on a mismatch or error, 2 on usage."""
    parser = argparse.ArgumentParser(prog="townlet golden", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_rec = sub.add_parser("record", help="re-record the goldens (on purpose only: say why)")
    p_rec.add_argument("--reason", required=True, help="why the environment's meaning changed (kept in the files)")
    p_chk = sub.add_parser("check", help="compare a fresh run with the recording")
    p_chk.add_argument("--case", action="append", help="only this case (repeatable)")
    for p in (p_rec, p_chk):
        p.add_argument("--dir", type=Path, default=GOLDEN_DIR, help="recording directory (default: tests/golden)")
        p.add_argument("--policy", type=Path, help="a released policy (PPO checkpoint): its goldens instead")
        p.add_argument("--recording", type=Path, help="the policy's golden file (default: POLICY.golden.json)")
    p_rec.add_argument("--experiment", type=Path, help="with --policy: the experiment whose town the policy plays")
    args = parser.parse_args(list(argv))
    if args.command == "record" and len(args.reason.strip()) < MIN_REASON:
        parser.error("--reason: say in a sentence why the goldens change (e.g. the rule or weight that changed)")
    try:
        if args.policy is not None:
            from training import golden_policy

            return golden_policy.main(args)
        if args.command == "record":
            n = record(args.reason, args.dir)
            print(f"wrote {args.dir}: {n} cases, sign-off in {args.dir / 'signoff.json'}")
            return 0
        problems = check(args.dir, args.case)
    except GoldenError as exc:
        print(f"townlet golden: {exc}", file=sys.stderr)
        return 1
    if problems:
        hint = "If the change is meant to alter the environment, re-record: townlet golden record --reason '...'"
        print(f"golden check FAILED: {len(problems)} case(s) differ. {hint} (see docs/ops.md)", file=sys.stderr)
        return 1
    print("golden check passed")
    return 0
