"""Plain JSON values from what the town hands out, for telemetry messages and console replies.

One converter serves both, so an alert or a metric reads the same in the stream and in a
console reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values.

    NumPy scalars and arrays, dataclasses and named tuples are converted, enums become
    their lower-case name, non-finite floats ``None`` (JSON has no NaN), anything else
    unknown its ``str``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return value.name.lower()
    if isinstance(value, int):
        return int(value)  # IntEnum members too
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if np.isfinite(f) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if hasattr(value, "_asdict"):
        return jsonable(value._asdict())
    if hasattr(value, "__dataclass_fields__"):
        return {k: jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)
