"""Binding a numba kernel to the argument types of its records, once.

The per-tick kernels take a few typed records (``NamedTuple`` of arrays and scalars, built
once per town or per reset next to the kernel that reads them) instead of long positional
argument lists. Calling a numba dispatcher with a ``NamedTuple`` re-derives the argument
types in Python on every call (about 2.5 us for a 20-field record, against about 1 us for
positional arrays), which would cost the hot path several percent. :func:`bind` compiles
(or loads from numba's cache) the kernel for the types of example arguments and returns
the compiled entry point, which skips that type dispatch (about 0.8 us for the same call).

The entry point trusts its arguments' types: call it only with records built the same way
as the examples (the records are built by one function per kernel, so they are). A
function that is not a numba dispatcher (a kernel swapped for its ``py_func`` in a test)
is returned as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
from numba.core.dispatcher import Dispatcher


def bind(kernel: Callable[..., Any], *examples: Any) -> Callable[..., Any]:
    """The compiled entry point of ``kernel`` for the types of ``examples``."""
    if not isinstance(kernel, Dispatcher):
        return kernel
    signature = tuple(numba.typeof(a) for a in examples)
    return kernel.compile(signature)
