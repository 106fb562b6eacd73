"""Values built once per object and reused on every tick (kernel records, bound entry points).

A kernel's records (``NamedTuple`` of a town's rule arrays, or of a world state's arrays)
and its bound entry point (:func:`townlet_env.jit.bind`) depend only on the object they are
built from, so they are built on first use and kept for that object's lifetime. Neither
``Rules`` nor ``WorldState`` is hashable (they hold arrays), so the memo keys on ``id`` and
drops an entry when its owner is collected (before the id can be reused).

A record holds references to the owner's arrays: it stays valid while code writes into
those arrays in place, which every system does; code that re-assigns an array attribute
must not reuse the owner's records.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: dict[tuple[int, Callable[..., Any]], tuple[weakref.ref[Any], Any]] = {}


def once_per(owner: Any, build: Callable[..., T], *args: Any) -> T:
    """``build(owner, *args)``, computed on the first call for ``owner`` and then reused.

    ``args`` only feed the first call: they must be fixed for the owner's lifetime (a world
    state's ``Rules``, say).
    """
    key = (id(owner), build)
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is owner:
        value: T = hit[1]
        return value
    value = build(owner, *args)
    _MEMO[key] = (weakref.ref(owner, partial(_forget, key)), value)
    return value


def _forget(key: tuple[int, Callable[..., Any]], _ref: weakref.ref[Any]) -> None:
    _MEMO.pop(key, None)
