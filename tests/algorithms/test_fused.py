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

from metastress.algorithms import ALGORITHMS, HAND_OPTIMIZERS, inner
from metastress.algorithms.inner import base_logits, map_tasks
from metastress.models import conv4
from metastress.models.conv4 import Conv4, forward_tasks, init_weights

TOL = {"rtol": 1e-9, "atol": 1e-12}
FIRST_AND_SECOND_ORDER = [
    (algo, first_order) for algo in ("maml", "metasgd", "taml") for first_order in (True, False)
] + [("metalstm", None), ("metalstm_pp", None)]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 tasks for 2-image support sets (and 1 task for 4-image query sets)."""
    monkeypatch.setattr(inner, "FUSED_CHUNK_IMAGES", 4)


def meta_gradients(learner, episode):
    loss, _ = learner.meta_loss(episode)
    params = dict(learner.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    return loss.detach(), dict(zip(params, grads, strict=True))


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
    make_learner, make_episode, small_chunks, algo, first_order
):
    episode = make_episode(n_tasks=3)
    config = {} if first_order is None else {"first_order": first_order}
    results = {
        mode: meta_gradients(make_learner(algo, task_mode=mode, **config), episode)
        for mode in ("loop", "fused")
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
    make_learner, make_episode, small_chunks, config
):
    episode = make_episode(n_tasks=3)
    results = {
        mode: meta_gradients(make_learner("taml", task_mode=mode, **config), episode)
        for mode in ("loop", "fused")
    }
    torch.testing.assert_close(results["fused"], results["loop"], **TOL)


@pytest.mark.parametrize("algo", HAND_OPTIMIZERS)
def test_fused_hand_optimizers_equal_the_loop(
    make_learner, make_episode, small_chunks, adapted_close, algo
):
    episode = make_episode(n_tasks=3)
    init = make_learner("maml").initial_weights()
    fast = {
        mode: make_learner(algo, task_mode=mode).adapt(
            episode.support_x, episode.support_y, init=init
        )
        for mode in ("loop", "fused")
    }
    adapted_close(fast["fused"], fast["loop"], init)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_fused_evaluation_under_no_grad_equals_the_loop(
    make_learner, make_episode, small_chunks, algo
):
    episode = make_episode(n_tasks=3)
    logits = {}
    for mode in ("loop", "fused"):
        learner = make_learner(algo, task_mode=mode)
        with torch.no_grad():
            fast = learner.adapt(episode.support_x, episode.support_y)
            logits[mode] = learner.predict(fast, episode.query_x)
    assert not logits["fused"].requires_grad
    torch.testing.assert_close(logits["fused"], logits["loop"], **TOL)


def test_fused_chunks_split_the_meta_batch(small_chunks):
    calls = []

    def fn(weights, x):
        calls.append(x.shape[0])
        return weights["w"] * x.sum(dim=(1, 2, 3, 4))  # (T,)

    x = torch.rand(5, 2, 1, 3, 3, dtype=torch.float64)  # 2 images per task: 2 tasks a chunk
    shared = {"w": torch.tensor(2.0, dtype=torch.float64)}
    out = map_tasks(fn, "fused", (None, 0), shared, x)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(out, 2 * x.sum(dim=(1, 2, 3, 4)), **TOL)
    calls.clear()
    torch.testing.assert_close(map_tasks(fn, "fused", (None, 0), shared, x, chunk=3), out)
    assert calls == [3, 2]


def test_fused_refuses_a_base_learner_other_than_conv4():
    with pytest.raises(ValueError, match="needs the Conv4 base learner"):
        base_logits(nn.Linear(3, 2), {}, torch.zeros(1, 2, 1, 3, 3))
