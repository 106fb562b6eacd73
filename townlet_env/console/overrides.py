"""Operator overrides of the rules: prices, the daily exit cap, mortality.

They live here, in the console, not in the town's config: the config (and its identity,
which snapshots check) stays the one the town was built from, and the overrides travel in
the console's ``state_dict``, so a loaded snapshot gets them back when a console attaches.
Applying them builds the town's rules again from a copy of the config with the overrides,
and the systems read the new rules from the next tick on (their compiled kernels rebind,
since a state's kernels are keyed by the rules they were built for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from townlet_env.world.rules import build_rules

#: ``lifecycle.faint_after_ticks`` with mortality off: longer than any run, so nobody faints.
NEVER = 10**9


@dataclass
class Overrides:
    """What the operator changed. Empty: the town runs its config as written."""

    prices: dict[str, float] = field(default_factory=dict)
    daily_exit_cap: int | None = None
    mortality: bool = True

    def empty(self) -> bool:
        return not self.prices and self.daily_exit_cap is None and self.mortality

    def to_json(self) -> dict[str, Any]:
        return {"prices": dict(self.prices), "daily_exit_cap": self.daily_exit_cap, "mortality": self.mortality}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Overrides:
        cap = data.get("daily_exit_cap")
        return cls(
            prices={str(k): float(v) for k, v in dict(data.get("prices", {})).items()},
            daily_exit_cap=None if cap is None else int(cap),
            mortality=bool(data.get("mortality", True)),
        )

    def apply(self, env: Any) -> None:
        """Rebuild ``env``'s rules from its config with these overrides (or as written, if none)."""
        base = env.config
        if self.empty():
            if env.rules.config is not base:
                env.rules = build_rules(base)
            return
        economy = base.economy.model_copy(update={"prices": {**base.economy.prices, **self.prices}})
        life = {}
        if self.daily_exit_cap is not None:
            life["daily_exit_cap"] = self.daily_exit_cap
        if not self.mortality:
            life["faint_after_ticks"] = NEVER
        lifecycle = base.lifecycle.model_copy(update=life)
        env.rules = build_rules(base.model_copy(update={"economy": economy, "lifecycle": lifecycle}))
