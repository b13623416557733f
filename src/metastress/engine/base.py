"""What every engine does with a learner: adapt, logits, meta-loss, meta-step, evaluation.

An engine runs a learner's per-task maths over the B tasks of a meta-batch. Learners
(metastress.algorithms) write `adapt_task` for one task against a base-learner runner;
the engine picks the runner, maps the task function over the meta-batch, takes the
meta-gradient chunk by chunk, steps the optimizer, and applies the run's precision. The ways
differ only in `runner`, `map_tasks`, `map_chunks` and `tasks_per_chunk` (engine/modes.py);
every one gives the same numbers up to rounding (tests/algorithms).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metastress.data.tasks import Episode
from metastress.engine.precision import autocast, check_precision, tf32
from metastress.engine.runners import Weights

if TYPE_CHECKING:
    from metastress.algorithms.base import BaseLearner, MetaLearner

FastWeights = dict[str, Tensor]  # name -> (B, *parameter_shape), one slice per task


class DivergenceError(RuntimeError):
    """The meta-loss, its gradient or the meta-parameters became NaN or infinite."""


class Engine:
    """One way of running meta-batches on one device at one precision.

    Args:
        device (torch.device): where the meta-batches live.
        precision (str, default="fp32"): one of precision.PRECISIONS.
    """

    name: ClassVar[str]

    def __init__(self, device: torch.device, precision: str = "fp32"):
        check_precision(precision)
        self.device = torch.device(device)
        self.precision = precision

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.device}, {self.precision!r})"

    def runner(self, model: nn.Module) -> "BaseLearner":
        """The base learner `model` as the per-task functions of this engine see it."""
        raise NotImplementedError

    def map_tasks(self, fn: Callable, shared: tuple, batched: tuple, tasks_per_chunk: int) -> Any:
        """`fn(*shared, *task_i_of_batched)` for every task i, outputs stacked on a leading
        task dimension. Arguments are Tensors or weight dicts; batched ones have the B tasks
        on dim 0. `tasks_per_chunk` is a hint that engines running chunks use."""
        raise NotImplementedError

    def tasks_per_chunk(self, images_per_task: int, kept_steps: int = 1) -> int:
        """Tasks computed together: per chunk of the meta-gradient (whose graphs hold
        `kept_steps` inner steps each) and, where the engine runs chunks, per mapped chunk."""
        raise NotImplementedError

    def map_chunks(self, fn: Callable[[Any], Any], items: range) -> list:
        """`[fn(item) for item in items]`: the meta-gradient's chunks, in order."""
        return [fn(item) for item in items]

    @contextmanager
    def precision_context(self) -> Iterator[None]:
        """The run's precision (TF32 switch and autocast) around a forward computation."""
        with tf32(self.precision), autocast(self.precision, self.device):
            yield

    def adapt(
        self,
        learner: "MetaLearner",
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        init: Weights | None = None,
    ) -> FastWeights:
        """Adapt a learner to B tasks.

        Args:
            learner (MetaLearner): whose `adapt_task` runs on each task.
            support_x (Tensor): float (B, N*K, 1, 28, 28); support_y (Tensor): int64 (B, N*K).
            steps (int, optional): inner steps; None uses the learner's `inner_steps`.
            init (dict, optional): start from these weights instead of the learner's
                `initial_weights()` (the initialization swap ablation).

        Returns:
            FastWeights: name -> (B, *shape).
        """
        steps = _resolve_steps(steps, learner.config.inner_steps)
        if init is not None:
            _check_init(init, learner.base_model)
        start = learner.adaptation_start(init)
        adapt_one = partial(learner.adapt_task, self.runner(learner.base_model), steps=steps)
        cpu_hint = learner.fused_adapt_tasks if self.device.type == "cpu" else None
        chunk = cpu_hint or self.tasks_per_chunk(support_x.shape[1])
        return self.map_tasks(adapt_one, (start,), (support_x, support_y), chunk)

    def logits(
        self, learner: "MetaLearner", weights: Weights, x: Tensor, shared: bool = False
    ) -> Tensor:
        """Logits (B, M, N) of B base learners on their own tasks' images x (B, M, 1, 28, 28):
        weights name -> (B, *shape), or unbatched ones for every task if `shared`."""
        runner = self.runner(learner.base_model)
        shared_args, batched_args = ((weights,), (x,)) if shared else ((), (weights, x))
        return self.map_tasks(
            runner.logits, shared_args, batched_args, self.tasks_per_chunk(x.shape[1])
        )

    def mean_query_loss(
        self, learner: "MetaLearner", episode: Episode
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The usual meta-loss: mean query cross-entropy after adaptation, with loss and
        accuracy metrics (0-dim tensors, so nothing waits for the device); a sum over tasks, so
        it is taken chunk by chunk.

        When gradients are on, each chunk's meta-gradient is taken and its graph freed at
        once, and the returned loss carries their sum: `loss.backward()` (or
        `torch.autograd.grad(loss, params)`) gives exactly the gradient of the full graph while
        one chunk's graph is alive at a time (keeping all B tasks' graphs made MetaLSTM++ need
        8 GB at 20-way, B=16, and 200-way second-order MAML 89 GB at B=32;
        benchmarks/RESULTS.md). Chunks are summed in order, so the result does not depend on
        how `map_chunks` schedules them. The returned loss must not be differentiated twice.
        """
        meta_params = [p for p in learner.parameters() if p.requires_grad]
        eager = bool(meta_params) and torch.is_grad_enabled()
        n_tasks, n_query = len(episode), episode.query_y.numel()
        images = episode.support_y.shape[1] + episode.query_y.shape[1]
        chunk = self.tasks_per_chunk(images, _kept_steps(learner)) if eager else n_tasks

        def chunk_terms(start: int) -> tuple[tuple[Tensor | None, ...] | None, Tensor, Tensor]:
            part = episode.tasks(start, min(start + chunk, n_tasks))
            fast = self.adapt(learner, part.support_x, part.support_y)
            logits = self.logits(learner, fast, part.query_x)  # (T, N*Q, N)
            ce = F.cross_entropy(logits.flatten(0, 1), part.query_y.flatten(), reduction="sum")
            loss = ce / n_query  # this chunk's share of the mean
            grads = torch.autograd.grad(loss, meta_params, allow_unused=True) if eager else None
            return grads, loss.detach(), (logits.argmax(-1) == part.query_y).sum()

        grads = [torch.zeros_like(p) for p in meta_params]
        value, correct = 0.0, 0  # become tensors: no device sync per chunk
        for chunk_grads, chunk_loss, chunk_correct in self.map_chunks(
            chunk_terms, range(0, n_tasks, chunk)
        ):
            if eager:
                for total, g in zip(grads, chunk_grads, strict=True):
                    if g is not None:
                        total.add_(g)
            value = value + chunk_loss
            correct = correct + chunk_correct
        loss = _WithGradient.apply(value, grads, *meta_params) if eager else value
        return loss, {"loss": value, "accuracy": correct.to(torch.float64) / n_query}

    def meta_step(
        self,
        learner: "MetaLearner",
        optimizer: torch.optim.Optimizer,
        episode: Episode,
        after_update: Callable[[], None] | None = None,
    ) -> dict[str, float]:
        """One meta-iteration: one optimizer step per update group (per task for MetaLSTM),
        with the meta-gradient norm clipped where the learner asks for it; metrics averaged
        over the groups.

        `after_update`, if given, is called on the host after every optimizer step (Figure 1
        records the learned initialization there); a replayed capture of a whole
        meta-iteration could not call it, so a run that passes it runs eagerly.

        Raises:
            DivergenceError: a non-finite meta-loss or meta-gradient, before the optimizer
                step could spoil the weights.
        """
        totals: dict[str, float] = {}
        groups = 0
        for group in update_groups(learner, episode):
            _, _, metrics = self.update(learner, optimizer, group)
            if after_update is not None:
                after_update()
            groups += 1
            values = torch.stack([v.to(torch.float64) for v in metrics.values()]).tolist()
            for key, value in zip(metrics, values, strict=True):
                totals[key] = totals.get(key, 0.0) + value
        return {key: value / groups for key, value in totals.items()}

    def update(
        self,
        learner: "MetaLearner",
        optimizer: torch.optim.Optimizer,
        group: Episode,
        capturable: bool = False,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One optimizer step on one update group: the meta-loss, its gradient, the clip where
        the learner asks for one, the step. Returns (meta-loss, meta-gradient norm, metrics),
        device tensors.

        By default a non-finite meta-loss or norm raises DivergenceError before the step (a
        host sync each). `capturable` leaves the checks to the caller, who gets the loss and
        the norm, and runs autocast without its weight cache: nothing waits for the device, so
        a CUDA graph can hold the update (engine/graphs.py).
        """
        optimizer.zero_grad(set_to_none=True)
        with tf32(self.precision):
            with autocast(self.precision, self.device, cache=not capturable):
                loss, metrics = learner.meta_loss(self, group)
            if not capturable and not torch.isfinite(loss):
                raise DivergenceError(f"meta-loss is {loss.item()}")
            loss.backward()
        if learner.meta_grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(learner.parameters(), learner.meta_grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm(
                [p.grad for p in learner.parameters() if p.grad is not None]
            )
        if not capturable and not torch.isfinite(norm):
            raise DivergenceError(f"meta-gradient norm is {norm.item()} (meta-loss {loss.item()})")
        optimizer.step()
        return loss.detach(), norm, metrics

    @torch.no_grad()
    def evaluate(
        self,
        learner: "MetaLearner",
        episodes: list[Episode],
        steps: int | None = None,
        init: Weights | None = None,
    ) -> dict:
        """Mean query loss and accuracy, and per-task accuracies, of adapting on fixed tasks
        (no meta-graph is built)."""
        losses, accuracies = [], []
        for episode in episodes:
            with self.precision_context():
                fast = self.adapt(learner, episode.support_x, episode.support_y, steps, init)
                logits = self.logits(learner, fast, episode.query_x).float()  # (B, N*Q, N)
            losses.append(
                F.cross_entropy(logits.transpose(1, 2), episode.query_y, reduction="none").mean(1)
            )
            accuracies.append((logits.argmax(-1) == episode.query_y).float().mean(1))
        accuracy = torch.cat(accuracies)
        return {
            "loss": torch.cat(losses).mean().item(),
            "accuracy": accuracy.mean().item(),
            "per_task": accuracy.tolist(),
        }


def _resolve_steps(steps: int | None, default: int) -> int:
    """The per-call step count: `steps`, or the configured default when None (0 is identity)."""
    if steps is None:
        return default
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (0 returns the initial weights), got {steps}")
    return steps


def _check_init(init: Weights, model: nn.Module) -> None:
    """Raise ValueError unless `init` has exactly the base learner's names and shapes."""
    shapes = {name: p.shape for name, p in model.named_parameters()}
    fix = "build both learners with the same n_way, hidden and activation"
    if set(init) != set(shapes):
        raise ValueError(
            f"init weights must have the base learner's keys {sorted(shapes)}, got "
            f"{sorted(init)}; {fix}"
        )
    for name, shape in shapes.items():
        if init[name].shape != shape:
            raise ValueError(
                f"init[{name!r}] must have shape {tuple(shape)}, got {tuple(init[name].shape)}; "
                f"{fix}"
            )


def _kept_steps(learner: "MetaLearner") -> int:
    """Inner steps whose graphs the meta-gradient keeps: the last one for first order, every
    one for second-order MAML and the MetaLSTMs."""
    return 1 if getattr(learner.config, "first_order", False) else learner.config.inner_steps


def update_groups(learner: "MetaLearner", episode: Episode) -> Iterator[Episode]:
    """The parts of a meta-batch that each get one optimizer step: the whole of it, or each
    task (views of `episode`'s tensors)."""
    if learner.updates_per_task:
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
