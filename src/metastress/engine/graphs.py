"""Whole meta-iterations over fixed tensors, captured as one CUDA graph on GPUs.

A 20w1s meta-iteration launches about 3,300 kernels for ~3 ms of arithmetic on an H200
(benchmarks/RESULTS.md): launches, not FLOPs, set its time. With the shapes fixed for a run
(setting, meta-batch, inner steps), `MetaIteration` runs one whole meta-iteration (each update
group's inner loops, meta-gradient, clip and Adam step, through `Engine.update`) on the
episode in fixed tensors (`TaskSampler.episode_buffers`, refilled by `sample_into` outside the
graph), and writes its metrics and a finiteness record into `IterationLog`, a device-side
log: nothing in it waits for the host. On CUDA it is captured once as a CUDA graph, after
warm-up iterations on a side stream as PyTorch's recipe asks, and replayed; elsewhere the same
function runs eagerly, which is how the CPU tests check it against `Engine.meta_step`. The log
is read once per period (`read`): one row of metrics per iteration, and the first non-finite
meta-loss or meta-gradient norm with its iteration.

A non-finite value cannot stop a graph, so the iterations after it run on spoiled weights
until the read, which names the iteration; the caller (train.py) then refuses to validate or
checkpoint, so the last checkpoint holds the last finite weights.

A population of trials (several trials' meta-parameters stacked on a leading dimension, one
graph for all) fits this interface: the learner's parameters and Adam's state gain that
dimension and `Adam.lr` becomes one rate per trial; `IterationLog` rows become one per trial.

References:
    PyTorch documentation, "CUDA Graphs" (torch.cuda.graph, whole-network capture).
"""

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from metastress.data.tasks import Episode
from metastress.engine.base import Engine, update_groups
from metastress.engine.optim import Adam

if TYPE_CHECKING:
    from metastress.algorithms.base import MetaLearner

GRAPH_MODES = ("auto", "off")
WARMUP_ITERATIONS = 3  # eager iterations on a side stream before capture (PyTorch's examples)


def use_graphs(graphs: str, device: torch.device) -> bool:
    """params.yaml's `protocol.graphs`: "auto" runs captured meta-iterations on CUDA (and the
    eager engine elsewhere), "off" never."""
    if graphs not in GRAPH_MODES:
        raise ValueError(f"protocol.graphs must be one of {list(GRAPH_MODES)}, got {graphs!r}")
    return graphs == "auto" and torch.device(device).type == "cuda"


@dataclass(frozen=True)
class Divergence:
    """The first update of a period whose meta-loss or meta-gradient norm was not finite."""

    index: int  # 0-based position of its meta-iteration in the period
    message: str  # as Engine.meta_step words it: "meta-loss is nan", ...


@dataclass(frozen=True)
class Period:
    """What the device recorded since the last read."""

    rows: list[dict[str, float]]  # per meta-iteration: metrics averaged over update groups
    divergence: Divergence | None


class IterationLog:
    """Metrics of up to `capacity` meta-iterations, and the first non-finite update, kept on
    the device (float64) until `read`.

    Args:
        names (iterable of str): the metrics, in the order rows hold them.
        capacity (int): meta-iterations between reads.
        device (torch.device): where the learner lives.
    """

    def __init__(self, names: Iterable[str], capacity: int, device: torch.device):
        self.names = tuple(names)
        self.capacity = capacity
        on = {"dtype": torch.float64, "device": device}
        self.values = torch.zeros(capacity, len(self.names), **on)  # (capacity, metrics)
        self.slot = torch.zeros((), dtype=torch.int64, device=device)  # the next row
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # -1: none yet
        self.bad_loss = torch.zeros((), **on)
        self.bad_norm = torch.zeros((), **on)

    def record_update(self, loss: Tensor, norm: Tensor) -> None:
        """Remember the first update whose meta-loss or meta-gradient norm is not finite."""
        newly = ~(torch.isfinite(loss) & torch.isfinite(norm)) & (self.first_bad < 0)
        self.first_bad.copy_(torch.where(newly, self.slot, self.first_bad))
        self.bad_loss.copy_(torch.where(newly, loss.to(torch.float64), self.bad_loss))
        self.bad_norm.copy_(torch.where(newly, norm.to(torch.float64), self.bad_norm))

    def record_iteration(self, row: Tensor) -> None:
        """Store one meta-iteration's metrics (len(names),) in the next row."""
        self.values.index_copy_(0, self.slot.view(1), row.view(1, -1))
        self.slot.add_(1)

    def read(self, count: int) -> Period:
        """The `count` rows recorded since the last read (one copy to the host), then empty."""
        tail = torch.stack([self.first_bad.to(torch.float64), self.bad_loss, self.bad_norm])
        packed = torch.cat([self.values[:count].flatten(), tail]).tolist()
        first_bad, loss, norm = packed[-3:]
        rows = [
            dict(zip(self.names, packed[i : i + len(self.names)], strict=True))
            for i in range(0, count * len(self.names), len(self.names))
        ]
        self.slot.zero_()
        self.first_bad.fill_(-1)
        if first_bad < 0:
            return Period(rows, None)
        message = (
            f"meta-gradient norm is {norm} (meta-loss {loss})"
            if math.isfinite(loss)
            else f"meta-loss is {loss}"
        )
        return Period(rows, Divergence(int(first_bad), message))


