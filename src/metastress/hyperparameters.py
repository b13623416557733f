"""Each algorithm's hyperparameters as a frozen dataclass, checked when it is created.

Torch-free on purpose: Snakemake derives and validates params.yaml's algorithm sections from
these classes (through `metastress.registry` and `metastress.config`) without importing torch.
How a meta-batch runs (task mode, precision) is not an algorithm's hyperparameter: it belongs
to the run (`train.TrainConfig`) and the engine it picks (`metastress.engine`).
"""

import dataclasses
import typing
from dataclasses import dataclass

MEASURES = ("theil", "generalized_entropy", "atkinson", "gini")  # TAML's inequality measures
TAML_VARIANTS = ("inequality", "entropy")
MEASURED_ON = ("adapted", "initial")
UPDATE_RULES = ("adam", "sgd")  # the hand-designed inner optimizers HandOptimizer implements
# Base-learner keys that no algorithm section of params.yaml sets: the profile sets `hidden`,
# and `activation` is relu except in tests (softplus, for finite differences).
BASE_LEARNER_KEYS = ("hidden", "activation")


def check_at_least(key: str, value: float, low: float) -> None:
    """Raise ValueError unless value >= low."""
    if not value >= low:
        raise ValueError(f"{key} must be >= {low}, got {value!r}")


def check_positive(key: str, value: float) -> None:
    """Raise ValueError unless value > 0."""
    if not value > 0:
        raise ValueError(f"{key} must be > 0, got {value!r}")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class InnerConfig:
    """Keys every meta-learner shares.

    Args:
        inner_steps (int, default=5): adaptation steps on the support set (>= 1).
        hidden (int, default=64): channels of the Conv-4 base learner.
        activation (str, default="relu"): base-learner activation, a key of conv4.ACTIVATIONS
            (checked when the Conv-4 is built).
    """

    inner_steps: int = 5
    hidden: int = 64
    activation: str = "relu"

    def __post_init__(self):
        check_at_least("inner_steps", self.inner_steps, 1)
        check_at_least("hidden", self.hidden, 1)


@dataclass(frozen=True)
class MAMLConfig(InnerConfig):
    """MAML's keys (plus InnerConfig's); ANIL has the same ones.

    Args:
        inner_lr (float, default=0.4): inner SGD learning rate (MAML's Omniglot value).
        first_order (bool, default=False): drop second-order terms of the meta-gradient.
    """

    inner_lr: float = 0.4
    first_order: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_positive("inner_lr", self.inner_lr)


@dataclass(frozen=True)
class MetaSGDConfig(MAMLConfig):
    """MetaSGD's keys: those of MAMLConfig; `inner_lr` is the initial value of every rate."""


@dataclass(frozen=True)
class TAMLConfig(MAMLConfig):
    """TAML's keys (plus MAMLConfig's).

    Args:
        lam (float, default=0.1): weight of the penalty (the paper searches [1e-2, 1]).
        variant (str, default="inequality"): one of TAML_VARIANTS.
        measure (str, default="theil"): one of MEASURES.
        measure_on (str, default="adapted"): per-task losses measured, "adapted" (query loss
            after adaptation) or "initial" (support loss of the unadapted model).
        atkinson_epsilon (float, default=0.5): inequality aversion of the Atkinson index.
        ge_alpha (float, default=2.0): exponent of the generalized entropy index.
    """

    lam: float = 0.1
    variant: str = "inequality"
    measure: str = "theil"
    measure_on: str = "adapted"
    atkinson_epsilon: float = 0.5
    ge_alpha: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        check_at_least("lam", self.lam, 0)
        check_choice("variant", self.variant, TAML_VARIANTS)
        check_choice("measure", self.measure, MEASURES)
        check_choice("measure_on", self.measure_on, MEASURED_ON)
        check_at_least("atkinson_epsilon", self.atkinson_epsilon, 0)


@dataclass(frozen=True)
class MetaLSTMConfig(InnerConfig):
    """MetaLSTM's keys (plus InnerConfig's); no inner_lr, the input gate is the learned rate.

    Args:
        lstm_hidden (int, default=20): hidden size of the first (LSTMCell) layer.
        meta_grad_clip (float, default=0.25): meta-gradient norm clip.
    """

    lstm_hidden: int = 20
    meta_grad_clip: float = 0.25

    def __post_init__(self):
        super().__post_init__()
        check_at_least("lstm_hidden", self.lstm_hidden, 1)
        check_positive("meta_grad_clip", self.meta_grad_clip)


@dataclass(frozen=True)
class HandConfig(InnerConfig):
    """Keys of a hand-designed optimizer (plus InnerConfig's; hidden/activation must match init).

    Args:
        optimizer (str, default="adam"): one of UPDATE_RULES.
        inner_lr (float, default=1e-3): learning rate (torch.optim.Adam's default).
        adam_beta1, adam_beta2 (float, default=0.9, 0.999): Adam's moment decay rates.
        adam_eps (float, default=1e-8): Adam's denominator epsilon.
    """

    optimizer: str = "adam"
    inner_lr: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8

    def __post_init__(self):
        super().__post_init__()
        check_choice("optimizer", self.optimizer, UPDATE_RULES)
        check_positive("inner_lr", self.inner_lr)
        for key in ("adam_beta1", "adam_beta2"):
            beta = getattr(self, key)
            if not 0 <= beta < 1:
                raise ValueError(f"{key} must be in [0, 1), got {beta!r}")
        check_positive("adam_eps", self.adam_eps)


def field_types(config_class: type) -> dict[str, type]:
    """Each field's declared type (int, float, bool or str), in declaration order."""
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def from_dict(config_class: type, values: dict, owner: str) -> object:
    """`config_class(**values)` with every value checked against its field's type (ints are
    accepted for floats) and errors prefixed with `owner` (the algo id).

    Raises:
        ValueError: unknown key, wrong type or invalid value, naming the culprit.
    """
    types = field_types(config_class)
    for key in values:
        if key not in types:
            raise ValueError(f"{owner}: unknown config key {key!r}; known keys: {sorted(types)}")
    checked = {key: _coerce(owner, key, value, types[key]) for key, value in values.items()}
    try:
        return config_class(**checked)
    except ValueError as e:
        raise ValueError(f"{owner}: {e}") from e


def _coerce(owner: str, key: str, value: object, expected: type) -> object:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not ok:
        raise ValueError(
            f"{owner}: config key {key!r} must be {expected.__name__}, "
            f"got {value!r} ({type(value).__name__})"
        )
    return value
