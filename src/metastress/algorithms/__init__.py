"""The meta-learners behind one interface, registered by their `algo` string.

`build(algo, n_way, config, seed)` is the one way experiments create a learner: it checks the
config dict against the algorithm's config dataclass (unknown keys and wrong types are errors)
and seeds the weight initialization without touching the global random state.

Meta-trained algorithms: ALGORITHMS ("maml", "metasgd", "taml", "metalstm", "metalstm_pp").
Hand-designed inner optimizers for the init-swap ablation: HAND_OPTIMIZERS ("adam", "sgd"),
which `build` also accepts (the algo string sets the config's `optimizer`).
"""

import dataclasses
import typing

import torch

from metastress.algorithms.base import FastWeights, MetaLearner
from metastress.algorithms.hand import HAND_OPTIMIZERS, HandConfig, HandOptimizer
from metastress.algorithms.maml import MAML, MAMLConfig
from metastress.algorithms.metalstm import MetaLSTM, MetaLSTMConfig, MetaLSTMPlusPlus
from metastress.algorithms.metasgd import MetaSGD, MetaSGDConfig
from metastress.algorithms.taml import TAML, TAMLConfig

ALGORITHMS: dict[str, type[MetaLearner]] = {
    cls.name: cls for cls in (MAML, MetaSGD, TAML, MetaLSTM, MetaLSTMPlusPlus)
}

__all__ = [
    "ALGORITHMS",
    "HAND_OPTIMIZERS",
    "MAML",
    "TAML",
    "FastWeights",
    "HandConfig",
    "HandOptimizer",
    "MAMLConfig",
    "MetaLSTM",
    "MetaLSTMConfig",
    "MetaLSTMPlusPlus",
    "MetaLearner",
    "MetaSGD",
    "MetaSGDConfig",
    "TAMLConfig",
    "build",
    "config_keys",
    "make_config",
]


def _learner_class(algo: str) -> type[MetaLearner]:
    if algo in ALGORITHMS:
        return ALGORITHMS[algo]
    if algo in HAND_OPTIMIZERS:
        return HandOptimizer
    known = sorted(ALGORITHMS) + list(HAND_OPTIMIZERS)
    raise ValueError(f"unknown algo {algo!r}; known algorithms: {known}")


def config_keys(algo: str) -> set[str]:
    """The config keys `build(algo, ...)` accepts."""
    keys = {field.name for field in dataclasses.fields(_learner_class(algo).config_class)}
    return keys - {"optimizer"} if algo in HAND_OPTIMIZERS else keys


def _coerce(algo: str, key: str, value: object, expected: type) -> object:
    """value checked against a config field's type (ints are accepted for floats)."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not ok:
        raise ValueError(
            f"{algo}: config key {key!r} must be {expected.__name__}, "
            f"got {value!r} ({type(value).__name__})"
        )
    return value


def make_config(algo: str, config: dict) -> object:
    """The algorithm's config dataclass from a dict of (a subset of) its keys.

    Raises:
        ValueError: unknown algo, unknown key, wrong type or invalid value, naming the culprit.
    """
    config_class = _learner_class(algo).config_class
    known = config_keys(algo)
    for key in config:
        if key not in known:
            raise ValueError(f"{algo}: unknown config key {key!r}; known keys: {sorted(known)}")
    types = typing.get_type_hints(config_class)
    values = {key: _coerce(algo, key, value, types[key]) for key, value in config.items()}
    if algo in HAND_OPTIMIZERS:
        values["optimizer"] = algo
    try:
        return config_class(**values)
    except ValueError as e:
        raise ValueError(f"{algo}: {e}") from e


def build(algo: str, n_way: int, config: dict, seed: int) -> MetaLearner:
    """Create a meta-learner with seeded initial weights.

    Args:
        algo (str): a key of ALGORITHMS, or one of HAND_OPTIMIZERS.
        n_way (int): classes per task (the base learner's output size).
        config (dict): config keys of the algorithm (see `config_keys`); missing keys take the
            dataclass defaults.
        seed (int): seed of the weight initialization (the global RNG state is left as is).

    Returns:
        MetaLearner: on the CPU, float32; move it with `.to(device)`.
    """
    if n_way < 1:
        raise ValueError(f"{algo}: n_way must be >= 1, got {n_way}")
    learner_class = _learner_class(algo)
    resolved = make_config(algo, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return learner_class(n_way, resolved)
