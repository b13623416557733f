"""Shared inner-loop machinery: one per-task function, lifted to the B tasks of a meta-batch.

Every algorithm writes its adaptation as a plain function of ONE task (as in PyTorch's
functorch MAML example) and hands it to `map_tasks`, which runs it over the meta-batch in one
of three task modes:

- "loop": a Python loop over tasks, the base learner run as the `Conv4` module
  (`functional_call`): the reference implementation;
- "vmap": `torch.func.vmap` over the same module;
- "fused": the SAME per-task function called once per chunk of tasks with batched arguments
  (weights (T, *shape), images (T, M, C, H, W)); the base learner then runs as
  `conv4.forward_tasks`, a CPU-tuned Conv-4 (grouped convolutions, channels-last, native batch
  norm). A chunk holds about FUSED_CHUNK_IMAGES images, so small tasks are grouped and large
  ones run one at a time (cache-sized); with several CPU threads, chunks run at once, one
  thread each (`workers.map_ordered`). Per-task functions therefore use only elementwise
  updates and `loss_and_grads` / `task_logits`, which dispatch on the images' rank, and
  change no shared state.

`"auto"` picks, per device, the mode measured fastest (see `resolve_task_mode` and
benchmarks/RESULTS.md). All modes give the same numbers up to rounding, second-order
gradients included (tested), because the module's batch norm is written from tensor ops (the
vmap trap) and the fused path never runs under vmap.

Inner gradients come from `torch.func.grad_and_value`, which composes with ordinary autograd
(second order comes free) and ignores an outer `torch.no_grad()`, so evaluation can adapt
without building any meta-graph. Fused chunks take them with `torch.autograd.grad` under the
same rules (`_chunk_loss_and_grads`).

References:
    Finn, Abbeel & Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML.
    PyTorch: functorch/examples/maml_omniglot/maml-omniglot-transforms.py.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from metastress import workers
from metastress.models.conv4 import ACTIVATIONS, Conv4, forward_tasks

Weights = dict[str, Tensor]  # name -> parameter-shaped tensor, one task's base learner
TASK_MODES = ("auto", "loop", "vmap", "fused")
PRECISIONS = ("fp32", "tf32", "bf16")
FUSED_CHUNK_IMAGES = 100  # images per fused chunk: larger chunks fall out of cache on the CPU
# Images x graph-holding inner steps per vmap chunk of the meta-gradient (base.eager_meta_loss):
# 200-way 1-shot second-order MAML at B=32, S=5 took 89 GB in one piece on an H200, 45 GB at
# B=16 (benchmarks/RESULTS.md); this bound keeps a chunk near 20 GB and leaves every paper
# setting at B <= 32, S = 5 unchunked except the 150-200-way second-order ones.
VMAP_CHUNK_IMAGE_STEPS = 16_000


@dataclass(frozen=True)
class InnerConfig:
    """Keys every meta-learner shares.

    Args:
        inner_steps (int, default=5): adaptation steps on the support set (>= 1).
        hidden (int, default=64): channels of the Conv-4 base learner.
        activation (str, default="relu"): base-learner activation, a key of conv4.ACTIVATIONS.
        task_mode (str, default="auto"): how to run the B tasks, one of TASK_MODES.
        precision (str, default="fp32"): "fp32" is strict IEEE float32 (no TF32, which PyTorch
            enables for GPU convolutions by default); "tf32" allows TF32 convolutions and
            matmuls on GPUs; "bf16" runs adaptation and the meta-loss under bf16 autocast.
            Both are faster on GPUs and less exact (benchmarks/RESULTS.md); CPUs ignore "tf32".
    """

    inner_steps: int = 5
    hidden: int = 64
    activation: str = "relu"
    task_mode: str = "auto"
    precision: str = "fp32"

    def __post_init__(self):
        check_at_least("inner_steps", self.inner_steps, 1)
        check_at_least("hidden", self.hidden, 1)
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("task_mode", self.task_mode, TASK_MODES)
        check_choice("precision", self.precision, PRECISIONS)


def check_at_least(key: str, value: float, low: float) -> None:
    """Raise ValueError unless value >= low."""
    if not value >= low:
        raise ValueError(f"{key} must be >= {low}, got {value!r}")


def check_positive(key: str, value: float) -> None:
    """Raise ValueError unless value > 0."""
    if not value > 0:
        raise ValueError(f"{key} must be > 0, got {value!r}")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}")


def resolve_steps(steps: int | None, default: int) -> int:
    """The per-call step count: `steps`, or the configured default when None (0 is identity)."""
    if steps is None:
        return default
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (0 returns the initial weights), got {steps}")
    return steps


def resolve_task_mode(task_mode: str, device: torch.device) -> str:
    """ "loop", "vmap" or "fused": `task_mode` itself, or for "auto" the device's fastest.

    "auto" is "fused" on the CPU: measured faster than the loop and than vmap on every
    benchmark row, first and second order, at 1 and 2 threads, on a 2-core AMD EPYC
    (benchmarks/RESULTS.md; `python -m benchmarks.run`). On CUDA it is "vmap" (not measured
    here; vmap is the usual choice on GPUs).
    """
    check_choice("task_mode", task_mode, TASK_MODES)
    if task_mode == "auto":
        return "vmap" if device.type == "cuda" else "fused"
    return task_mode


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The autocast context of `precision` on `device`'s type: bf16 autocast for "bf16",
    disabled otherwise."""
    check_choice("precision", precision, PRECISIONS)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@contextmanager
