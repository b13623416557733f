"""What a meta-learner is: per-task maths behind one interface, run by an engine.

A meta-learner is an `nn.Module` whose parameters are its meta-parameters (initialization,
learned learning rates, LSTM weights). It says where adaptation starts (`initial_weights`,
`adaptation_start`), how ONE task adapts (`adapt_task`, written against a base-learner runner
the engine hands in) and, if it is not the mean query loss, its meta-loss. How the B tasks of
a meta-batch run (a loop, vmap, fused chunks) is the engine's business (metastress.engine):
`adapt_task` may be called with a leading task dimension on every tensor, so it keeps to
elementwise updates and to the runner's two functions, and it edits no shared state.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from metastress.data.tasks import Episode
    from metastress.engine import Engine

Weights = dict[str, Tensor]  # name -> parameter-shaped tensor: one task's base learner
Names = Sequence[str] | None  # weights to differentiate; None: all


class BaseLearner(Protocol):
    """The base learner as `adapt_task` sees it (engine/runners.py implements it)."""

    def logits(self, weights: Weights, x: Tensor) -> Tensor:
        """Logits (M, N) of images x (M, C, H, W)."""
        ...

    def loss_and_grads(
        self, weights: Weights, x: Tensor, y: Tensor, first_order: bool, wrt: Names = None
    ) -> tuple[Weights, Tensor]:
        """(gradients of the weights named in `wrt` (default all), value) of the mean
        cross-entropy on (x, y). With `first_order` the gradients are constants to any outer
        autograd; otherwise they carry the graph for second-order meta-gradients."""
        ...


class MetaLearner(nn.Module):
    """Base class: `name`, `config`, `base_model`, `initial_weights` and `adapt_task`.

    Class attributes say what the maths needs from the engine: `updates_per_task` (one
    optimizer step per task, MetaLSTM), `meta_grad_clip` (a meta-gradient norm clip) and
    `fused_adapt_tasks` (see below).
    """

    name: ClassVar[str]
    updates_per_task: ClassVar[bool] = False
    meta_grad_clip: float | None = None
    # Tasks adapted together in one chunk of the fused engine on the CPU; None: as many as its
    # images allow. MetaLSTM sets 1: its per-task (P, 4H) gate tensors alone exceed a CPU
    # cache, and chunks of small tasks measured 2x slower (benchmarks/). GPUs ignore it.
    fused_adapt_tasks: ClassVar[int | None] = None

    @property
    def base_model(self) -> nn.Module:
        """The base learner's architecture (run with given weights; its own are unused)."""
        raise NotImplementedError

    def initial_weights(self) -> Weights:
        """The learned initialization theta, as an unbatched weight dict of the base learner."""
        raise NotImplementedError

    def adaptation_start(self, init: Weights | None) -> Weights | Tensor:
        """Where every task's adaptation starts, in the form `adapt_task` takes: the learned
        initialization, or `init` (another model's, for the swap ablation)."""
        return self.initial_weights() if init is None else init

    def adapt_task(
        self,
        base: BaseLearner,
        start: Weights | Tensor,
        support_x: Tensor,
        support_y: Tensor,
        steps: int,
    ) -> Weights:
        """Adapt one task: `steps` inner updates from `start` on its support set.

        Args:
            base (BaseLearner): the base learner, as the engine runs it.
            start: `adaptation_start`'s result (a weight dict, unless the learner says
                otherwise).
            support_x (Tensor): float (N*K, 1, 28, 28); support_y (Tensor): int64 (N*K,).
            steps (int): inner steps (0 returns the start as weights).

        Returns:
            dict: the adapted weights.
        """
        raise NotImplementedError

    def meta_loss(self, engine: "Engine", episode: "Episode") -> tuple[Tensor, dict[str, Tensor]]:
        """The outer loss and its metrics (0-dim tensors: reading them would make the host
        wait for the device): by default the mean query cross-entropy after adaptation, which
        the engine takes chunk by chunk. A learner whose loss couples the tasks (TAML)
        overrides this and computes it on the whole meta-batch."""
        return engine.mean_query_loss(self, episode)


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A base learner's architecture without weights, for learners whose weights live elsewhere.

    The module sits on the meta device (no memory; not registered as a submodule, so it adds
    no meta-parameters) and is only ever run with given weights.

    Args:
        module (nn.Module): the architecture, moved to the meta device.
        shapes (dict): parameter name -> shape, in `named_parameters()` order.
    """

    module: nn.Module
    shapes: dict[str, torch.Size]

    @classmethod
    def of(cls, module: nn.Module) -> "Skeleton":
        """The skeleton of `module` (moved in place to the meta device)."""
        shapes = {name: p.shape for name, p in module.named_parameters()}
        return cls(module.to("meta"), shapes)

    @property
    def n_params(self) -> int:
        return sum(shape.numel() for shape in self.shapes.values())

    def flatten(self, weights: Weights) -> Tensor:
        """One task's weight dict as a flat vector (P,), in `shapes` order.

        Leading dimensions are kept: weights (T, *shape) give (T, P).
        """
        name, shape = next(iter(self.shapes.items()))
        lead = weights[name].shape[: weights[name].dim() - len(shape)]
        return torch.cat([weights[name].reshape(*lead, -1) for name in self.shapes], dim=-1)

    def unflatten(self, flat: Tensor) -> Weights:
        """A flat vector (P,) as a weight dict of views; (T, P) gives (T, *shape) views."""
        sizes = [shape.numel() for shape in self.shapes.values()]
        chunks = flat.split(sizes, dim=-1)
        lead = flat.shape[:-1]
        return {
            name: chunk.view(*lead, *shape)
            for (name, shape), chunk in zip(self.shapes.items(), chunks, strict=True)
        }
