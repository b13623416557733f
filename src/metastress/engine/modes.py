"""The ways of running a meta-batch's tasks, and the one place that picks one per device.

- "loop": a Python loop over tasks, the base learner run as its module (`functional_call`):
  the reference;
- "vmap": `torch.func.vmap` over the same per-task function;
- "fused": the SAME per-task function called once per chunk of tasks with a leading task
  dimension on every argument (shared ones expanded); the base learner then runs as the
  model's fused form (`Conv4.forward_tasks`: grouped convolutions, channels-last, CPU-tuned).
  On the CPU a chunk holds about FUSED_CHUNK_IMAGES images, so small tasks are grouped and
  large ones run one at a time (cache-sized); on a GPU chunks are vmap's, memory-sized (the
  code is device-agnostic; which form is faster there is for benchmarks/gpu.py to measure).
  With several CPU threads, chunks run at once on one-thread workers (`workers.map_ordered`)
  where each is a computation of its own: the meta-gradient's chunks (each differentiated on
  its worker, summed in order) and evaluation. Chunks of one autograd graph run in order:
  built on several threads at once, the graph's shared leaves would sum their gradients in an
  order that depends on thread timing (MetaLSTM++ in one meta-gradient chunk and TAML gave a
  different meta-gradient from run to run).

`resolve_engine` turns params.yaml's `protocol.task_mode` ("auto" or a mode) into one of them.
All give the same numbers up to rounding, second-order gradients included (tested), because
the Conv-4's module batch norm is written from tensor ops (the vmap trap) and the fused form
never runs under vmap.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

from metastress.engine import workers
from metastress.engine.base import Engine
from metastress.engine.runners import ChunkRunner, ModuleRunner, Weights

TASK_MODES = ("auto", "loop", "vmap", "fused")
FUSED_CHUNK_IMAGES = 100  # images per fused chunk: larger chunks fall out of cache on the CPU
# Images x graph-holding inner steps per vmap chunk of the meta-gradient: 200-way 1-shot
# second-order MAML at B=32, S=5 took 89 GB in one piece on an H200, 45 GB at B=16
# (benchmarks/RESULTS.md); this bound keeps a chunk near 20 GB and leaves every paper setting
# at B <= 32, S = 5 unchunked except the 150-200-way second-order ones.
VMAP_CHUNK_IMAGE_STEPS = 16_000


class _ModuleEngine(Engine):
    """An engine that presents one task at a time to the base learner's module."""

    def runner(self, model: nn.Module) -> ModuleRunner:
        return ModuleRunner(model)


class LoopEngine(_ModuleEngine):
    """Tasks one after another: the reference implementation."""

    name = "loop"

    def map_tasks(self, fn: Callable, shared: tuple, batched: tuple, tasks_per_chunk: int) -> Any:
        outputs = [
            fn(*shared, *(_take(arg, i) for arg in batched)) for i in range(_n_tasks(batched))
        ]
        return _combine(outputs, torch.stack)

    def tasks_per_chunk(self, images_per_task: int, kept_steps: int = 1) -> int:
        return 1


