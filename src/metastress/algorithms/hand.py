"""Hand-designed inner optimizers (Adam, SGD) that adapt a GIVEN initialization.

Not meta-trained and without meta-parameters: the paper's Figure 4b swaps the learned
optimizer of MetaLSTM/MetaLSTM++ for Adam while keeping their learned initialization. The
updates follow `torch.optim.Adam` / `torch.optim.SGD` (no momentum, no weight decay) step for
step, written functionally so that B tasks adapt at once (loop or vmap).

References:
    Kingma & Ba (2015). Adam: A Method for Stochastic Optimization. ICLR.
"""

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch
from torch import Tensor

from metastress.algorithms.base import FastWeights, MetaLearner
from metastress.algorithms.inner import (
    InnerConfig,
    Skeleton,
    Weights,
    check_choice,
    check_init,
    check_positive,
    loss_and_grads,
    map_tasks,
    resolve_steps,
    resolve_task_mode,
    task_logits,
)
from metastress.algorithms.maml import maml_update
from metastress.models.conv4 import Conv4

HAND_OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class HandConfig(InnerConfig):
    """Keys of a hand-designed optimizer (plus InnerConfig's; hidden/activation must match init).

    Args:
        optimizer (str, default="adam"): "adam" or "sgd".
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
        check_choice("optimizer", self.optimizer, HAND_OPTIMIZERS)
        check_positive("inner_lr", self.inner_lr)
        for key in ("adam_beta1", "adam_beta2"):
            beta = getattr(self, key)
            if not 0 <= beta < 1:
                raise ValueError(f"{key} must be in [0, 1), got {beta!r}")
        check_positive("adam_eps", self.adam_eps)


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

    name: ClassVar[str] = "hand"
    config_class: ClassVar[type] = HandConfig
    meta_grad_clip: ClassVar[float | None] = None

    def __init__(self, n_way: int, config: HandConfig | None = None):
        super().__init__()
        self.config = config if config is not None else self.config_class()
        self.name = self.config.optimizer
        with torch.device("meta"):
            self.skeleton = Skeleton.of(Conv4(n_way, self.config.hidden, self.config.activation))

    def initial_weights(self) -> Weights:
        raise self._missing_init()

    def _missing_init(self) -> ValueError:
        return ValueError(
            f"hand optimizer {self.name!r} has no initialization of its own; pass "
            "init=<weight dict> to adapt(), e.g. another learner's initial_weights()"
        )

    def adapt_task(
        self, weights: Weights, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        """Adapt one task from `weights` with `steps` optimizer steps (no meta-graph)."""
        net = self.skeleton.module
        m = {k: torch.zeros_like(w) for k, w in weights.items()}
        v = {k: torch.zeros_like(w) for k, w in weights.items()}
        for step in range(1, steps + 1):
            grads, _ = loss_and_grads(net, weights, support_x, support_y, first_order=True)
            if self.config.optimizer == "sgd":
                weights = maml_update(weights, grads, self.config.inner_lr)
            else:
                weights, m, v = adam_update(weights, grads, m, v, step, self.config)
        return weights

    def adapt(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        init: Weights | None = None,
    ) -> FastWeights:
        """See MetaLearner.adapt; `init` is required."""
        if init is None:
            raise self._missing_init()
        check_init(init, self.skeleton.shapes)
        steps = resolve_steps(steps, self.config.inner_steps)
        init = {k: w.detach() for k, w in init.items()}
        mode = resolve_task_mode(self.config.task_mode, support_x.device)
        adapt_one = partial(self.adapt_task, steps=steps)
        return map_tasks(adapt_one, mode, (None, 0, 0), init, support_x, support_y)

    def predict(self, fast_weights: FastWeights, query_x: Tensor) -> Tensor:
        mode = resolve_task_mode(self.config.task_mode, query_x.device)
        return task_logits(self.skeleton.module, fast_weights, query_x, mode)  # (B, N*Q, N)
