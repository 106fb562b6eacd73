"""Townlet training: capture, datasets, behaviour cloning, PPO, anneal and the CLI.

Needs the ``[train]`` extra (torch, stable-baselines3, sb3-contrib, imitation, wandb).
Importing this package imports nothing heavy; each module imports what it needs, and
``townlet_env`` never imports from here.
"""