class VmapEngine(_ModuleEngine):
    """Every task at once under `torch.func.vmap`; the meta-gradient in memory-sized chunks."""

    name = "vmap"

    def map_tasks(self, fn: Callable, shared: tuple, batched: tuple, tasks_per_chunk: int) -> Any:
        return vmap(fn, in_dims=(None,) * len(shared) + (0,) * len(batched))(*shared, *batched)

    def tasks_per_chunk(self, images_per_task: int, kept_steps: int = 1) -> int:
        return max(1, VMAP_CHUNK_IMAGE_STEPS // (images_per_task * kept_steps))


class FusedEngine(Engine):
    """Chunks of tasks through the model's fused form, on one-thread CPU workers."""

    name = "fused"

    def runner(self, model: nn.Module) -> ChunkRunner:
        fused = getattr(model, "forward_tasks", None)
        if not callable(fused):
            raise ValueError(
                f"task_mode 'fused' needs a base learner with a fused form (a forward_tasks "
                f"method); {type(model).__name__} has none: use task_mode 'loop' or 'vmap'"
            )
        return ChunkRunner(fused)

    def map_tasks(self, fn: Callable, shared: tuple, batched: tuple, tasks_per_chunk: int) -> Any:
        n_tasks = _n_tasks(batched)

        def run_chunk(start: int) -> Any:
            part = slice(start, min(start + tasks_per_chunk, n_tasks))
            size = part.stop - part.start
            return fn(*(_expand(arg, size) for arg in shared), *(_take(a, part) for a in batched))

        starts = range(0, n_tasks, tasks_per_chunk)
        if torch.is_grad_enabled():  # chunks of one graph: built in order, in this thread
            outputs = [run_chunk(start) for start in starts]
        else:
            outputs = self.map_chunks(run_chunk, starts)
        return outputs[0] if len(outputs) == 1 else _combine(outputs, torch.cat)

    def tasks_per_chunk(self, images_per_task: int, kept_steps: int = 1) -> int:
        if self.device.type == "cpu":
            return max(1, FUSED_CHUNK_IMAGES // images_per_task)
        # GPUs want few, big kernels: vmap's memory-sized chunks (a whole meta-batch mostly)
        return max(1, VMAP_CHUNK_IMAGE_STEPS // (images_per_task * kept_steps))

    def map_chunks(self, fn: Callable[[Any], Any], items: range) -> list:
        # chunks share no module state, so on the CPU they run at once, one thread each
        return workers.map_ordered(fn, items, self.device)


ENGINES: dict[str, type[Engine]] = {cls.name: cls for cls in (LoopEngine, VmapEngine, FusedEngine)}


def resolve_task_mode(task_mode: str, device: torch.device) -> str:
    """ "loop", "vmap" or "fused": `task_mode` itself, or for "auto" the device's fastest.

    "auto" is "fused" on the CPU: measured faster than the loop and than vmap on every
    benchmark row, first and second order, at 1 and 2 threads, on a 2-core AMD EPYC
    (benchmarks/RESULTS.md; `python -m benchmarks.run`). On CUDA it is "vmap" (not measured
    against fused there; vmap is the usual choice on GPUs).
    """
    if task_mode not in TASK_MODES:
        raise ValueError(f"task_mode must be one of {list(TASK_MODES)}, got {task_mode!r}")
    if task_mode == "auto":
        return "vmap" if torch.device(device).type == "cuda" else "fused"
    return task_mode


def resolve_engine(task_mode: str, precision: str, device: torch.device) -> Engine:
    """The engine that runs meta-batches on `device`, chosen once per run."""
    return ENGINES[resolve_task_mode(task_mode, device)](device, precision)


def resolve_device(device: str) -> torch.device:
    """params.yaml's `protocol.device` ("auto", "cpu" or "cuda") as a torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("protocol.device is 'cuda' but no CUDA device is visible; use 'auto'")
    return torch.device(device)


def _take(arg: Tensor | Weights, index: int | slice) -> Tensor | Weights:
    if isinstance(arg, dict):
        return {k: v[index] for k, v in arg.items()}
    return arg[index]


def _expand(arg: Tensor | Weights, n_tasks: int) -> Tensor | Weights:
    """A shared argument repeated for n_tasks tasks (a view, no copy)."""
    if isinstance(arg, dict):
        return {k: v.expand(n_tasks, *v.shape) for k, v in arg.items()}
    return arg.expand(n_tasks, *arg.shape)


def _n_tasks(batched: tuple) -> int:
    if not batched:
        raise ValueError("map_tasks needs at least one argument batched over tasks")
    first = batched[0]
    return (next(iter(first.values())) if isinstance(first, dict) else first).shape[0]


def _combine(outputs: list, join: Callable[[list[Tensor]], Tensor]) -> Any:
    """Per-task (loop) or per-chunk (fused) outputs, Tensors or dicts, joined on dim 0."""
    if isinstance(outputs[0], dict):
        return {k: join([out[k] for out in outputs]) for k in outputs[0]}
    return join(outputs)
