"""The one interface every meta-learner implements, so experiments are generic code.

A meta-learner is an `nn.Module` whose parameters are its meta-parameters (initialization,
learned learning rates, LSTM weights). Adaptation is pure: it maps a meta-batch of support
sets to fast weights, a dict of per-task tensors, without editing any parameter in place.
"""

from collections.abc import Iterator
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from metastress.data.tasks import Episode

FastWeights = dict[str, Tensor]  # name -> (B, *parameter_shape), one slice per task


class MetaLearner(nn.Module):
    """Base class: adapt on support sets, predict on query sets, give the outer loss.

    Subclasses set `name` (the `algo` string of params.yaml, wildcards and file names) and
    implement `initial_weights`, `adapt` and `predict`; `meta_loss` has a default.
    """

    name: ClassVar[str]
    updates_per_task: ClassVar[bool] = False  # True: one meta-update per task (MetaLSTM)

    def initial_weights(self) -> dict[str, Tensor]:
        """The learned initialization theta, as an unbatched weight dict of the base learner."""
        raise NotImplementedError

    def adapt(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        init: dict[str, Tensor] | None = None,
    ) -> FastWeights:
        """Adapt to B tasks at once.

        Args:
            support_x (Tensor): float (B, N*K, 1, 28, 28).
            support_y (Tensor): int64 (B, N*K).
            steps (int, optional): inner steps; None uses the configured `inner_steps`.
            init (dict, optional): start from these weights instead of `initial_weights()`
                (the initialization swap ablation).

        Returns:
            FastWeights: name -> (B, *shape).
        """
        raise NotImplementedError

    def predict(self, fast_weights: FastWeights, query_x: Tensor) -> Tensor:
        """Logits (B, N*Q, N) of the adapted base learners on query_x (B, N*Q, 1, 28, 28)."""
        raise NotImplementedError

    def meta_loss(self, episode: Episode) -> tuple[Tensor, dict[str, float]]:
        """Outer loss: mean query cross-entropy after adaptation, with loss/accuracy metrics."""
        fast = self.adapt(episode.support_x, episode.support_y)
        logits = self.predict(fast, episode.query_x)  # (B, N*Q, N)
        loss = F.cross_entropy(logits.flatten(0, 1), episode.query_y.flatten())
        accuracy = (logits.argmax(-1) == episode.query_y).float().mean()
        return loss, {"loss": loss.item(), "accuracy": accuracy.item()}

    def update_groups(self, episode: Episode) -> Iterator[Episode]:
        """The parts of a meta-batch that each get one optimizer step."""
        if self.updates_per_task:
            for i in range(len(episode)):
                yield episode.tasks(i, i + 1)
        else:
            yield episode