def tf32(precision: str) -> Iterator[None]:
    """TF32 convolutions and matmuls on GPUs exactly when `precision` is "tf32", restored after."""
    check_choice("precision", precision, PRECISIONS)
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    enabled = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def map_tasks(
    fn: Callable[..., Any], task_mode: str, in_dims: tuple, *args: Any, chunk: int | None = None
) -> Any:
    """Run a one-task function over the B tasks of a meta-batch and stack its outputs.

    Args:
        fn (callable): takes one task's arguments, returns a Tensor or a dict of Tensors. In
            "fused" mode it gets T tasks' arguments at once (a leading task dimension on every
            tensor, shared ones expanded) and must return T tasks' outputs.
        task_mode (str): "loop", "vmap" or "fused" (see `resolve_task_mode`).
        in_dims (tuple): per argument, 0 if it is batched over tasks (dim 0), None if shared.
        *args: Tensors or dicts of Tensors.
        chunk (int, optional): tasks per fused chunk; None sizes chunks by images.

    Returns:
        fn's output with a leading task dimension B on every tensor.
    """
    if task_mode == "vmap":
        return vmap(fn, in_dims=in_dims)(*args)
    if task_mode not in ("loop", "fused"):
        raise ValueError(f"task_mode must be 'loop', 'vmap' or 'fused' here, got {task_mode!r}")
    n_tasks = _batch_size(args, in_dims)
    if task_mode == "fused":
        chunk = chunk or _tasks_per_chunk(args, in_dims)

        def run_chunk(start: int) -> Any:
            stop = min(start + chunk, n_tasks)
            return fn(
                *(
                    _expand(a, stop - start) if d is None else _take(a, slice(start, stop))
                    for a, d in zip(args, in_dims, strict=True)
                )
            )

        device = _first_batched(args, in_dims).device
        outputs = workers.map_ordered(run_chunk, range(0, n_tasks, chunk), device)
        if len(outputs) == 1:
            return outputs[0]
        combine = torch.cat
    else:
        outputs = [
            fn(*(a if d is None else _take(a, i) for a, d in zip(args, in_dims, strict=True)))
            for i in range(n_tasks)
        ]
        combine = torch.stack
    if isinstance(outputs[0], dict):
        return {k: combine([out[k] for out in outputs]) for k in outputs[0]}
    return combine(outputs)


def _take(arg: Tensor | Weights, index: int | slice) -> Tensor | Weights:
    if isinstance(arg, dict):
        return {k: v[index] for k, v in arg.items()}
    return arg[index]


def _expand(arg: Tensor | Weights, n_tasks: int) -> Tensor | Weights:
    """A shared argument repeated for n_tasks tasks (a view, no copy)."""
    if isinstance(arg, dict):
        return {k: v.expand(n_tasks, *v.shape) for k, v in arg.items()}
    return arg.expand(n_tasks, *arg.shape)


