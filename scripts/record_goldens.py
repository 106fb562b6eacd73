"""Re-record the golden rollouts -- on purpose only. A shim for ``townlet golden record``.

The goldens pin what the environment means: its dynamics, observations and rewards
(``tests/test_golden.py`` runs ``townlet golden check``'s comparison). Re-record only when
a change is meant to alter them, and say why; the reason, commit and time are stored in
``tests/golden/digests.json`` and ``tests/golden/signoff.json`` and belong in the commit
message too. A refactor must never need this. See docs/ops.md, "Golden rollouts".

    python scripts/record_goldens.py --why "needs: hunger decays 5% faster (issue 42)"
    (the same as: townlet golden record --reason "...")
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.golden import main as golden_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--why", required=True, help="why the environment changed on purpose (kept in the files)")
    args = parser.parse_args(argv)
    return golden_main(["record", "--reason", args.why])


if __name__ == "__main__":
    raise SystemExit(main())
