"""ANIL (Almost No Inner Loop): MAML whose inner loop adapts only the head.

Inner loop: phi_i <- phi_i - inner_lr * grad_phi L_support(theta_body, phi_i), from phi_i = phi,
the linear head; the body (every layer below the head) stays at its meta-learned value during
adaptation. Outer loop: as MAML's, the mean query loss of the adapted learners, whose
meta-gradient reaches the body through the query features and, second order, through the
head's adaptation; `first_order` takes the inner gradients as constants.

References:
    Raghu, Raman, Bengio & Vinyals (2020). Rapid Learning or Feature Reuse? Towards
    Understanding the Effectiveness of MAML. ICLR.
"""

from typing import ClassVar

from torch import Tensor

from metastress.algorithms.base import BaseLearner, Weights
from metastress.algorithms.maml import MAML, maml_update
from metastress.hyperparameters import MAMLConfig


class ANIL(MAML):
    """MAML on a Conv-4 whose inner loop updates the head alone; its parameters are theta.

    Args:
        n_way (int): classes per task.
        config (MAMLConfig, optional): MAML's hyperparameters; defaults if None.
    """

    name: ClassVar[str] = "anil"

    def __init__(self, n_way: int, config: MAMLConfig | None = None):
        super().__init__(n_way, config)
        self.head_names = tuple(f"head.{name}" for name, _ in self.net.head.named_parameters())

    def adapt_task(
        self, base: BaseLearner, start: Weights, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        weights = start
        for _ in range(steps):
            grads, _ = base.loss_and_grads(
                weights, support_x, support_y, self.config.first_order, wrt=self.head_names
            )
            head = {name: weights[name] for name in self.head_names}
            weights = {**weights, **maml_update(head, grads, self.config.inner_lr)}
        return weights
