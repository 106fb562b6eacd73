"""Perturbations (M8): price spikes, power and water outages, arranged meets and city events.

* :mod:`~townlet_env.perturbations.config`: the ``perturbations:`` config section (off by default).
* :mod:`~townlet_env.perturbations.scheduler`: :class:`PerturbationScheduler`, the attachment
  the env attaches as ``"perturbations"`` when the section is enabled; ``trigger``/``end``
  start and end perturbations by hand (the console's ``perturb`` commands call them).
* :mod:`~townlet_env.perturbations.kinds`: what each kind checks, draws, does and undoes.
* :mod:`~townlet_env.perturbations.effects`: the world-side effects (refunds on outages).
* :mod:`~townlet_env.perturbations.fairness`: fairness buckets for targeted perturbations.

The scheduler is imported lazily: ``townlet_env.config`` imports the config section from
this package while the world modules the scheduler needs are still loading.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PerturbationError", "PerturbationScheduler"]


def __getattr__(name: str) -> Any:
    if name == "PerturbationScheduler":
        from townlet_env.perturbations.scheduler import PerturbationScheduler

        return PerturbationScheduler
    if name == "PerturbationError":
        from townlet_env.perturbations.kinds import PerturbationError

        return PerturbationError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
