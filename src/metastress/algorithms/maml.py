"""MAML: learn an initialization that a few SGD steps adapt to any task.

Inner loop: theta_i <- theta_i - inner_lr * grad L_support(theta_i), from theta_i = theta.
Outer loop: the mean query loss of the adapted learners, differentiated through the inner
loop (second order) or, with `first_order`, with the inner gradients taken as constants.

References:
    Finn, Abbeel & Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML.
"""

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from torch import Tensor

from metastress.algorithms.base import FastWeights, MetaLearner
from metastress.algorithms.inner import (
    InnerConfig,
    Weights,
    check_init,
    check_positive,
    loss_and_grads,
    map_tasks,
    resolve_steps,
    resolve_task_mode,
    task_logits,
)
from metastress.models.conv4 import Conv4


@dataclass(frozen=True)
class MAMLConfig(InnerConfig):
    """MAML's keys (plus InnerConfig's inner_steps, hidden, activation, task_mode).

    Args:
        inner_lr (float, default=0.4): inner SGD learning rate (MAML's Omniglot value).
        first_order (bool, default=False): drop second-order terms of the meta-gradient.
    """

    inner_lr: float = 0.4
    first_order: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_positive("inner_lr", self.inner_lr)


def maml_update(weights: Weights, grads: Weights, lr: float) -> Weights:
    """One SGD step on a weight dict: w - lr * g, as a new dict (no in-place edits)."""
    return {name: w - lr * grads[name] for name, w in weights.items()}


class MAML(MetaLearner):
    """Model-agnostic meta-learning on a Conv-4 base learner; its parameters are theta.

    Args:
        n_way (int): classes per task.
        config (MAMLConfig, optional): hyperparameters; defaults if None.

    Example:
        >>> learner = MAML(n_way=5, config=MAMLConfig(inner_steps=1))
        >>> loss, metrics = learner.meta_loss(episode)
        >>> loss.backward()
    """

    name: ClassVar[str] = "maml"
    config_class: ClassVar[type] = MAMLConfig
    meta_grad_clip: ClassVar[float | None] = None

    def __init__(self, n_way: int, config: MAMLConfig | None = None):
        super().__init__()
        self.config = config if config is not None else self.config_class()
        self.net = Conv4(n_way, self.config.hidden, self.config.activation)

    def initial_weights(self) -> Weights:
        return dict(self.net.named_parameters())

    def inner_update(self, weights: Weights, grads: Weights) -> Weights:
        """The inner step rule; subclasses (MetaSGD) swap it."""
        return maml_update(weights, grads, self.config.inner_lr)

    def adapt_task(
        self, weights: Weights, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        """Adapt one task: `steps` inner updates from `weights` on (N*K, 1, 28, 28) images."""
        for _ in range(steps):
            grads, _ = loss_and_grads(
                self.net, weights, support_x, support_y, self.config.first_order
            )
            weights = self.inner_update(weights, grads)
        return weights

    def adapt(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        init: Weights | None = None,
    ) -> FastWeights:
        steps = resolve_steps(steps, self.config.inner_steps)
        if init is None:
            init = self.initial_weights()
        else:
            check_init(init, {k: w.shape for k, w in self.net.named_parameters()})
        mode = resolve_task_mode(self.config.task_mode, support_x.device)
        adapt_one = partial(self.adapt_task, steps=steps)
        return map_tasks(adapt_one, mode, (None, 0, 0), init, support_x, support_y)

    def predict(self, fast_weights: FastWeights, query_x: Tensor) -> Tensor:
        mode = resolve_task_mode(self.config.task_mode, query_x.device)
        return task_logits(self.net, fast_weights, query_x, mode)  # (B, N*Q, N)
