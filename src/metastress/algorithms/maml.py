"""MAML: learn an initialization that a few SGD steps adapt to any task.

Inner loop: theta_i <- theta_i - inner_lr * grad L_support(theta_i), from theta_i = theta.
Outer loop: the mean query loss of the adapted learners, differentiated through the inner
loop (second order) or, with `first_order`, with the inner gradients taken as constants.

References:
    Finn, Abbeel & Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML.
"""

from typing import ClassVar

from torch import Tensor, nn

from metastress.algorithms.base import BaseLearner, MetaLearner, Weights
from metastress.hyperparameters import MAMLConfig
from metastress.models.conv4 import Conv4


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
        >>> engine = resolve_engine("auto", "fp32", torch.device("cpu"))
        >>> loss, metrics = learner.meta_loss(engine, episode)
        >>> loss.backward()
    """

    name: ClassVar[str] = "maml"

    def __init__(self, n_way: int, config: MAMLConfig | None = None):
        super().__init__()
        self.config = config if config is not None else MAMLConfig()
        self.net = Conv4(n_way, self.config.hidden, self.config.activation)

    @property
    def base_model(self) -> nn.Module:
        return self.net

    def initial_weights(self) -> Weights:
        return dict(self.net.named_parameters())

    def inner_update(self, weights: Weights, grads: Weights) -> Weights:
        """The inner step rule; subclasses (MetaSGD) swap it."""
        return maml_update(weights, grads, self.config.inner_lr)

    def adapt_task(
        self, base: BaseLearner, start: Weights, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        weights = start
        for _ in range(steps):
            grads, _ = base.loss_and_grads(weights, support_x, support_y, self.config.first_order)
            weights = self.inner_update(weights, grads)
        return weights