def _tasks_per_chunk(args: tuple, in_dims: tuple) -> int:
    """Tasks per fused chunk: about FUSED_CHUNK_IMAGES images of the first batched image
    argument (B, M, C, H, W); all tasks at once if there is none."""
    for arg, dim in zip(args, in_dims, strict=True):
        if dim is not None and isinstance(arg, Tensor) and arg.dim() == 5:
            return max(1, FUSED_CHUNK_IMAGES // max(1, arg.shape[1]))
    return _batch_size(args, in_dims)


def _batch_size(args: tuple, in_dims: tuple) -> int:
    return _first_batched(args, in_dims).shape[0]


def _first_batched(args: tuple, in_dims: tuple) -> Tensor:
    for arg, dim in zip(args, in_dims, strict=True):
        if dim is not None:
            return next(iter(arg.values())) if isinstance(arg, dict) else arg
    raise ValueError(f"map_tasks needs at least one batched argument, got in_dims={in_dims}")


def base_logits(
    net: nn.Module, weights: Weights, x: Tensor, double_backward: bool = False
) -> Tensor:
    """The base learner `net` run with `weights`: on one task or on a chunk of T tasks.

    Args:
        net (nn.Module): the base learner's architecture (its own parameters are unused).
        weights (dict): one task's weights, or (T, *shape) per name for a chunk.
        x (Tensor): float (M, C, H, W) for one task, or (T, M, C, H, W) for a chunk.
        double_backward (bool, default=False): a chunk's logits will be differentiated twice
            (picks the faster batch norm for that; see `conv4.forward_tasks`).

    Returns:
        Tensor: (M, N) logits, or (T, M, N) for a chunk (run by `conv4.forward_tasks`).
    """
    if x.dim() == 5:
        if not isinstance(net, Conv4):
            raise ValueError(
                f"task_mode 'fused' needs the Conv4 base learner, got {type(net).__name__}; "
                "use task_mode 'loop' or 'vmap'"
            )
        return forward_tasks(weights, x, net.activation, net.norms[0].eps, double_backward)
    return functional_call(net, weights, x)


def support_loss(
    net: nn.Module, weights: Weights, x: Tensor, y: Tensor, double_backward: bool = False
) -> Tensor:
    """Cross-entropy of the base learner `net` run with `weights` on one task's (x, y).

    For a chunk (x (T, M, C, H, W), y (T, M)) it is the per-task mean cross-entropy (T,).
    """
    logits = base_logits(net, weights, x, double_backward)
    if x.dim() == 5:
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        return losses.view(y.shape).mean(1)  # (T,)
    return F.cross_entropy(logits, y)


def loss_and_grads(
    net: nn.Module, weights: Weights, x: Tensor, y: Tensor, first_order: bool
) -> tuple[Weights, Tensor]:
    """Gradient and value of the support loss of one task.

    Args:
        net (nn.Module): the base learner's architecture (its own parameters are unused).
        weights (dict): one task's weights.
        x (Tensor): float (M, 1, 28, 28); y (Tensor): int64 (M,). Or a chunk of T tasks
            (fused mode): weights (T, *shape), x (T, M, 1, 28, 28), y (T, M).
        first_order (bool): take the gradient at detached weights, so the result is a constant
            to any outer autograd (no second-order graph is built).

    Returns:
        (grads, loss): grads keyed like weights; loss a scalar, or (T,) per task for a chunk.
    """
    if first_order:
        weights = {k: w.detach() for k, w in weights.items()}
    if x.dim() == 5:
        return _chunk_loss_and_grads(net, weights, x, y, first_order)
    return grad_and_value(support_loss, argnums=1)(net, weights, x, y)


def _chunk_loss_and_grads(
    net: nn.Module, weights: Weights, x: Tensor, y: Tensor, first_order: bool
) -> tuple[Weights, Tensor]:
    """`loss_and_grads` of a fused chunk, with plain autograd: the chunk never runs under
    vmap, and autograd passes the same image tensor at every step (so `conv4` computes its
    image patches once per adaptation), where `torch.func` would wrap it anew each time.

    Like `grad_and_value` it ignores an outer `torch.no_grad()`, and it builds a second-order
    graph only when autograd is on outside and `first_order` is False.
    """
    second_order = not first_order and torch.is_grad_enabled()
    leaves = {
        k: w if second_order and w.requires_grad else w.detach().requires_grad_()
        for k, w in weights.items()
    }
    with torch.enable_grad():
        losses = support_loss(net, leaves, x, y, double_backward=second_order)  # (T,)
        grads = torch.autograd.grad(
            losses.sum(),  # each task's gradient is that of its own loss
            list(leaves.values()),
            create_graph=second_order,
            allow_unused=True,
            materialize_grads=True,
        )
    return dict(zip(leaves, grads, strict=True)), losses if second_order else losses.detach()


def task_logits(
    net: nn.Module, weights: Weights, x: Tensor, task_mode: str, shared: bool = False
) -> Tensor:
    """Logits of B base learners on their own tasks' images.

    Args:
        net (nn.Module): the base learner's architecture.
        weights (dict): per-task weights name -> (B, *shape), or unbatched ones if `shared`.
        x (Tensor): float (B, M, 1, 28, 28).
        task_mode (str): "loop", "vmap" or "fused".
        shared (bool, default=False): one set of weights for every task.

    Returns:
        Tensor: (B, M, N) logits.
    """

    def logits(w: Weights, images: Tensor) -> Tensor:
        return base_logits(net, w, images)  # (M, N), or (T, M, N) for a fused chunk

    return map_tasks(logits, task_mode, (None if shared else 0, 0), weights, x)


def check_init(init: Weights, shapes: dict[str, torch.Size]) -> None:
    """Raise ValueError unless `init` has exactly the base learner's names and shapes."""
    if set(init) != set(shapes):
        raise ValueError(
            f"init weights must have the base learner's keys {sorted(shapes)}, got {sorted(init)}; "
            "build both learners with the same n_way, hidden and activation"
        )
    for name, shape in shapes.items():
        if init[name].shape != shape:
            raise ValueError(
                f"init[{name!r}] must have shape {tuple(shape)}, got {tuple(init[name].shape)}; "
                "build both learners with the same n_way, hidden and activation"
            )


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A base learner's architecture without weights, for learners whose weights live elsewhere.

    The module sits on the meta device (no memory; not registered as a submodule, so it adds
    no meta-parameters) and is only ever run through `functional_call` with given weights.

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
