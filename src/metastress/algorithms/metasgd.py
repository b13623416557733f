"""MetaSGD: MAML with a learned learning rate for every coordinate of every parameter.

Inner loop: theta_i <- theta_i - alpha * grad L_support(theta_i) (elementwise), where alpha has
the shape of theta and is meta-learned with it on the query loss.

References:
    Li, Zhou, Chen & Li (2017). Meta-SGD: Learning to Learn Quickly for Few-Shot Learning.
    arXiv:1707.09835. Deviation: alpha starts at `inner_lr` everywhere, not at random values
    in [0.005, 0.1], so MAML and MetaSGD start from the same inner step.
"""

from typing import ClassVar

import torch
from torch import nn

from metastress.algorithms.base import Weights
from metastress.algorithms.maml import MAML
from metastress.hyperparameters import MetaSGDConfig


def meta_sgd_update(weights: Weights, lrs: Weights, grads: Weights) -> Weights:
    """One MetaSGD step: w - lr (.) g elementwise, with lrs shaped like weights."""
    return {name: w - lrs[name] * grads[name] for name, w in weights.items()}


class MetaSGD(MAML):
    """MetaSGD on a Conv-4 base learner: meta-parameters are theta (`net`) and alpha (`lrs`).

    Args:
        n_way (int): classes per task.
        config (MetaSGDConfig, optional): hyperparameters; defaults if None.
    """

    name: ClassVar[str] = "metasgd"

    def __init__(self, n_way: int, config: MetaSGDConfig | None = None):
        super().__init__(n_way, config if config is not None else MetaSGDConfig())
        self.lrs = nn.ParameterList(
            nn.Parameter(torch.full_like(p, self.config.inner_lr)) for p in self.net.parameters()
        )

    def learning_rates(self) -> Weights:
        """The learned rates alpha as a dict keyed like `initial_weights()`."""
        names = [name for name, _ in self.net.named_parameters()]
        return dict(zip(names, self.lrs, strict=True))

    def inner_update(self, weights: Weights, grads: Weights) -> Weights:
        return meta_sgd_update(weights, self.learning_rates(), grads)
