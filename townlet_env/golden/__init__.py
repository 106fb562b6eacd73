"""Golden rollouts: fixed towns, seeds and scripted policies whose every tick is pinned.

* :mod:`townlet_env.golden.trace` rolls a :class:`Case` out and fingerprints every tick
  (one checksum per world field, observation, mask, action and reward term, and one per
  agent row), keeping the per-checkpoint digests, reward sums per term and the action
  histogram;
* :mod:`townlet_env.golden.cases` is the environment's case set;
* :mod:`townlet_env.golden.store` writes the recording (``tests/golden/digests.json`` plus
  one ``.npz`` of per-tick fingerprints per case) and compares a fresh run with it, naming
  the first differing tick, agent and field.

Nothing here imports torch: the environment pin runs without the training extras. The
released-policy goldens and the ``townlet golden`` command live in ``training.golden``.
"""
