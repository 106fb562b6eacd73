"""Same experiment, same numbers: seed every generator and pin torch's arithmetic before a stage.

Run twice on one machine, an experiment must give the same BC accuracy and the same
evaluation figures. What varies otherwise:

* **global generators**: Python's ``random``, NumPy's legacy global generator and torch's
  default generator are drawn from by libraries (SB3 shuffles minibatches with torch and
  NumPy, imitation's data loader shuffles with torch). Each stage starts from
  :func:`seed_everything` with a seed derived from the experiment's ``seed`` and the stage.
* **thread count**: a float sum split over 2 threads rounds differently from one over 16,
  and the count would otherwise depend on the machine and on which stages ran before (BC
  set one thread for the process, a resumed run that skips BC kept torch's default).
  Every stage runs with the experiment's ``torch_threads``.
* **kernel choice**: ``torch.use_deterministic_algorithms(True)`` refuses nondeterministic
  kernels (an error, not a silent difference) and ``CUBLAS_WORKSPACE_CONFIG`` makes cuBLAS
  deterministic on a GPU.

Results still differ *between* machines with other CPUs or library builds (vectorised
float sums are not associative); see docs/training.md.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch
from stable_baselines3.common.utils import set_random_seed


def stage_seed(seed: int, stage: str) -> int:
    """A 31-bit seed for ``stage`` derived from the experiment's ``seed`` (stable across runs)."""
    digest = hashlib.sha256(f"{seed}/{stage}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def seed_everything(seed: int, threads: int = 1) -> None:
    """Seed Python, NumPy and torch (through SB3's ``set_random_seed``) and pin torch's arithmetic."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    set_random_seed(seed, using_cuda=torch.cuda.is_available())  # random, numpy, torch (and CUDA)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
