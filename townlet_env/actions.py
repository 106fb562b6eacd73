"""The fixed, enumerated action spaces. Ids never depend on config or encounter order.

The plain-int constants (``OPT_*``, ``N_OPTIONS``, ``N_PRIMITIVES``) are the one home of the
option ids for hot code: enum attribute access is slow in Python loops and unavailable
inside numba kernels, which read module-level ints as compile-time constants.
"""

from __future__ import annotations

from enum import IntEnum


class Option(IntEnum):
    """``action_mode="option"``: intents carried out by the built-in navigator."""

    WAIT = 0  #: stay put for a tick
    EAT = 1  #: go to a stocked fridge, queue, eat a meal (costs `meal`)
    COOK = 2  #: go to a stove, queue, cook (costs `ingredients`, adds meals to a fridge)
    WASH = 3  #: go to a shower, queue, shower (costs `shower`)
    SLEEP = 4  #: go to the home's bed and sleep
    WORK = 5  #: go to the job's workplace and work while the shift runs
    CHAT = 6  #: walk to the closest friend (or nearest agent) and chat
    GO_HOME = 7  #: walk home


class Primitive(IntEnum):
    """``action_mode="primitive"``: one grid step or one interaction per tick."""

    WAIT = 0
    NORTH = 1
    SOUTH = 2
    EAST = 3
    WEST = 4
    INTERACT = 5  #: queue for / keep using the adjacent object's first affordance
    CHAT = 6  #: chat with an agent on the same or an adjacent tile


N_OPTIONS = len(Option)
N_PRIMITIVES = len(Primitive)
OPT_WAIT = int(Option.WAIT)
OPT_EAT = int(Option.EAT)
OPT_COOK = int(Option.COOK)
OPT_WASH = int(Option.WASH)
OPT_SLEEP = int(Option.SLEEP)
OPT_WORK = int(Option.WORK)
OPT_CHAT = int(Option.CHAT)
OPT_GO_HOME = int(Option.GO_HOME)


def action_names(mode: str) -> list[str]:
    """Action names in id order for ``mode`` ("option" or "primitive")."""
    enum = Option if mode == "option" else Primitive
    return [a.name.lower() for a in enum]
