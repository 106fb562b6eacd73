"""Policies by name: which :class:`~townlet_env.controllers.Controller` ``townlet serve`` and
``townlet soak`` run (``--policy NAME``).

``scripted`` (the scripted expert on every seat) and ``random`` (uniformly random valid
actions) are built in. Other packages add policies through the ``townlet.policies``
entry-point group: each entry point names a :data:`PolicyFactory`, called with the town
and the :class:`PolicyOptions` and returning a controller. The training package registers
``learned`` (a trained checkpoint on every seat) and ``mixed`` (a checkpoint on a fixed
share of the seats, the scripted expert on the rest); this package never imports it by
name, so without the training extras those two are simply absent and the error says
what to install.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from townlet_env.controllers import Controller, RandomController, ScriptedController
from townlet_env.plugins import INSTALL_HINT, missing_extra

#: The entry-point group other packages register policies in.
POLICY_GROUP = "townlet.policies"
#: Policies that come with the training extras (named in the error when they are absent).
TRAINING_POLICIES = ("learned", "mixed")


class PolicyError(ValueError):
    """A policy cannot be built: unknown name, missing extras, or a bad checkpoint.

    The message names the command-line option at fault and how to fix it.
    """


@dataclass(frozen=True)
class PolicyOptions:
    """What a policy may need besides the town (each field is a command-line option).

    Attributes:
        checkpoint: ``--checkpoint``: a trained policy (``learned`` and ``mixed`` only).
        learned_fraction: ``--learned-fraction``: the share of seats ``mixed`` gives the
            checkpoint, in (0, 1]; at least one seat.
        seed: ``--seed``: seeds the controller and, for ``mixed``, the seat assignment.

    """

    checkpoint: str | None = None
    learned_fraction: float = 0.5
    seed: int = 0


#: ``(env, options) -> controller``; raises :class:`PolicyError` on bad options.
PolicyFactory = Callable[[Any, PolicyOptions], Controller]


def _scripted(env: Any, options: PolicyOptions) -> Controller:
    return ScriptedController()


def _random(env: Any, options: PolicyOptions) -> Controller:
    return RandomController()


#: The policies this package provides itself; a registered policy of the same name loses.
BUILTIN_POLICIES: dict[str, PolicyFactory] = {"scripted": _scripted, "random": _random}


def _entry_points() -> list[EntryPoint]:
    """The installed ``townlet.policies`` entry points (tests replace this lookup)."""
    return list(entry_points(group=POLICY_GROUP))


def registered_policies() -> dict[str, EntryPoint]:
    """Policies other packages registered, by name (built-in names excluded)."""
    return {ep.name: ep for ep in _entry_points() if ep.name not in BUILTIN_POLICIES}


def policy_names() -> list[str]:
    """Every policy ``--policy`` accepts now, sorted."""
    return sorted({*BUILTIN_POLICIES, *registered_policies()})


def make_controller(name: str, env: Any, options: PolicyOptions | None = None) -> Controller:
    """The controller of policy ``name`` for ``env``, reset with ``options.seed``.

    Raises:
        PolicyError: unknown policy, the training extras missing, a checkpoint given to
            a policy that takes none, or the factory refused its options.

    """
    options = options if options is not None else PolicyOptions()
    controller = _factory(name)(env, options)
    controller.reset(env.unwrapped.rules, options.seed)
    return controller


def _factory(name: str) -> PolicyFactory:
    if name in BUILTIN_POLICIES:
        return _no_checkpoint(name, BUILTIN_POLICIES[name])
    registered = registered_policies()
    if name not in registered:
        # Absent also when the extras are installed but the install predates the entry point.
        hint = (
            f" (--policy {name} comes with the training extras; {INSTALL_HINT}, again after an update)"
            if name in TRAINING_POLICIES
            else ""
        )
        raise PolicyError(f"--policy: unknown policy {name!r}; choose one of {policy_names()}{hint}")
    entry = registered[name]
    try:
        factory: PolicyFactory = entry.load()
    except ImportError as exc:
        if missing := missing_extra(exc):
            raise PolicyError(f"--policy {name}: needs the training extras ({missing} is not installed); "
                              f"{INSTALL_HINT}") from exc  # fmt: skip
        raise PolicyError(f"--policy {name}: {entry.value} cannot be imported ({exc}); {INSTALL_HINT}") from exc
    return factory


def _no_checkpoint(name: str, factory: PolicyFactory) -> PolicyFactory:
    def build(env: Any, options: PolicyOptions) -> Controller:
        if options.checkpoint is not None:
            raise PolicyError(f"--checkpoint: policy {name!r} takes no checkpoint; use --policy learned or mixed")
        return factory(env, options)

    return build


def add_policy_arguments(p: argparse.ArgumentParser, default: str = "scripted") -> None:
    """``--policy``, ``--checkpoint`` and ``--learned-fraction``, as serve and soak take them."""
    p.add_argument(
        "--policy",
        default=default,
        help=f"who plays: scripted or random, or with the training extras learned or mixed (default {default})",
    )
    p.add_argument("--checkpoint", default=None, help="learned/mixed: the trained policy (.zip from PPO, .pt from BC)")
    p.add_argument(
        "--learned-fraction",
        type=float,
        default=PolicyOptions.learned_fraction,
        help="mixed: share of seats the checkpoint drives, the rest scripted (default 0.5)",
    )
