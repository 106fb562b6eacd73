"""The stability analyzers' per-seat passes, compiled: one small loop over seats each.

The monitor runs after every tick, so its per-seat work goes through numba rather than a
chain of NumPy calls (each of which costs about a microsecond on arrays this small). Each
kernel reads the finished tick's arrays, updates its analyzer's own state arrays in place
and returns a few counts. They are called through numba's dispatcher (about 0.8 us a call
here), not bound to fixed types, so an array of another dtype compiles a new version
instead of being misread.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def starvation_pass(needs, alive, threshold, min_duration, streak, counted):
    """Advance each seat's low-need streak; return (new incidents, seats in an incident)."""
    new = starving = 0
    for i in range(alive.shape[0]):
        low = False
        if alive[i]:
            for k in range(needs.shape[1]):
                if needs[i, k] <= threshold:
                    low = True
        if not low:
            streak[i] = 0
            counted[i] = False
            continue
        streak[i] += 1
        if not counted[i] and streak[i] >= min_duration:
            counted[i] = True
            new += 1
        if counted[i]:
            starving += 1
    return new, starving


@njit(cache=True)
def reward_pass(rewards, alive, reasons):
    """(count, sum, sum of squares) of the rewards of seats alive now or ended this tick (``reasons``)."""
    n = 0
    total = squares = 0.0
    for i in range(alive.shape[0]):
        if alive[i] or reasons[i] != 0:
            r = np.float64(rewards[i])
            n += 1
            total += r
            squares += r * r
    return n, total, squares


@njit(cache=True)
def switch_pass(option, alive, prev, prev_alive):
    """(option switches, seats alive this tick and the last); then remember this tick."""
    switches = seats = 0
    for i in range(alive.shape[0]):
        if alive[i] and prev_alive[i]:
            seats += 1
            if option[i] != prev[i]:
                switches += 1
        prev[i] = option[i]
        prev_alive[i] = alive[i]
    return switches, seats


@njit(cache=True)
def wait_pass(waiting, joined_tick, long_since):
    """(seats queued, seats queued since tick ``long_since`` or earlier)."""
    queued = long = 0
    for i in range(waiting.shape[0]):
        if waiting[i] >= 0:
            queued += 1
            if joined_tick[i] <= long_since:
                long += 1
    return queued, long
