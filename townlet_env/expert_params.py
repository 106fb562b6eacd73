"""The scripted expert's parameters and the day tables derived from them.

Everything the expert decides from (job, minute of day) alone is tabulated here once per
town (:func:`schedule_tables`), so :class:`~townlet_env.scripted.ScriptedExpert` does a
few dozen numpy operations per tick whatever the number of seats. See that module's
docstring for the routine these parameters shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from townlet_env.config import TICKS_PER_DAY
from townlet_env.world.rules import Rules

BIG = 1 << 20
# Integer table columns: workplace field, travel at which work is due, travel at which the
# next stretch is "soon". Bool table columns: free time, pre-shift morning, bedtime near, shift.
FIELD, WORK_AT, SOON_AT = range(3)
FREE, MORNING, BEDTIME, SHIFT = range(4)


@dataclass(frozen=True)
class ExpertParams:
    """Thresholds (needs in [0, 1]) and times (ticks) of the routine."""

    prep_ticks: int = 180  #: wake this long before the shift starts
    idle_wake: int = 420  #: wake minute of seats without a job
    travel_margin: int = 12  #: leave for work this much earlier than the path length
    lead_ticks: int = 150  #: top needs up this long before the night or the commute
    after_block: int = 45  #: ticks after a night/shift before food can be reached
    floor: float = 0.36  #: projected level a need must keep through the next stretch
    eat_low: float = 0.42  #: eat whenever hunger is below this
    eat_cap: float = 0.8  #: never top up hunger above this
    wash_low: float = 0.4
    wash_cap: float = 0.85
    nap_energy: float = 0.22  #: nap in free time below this energy
    wake_energy: float = 0.85  #: a nap lasts until this energy
    rested: float = 0.97  #: at night, stay up (at home) above this energy
    bed_early: int = 30  #: head to bed this long before bedtime when nothing else is due
    critical: float = 0.16  #: a need this low overrides work, sleep and queue manners
    chat_every: int = 10  #: chats start only on minutes divisible by this
    chat_prob: float = 1.0  #: chance per eligible minute of starting a chat (1: deterministic)
    chat_needs: float = 0.4  #: chat only with every need above this
    chat_range: int = 12  #: chat only with a target within this Manhattan distance
    chat_ticks: int = 40  #: give up a chat that has not reached its partner by then
    avoid_rivalry: float = 0.3  #: no chat toward, and no top-up behind, a seat with more rivalry than this
    work_drain: tuple[float, float, float] = (0.0, 0.0001, 0.0002)  #: extra decay at work
    meet_full: float = 0.9  #: skip an arranged meet's meal above this hunger


def schedule_tables(rules: Rules, p: ExpertParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (job row, minute of day) tables; row ``-1`` is the unemployed seat.

    Returns ``ints[R, D, 3]`` (``FIELD``, ``WORK_AT``, ``SOON_AT``), ``flags[R, D, 4]``
    (``FREE``, ``MORNING``, ``BEDTIME``, ``SHIFT``) and ``thresholds[R, D, 4, 3]``: per need, the
    level below which it is served, for (not soon, awake), (soon, awake), (not soon,
    asleep), (soon, asleep).
    """
    day = TICKS_PER_DAY
    night_len = int(rules.aff_duration[rules.opt_sleep])
    decay = rules.decay.astype(np.float64) + 0.5 * np.asarray(p.work_drain)
    m = np.arange(day)
    jobs = [(int(s), int(e), int(t)) for s, e, t in zip(rules.job_start, rules.job_end, rules.job_type, strict=True)]
    rows = len(jobs) + 1
    ints = np.zeros((rows, day, 3), dtype=np.int32)
    flags = np.zeros((rows, day, 4), dtype=bool)
    thr = np.zeros((rows, day, 4, 3), dtype=np.float32)
    for r, (start, end, field) in enumerate([*jobs, (0, 0, 0)]):
        has = r < len(jobs)
        wake = (start - p.prep_ticks) % day if has else p.idle_wake
        bed = (wake - night_len) % day
        until_start, until_wake, until_bed = (start - m) % day, (wake - m) % day, (bed - m) % day
        night = (m - bed) % day < night_len
        in_shift = has & ((m - start) % day < end - start)
        leave = until_start - p.travel_margin  # minus the travel, known per call
        evening = ~night & ~in_shift & (~has | (until_bed < leave))
        morning = has & ~night & ~in_shift & ~evening
        block = np.where(night, 0, until_bed)  # ticks until the night (mornings: per call)
        ints[r, :, FIELD] = field
        ints[r, :, WORK_AT] = np.where(in_shift, -BIG, np.where(morning, leave, BIG))
        soon_at = np.where(morning, leave - p.lead_ticks, np.where(block <= p.lead_ticks, -BIG, BIG))
        ints[r, :, SOON_AT] = np.where(in_shift, BIG, soon_at)
        flags[r, :, FREE] = ~night & ~in_shift
        flags[r, :, MORNING] = morning
        flags[r, :, BEDTIME] = evening & (until_bed <= p.bed_early)
        flags[r, :, SHIFT] = in_shift
        # Ticks until each need can next be served, plus the walk to it afterwards.
        horizon = np.where(night | evening, until_wake, np.where(in_shift, (end - m) % day, until_start + end - start))
        hyg_horizon = np.where(evening & has, until_wake + p.prep_ticks + end - start, horizon)
        low = np.array([p.eat_low, p.wash_low])
        cap = np.array([p.eat_cap, p.wash_cap])
        need = p.floor + decay[:2] * (np.stack([horizon, hyg_horizon], axis=1) + p.after_block)
        soon_thr = np.maximum(low, np.minimum(cap, need))
        awake_e = np.where(night, p.rested, np.where(evening, max(p.nap_energy, p.floor), p.nap_energy))
        asleep_e = np.where(night, 2.0, p.wake_energy)
        awake_e = np.where(in_shift, 0.0, awake_e)
        asleep_e = np.where(in_shift, 0.0, asleep_e)
        for code, (soon, e_thr) in enumerate(((False, awake_e), (True, awake_e), (False, asleep_e), (True, asleep_e))):
            thr[r, :, code, :2] = soon_thr if soon else low
            thr[r, :, code, 2] = e_thr
    return ints, flags, thr
