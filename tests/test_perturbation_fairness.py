"""Fairness buckets, as properties: for any history of pick rounds, living seats and cooldowns,
no seat is targeted a (k+1)-th time while a living seat has fewer than k targets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from townlet_env.perturbations.fairness import gini, pick_targets

rounds = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 2**16), st.integers(1, 3)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 12), history=rounds, seed=st.integers(0, 2**32 - 1))
def test_nobody_is_targeted_again_while_another_lags(n: int, history: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = np.zeros(n, np.int64)
    for alive_bits, cool_bits, k in history:
        alive = np.array([(alive_bits >> i) & 1 == 0 for i in range(n)])  # mostly alive
        cooling = np.array([(cool_bits >> i) & 1 == 1 for i in range(n)])
        picked = pick_targets(counts, alive, ~cooling, k, rng)
        if picked is None:
            continue
        assert len(set(picked)) == len(picked) == k
        for seat in picked:
            assert alive[seat] and not cooling[seat], "picked a vacant or cooling seat"
            low = counts[alive].min()
            assert counts[seat] == low, f"seat {seat} at {counts[seat]} picked while a living seat has {low}"
            counts[seat] += 1


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 16), rounds_=st.integers(1, 80), seed=st.integers(0, 2**32 - 1))
def test_with_everyone_free_the_targets_stay_within_one_of_each_other(n: int, rounds_: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = np.zeros(n, np.int64)
    everyone = np.ones(n, bool)
    for _ in range(rounds_):
        picked = pick_targets(counts, everyone, everyone, 2, rng)
        assert picked is not None
        counts[picked] += 1
        assert counts.max() - counts.min() <= 1
    assert gini(counts) < 0.2 or counts.sum() < n  # near-equal once everybody has had a turn


def test_gini() -> None:
    assert gini(np.array([3, 3, 3])) == 0.0
    assert gini(np.zeros(4)) == 0.0
    assert abs(gini(np.array([0, 0, 0, 10])) - 0.75) < 1e-9
