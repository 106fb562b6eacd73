"""Narration: templated lines about town life, throttled for a human reader.

* :mod:`~townlet_env.narration.config`: the ``narration:`` config section and line kinds;
* :mod:`~townlet_env.narration.templates`: wordings loaded from YAML (``data/narration.yaml``);
* :mod:`~townlet_env.narration.throttle`: cooldowns, dedupe and the rolling-window limit;
* :mod:`~townlet_env.narration.narrator`: the :class:`~townlet_env.narration.narrator.Narrator`
  attachment (``Narrator(env)``), whose lines telemetry and the console show.

This package's ``__init__`` imports nothing: :mod:`townlet_env.config` imports the config
module, and the narrator imports the config.
"""
