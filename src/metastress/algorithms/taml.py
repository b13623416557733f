"""TAML: MAML plus a penalty that keeps the initialization from favouring some tasks.

Variant "inequality" (the paper's TAML (Theil index)): the outer loss is

    mean_i L_query_i(theta_i) + lam * I(l_1, ..., l_B)

where I is an inequality measure (inequality.py) of per-task losses l_i. With
`measure_on="adapted"` (the stress-test paper's form) l_i is task i's query loss after
adaptation; with `measure_on="initial"` (Jamal & Qi's form) it is the support loss of the
unadapted model theta, the loss whose gradient starts the inner loop.

Variant "entropy" (Jamal & Qi's entropy reduction): the outer loss is

    mean_i L_query_i(theta_i) + lam * (H(f_theta_i on query_i) - H(f_theta on support_i))

maximising the entropy of the initial model's predictions (on the support images, the ones it
sees) and minimising it after adaptation (on the query images), H the mean entropy of the
predicted label distribution.

References:
    Jamal & Qi (2019). Task Agnostic Meta-Learning for Few-Shot Learning. CVPR.
"""

from typing import TYPE_CHECKING, ClassVar

import torch.nn.functional as F
from torch import Tensor

from metastress.algorithms import inequality
from metastress.algorithms.maml import MAML
from metastress.hyperparameters import TAMLConfig

if TYPE_CHECKING:
    from metastress.data.tasks import Episode
    from metastress.engine import Engine


def measure_inequality(losses: Tensor, config: TAMLConfig) -> Tensor:
    """The configured inequality measure of per-task losses (B,)."""
    if config.measure == "theil":
        return inequality.theil(losses)
    if config.measure == "generalized_entropy":
        return inequality.generalized_entropy(losses, config.ge_alpha)
    if config.measure == "atkinson":
        return inequality.atkinson(losses, config.atkinson_epsilon)
    return inequality.gini(losses)


def prediction_entropy(logits: Tensor) -> Tensor:
    """Mean entropy of the predicted label distributions of logits (..., N)."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def per_task_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy per task (B,) of logits (B, M, N) against labels (B, M)."""
    losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    return losses.view(labels.shape).mean(1)  # (B,)


class TAML(MAML):
    """Task-agnostic meta-learning: MAML with an inequality or entropy penalty (see module).

    Its meta-loss couples the tasks' losses, so it runs on the whole meta-batch at once.

    Args:
        n_way (int): classes per task.
        config (TAMLConfig, optional): hyperparameters; defaults if None.
    """

    name: ClassVar[str] = "taml"

    def __init__(self, n_way: int, config: TAMLConfig | None = None):
        super().__init__(n_way, config if config is not None else TAMLConfig())

    def meta_loss(self, engine: "Engine", episode: "Episode") -> tuple[Tensor, dict[str, Tensor]]:
        """Query loss + lam * penalty; metrics (0-dim tensors) add "objective" and "inequality"
        or the entropies."""
        config = self.config
        fast = engine.adapt(self, episode.support_x, episode.support_y)
        logits = engine.logits(self, fast, episode.query_x)  # (B, N*Q, N)
        query_losses = per_task_loss(logits, episode.query_y)  # (B,)
        loss = query_losses.mean()
        metrics = {"loss": loss.detach()}
        if config.variant == "inequality":
            if config.measure_on == "adapted":
                measured = query_losses
            else:
                measured = per_task_loss(self._initial_logits(engine, episode), episode.support_y)
            penalty = measure_inequality(measured, config)
            metrics["inequality"] = penalty.detach()
        else:
            entropy_initial = prediction_entropy(self._initial_logits(engine, episode))
            entropy_adapted = prediction_entropy(logits)
            penalty = entropy_adapted - entropy_initial
            metrics["entropy_initial"] = entropy_initial.detach()
            metrics["entropy_adapted"] = entropy_adapted.detach()
        objective = loss + config.lam * penalty
        metrics["objective"] = objective.detach()
        metrics["accuracy"] = (logits.argmax(-1) == episode.query_y).float().mean()
        return objective, metrics

    def _initial_logits(self, engine: "Engine", episode: "Episode") -> Tensor:
        """Logits (B, N*K, N) of the unadapted model on each task's support images."""
        return engine.logits(self, self.initial_weights(), episode.support_x, shared=True)
