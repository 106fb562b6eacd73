"""Before/after throughput of two checkouts, measured in one run on one machine.

Absolute speeds on a shared machine move by tens of percent from day to day, so a claim
that a change kept (or gained) speed is a ratio of two measurements taken side by side.
This script times ``env.step`` (random valid actions, as ``throughput.py``'s "random"
rows) for each checkout in a fresh subprocess that imports that checkout's
``townlet_env``, alternating the two for ``--rounds`` rounds, and prints the medians and
the ratio after/before per (variant, agents) row.

    git worktree add /tmp/before <commit>
    taskset -c 0 python benchmarks/compare.py --before /tmp/before [--after .]

Each measurement runs under ``taskset -c 0`` when taskset exists, so both sides get the
same single core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()


def measure_here(variant: str, agents: int, steps: int) -> float:
    """env-steps/s of ``env.step`` alone, for the ``townlet_env`` importable here."""
    sys.path.insert(0, str(HERE.parent))
    from throughput import measure, random_policy  # the one timing loop the benchmarks share

    import townlet_env

    env = townlet_env.parallel_env(obs_variant=variant, num_agents=agents, max_ticks=100_000)
    return measure(env, random_policy(0), steps)[0]


def _run(checkout: Path, variant: str, agents: int, steps: int) -> float:
    cmd = [sys.executable, str(HERE), "--measure", variant, str(agents), str(steps)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    out = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="checkout of the earlier commit (e.g. a git worktree)")
    parser.add_argument("--after", type=Path, default=HERE.parents[1], help="checkout of the later commit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rows", default="full:8,hybrid:8,compact:8,hybrid:64")
    parser.add_argument("--measure", nargs=3, metavar=("VARIANT", "AGENTS", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        variant, agents, steps = args.measure
        print(json.dumps({"steps_per_s": measure_here(variant, int(agents), int(steps))}))
        return
    if args.before is None:
        parser.error("--before: name the checkout to compare against (git worktree add /tmp/before <commit>)")
    print(f"before: {args.before}\nafter:  {args.after}\n{args.rounds} alternating rounds of {args.steps} steps")
    print(f"{'variant':8} {'agents':>6} {'before env-steps/s':>19} {'after env-steps/s':>18} {'after/before':>13}")
    for row in args.rows.split(","):
        variant, agents = row.split(":")
        before, after = [], []
        for _ in range(args.rounds):
            before.append(_run(args.before, variant, int(agents), args.steps))
            after.append(_run(args.after, variant, int(agents), args.steps))
        b, a = statistics.median(before), statistics.median(after)
        print(f"{variant:8} {int(agents):6d} {b:19,.0f} {a:18,.0f} {a / b:13.3f}", flush=True)


if __name__ == "__main__":
    main()
