"""Fairness buckets: who a targeted perturbation (an arranged meet) picks.

Seats are bucketed by how often they have been targeted. Targets are picked one at a
time, each uniformly (seeded RNG) from the *lowest* bucket among living seats, skipping
seats on their per-agent cooldown; after each pick the buckets are recomputed. If the
lowest bucket has no eligible seat, nobody is picked and the perturbation waits. So a
seat is never targeted a (k+1)-th time while a living seat has been targeted fewer than
k times: in particular never twice while another is untouched.
"""

from __future__ import annotations

import numpy as np


def pick_targets(
    counts: np.ndarray, alive: np.ndarray, eligible: np.ndarray, k: int, rng: np.random.Generator
) -> list[int] | None:
    """``k`` distinct seats by fairness bucket, or ``None`` when the lowest bucket has no eligible seat.

    Args:
        counts: times each seat has been targeted (not changed here).
        alive: seats that count for fairness (living residents).
        eligible: seats that may be picked now (alive and off cooldown).
        k: how many to pick.
        rng: the scheduler's generator (drawn once per pick).

    """
    counts = counts.astype(np.int64).copy()
    free = eligible & alive
    picked: list[int] = []
    for _ in range(k):
        if not alive.any():
            return None
        low = counts[alive].min()
        pool = np.flatnonzero(free & (counts == low))
        if pool.size == 0:
            return None
        seat = int(pool[rng.integers(pool.size)])
        picked.append(seat)
        counts[seat] += 1
        free[seat] = False
    return picked


def gini(values: np.ndarray) -> float:
    """The Gini coefficient of non-negative ``values`` (0: all equal; 0 for an all-zero array)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n, total = v.size, v.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * v).sum()) / (n * total) - (n + 1) / n)