class MetaIteration:
    """One meta-iteration of `learner` on the episode in `buffers`, with no host sync; call
    it once per iteration after refilling the buffers, and `read()` at least every
    `capacity` iterations.

    Args:
        engine (Engine): runs the tasks (any task mode).
        learner (MetaLearner): its parameters are updated in place.
        optimizer (Adam): the capturable Adam over `learner.parameters()`.
        buffers (Episode): fixed tensors of one meta-batch (`TaskSampler.episode_buffers`).
        capacity (int): the most meta-iterations between reads.
        capture (bool): capture the iteration as a CUDA graph after WARMUP_ITERATIONS (CUDA
            only); if capture fails, say why on stderr once and go on eagerly.
    """

    def __init__(
        self,
        engine: Engine,
        learner: "MetaLearner",
        optimizer: Adam,
        buffers: Episode,
        capacity: int,
        capture: bool,
    ):
        if capture and engine.device.type != "cuda":
            raise ValueError(
                f"CUDA graphs need a CUDA device, the engine runs on {engine.device}; "
                "use capture=False (protocol.graphs: auto does)"
            )
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 meta-iteration between reads, got {capacity}")
        self.engine, self.learner, self.optimizer = engine, learner, optimizer
        self.groups = list(update_groups(learner, buffers))  # views of the buffers
        self.capacity = capacity
        self.capture = capture
        self.log: IterationLog | None = None  # made by the first iteration, which names metrics
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warmed_up = 0
        self.pending = 0

    def __call__(self) -> None:
        if self.pending == self.capacity:
            raise RuntimeError(
                f"{self.capacity} meta-iterations since the last read(), the log's capacity: "
                "read() it first"
            )
        if self.graph is not None:
            self.graph.replay()
        elif self.capture and self.warmed_up < WARMUP_ITERATIONS:
            self._warm_up()
        elif self.capture:
            self.graph = self._captured()
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
        else:
            self.step()
        self.pending += 1

    def read(self) -> Period:
        """The metrics and divergence recorded since the last read (one host sync)."""
        if not self.pending:
            return Period([], None)
        period = self.log.read(self.pending)
        self.pending = 0
        return period

    def step(self) -> None:
        """The meta-iteration itself: what a graph captures, or what runs eagerly."""
        total = None
        for group in self.groups:
            loss, norm, metrics = self.engine.update(
                self.learner, self.optimizer, group, capturable=True
            )
            if self.log is None:
                self.log = IterationLog(metrics, self.capacity, loss.device)
            self.log.record_update(loss, norm)
            row = torch.stack([value.to(torch.float64) for value in metrics.values()])
            total = row if total is None else total + row
        self.log.record_iteration(total / len(self.groups))

    def _warm_up(self) -> None:
        """One real iteration on a side stream: PyTorch's recipe before capture."""
        side = torch.cuda.Stream(self.engine.device)
        side.wait_stream(torch.cuda.current_stream(self.engine.device))
        with torch.cuda.stream(side):
            self.step()
        torch.cuda.current_stream(self.engine.device).wait_stream(side)
        self.warmed_up += 1

    def _captured(self) -> "torch.cuda.CUDAGraph | None":
        """The meta-iteration as a CUDA graph (nothing runs while it is captured), or None
        when capture fails: then the reason goes to stderr and iterations run eagerly."""
        self.optimizer.zero_grad(set_to_none=True)  # gradients come from the graph's pool
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.step()
        except Exception as e:  # any failure to capture leaves the eager path, which works
            cause = f"{type(e).__name__}: {e}"
            if e.__context__ is not None:
                cause += f" (after {type(e.__context__).__name__}: {e.__context__})"
            print(
                f"metastress: the meta-iteration could not be captured as a CUDA graph "
                f"({cause}); running it eagerly instead (protocol.graphs: off skips the attempt)",
                file=sys.stderr,
            )
            self.capture = False
            self.optimizer.zero_grad(set_to_none=True)
            return None
        return graph
