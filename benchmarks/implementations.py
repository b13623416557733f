"""What is timed: one meta-iteration of each implementation, on the same Conv-4 and episode.

- `ours`: a `metastress` learner and its Adam (`engine.optim`), stepped by `Engine.meta_step`
  as training does (one optimizer step per update group, meta-gradient clipping where the
  algorithm asks for it), with a given `task_mode` ("auto" is what the workflow runs) and
  `precision` (bf16 autocast).
- `obvious`: the usual hand-written MAML: a Python loop over tasks, `torch.autograd.grad(...,
  create_graph=not first_order)` and `torch.func.functional_call` on the same `Conv4` module,
  one `backward()` per task (so each task's graph is freed at once), then Adam.
- `graph`: ours as training runs it with `protocol.graphs: auto`: one static `MetaIteration`
  on the fixed episode, captured as a CUDA graph on CUDA, its Adam at learning rate 0 so that
  every call takes the meta-gradient at the same weights (for the float64 cross-check).
- `higher`: MAML with `higher.innerloop_ctx` and an SGD inner optimizer, one task at a time,
  as in PyTorch's functorch/examples/maml_omniglot/maml-omniglot-higher.py. First order:
  `grad_callback` detaches the inner gradients (higher has no first-order switch: with
  `track_higher_grads=False` no meta-gradient reaches the initialization at all).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from metastress.algorithms import build
from metastress.data.tasks import Episode, TaskSampler
from metastress.engine import resolve_engine
from metastress.engine.graphs import WARMUP_ITERATIONS, MetaIteration
from metastress.engine.optim import Adam

INNER_LR = 0.4  # MAML's Omniglot value (params.yaml maml.inner_lr)
META_LR = 1e-3
SEED = 0
STATIC_CAPACITY = 10_000  # static iterations between reads of their log: none inside a timing


@dataclass(frozen=True)
class Impl:
    """One timed column: `kind` is "ours", "graph", "obvious" or "higher"; `order` is one of
    "fo", "so" or "-"."""

    kind: str
    algo: str
    order: str
    task_mode: str = "auto"
    precision: str = "fp32"

    @property
    def name(self) -> str:
        mode = "" if self.kind != "ours" or self.task_mode == "auto" else f"[{self.task_mode}]"
        mode += "" if self.precision == "fp32" else f"[{self.precision}]"
        order = "" if self.order == "-" else f" {self.order.upper()}"
        prefix = "" if self.kind == "ours" else f"{self.kind}:"
        return f"{prefix}{self.algo}{mode}{order}"


@dataclass(frozen=True)
class Built:
    """A ready meta-iteration: `step()` runs one; `init` are the base learner's initial
    parameters, whose `.grad` holds the meta-gradient after a step (cross-checks)."""

    step: Callable[[], None]
    init: list[torch.Tensor]


def make_step(
    impl: Impl, n_way: int, inner_steps: int, episode: Episode, dtype=torch.float32
) -> Built:
    """One meta-iteration of `impl` on `episode` (on the episode's device), built once."""
    device = episode.support_x.device
    if impl.kind == "ours":
        return _ours(impl, n_way, inner_steps, episode, dtype, device)
    if impl.kind == "graph":
        return _graph(impl, n_way, inner_steps, episode, dtype, device)
    net = _base_net(n_way, dtype, device)
    if impl.kind == "obvious":
        return _obvious(net, inner_steps, impl.order == "fo", episode)
    if impl.kind == "higher":
        return _higher(net, inner_steps, impl.order == "fo", episode)
    raise ValueError(f"unknown implementation kind {impl.kind!r}")


def _ours(impl: Impl, n_way: int, inner_steps: int, episode: Episode, dtype, device) -> Built:
    learner = _learner(impl, n_way, inner_steps, INNER_LR).to(device, dtype)
    optimizer = Adam(learner.parameters(), lr=META_LR)
    engine = resolve_engine(impl.task_mode, impl.precision, device)

    def step() -> None:
        engine.meta_step(learner, optimizer, episode)

    return Built(step, _init(learner))


def _graph(impl: Impl, n_way: int, inner_steps: int, episode: Episode, dtype, device) -> Built:
    learner = _learner(impl, n_way, inner_steps, INNER_LR).to(device, dtype)
    optimizer = Adam(learner.parameters(), lr=0.0)  # the weights stay: every call is the same
    engine = resolve_engine(impl.task_mode, impl.precision, device)
    capture = device.type == "cuda"
    calls = WARMUP_ITERATIONS + 1 if capture else 1  # warm-up, capture and one replay
    iteration = MetaIteration(engine, learner, optimizer, episode, calls, capture)

    def step() -> None:
        for _ in range(calls if iteration.graph is None else 1):
            iteration()
        iteration.read()

    return Built(step, _init(learner))


def _learner(impl: Impl, n_way: int, inner_steps: int, inner_lr: float):
    config = {"inner_steps": inner_steps}
    if impl.order != "-":
        config["first_order"] = impl.order == "fo"
    if impl.algo in ("maml", "metasgd", "taml", "anil"):
        config["inner_lr"] = inner_lr
    return build(impl.algo, n_way, config, SEED)


def _init(learner) -> list[torch.Tensor]:
    return list(learner.net.parameters()) if hasattr(learner, "net") else [learner.meta.cell.c_I]


@dataclass(frozen=True)
class Training:
    """A training meta-iteration as `metastress.train` runs it: `step()` samples a fresh
    episode and runs `Engine.meta_step`, or, with `graphs`, samples into fixed tensors and
    runs the static `MetaIteration` (captured as a CUDA graph after its warm-up on CUDA).
    `static` is that MetaIteration (None when eager): its `graph` says whether capture held."""

    step: Callable[[], None]
    static: MetaIteration | None


def make_training(
    impl: Impl,
    sampler: TaskSampler,
    batch: int,
    inner_steps: int,
    graphs: bool,
    inner_lr: float = INNER_LR,
    meta_lr: float = META_LR,
) -> Training:
    """`impl` (kind "ours") trained on `sampler`'s tasks, B=`batch`, on the sampler's device."""
    device = sampler.device
    learner = _learner(impl, sampler.n_way, inner_steps, inner_lr).to(device)
    optimizer = Adam(learner.parameters(), lr=meta_lr)
    engine = resolve_engine(impl.task_mode, impl.precision, device)
    generator = torch.Generator(device=device).manual_seed(SEED)
    if not graphs:
        return Training(
            lambda: engine.meta_step(learner, optimizer, sampler.sample(batch, generator)), None
        )
    buffers = sampler.episode_buffers(batch)
    static = MetaIteration(
        engine, learner, optimizer, buffers, capacity=STATIC_CAPACITY, capture=device.type == "cuda"
    )

    def step() -> None:
        if static.pending == STATIC_CAPACITY:
            static.read()
        sampler.sample_into(buffers, generator)
        static()

    return Training(step, static)


def _base_net(n_way: int, dtype, device) -> torch.nn.Module:
    return build("maml", n_way, {}, SEED).net.to(device, dtype)  # ours' Conv4 and initialization


def _obvious(net: torch.nn.Module, steps: int, first_order: bool, episode: Episode) -> Built:
    params = dict(net.named_parameters())
    optimizer = torch.optim.Adam(net.parameters(), lr=META_LR)
    n_tasks = len(episode)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        for i in range(n_tasks):
            fast = dict(params)
            for _ in range(steps):
                logits = functional_call(net, fast, (episode.support_x[i],))
                loss = F.cross_entropy(logits, episode.support_y[i])
                grads = torch.autograd.grad(loss, list(fast.values()), create_graph=not first_order)
                fast = {k: w - INNER_LR * g for (k, w), g in zip(fast.items(), grads, strict=True)}
            logits = functional_call(net, fast, (episode.query_x[i],))
            (F.cross_entropy(logits, episode.query_y[i]) / n_tasks).backward()
        optimizer.step()

    return Built(step, list(net.parameters()))


def _higher(net: torch.nn.Module, steps: int, first_order: bool, episode: Episode) -> Built:
    import higher  # a dev dependency, only needed here

    optimizer = torch.optim.Adam(net.parameters(), lr=META_LR)
    inner_opt = torch.optim.SGD(net.parameters(), lr=INNER_LR)
    n_tasks = len(episode)
    callback = (lambda grads: [g.detach() for g in grads]) if first_order else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        for i in range(n_tasks):
            context = higher.innerloop_ctx(net, inner_opt, copy_initial_weights=False)
            with context as (fnet, diffopt):
                for _ in range(steps):
                    loss = F.cross_entropy(fnet(episode.support_x[i]), episode.support_y[i])
                    diffopt.step(loss, grad_callback=callback)
                query_loss = F.cross_entropy(fnet(episode.query_x[i]), episode.query_y[i])
                (query_loss / n_tasks).backward()
        optimizer.step()

    return Built(step, list(net.parameters()))
