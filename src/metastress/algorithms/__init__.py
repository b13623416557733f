"""The meta-learners: per-task maths behind one interface (base.py), one module each.

`build(algo, n_way, config, seed)` is the one way experiments create a learner: the algo id
is looked up in `metastress.registry`, the config dict is checked against the algorithm's
hyperparameter dataclass (unknown keys and wrong types are errors), and the weight
initialization is seeded without touching the global random state. An engine
(`metastress.engine`) then runs the learner over meta-batches.
"""

import torch

from metastress import registry
from metastress.algorithms.base import MetaLearner


def build(algo: str, n_way: int, config: dict, seed: int) -> MetaLearner:
    """Create a meta-learner with seeded initial weights.

    Args:
        algo (str): a registered algorithm id (metastress.registry), hand optimizers included.
        n_way (int): classes per task (the base learner's output size).
        config (dict): config keys of the algorithm (see `registry.config_keys`); missing keys
            take the dataclass defaults.
        seed (int): seed of the weight initialization (the global RNG state is left as is).

    Returns:
        MetaLearner: on the CPU, float32; move it with `.to(device)`.
    """
    if n_way < 1:
        raise ValueError(f"{algo}: n_way must be >= 1, got {n_way}")
    resolved = registry.make_config(algo, config)
    learner_class = registry.learner_class(algo)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return learner_class(n_way, resolved)
