"""Re-record the golden rollouts in ``tests/golden/digests.json`` -- on purpose only.

The goldens pin the town's dynamics: ``tests/test_golden.py`` fails when any world digest,
observation hash or reward hash differs. Re-record only when the change is meant to alter
behaviour (a new rule, a retuned constant, a new feature), and say why: the reason, the
commit it was recorded at and the time are stored in the file, and belong in the commit
message too. A refactor must never need this script.

    python scripts/record_goldens.py --why "needs: hunger decays 5% faster (issue 42)"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.golden.rollouts import CASES, EVERY, GOLDEN_PATH, checkpoint_ticks, run_case  # noqa: E402
from townlet_env.atomic import write_text_atomic  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--why", required=True, help="why the dynamics changed on purpose (kept in the file)")
    args = parser.parse_args(argv)
    if len(args.why.strip()) < 10:
        parser.error("--why: say in a sentence why the dynamics changed on purpose")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    cases = {}
    for case in CASES:
        print(f"recording {case.name} ({case.ticks} ticks)", flush=True)
        cases[case.name] = {"ticks": checkpoint_ticks(case), **run_case(case)}
    doc = {
        "why": args.why.strip(),
        "recorded_at_commit": commit.stdout.strip() or "unknown",
        "recorded_on": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "every": EVERY,
        "cases": cases,
    }
    write_text_atomic(GOLDEN_PATH, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {GOLDEN_PATH.relative_to(ROOT)}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
