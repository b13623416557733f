"""The base learner as a learner's adaptation sees it: logits, and support loss with gradients.

A learner writes its inner loop for ONE task against `logits(weights, x)` and
`loss_and_grads(weights, x, y, first_order, wrt)` (algorithms.base.BaseLearner); the engine
hands it one of these runners:

- `ModuleRunner`: the model module itself through `functional_call`, gradients from
  `torch.func.grad_and_value` (the loop and vmap engines, which present one task at a time);
- `ChunkRunner`: the model's fused form for T tasks at once (`Conv4.forward_tasks`): every
  tensor has a leading task dimension, and gradients come from plain autograd (the fused
  engine). Learners need not know which: their updates are elementwise.

Inner gradients ignore an outer `torch.no_grad()` (evaluation adapts without a meta-graph) and,
with `first_order`, are constants to any outer autograd; otherwise they carry the graph for
second-order meta-gradients.

References:
    PyTorch: functorch/examples/maml_omniglot/maml-omniglot-transforms.py.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value

Weights = dict[str, Tensor]  # name -> parameter-shaped tensor (T leading tasks in a chunk)
Names = Sequence[str] | None  # the weights differentiated; None: all of them


def _split(weights: Weights, wrt: Names) -> tuple[Weights, Weights]:
    """(the weights differentiated, the others): all of them when `wrt` is None."""
    names = weights.keys() if wrt is None else wrt
    return {k: weights[k] for k in names}, {k: w for k, w in weights.items() if k not in names}


class ModuleRunner:
    """One task's base learner: `model` run with given weights (its own are unused)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def logits(self, weights: Weights, x: Tensor) -> Tensor:
        """(M, N) logits of images x (M, C, H, W)."""
        return functional_call(self.model, weights, x)

    def loss_and_grads(
        self, weights: Weights, x: Tensor, y: Tensor, first_order: bool, wrt: Names = None
    ) -> tuple[Weights, Tensor]:
        """Gradient (of the weights named in `wrt`, default all) and value of the mean
        cross-entropy on (x (M, C, H, W), y (M,))."""
        if first_order:
            weights = {k: w.detach() for k, w in weights.items()}
        varied, fixed = _split(weights, wrt)

        def loss(varied: Weights) -> Tensor:
            return F.cross_entropy(self.logits({**fixed, **varied}, x), y)

        return grad_and_value(loss)(varied)


class ChunkRunner:
    """T tasks' base learners at once through a model's fused form.

    Args:
        forward_tasks (callable): (weights (T, *shape) per name, x (T, M, C, H, W),
            double_backward) -> logits (T, M, N).
    """

    def __init__(self, forward_tasks: Callable[..., Tensor]):
        self.forward_tasks = forward_tasks

    def logits(self, weights: Weights, x: Tensor) -> Tensor:
        """(T, M, N) logits of images x (T, M, C, H, W)."""
        return self.forward_tasks(weights, x, False)

    def loss_and_grads(
        self, weights: Weights, x: Tensor, y: Tensor, first_order: bool, wrt: Names = None
    ) -> tuple[Weights, Tensor]:
        """Per task, the gradient (of the weights named in `wrt`, default all) and value (T,)
        of the mean cross-entropy on (x (T, M, C, H, W), y (T, M)).

        Plain autograd, not `torch.func`: the chunk never runs under vmap, and autograd passes
        the same image tensor at every step (so the fused Conv-4 computes its image patches
        once per adaptation), where `torch.func` would wrap it anew each time. Like
        `grad_and_value` it ignores an outer `torch.no_grad()`; it builds a second-order graph
        only when autograd is on outside and `first_order` is False.
        """
        second_order = not first_order and torch.is_grad_enabled()
        varied, fixed = _split(weights, wrt)
        leaves = {
            k: w if second_order and w.requires_grad else w.detach().requires_grad_()
            for k, w in varied.items()
        }
        if not second_order:
            fixed = {k: w.detach() for k, w in fixed.items()}
        with torch.enable_grad():
            logits = self.forward_tasks({**fixed, **leaves}, x, second_order)  # (T, M, N)
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            losses = losses.view(y.shape).mean(1)  # (T,)
            grads = torch.autograd.grad(
                losses.sum(),  # each task's gradient is that of its own loss
                list(leaves.values()),
                create_graph=second_order,
                allow_unused=True,
                materialize_grads=True,
            )
        return dict(zip(leaves, grads, strict=True)), losses if second_order else losses.detach()
