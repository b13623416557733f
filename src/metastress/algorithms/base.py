"""The one interface every meta-learner implements, so experiments are generic code.

A meta-learner is an `nn.Module` whose parameters are its meta-parameters (initialization,
learned learning rates, LSTM weights). Adaptation is pure: it maps a meta-batch of support
sets to fast weights, a dict of per-task tensors, without editing any parameter in place.
"""

from collections.abc import Iterator
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metastress import workers
from metastress.algorithms import inner
from metastress.data.tasks import Episode

FastWeights = dict[str, Tensor]  # name -> (B, *parameter_shape), one slice per task


class MetaLearner(nn.Module):
    """Base class: adapt on support sets, predict on query sets, give the outer loss.

    Subclasses set `name` (the `algo` string of params.yaml, wildcards and file names) and
    implement `initial_weights`, `adapt` and `predict`; `meta_loss` has a default.
    """

    name: ClassVar[str]
    updates_per_task: ClassVar[bool] = False  # True: one meta-update per task (MetaLSTM)
    eager_meta_gradient: ClassVar[bool] = True  # meta_loss differentiates chunk by chunk

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
        """Outer loss: mean query cross-entropy after adaptation, with loss/accuracy metrics.

        When gradients are enabled, the meta-gradient is taken here chunk by chunk of tasks
        (`eager_meta_loss`) and the returned loss carries it: `loss.backward()` (or
        `torch.autograd.grad(loss, params)`) gives exactly the gradient of the full graph,
        while only one chunk's graph is alive at a time.
        """
        meta_params = [p for p in self.parameters() if p.requires_grad]
        if self.eager_meta_gradient and meta_params and torch.is_grad_enabled():
            return self.eager_meta_loss(episode, meta_params)
        fast = self.adapt(episode.support_x, episode.support_y)
        logits = self.predict(fast, episode.query_x)  # (B, N*Q, N)
        loss = F.cross_entropy(logits.flatten(0, 1), episode.query_y.flatten())
        accuracy = (logits.argmax(-1) == episode.query_y).float().mean()
        return loss, {"loss": loss.item(), "accuracy": accuracy.item()}

    def eager_meta_loss(
        self, episode: Episode, meta_params: list[Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        """`meta_loss` with each chunk's graph differentiated and freed at once.

        The mean query loss is a sum over tasks, so its gradient is the sum of the chunks'
        gradients. Keeping all B tasks' graphs until one backward made MetaLSTM++ need 8 GB at
        20-way, B=16, and 200-way second-order MAML 89 GB at B=32 (benchmarks/RESULTS.md).
        Fused chunks run at once on one-thread CPU workers (one graph alive per worker), and
        their gradients are summed in chunk order: with several chunks the result is the same,
        bit for bit, at any thread count. The returned loss must not be differentiated twice.
        """
        n_tasks = len(episode)
        chunk = self.tasks_per_chunk(episode)
        n_query = episode.query_y.numel()

        def chunk_terms(start: int) -> tuple[tuple[Tensor | None, ...], Tensor, Tensor]:
            part = episode.tasks(start, min(start + chunk, n_tasks))
            logits = self.predict(self.adapt(part.support_x, part.support_y), part.query_x)
            ce = F.cross_entropy(logits.flatten(0, 1), part.query_y.flatten(), reduction="sum")
            loss = ce / n_query  # this chunk's share of the mean
            grads = torch.autograd.grad(loss, meta_params, allow_unused=True)
            return grads, loss.detach(), (logits.argmax(-1) == part.query_y).sum()

        starts = range(0, n_tasks, chunk)
        device = episode.support_x.device
        if inner.resolve_task_mode(self.config.task_mode, device) == "fused":
            # no module state is shared, so on the CPU the chunks run at once, one thread each
            terms = workers.map_ordered(chunk_terms, starts, device)
        else:
            terms = map(chunk_terms, starts)
        grads = [torch.zeros_like(p) for p in meta_params]
        value, correct = 0.0, 0  # become tensors: no device sync per chunk
        for chunk_grads, chunk_loss, chunk_correct in terms:  # in chunk order: reproducible
            for total, g in zip(grads, chunk_grads, strict=True):
                if g is not None:
                    total.add_(g)
            value = value + chunk_loss
            correct = correct + chunk_correct
        loss = _WithGradient.apply(value, grads, *meta_params)
        return loss, {"loss": loss.item(), "accuracy": correct.item() / n_query}

    def tasks_per_chunk(self, episode: Episode) -> int:
        """Tasks whose meta-gradient graphs are alive at once in `eager_meta_loss`.

        Fused (CPU): about `inner.FUSED_CHUNK_IMAGES` images, for the cache. vmap (GPU): about
        `inner.VMAP_CHUNK_IMAGE_STEPS` images x inner steps whose graphs are kept (every step
        for second-order MAML and the MetaLSTMs, the last one for first order), for memory.
        Loop: one task at a time.
        """
        images = episode.support_y.shape[1] + episode.query_y.shape[1]
        mode = inner.resolve_task_mode(self.config.task_mode, episode.support_x.device)
        if mode == "fused":
            return max(1, inner.FUSED_CHUNK_IMAGES // images)
        if mode == "loop":
            return 1
        kept_steps = 1 if getattr(self.config, "first_order", False) else self.config.inner_steps
        return max(1, inner.VMAP_CHUNK_IMAGE_STEPS // (images * kept_steps))

    def update_groups(self, episode: Episode) -> Iterator[Episode]:
        """The parts of a meta-batch that each get one optimizer step."""
        if self.updates_per_task:
            for i in range(len(episode)):
                yield episode.tasks(i, i + 1)
        else:
            yield episode


class _WithGradient(torch.autograd.Function):
    """A loss value whose gradient with respect to `params` was computed beforehand."""

    @staticmethod
    def forward(ctx, value: Tensor, grads: list[Tensor], *params: Tensor) -> Tensor:
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return None, None, *(grad_output * g for g in ctx.grads)
