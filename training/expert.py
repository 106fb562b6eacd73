"""The expert protocol: how training drives a scripted expert, in one place.

Capture records the expert, the VecEnv and the evaluation let it drive the seats the
learner does not, and all three talk to it the same way: an :data:`ExpertFactory` builds
one :class:`Expert` per episode from the town's rules and the episode seed, and
:func:`expert_actions` asks it for one option per seat. The expert and the policy play
the option action space; :func:`check_option_mode` is where training says so.
"""

from __future__ import annotations

from townlet_env.config import TownConfig
from townlet_env.controllers import Expert, ExpertFactory, expert_actions, scripted_expert

# The protocol lives with the controllers in townlet_env (serve and soak drive the expert
# too); training code imports it from here as before.
__all__ = ["Expert", "ExpertFactory", "check_option_mode", "expert_actions", "scripted_expert"]


def check_option_mode(config: TownConfig, where: str) -> None:
    """Refuse a town whose agents do not play options (the expert and the policy do).

    Raises:
        ValueError: ``config.action_mode`` is not ``"option"``; the message starts with ``where``.

    """
    if config.action_mode != "option":
        raise ValueError(f"{where}: training plays the option action space; set action_mode: option")
