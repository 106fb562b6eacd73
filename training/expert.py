"""Training plays the option action space: :func:`check_option_mode` is where it says so.

The expert protocol itself (:class:`~townlet_env.controllers.Expert`, ``ExpertFactory``,
``expert_actions``, ``scripted_expert``) lives with the controllers in
:mod:`townlet_env.controllers`, since ``townlet serve`` and ``townlet soak`` drive the
expert too; capture, the VecEnv and the evaluation import it from there.
"""

from __future__ import annotations

from townlet_env.config import TownConfig


def check_option_mode(config: TownConfig, where: str) -> None:
    """Refuse a town whose agents do not play options (the expert and the policy do).

    Raises:
        ValueError: ``config.action_mode`` is not ``"option"``; the message starts with ``where``.

    """
    if config.action_mode != "option":
        raise ValueError(f"{where}: training plays the option action space; set action_mode: option")
