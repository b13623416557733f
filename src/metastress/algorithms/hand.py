"""Hand-designed inner optimizers (Adam, SGD) that adapt a GIVEN initialization.

Not meta-trained and without meta-parameters: the paper's Figure 4b swaps the learned
optimizer of MetaLSTM/MetaLSTM++ for Adam while keeping their learned initialization. The
updates follow `torch.optim.Adam` / `torch.optim.SGD` (no momentum, no weight decay) step for
step, written functionally so that an engine adapts B tasks at once.

References:
    Kingma & Ba (2015). Adam: A Method for Stochastic Optimization. ICLR.
"""

import torch
from torch import Tensor, nn

from metastress.algorithms.base import BaseLearner, MetaLearner, Skeleton, Weights
from metastress.algorithms.maml import maml_update
from metastress.hyperparameters import HandConfig
from metastress.models.conv4 import Conv4


def adam_update(
    weights: Weights, grads: Weights, m: Weights, v: Weights, step: int, config: HandConfig
) -> tuple[Weights, Weights, Weights]:
    """One Adam step (step counts from 1), as torch.optim.Adam computes it.

    Returns:
        (weights, m, v): the new weights and first/second moment estimates.
    """
    beta1, beta2 = config.adam_beta1, config.adam_beta2
    m = {k: beta1 * m[k] + (1 - beta1) * g for k, g in grads.items()}
    v = {k: beta2 * v[k] + (1 - beta2) * g * g for k, g in grads.items()}
    step_size = config.inner_lr / (1 - beta1**step)
    root_correction = (1 - beta2**step) ** 0.5
    weights = {
        k: w - step_size * m[k] / (v[k].sqrt() / root_correction + config.adam_eps)
        for k, w in weights.items()
    }
    return weights, m, v


class HandOptimizer(MetaLearner):
    """Adapts a given init with plain Adam or SGD; `name` is the optimizer ("adam" or "sgd").

    Args:
        n_way (int): classes per task.
        config (HandConfig, optional): hyperparameters; defaults if None.
    """

    def __init__(self, n_way: int, config: HandConfig | None = None):
        super().__init__()
        self.config = config if config is not None else HandConfig()
        self.name = self.config.optimizer
        with torch.device("meta"):
            self.skeleton = Skeleton.of(Conv4(n_way, self.config.hidden, self.config.activation))

    @property
    def base_model(self) -> nn.Module:
        return self.skeleton.module

    def initial_weights(self) -> Weights:
        raise self._missing_init()

    def adaptation_start(self, init: Weights | None) -> Weights:
        """`init`, required, detached: adaptation builds no graph back to it."""
        if init is None:
            raise self._missing_init()
        return {k: w.detach() for k, w in init.items()}

    def _missing_init(self) -> ValueError:
        return ValueError(
            f"hand optimizer {self.name!r} has no initialization of its own; pass "
            "init=<weight dict> to the engine's adapt(), e.g. another learner's initial_weights()"
        )

    def adapt_task(
        self, base: BaseLearner, start: Weights, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        """`steps` optimizer steps from `start`."""
        weights = start
        m = {k: torch.zeros_like(w) for k, w in weights.items()}
        v = {k: torch.zeros_like(w) for k, w in weights.items()}
        for step in range(1, steps + 1):
            grads, _ = base.loss_and_grads(weights, support_x, support_y, first_order=True)
            if self.config.optimizer == "sgd":
                weights = maml_update(weights, grads, self.config.inner_lr)
            else:
                weights, m, v = adam_update(weights, grads, m, v, step, self.config)
        return weights
