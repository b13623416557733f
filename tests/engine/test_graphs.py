"""Static meta-iterations (engine/graphs.py) on the CPU: the step function a CUDA graph
captures, run eagerly, gives `Engine.meta_step`'s meta-parameters and metrics for every
algorithm and never reads a tensor on the host; its device-side log names the first
non-finite update; capture failures fall back to eager iterations. The capture itself needs
CUDA: tests/engine/test_graphs_cuda.py."""

import contextlib

import pytest
import torch

from metastress import registry
from metastress.algorithms.maml import MAML
from metastress.data.tasks import Episode
from metastress.engine import DivergenceError, graphs
from metastress.engine.graphs import MetaIteration, use_graphs
from metastress.engine.optim import Adam
from tests.algorithms.conftest import (
    assert_meta_parameters_close,
    cpu_engine,
    random_episode,
    tiny_learner,
)

META_LR, ITERATIONS = 0.01, 3
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")


def episodes(count=ITERATIONS, n_tasks=3):
    return [random_episode(n_tasks=n_tasks, n_way=3, k_shot=2, seed=100 + i) for i in range(count)]


def buffers_like(episode: Episode) -> Episode:
    return Episode(
        torch.zeros_like(episode.support_x),
        episode.support_y.clone(),
        torch.zeros_like(episode.query_x),
        episode.query_y.clone(),
        episode.n_way,
    )


def fill(buffers: Episode, episode: Episode) -> None:
    buffers.support_x.copy_(episode.support_x)
    buffers.query_x.copy_(episode.query_x)


@contextlib.contextmanager
def no_host_reads():
    """Reading a tensor's value on the host (what makes the host wait for a GPU, and what a
    CUDA graph cannot capture) raises inside this block."""

    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was read on the host inside a meta-iteration")

    with pytest.MonkeyPatch.context() as patch:
        for name in HOST_READS:
            patch.setattr(torch.Tensor, name, refuse)
        yield


def static_run(learner, engine, train, capacity=ITERATIONS):
    optimizer = Adam(learner.parameters(), lr=META_LR)
    buffers = buffers_like(train[0])
    iteration = MetaIteration(engine, learner, optimizer, buffers, capacity, capture=False)
    for episode in train:
        fill(buffers, episode)
        with no_host_reads():
            iteration()
    return iteration


CASES = {
    "maml_fo": ("maml", {"first_order": True}),
    "maml_so": ("maml", {"first_order": False}),
    "metasgd": ("metasgd", {}),
    "taml_entropy": ("taml", {"variant": "entropy"}),
    "metalstm": ("metalstm", {}),
    "metalstm_pp": ("metalstm_pp", {}),
    "anil": ("anil", {}),
}


def test_the_cases_cover_every_meta_trained_algorithm():
    assert {algo for algo, _ in CASES.values()} == set(registry.meta_trained())


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_static_iterations_equal_eager_meta_steps(task_mode, case):
    """Three iterations: the same meta-parameters and per-iteration metrics as
    `Engine.meta_step` with torch.optim.Adam (float64; MetaLSTM's per-task updates included)."""
    algo, config = CASES[case]
    engine, train = cpu_engine(task_mode), episodes()
    eager = tiny_learner(algo, n_way=3, **config)
    initial = {k: v.detach().clone() for k, v in eager.state_dict().items()}
    optimizer = torch.optim.Adam(eager.parameters(), lr=META_LR)
    expected = [engine.meta_step(eager, optimizer, episode) for episode in train]

    static = tiny_learner(algo, n_way=3, **config)
    period = static_run(static, engine, train).read()

    assert period.divergence is None
    assert period.rows == [pytest.approx(row, rel=1e-12) for row in expected]
    assert_meta_parameters_close(static, static.state_dict(), eager.state_dict(), initial)


def test_reads_empty_the_log_and_the_capacity_is_kept():
    engine, train = cpu_engine("loop"), episodes(count=4)
    iteration = static_run(tiny_learner("maml", n_way=3), engine, train[:2], capacity=2)
    with pytest.raises(RuntimeError, match="2 meta-iterations since the last read"):
        iteration()
    assert len(iteration.read().rows) == 2
    assert iteration.read().rows == []
    iteration()
    assert len(iteration.read().rows) == 1


