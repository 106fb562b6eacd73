"""What other packages plug into ``townlet_env`` needs to know about the training extras.

Commands (``townlet.commands``) and policies (``townlet.policies``) arrive through entry
points, mostly from the training package; when one of them fails to import because a
``[train]`` module is missing, the user is told which and what to install.
"""

from __future__ import annotations

#: Top-level modules of the ``[train]`` extra; an ImportError naming one means it is missing.
TRAIN_EXTRA_MODULES = frozenset({"torch", "stable_baselines3", "sb3_contrib", "imitation", "wandb", "rich", "tqdm"})
INSTALL_HINT = "install the training extras with: pip install -e .[train]"


def missing_extra(exc: ImportError) -> str | None:
    """The ``[train]`` module whose absence caused ``exc``, or ``None`` for any other cause."""
    missing = (exc.name or "").split(".")[0]
    return missing if missing in TRAIN_EXTRA_MODULES else None
