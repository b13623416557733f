"""The fused task mode (conv4.forward_tasks over chunks of tasks) equals the reference loop.

float64 throughout; second-order meta-gradients included. FUSED_CHUNK_IMAGES is lowered so
that a meta-batch splits into uneven chunks (2 + 1 tasks) and chunking itself is exercised.
"""

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metastress import registry
from metastress.engine import modes
from metastress.models import conv4
from metastress.models.conv4 import Conv4, forward_tasks, init_weights

TOL = {"rtol": 1e-9, "atol": 1e-12}
FIRST_AND_SECOND_ORDER = [
    (algo, first_order)
    for algo in ("maml", "metasgd", "taml", "anil")
    for first_order in (True, False)
] + [("metalstm", None), ("metalstm_pp", None)]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 tasks for 2-image support sets (and 1 task for 4-image query sets)."""
    monkeypatch.setattr(modes, "FUSED_CHUNK_IMAGES", 4)


def images_with_ties(n_tasks, m, generator):
    """Random images with constant patches, so that max-pool windows hold exact ties."""
    x = torch.rand(n_tasks, m, 1, 28, 28, generator=generator, dtype=torch.float64)
    x[..., :10, :] = 1.0  # a blank band, as Omniglot's white background
    return x


@pytest.mark.parametrize("images_per_block", [None, 2])  # None: all 5 at once; 2: 2 + 2 + 1
@pytest.mark.parametrize("double_backward", [False, True])
@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_forward_tasks_equals_the_module_task_by_task(
    monkeypatch, activation, double_backward, images_per_block
):
    generator = torch.Generator().manual_seed(0)
    n_tasks, m, hidden = 3, 5, 6
    if images_per_block is not None:  # the first block's full-size activations, in float64
        block_bytes = images_per_block * 28 * 28 * n_tasks * hidden * 8
        monkeypatch.setattr(conv4, "FIRST_BLOCK_BYTES", block_bytes)
    net = Conv4(4, hidden=hidden, activation=activation).double()
    per_task = [
        {
            k: (w + 0.1 * torch.randn(w.shape, generator=generator, dtype=w.dtype)).requires_grad_()
            for k, w in init_weights(net).items()
        }
        for _ in range(n_tasks)
    ]
    stacked = {k: torch.stack([w[k] for w in per_task]) for k in per_task[0]}
    x = images_with_ties(n_tasks, m, generator)
    y = torch.arange(m) % 4
    fused = forward_tasks(stacked, x, net.activation, net.norms[0].eps, double_backward)
    reference = torch.stack([functional_call(net, per_task[i], x[i]) for i in range(n_tasks)])
    torch.testing.assert_close(fused, reference, **TOL)
    # gradients route through max-pool ties exactly as the module's pool-after-activation does
    loss = sum(F.cross_entropy(fused[i], y) for i in range(n_tasks))
    expected = sum(F.cross_entropy(reference[i], y) for i in range(n_tasks))
    leaves = [w for task in per_task for w in task.values()]
    got = torch.autograd.grad(loss, leaves)
    want = torch.autograd.grad(expected, leaves)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **TOL)


def test_forward_tasks_sees_images_changed_in_place():
    """The first layer's image patches are computed once per image tensor, not once per call:
    an in-place change of the images must not reuse them."""
    generator = torch.Generator().manual_seed(1)
    net = Conv4(4, hidden=6).double()
    weights = {k: w[None] for k, w in init_weights(net).items()}
    x = images_with_ties(1, 5, generator)
    forward_tasks(weights, x)
    x.mul_(0.5)
    torch.testing.assert_close(forward_tasks(weights, x)[0], net(x[0]), **TOL)


def test_forward_tasks_in_two_threads_keeps_their_images_apart(monkeypatch):
    """Each thread has its own patch cache: interleaved calls on different images from two
    threads reuse their own images' patches (2 computations, not 4) and give their logits."""
    generator = torch.Generator().manual_seed(2)
    net = Conv4(4, hidden=6).double()
    weights = {k: w[None] for k, w in init_weights(net).items()}
    images = [images_with_ties(1, 5, generator) for _ in range(2)]
    computed = []

    def counted(x):
        computed.append(x)
        return compute(x)

    compute = conv4._compute_patches
    monkeypatch.setattr(conv4, "_compute_patches", counted)
    barrier = threading.Barrier(2)
    outputs = {}

    def run(i):
        forward_tasks(weights, images[i])
        barrier.wait()  # both threads have called once before either calls again
        outputs[i] = forward_tasks(weights, images[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(computed) == 2
    for i in range(2):
        torch.testing.assert_close(outputs[i], net(images[i][0]), **TOL)


@pytest.mark.parametrize(("algo", "first_order"), FIRST_AND_SECOND_ORDER)
def test_fused_equals_the_reference_loop(
    make_learner, make_engine, make_episode, meta_gradients, small_chunks, algo, first_order
):
    episode = make_episode(n_tasks=3)
    learner = make_learner(algo, **({} if first_order is None else {"first_order": first_order}))
    results = {
        mode: meta_gradients(learner, episode, make_engine(mode)) for mode in ("loop", "fused")
    }
    torch.testing.assert_close(results["fused"], results["loop"], **TOL)


@pytest.mark.parametrize(
    "config",
    [
        {"variant": "inequality", "measure_on": "initial"},
        {"variant": "entropy", "first_order": False},
    ],
)
def test_fused_taml_shared_initial_logits_equal_the_loop(
    make_learner, make_engine, make_episode, meta_gradients, small_chunks, config
):
    episode, learner = make_episode(n_tasks=3), make_learner("taml", **config)
    results = {
        mode: meta_gradients(learner, episode, make_engine(mode)) for mode in ("loop", "fused")
    }
    torch.testing.assert_close(results["fused"], results["loop"], **TOL)


@pytest.mark.parametrize("algo", registry.hand_optimizers())
def test_fused_hand_optimizers_equal_the_loop(
    make_learner, make_engine, make_episode, small_chunks, adapted_close, algo
):
    episode, learner = make_episode(n_tasks=3), make_learner(algo)
    init = make_learner("maml").initial_weights()
    fast = {
        mode: make_engine(mode).adapt(learner, episode.support_x, episode.support_y, init=init)
        for mode in ("loop", "fused")
    }
    adapted_close(fast["fused"], fast["loop"], init)


@pytest.mark.parametrize("algo", registry.meta_trained())
def test_fused_evaluation_under_no_grad_equals_the_loop(
    make_learner, make_engine, make_episode, small_chunks, algo
):
    episode, learner = make_episode(n_tasks=3), make_learner(algo)
    logits = {}
    for mode in ("loop", "fused"):
        engine = make_engine(mode)
        with torch.no_grad():
            fast = engine.adapt(learner, episode.support_x, episode.support_y)
            logits[mode] = engine.logits(learner, fast, episode.query_x)
    assert not logits["fused"].requires_grad
    torch.testing.assert_close(logits["fused"], logits["loop"], **TOL)


def test_fused_chunks_split_the_meta_batch(make_engine):
    calls = []

    def fn(weights, x):
        calls.append(x.shape[0])
        return weights["w"] * x.sum(dim=(1, 2, 3, 4))  # (T,)

    x = torch.rand(5, 2, 1, 3, 3, dtype=torch.float64)
    shared = {"w": torch.tensor(2.0, dtype=torch.float64)}
    out = make_engine("fused").map_tasks(fn, (shared,), (x,), 2)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(out, 2 * x.sum(dim=(1, 2, 3, 4)), **TOL)


def test_fused_chunk_size_follows_the_images_of_a_task(make_engine, small_chunks):
    engine = make_engine("fused")
    assert [engine.tasks_per_chunk(images) for images in (1, 2, 3, 4, 5)] == [4, 2, 1, 1, 1]


def test_metalstm_adapts_one_task_per_fused_chunk(make_learner, make_engine, make_episode):
    """Its per-task gate tensors fill a cache alone (MetaLearner.fused_adapt_tasks)."""
    episode, engine = make_episode(n_tasks=3), make_engine("fused")
    seen = []
    learner = make_learner("metalstm_pp")
    adapt_task = learner.adapt_task

    def recording(base, start, support_x, support_y, steps):
        seen.append(support_x.shape[0])
        return adapt_task(base, start, support_x, support_y, steps)

    learner.adapt_task = recording
    engine.adapt(learner, episode.support_x, episode.support_y)
    assert seen == [1, 1, 1]


@pytest.mark.parametrize("grad", [False, True])
def test_fused_chunks_go_to_workers_only_when_they_build_no_shared_graph(
    make_engine, monkeypatch, grad
):
    """Chunks of one autograd graph built on several threads would sum the gradients of its
    shared leaves in an order set by thread timing: MetaLSTM++ (one meta-gradient chunk) and
    TAML gave different meta-gradients from run to run at 2 threads. Without gradients,
    chunks run at once on one-thread workers."""
    dispatched = []

    def recorded(fn, items, device):
        dispatched.append(len(items))
        return [fn(item) for item in items]

    monkeypatch.setattr(modes.workers, "map_ordered", recorded)
    x = torch.rand(4, 2, 1, 3, 3, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        make_engine("fused").map_tasks(lambda images: images.sum(dim=(1, 2, 3, 4)), (), (x,), 1)
    assert dispatched == ([] if grad else [4])


def test_fused_refuses_a_base_learner_without_a_fused_form(make_engine):
    with pytest.raises(ValueError, match="Linear has none: use task_mode 'loop' or 'vmap'"):
        make_engine("fused").runner(nn.Linear(3, 2))
