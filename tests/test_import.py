"""`import townlet_env` stays light: no torch, SB3, imitation or wandb."""

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "sb3_contrib", "imitation", "wandb")


def test_import_townlet_env_does_not_import_training_stack() -> None:
    code = (
        "import sys, townlet_env\n"
        "env = townlet_env.parallel_env()\n"
        "env.reset(seed=0)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout.strip()}"
