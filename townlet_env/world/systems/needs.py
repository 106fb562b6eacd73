"""Needs: per-tick decay, clamping to [0, 1], and the count of ticks spent at zero."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def decay(s, r):
    """Subtract the decay rates from every need, clamp to [0, 1], count consecutive ticks at 0.

    ``s`` and ``r`` are the tick's state and rule records (``simulation.TickArrays`` and ``TickRules``).
    """
    needs, rates, alive, zero_ticks = s.needs, r.decay, s.alive, s.zero_ticks
    for i in range(needs.shape[0]):
        starving = False
        for k in range(needs.shape[1]):
            v = min(1.0, max(0.0, needs[i, k] - rates[k]))
            needs[i, k] = v
            starving = starving or v <= 0.0
        zero_ticks[i] = zero_ticks[i] + 1 if (starving and alive[i]) else 0
