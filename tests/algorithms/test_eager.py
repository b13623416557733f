"""The mean query loss's chunk-by-chunk meta-gradient equals that of the one full graph."""

import pytest
import torch
import torch.nn.functional as F

from metastress.data.tasks import Episode
from metastress.engine import modes, workers

TOL = {"rtol": 1e-9, "atol": 1e-12}
CASES = [
    ("maml", {"first_order": True}),
    ("maml", {"first_order": False}),
    ("metasgd", {"first_order": False}),
    ("metalstm_pp", {}),
]


@pytest.fixture
def one_task_chunks(monkeypatch):
    monkeypatch.setattr(modes, "FUSED_CHUNK_IMAGES", 1)
    monkeypatch.setattr(modes, "VMAP_CHUNK_IMAGE_STEPS", 1)


def gradients_and_metrics(learner, episode, engine):
    loss, metrics = learner.meta_loss(engine, episode)
    learner.zero_grad()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in learner.named_parameters()}
    return loss.detach(), grads, metrics


def full_graph(learner, episode, engine):
    """The same, by hand: one graph of the whole meta-batch, differentiated once."""
    fast = engine.adapt(learner, episode.support_x, episode.support_y)
    logits = engine.logits(learner, fast, episode.query_x)  # (B, N*Q, N)
    loss = F.cross_entropy(logits.flatten(0, 1), episode.query_y.flatten())
    learner.zero_grad()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in learner.named_parameters()}
    accuracy = (logits.argmax(-1) == episode.query_y).double().mean().item()
    return loss.detach(), grads, {"loss": loss.item(), "accuracy": accuracy}


@pytest.mark.parametrize("task_mode", ["loop", "fused", "vmap"])
@pytest.mark.parametrize(("algo", "config"), CASES)
def test_eager_meta_gradient_equals_the_full_graph(
    make_learner, make_engine, make_episode, one_task_chunks, algo, config, task_mode
):
    episode, learner = make_episode(n_tasks=3), make_learner(algo, **config)
    eager = gradients_and_metrics(learner, episode, make_engine(task_mode))
    graph = full_graph(learner, episode, make_engine(task_mode))
    torch.testing.assert_close(eager[0], graph[0], **TOL)
    torch.testing.assert_close(eager[1], graph[1], **TOL)
    assert eager[2] == pytest.approx(graph[2], rel=1e-9)


@pytest.mark.parametrize(("algo", "config"), CASES)
def test_chunks_on_two_threads_give_the_one_thread_meta_gradient_bit_for_bit(
    make_learner, make_engine, make_episode, one_task_chunks, monkeypatch, algo, config
):
    """With two threads, fused chunks run at once on one-thread workers and their gradients
    are summed in chunk order: the result is that of one thread, not just close to it."""
    episode, engine = make_episode(n_tasks=4), make_engine("fused")
    learner = make_learner(algo, **config)
    one_thread = gradients_and_metrics(learner, episode, engine)
    mapped = []  # (items, the caller's threads) of every map_ordered call
    map_ordered = workers.map_ordered

    def recorded(fn, items, device):
        mapped.append((len(items), torch.get_num_threads()))
        return map_ordered(fn, items, device)

    monkeypatch.setattr(workers, "map_ordered", recorded)
    torch.set_num_threads(2)
    two_threads = gradients_and_metrics(learner, episode, engine)
    assert mapped[0] == (4, 2)  # the meta-batch's 4 chunks, given to 2 workers
    assert torch.equal(two_threads[0], one_thread[0])
    for name, grad in one_thread[1].items():
        assert torch.equal(two_threads[1][name], grad), name
    assert two_threads[2] == one_thread[2]


def test_eager_loss_scales_its_gradient_and_needs_no_graph_under_no_grad(
    make_learner, make_engine, episode
):
    learner, engine = make_learner("maml"), make_engine()
    loss, _ = learner.meta_loss(engine, episode)
    params = list(learner.parameters())
    once = torch.autograd.grad(loss, params, retain_graph=True)
    thrice = torch.autograd.grad(3 * loss, params)
    for a, b in zip(once, thrice, strict=True):
        torch.testing.assert_close(3 * a, b, **TOL)
    with torch.no_grad():
        value, _ = learner.meta_loss(engine, episode)
    assert not value.requires_grad
    torch.testing.assert_close(value, loss.detach(), **TOL)


@pytest.mark.parametrize(
    ("algo", "config", "expected"),
    [
        ("maml", {"first_order": True}, 16_000 // 400),  # only the last step's graph is kept
        ("maml", {"first_order": False}, 16_000 // (400 * 5)),
        ("metalstm_pp", {}, 16_000 // (400 * 5)),
    ],
)
def test_vmap_chunks_shrink_with_the_graph_that_is_kept(
    make_learner, make_engine, monkeypatch, algo, config, expected
):
    learner = make_learner(algo, n_way=200, inner_steps=5, **config)
    images = torch.zeros(()).expand(32, 200, 1, 28, 28)  # 32 tasks of 200-way 1-shot, no memory
    labels = torch.zeros((), dtype=torch.long).expand(32, 200)
    episode = Episode(images, labels, images, labels, 200)
    engine = make_engine("vmap")
    chunks = []

    def record_chunks(fn, items):
        chunks.append(items.step)
        raise StopIteration  # the chunk size is what this test is about

    monkeypatch.setattr(engine, "map_chunks", record_chunks)
    assert modes.VMAP_CHUNK_IMAGE_STEPS == 16_000
    with pytest.raises(StopIteration):
        learner.meta_loss(engine, episode)
    assert chunks == [expected]