@pytest.mark.parametrize("algo", ["maml", "metalstm"])
def test_a_nan_is_reported_at_the_read_with_its_iteration(algo):
    """A NaN image in iteration 3's episode: the read names iteration index 2 of 4 and the
    meta-loss, in the words Engine.meta_step raises with."""
    engine, train = cpu_engine("loop"), episodes(count=4)
    train[2].support_x[0, 0, 0, 0, 0] = float("nan")
    period = static_run(tiny_learner(algo, n_way=3), engine, train, capacity=4).read()
    assert len(period.rows) == 4
    assert period.divergence == graphs.Divergence(2, "meta-loss is nan")
    with pytest.raises(DivergenceError, match="^meta-loss is nan$"):
        learner = tiny_learner(algo, n_way=3)
        engine.meta_step(learner, Adam(learner.parameters(), META_LR), train[2])


def test_the_log_forgets_a_divergence_once_read():
    log = graphs.IterationLog(["loss"], capacity=2, device=torch.device("cpu"))
    for loss in (1.0, float("inf")):
        log.record_update(torch.tensor(loss), torch.tensor(2.0))
        log.record_iteration(torch.tensor([loss], dtype=torch.float64))
    assert log.read(2) == graphs.Period([{"loss": 1.0}, {"loss": float("inf")}],
                                        graphs.Divergence(1, "meta-loss is inf"))  # fmt: skip
    log.record_update(torch.tensor(0.5), torch.tensor(2.0))
    log.record_iteration(torch.tensor([0.5], dtype=torch.float64))
    assert log.read(1) == graphs.Period([{"loss": 0.5}], None)


def test_a_nan_gradient_of_a_finite_loss_is_named_with_the_loss(monkeypatch):
    original = MAML.meta_loss

    def nan_gradient(self, engine, episode):  # d/dx sqrt(x) at 0 is inf, times 0: nan
        loss, metrics = original(self, engine, episode)
        return loss + torch.sqrt(self.net.head.bias.sum() * 0.0), metrics

    monkeypatch.setattr(MAML, "meta_loss", nan_gradient)
    period = static_run(tiny_learner("maml", n_way=3), cpu_engine("loop"), episodes(2)).read()
    assert period.divergence.index == 0
    assert period.divergence.message.startswith("meta-gradient norm is nan (meta-loss ")
    assert period.divergence.message.endswith(f"{period.rows[0]['loss']})")


def test_graphs_auto_means_cuda_and_off_means_never():
    assert use_graphs("auto", torch.device("cuda", 0))
    assert not use_graphs("auto", torch.device("cpu"))
    assert not use_graphs("off", torch.device("cuda", 0))
    with pytest.raises(
        ValueError, match=r"protocol.graphs must be one of \['auto', 'off'\], got 'on'"
    ):
        use_graphs("on", torch.device("cpu"))


def test_capture_needs_a_cuda_device():
    learner, episode = tiny_learner("maml", n_way=3), episodes(1)[0]
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        MetaIteration(cpu_engine(), learner, Adam(learner.parameters(), 0.1), episode, 2, True)


def test_a_failed_capture_says_why_once_and_runs_eagerly(monkeypatch, capsys):
    """As on a GPU where capture fails: warm-up, one failed capture, then eager iterations,
    with the numbers of a run that never tried (the capture is simulated on the CPU)."""
    train = episodes(count=5)
    expected = static_run(tiny_learner("maml", n_way=3), cpu_engine("loop"), train, 5).read()

    def failing_capture(graph):  # fails before anything is recorded, as CUDA's capture can
        raise RuntimeError("operation not permitted when stream is capturing")

    def warm_up_here(self):  # no side stream on the CPU
        self.step()
        self.warmed_up += 1

    monkeypatch.setattr(graphs.torch.cuda, "CUDAGraph", object)
    monkeypatch.setattr(graphs.torch.cuda, "graph", failing_capture)
    monkeypatch.setattr(MetaIteration, "_warm_up", warm_up_here)
    learner = tiny_learner("maml", n_way=3)
    buffers = buffers_like(train[0])
    iteration = MetaIteration(
        cpu_engine("loop"), learner, Adam(learner.parameters(), META_LR), buffers, 5, False
    )
    iteration.capture = True  # what a CUDA engine asks for
    for episode in train:
        fill(buffers, episode)
        iteration()
    assert iteration.read().rows == expected.rows
    err = capsys.readouterr().err
    assert err.count("could not be captured as a CUDA graph") == 1
    assert "RuntimeError: operation not permitted when stream is capturing" in err
    assert "running it eagerly instead" in err and not iteration.capture
