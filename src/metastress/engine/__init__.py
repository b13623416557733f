"""The engine room: how a meta-batch's tasks are run, chosen once per (device, task mode,
precision) by `resolve_engine`.

Learners (metastress.algorithms) hold per-task maths only; an engine maps them over the tasks
of a meta-batch (loop, vmap or fused CPU chunks), takes the meta-gradient chunk by chunk,
steps the optimizer, and evaluates. `graphs` runs whole meta-iterations over fixed tensors
with no host sync, captured as CUDA graphs on GPUs; `optim` is the meta-optimizer (Adam with
tensor state) that both paths step. `workers` (one-thread CPU workers) and `malloc` (glibc's
freed-memory setting) serve the fused engine and the command line.
"""

from metastress.engine.base import DivergenceError, Engine, FastWeights
from metastress.engine.modes import (
    FUSED_CHUNK_IMAGES,
    TASK_MODES,
    VMAP_CHUNK_IMAGE_STEPS,
    FusedEngine,
    LoopEngine,
    VmapEngine,
    resolve_device,
    resolve_engine,
    resolve_task_mode,
)
from metastress.engine.precision import PRECISIONS

__all__ = [
    "FUSED_CHUNK_IMAGES",
    "PRECISIONS",
    "TASK_MODES",
    "VMAP_CHUNK_IMAGE_STEPS",
    "DivergenceError",
    "Engine",
    "FastWeights",
    "FusedEngine",
    "LoopEngine",
    "VmapEngine",
    "resolve_device",
    "resolve_engine",
    "resolve_task_mode",
]
