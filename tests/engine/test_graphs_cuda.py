"""CUDA graphs of whole meta-iterations (engine/graphs.py) on a GPU: for every algorithm the
replayed graph gives the eager path's meta-gradient, parameters and metrics (fp32, max relative
difference <= 1e-5), replays read the refilled buffers, a NaN is named at the read, and the
fused engine runs on CUDA with vmap's meta-gradient. Skipped without a CUDA device (CI);
benchmarks/gpu_lease.sh runs them on a lent GPU (`pytest -m cuda`)."""

import pytest
import torch

from metastress import registry
from metastress.algorithms import build
from metastress.data.tasks import Episode, TaskSampler
from metastress.engine import resolve_engine
from metastress.engine.graphs import WARMUP_ITERATIONS, MetaIteration
from metastress.engine.optim import Adam
from tests.algorithms.conftest import cancelled_mask

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = torch.device("cuda")
N_WAY, META_BATCH, META_LR = 5, 4, 1e-3
REL = 1e-5  # the bound for fp32 over one iteration


def learner_for(algo):
    config = {"hidden": 16, "inner_steps": 2}
    if algo in ("maml", "metasgd", "taml", "anil"):
        config |= {"inner_lr": 0.4, "first_order": True}
    return build(algo, N_WAY, config, seed=0).to(CUDA)


def sampler():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (100, 20, 28, 28), generator=generator, dtype=torch.uint8)
    return TaskSampler(images.to(CUDA), N_WAY, 1, 2)


def relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected| over whole vectors (benchmarks/common.py's
    measure)."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def as_float64(episode: Episode) -> Episode:
    return Episode(episode.support_x.double(), episode.support_y, episode.query_x.double(),
                   episode.query_y, episode.n_way)  # fmt: skip


def meta_gradient(learner) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in learner.parameters()])


def determined(learner) -> torch.Tensor:
    """The meta-parameters except the coordinates of conv biases that batch norm cancels:
    their gradient is rounding noise, which Adam turns into a step of its own."""
    return torch.cat([
        p.detach()[~cancelled_mask(learner, name, p.detach().cpu()).to(p.device)]
        for name, p in learner.named_parameters()
    ])  # fmt: skip


@pytest.mark.parametrize("task_mode", ["vmap", "fused"])
@pytest.mark.parametrize("algo", registry.meta_trained())
def test_replayed_graph_gives_the_eager_meta_gradient(algo, task_mode):
    """Warm-up iterations, then a captured iteration and a second replay on fresh episodes,
    each against Engine.meta_step from the same weights."""
    engine = resolve_engine(task_mode, "fp32", CUDA)
    tasks, generator = sampler(), torch.Generator(device=CUDA).manual_seed(1)
    learner = learner_for(algo)
    optimizer = Adam(learner.parameters(), lr=META_LR)
    buffers = tasks.episode_buffers(META_BATCH)
    iteration = MetaIteration(engine, learner, optimizer, buffers, capacity=8, capture=True)
    for _ in range(WARMUP_ITERATIONS):
        tasks.sample_into(buffers, generator)
        iteration()
    for _ in range(2):  # the capture's own replay, then a plain replay
        eager = learner_for(algo)
        eager.load_state_dict(learner.state_dict())
        eager_optimizer = Adam(eager.parameters(), lr=META_LR)
        eager_optimizer.load_state_dict(optimizer.state_dict())
        tasks.sample_into(buffers, generator)
        expected = engine.meta_step(eager, eager_optimizer, buffers)
        iteration()
        row = iteration.read().rows[-1]
        assert iteration.graph is not None, "capture failed (see stderr)"
        assert relative(meta_gradient(learner), meta_gradient(eager)) <= REL
        assert relative(determined(learner), determined(eager)) <= REL
        assert row == pytest.approx(expected, rel=REL)


def test_a_nan_in_a_replayed_iteration_is_named_at_the_read():
    engine = resolve_engine("vmap", "fp32", CUDA)
    tasks, generator = sampler(), torch.Generator(device=CUDA).manual_seed(1)
    learner = learner_for("maml")
    buffers = tasks.episode_buffers(META_BATCH)
    iteration = MetaIteration(
        engine, learner, Adam(learner.parameters(), META_LR), buffers, 8, capture=True
    )
    for index in range(WARMUP_ITERATIONS + 3):
        tasks.sample_into(buffers, generator)
        if index == WARMUP_ITERATIONS + 1:
            buffers.support_x[0, 0, 0, 0, 0] = float("nan")
        iteration()
    period = iteration.read()
    assert iteration.graph is not None
    assert period.divergence is not None and period.divergence.index == WARMUP_ITERATIONS + 1
    assert period.divergence.message == "meta-loss is nan"


@pytest.mark.parametrize("algo", ["maml", "metalstm_pp"])
def test_the_fused_engine_runs_on_cuda_with_the_vmap_meta_gradient(algo):
    """In float64, where the two forms' different roundings vanish (their fp32 speed is
    benchmarks/gpu.py's business)."""
    tasks, generator = sampler(), torch.Generator(device=CUDA).manual_seed(2)
    episode = as_float64(tasks.sample(META_BATCH, generator))
    grads = {}
    for task_mode in ("vmap", "fused"):
        learner = learner_for(algo).double()
        loss, _ = learner.meta_loss(resolve_engine(task_mode, "fp32", CUDA), episode)
        loss.backward()
        grads[task_mode] = meta_gradient(learner)
    assert relative(grads["fused"], grads["vmap"]) <= 1e-9
