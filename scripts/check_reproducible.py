"""Run an experiment several times from scratch and compare its figures exactly.

Each run is a fresh ``townlet run EXPERIMENT --runs-dir <new temp dir>`` in its own
process (W&B disabled). The script reads, per run, the BC held-out accuracy (overall and
per action) and train accuracy, and the evaluation's returns, normalised score and KPIs,
prints them side by side, and exits 0 when every figure is identical across runs, 1 with
the spread of each differing figure otherwise. See docs/training.md, "Reproducibility".

    python scripts/check_reproducible.py experiments/tiny.yaml --runs 2
    python scripts/check_reproducible.py experiments/poc.yaml --runs 3 --parallel
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from training.cli import run_main; sys.exit(run_main(sys.argv[1:]))"


def figures(run_dir: Path) -> dict[str, float]:
    """The run's BC and evaluation figures, flattened to ``name -> value``."""
    out: dict[str, float] = {}
    bc = run_dir / "bc" / "bc_result.json"
    if bc.is_file():
        data = json.loads(bc.read_text())
        out["bc/held_out_accuracy"] = data["held_out"]["accuracy"]
        out["bc/train_accuracy"] = data["train_accuracy"]
        for name, acc in data["held_out"]["per_action"].items():
            if acc is not None:
                out[f"bc/accuracy_{name}"] = acc
    ev = run_dir / "evaluate" / "evaluation.json"
    if ev.is_file():
        data = json.loads(ev.read_text())
        out["eval/normalised_score"] = data["normalised_score"]
        out.update({f"eval/return_{k}": v for k, v in data["returns"].items()})
        for who, kpis in data["kpis"].items():
            out.update({f"eval/{who}/{k}": v for k, v in kpis.items()})
    return out


def _start(experiment: Path, runs_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WANDB_MODE": "disabled", "TOWNLET_PROGRESS": "off", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", RUN, str(experiment), "--runs-dir", str(runs_dir)]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def compare(runs: list[dict[str, float]]) -> dict[str, float]:
    """``figure -> max - min`` for every figure that is not identical in all runs."""
    names = sorted(set().union(*runs))
    spread = {}
    for name in names:
        values = [r.get(name, float("nan")) for r in runs]
        if any(v != values[0] for v in values):
            spread[name] = max(values) - min(values)
    return spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--parallel", action="store_true", help="start every run at once (each pins its threads)")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this folder")
    args = parser.parse_args(argv)
    name = _experiment_name(args.experiment)
    with tempfile.TemporaryDirectory(prefix="townlet-repro-") as scratch:
        base = args.keep or Path(scratch)
        dirs = [base / f"run{k}" for k in range(args.runs)]
        procs: list[subprocess.Popen[bytes]] = []
        for d in dirs:
            procs.append(_start(args.experiment, d))
            if not args.parallel and procs[-1].wait() != 0:
                return _failed(procs[-1])
        if any(p.wait() != 0 for p in procs):
            return _failed(next(p for p in procs if p.returncode != 0))
        runs = [figures(d / name) for d in dirs]
    for fig in sorted(runs[0]):
        print(f"{fig:45s} " + "  ".join(f"{r.get(fig, float('nan')):.6f}" for r in runs))
    spread = compare(runs)
    if spread:
        print(f"NOT reproducible: {len(spread)} figure(s) differ across {args.runs} runs (max - min):")
        for fig, s in spread.items():
            print(f"  {fig}: {s:.6g}")
        return 1
    print(f"reproducible: all {len(runs[0])} figures identical across {args.runs} runs")
    return 0


def _experiment_name(path: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from training.experiment import load_experiment

    return load_experiment(path).name


def _failed(proc: subprocess.Popen[bytes]) -> int:
    print(f"a run failed with exit status {proc.returncode}: {proc.args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
