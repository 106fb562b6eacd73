"""Ops components attached to a town: hooks each tick, and state that travels in snapshots.

A live town has parts beside the simulation: the stability monitor, the telemetry
publisher, the console. Each attaches to the core env under a name
(``env.unwrapped.attachments.attach("console", console)``) and may define any of:

* ``before_step(env, actions)``: runs at the start of every tick, before the world moves;
  ``actions`` is the int64 array of this tick's actions (one per seat), writable, so a
  component may override a seat's action (console possession). Console commands land here.
* ``after_step(env)``: runs at the end of every tick, when ``env.world``,
  ``env.last_events``, ``env.last_rewards`` and ``env.reward_terms`` hold the tick's results.
* ``after_reset(env)``: runs at the end of every ``reset``.
* ``state_dict()`` / ``load_state_dict(state)``: the component's state as a mapping of
  JSON values and NumPy arrays, for :mod:`townlet_env.snapshots`.

Hooks run in attach order. A snapshot loaded before a component attaches keeps that
component's saved state here and hands it over when a component of that name attaches,
so ``load_snapshot(path)`` then ``Console(env)`` resumes the console's idempotency cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class AttachmentError(ValueError):
    """A name is attached twice, or a detached name was never attached."""


class Attachments:
    """The ops components of one town, by name, and their per-tick hooks."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._saved: dict[str, Mapping[str, Any]] = {}
        self.before_step: list[Callable[..., None]] = []
        self.after_step: list[Callable[..., None]] = []
        self.after_reset: list[Callable[..., None]] = []

    def attach(self, name: str, component: Any) -> None:
        """Attach ``component`` as ``name``; restore its saved state if a snapshot holds one.

        Raises:
            AttachmentError: ``name`` is already attached.

        """
        if name in self._items:
            raise AttachmentError(f"attachment {name!r} is already attached; detach it first")
        saved = self._saved.pop(name, None)
        if saved is not None:
            component.load_state_dict(saved)
        self._items[name] = component
        self._rebuild_hooks()

    def detach(self, name: str) -> Any:
        """Remove and return the component attached as ``name``."""
        if name not in self._items:
            raise AttachmentError(f"no attachment named {name!r}; attached: {sorted(self._items)}")
        component = self._items.pop(name)
        self._rebuild_hooks()
        return component

    def get(self, name: str) -> Any | None:
        """The component attached as ``name``, or ``None``."""
        return self._items.get(name)

    def names(self) -> list[str]:
        return list(self._items)

    def state_dicts(self) -> dict[str, Mapping[str, Any]]:
        """Each stateful component's ``state_dict()``, plus saved states not yet claimed."""
        states = dict(self._saved)
        for name, component in self._items.items():
            if hasattr(component, "state_dict"):
                states[name] = component.state_dict()
        return states

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Hand each attached component its state; keep the rest for components yet to attach."""
        self._saved = {}
        for name, state in states.items():
            component = self._items.get(name)
            if component is None:
                self._saved[name] = state
            else:
                component.load_state_dict(state)

    def _rebuild_hooks(self) -> None:
        items = self._items.values()
        self.before_step = [c.before_step for c in items if hasattr(c, "before_step")]
        self.after_step = [c.after_step for c in items if hasattr(c, "after_step")]
        self.after_reset = [c.after_reset for c in items if hasattr(c, "after_reset")]
