"""ANIL: the body stays at its initialization while the head takes SGD steps on the body's
features, and the meta-gradient (through that head-only inner loop) is exact."""

import pytest
import torch
import torch.nn.functional as F

from metastress.models.conv4 import BN_EPS

TOL = {"rtol": 1e-9, "atol": 1e-12}
BODY_LAYERS = 4


def body_features(weights, x, activation):
    """Conv-4's body written out: 4 x [conv, batch norm with the batch's statistics,
    activation, 2x2 max-pool], flattened to (M, hidden)."""
    h = x
    for layer in range(BODY_LAYERS):
        h = F.conv2d(h, weights[f"convs.{layer}.weight"], weights[f"convs.{layer}.bias"], padding=1)
        mean = h.mean(dim=(0, 2, 3), keepdim=True)
        var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        gamma, beta = weights[f"norms.{layer}.weight"], weights[f"norms.{layer}.bias"]
        h = (h - mean) / torch.sqrt(var + BN_EPS) * gamma[:, None, None] + beta[:, None, None]
        h = F.max_pool2d(activation(h), kernel_size=2)
    return h.flatten(1)


def head_sgd_by_hand(weights, features, labels, n_way, lr, steps):
    """Softmax regression on fixed features: dL/dlogits = (softmax - onehot) / M."""
    w, b = weights["head.weight"], weights["head.bias"]
    onehot = F.one_hot(labels, n_way).to(features.dtype)
    for _ in range(steps):
        error = (torch.softmax(features @ w.T + b, dim=1) - onehot) / len(labels)  # (M, N)
        w, b = w - lr * error.T @ features, b - lr * error.sum(0)
    return w, b


@pytest.mark.parametrize("task_mode", ["loop", "vmap", "fused"])
def test_body_stays_and_the_head_is_sgd_on_fixed_features(
    make_learner, make_engine, make_episode, task_mode
):
    episode = make_episode(n_tasks=3, n_way=3, k_shot=2)
    learner = make_learner("anil", n_way=3, inner_steps=3, inner_lr=0.3)
    init = {k: w.detach() for k, w in learner.initial_weights().items()}
    with torch.no_grad():
        fast = make_engine(task_mode).adapt(learner, episode.support_x, episode.support_y)
    for i in range(len(episode)):
        for name, w in init.items():
            if not name.startswith("head."):
                assert torch.equal(fast[name][i], w), name
        features = body_features(init, episode.support_x[i], F.relu)
        w, b = head_sgd_by_hand(init, features, episode.support_y[i], 3, lr=0.3, steps=3)
        torch.testing.assert_close(fast["head.weight"][i], w, **TOL)
        torch.testing.assert_close(fast["head.bias"][i], b, **TOL)


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
def test_second_order_meta_gradient_matches_finite_differences(
    make_learner, make_engine, episode, finite_differences, task_mode
):
    learner = make_learner("anil", activation="softplus", inner_lr=0.3, first_order=False)
    finite_differences(learner, make_engine(task_mode), episode)


def test_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_head(
    make_learner, make_engine, episode
):
    """First order: the adapted head is the initial head minus constants, and the body is the
    initial body, so the meta-gradient is the query-loss gradient at the adapted weights."""
    learner, engine = make_learner("anil", first_order=True), make_engine("loop")
    loss, _ = learner.meta_loss(engine, episode)
    params = dict(learner.net.named_parameters())
    meta_grads = torch.autograd.grad(loss, list(params.values()))
    adapted = engine.adapt(learner, episode.support_x, episode.support_y)
    adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}
    logits = engine.logits(learner, adapted, episode.query_x)
    query = F.cross_entropy(logits.flatten(0, 1), episode.query_y.flatten())
    expected = [g.sum(0) for g in torch.autograd.grad(query, list(adapted.values()))]
    torch.testing.assert_close(list(meta_grads), expected, **TOL)


def test_second_order_reaches_the_body_through_the_head_adaptation(
    make_learner, make_engine, episode, meta_gradients
):
    """Second order adds the body's effect on the head's inner steps to its meta-gradient."""
    engine = make_engine("loop")
    grads = {
        first_order: meta_gradients(make_learner("anil", first_order=first_order), episode, engine)[
            1
        ]
        for first_order in (True, False)
    }
    assert not torch.allclose(grads[True]["net.norms.0.weight"], grads[False]["net.norms.0.weight"])
