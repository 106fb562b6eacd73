"""The typed per-tick event record that telemetry, narration, KPIs and goldens consume.

Systems append :class:`Event` tuples to an :class:`EventLog` while a tick runs; the
environment exposes the finished tick's events as ``env.unwrapped.last_events`` (a list,
fresh each tick).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class EventKind(IntEnum):
    """What happened. ``agent``/``other``/``obj`` are seat and object indices (-1 unused)."""

    AFFORDANCE_START = 1  #: agent started affordance ``value`` at obj
    AFFORDANCE_FINISH = 2  #: agent completed affordance ``value`` at obj
    AFFORDANCE_FAIL = 3  #: agent's affordance ``value`` failed (precondition or cancelled)
    QUEUE_JOIN = 4  #: agent joined obj's queue
    QUEUE_CONFLICT = 5  #: agent waited past the conflict limit behind holder ``other``
    SHIFT_LATE = 6  #: agent arrived ``value`` ticks late for its shift
    SHIFT_ABSENT = 7  #: agent missed its shift
    SHIFT_ON_TIME = 8  #: agent arrived on time
    FAINT = 9  #: agent fainted: need ``value`` sat at 0 too long
    EVICTION = 10  #: agent evicted after chronic absence
    RESPAWN = 11  #: a new identity (generation ``value``) took the seat
    RELATIONSHIP = 12  #: tie agent->other changed by event type ``value`` (see RelEvent)
    CHAT_SUCCESS = 13  #: agent chatted with other
    CHAT_FAILURE = 14  #: agent's chat with other failed
    RESTOCK = 15  #: obj was restocked
    EXIT_QUEUED = 16  #: agent joined the exit queue (eviction pending, capped per day)
    # Town life (social events and perturbations). Emitted by the systems that own them;
    # narration, KPIs and telemetry read them by name.
    QUEUE_CUT_IN = 17  #: agent took obj ahead of ``other``, who had waited longer
    QUEUE_HANDOVER = 18  #: agent yielded its turn at obj to ``other`` (a polite hand-over)
    OBJECT_BLOCKED = 19  #: agent kept obj (e.g. a shower) past its need while ``other`` waited
    SHARED_MEAL = 20  #: agent ate at obj alongside ``other``
    COWORKER_HELPED = 21  #: agent helped its late coworker ``other``
    SHIFT_COVERED = 22  #: agent covered absent coworker ``other``'s shift
    CHAT_BLOCKED = 23  #: agent's chat towards ``other``, a rival it avoids, was blocked
    RIVAL_AVOIDED = 24  #: agent stepped away from a conflict with rival ``other``
    PERTURBATION_START = 25  #: perturbation kind ``value`` began (agent: its target, -1 town-wide)
    PERTURBATION_END = 26  #: perturbation kind ``value`` ended
    ARRIVAL = 27  #: a new resident arrived at seat ``agent`` (generation ``value``)
    DEPARTURE = 28  #: the resident at seat ``agent`` left town


class PerturbationKind(IntEnum):
    """Kinds of perturbation (the ``value`` of PERTURBATION_START/END events)."""

    PRICE_SPIKE = 1
    POWER_OUTAGE = 2
    WATER_OUTAGE = 3
    ARRANGED_MEET = 4
    CITY_EVENT = 5


class RelEvent(IntEnum):
    """Relationship event types (keys of ``relationships.events`` in the config)."""

    CHAT_SUCCESS = 0
    CHAT_FAILURE = 1
    SHARED_MEAL = 2
    QUEUE_CONFLICT = 3
    COWORKER = 4


REL_EVENT_KEYS = ("chat_success", "chat_failure", "shared_meal", "queue_conflict", "coworker")


class Event(NamedTuple):
    tick: int
    kind: EventKind
    agent: int
    other: int = -1
    obj: int = -1
    value: float = 0.0


class EventLog:
    """Events of the tick being simulated."""

    __slots__ = ("events", "tick")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.tick = 0

    def emit(self, kind: EventKind, agent: int, other: int = -1, obj: int = -1, value: float = 0.0) -> None:
        self.events.append(Event(self.tick, kind, agent, other, obj, value))

    def start_tick(self, tick: int) -> None:
        self.tick = tick
        self.events = []
