"""MAML: exact second-order meta-gradients, first-order reference, inner-loop properties."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metastress.algorithms.maml import maml_update

TOL = {"rtol": 1e-9, "atol": 1e-12}


def query_loss(learner, engine, fast, episode):
    logits = engine.logits(learner, fast, episode.query_x)  # (B, N*Q, N)
    return F.cross_entropy(logits.flatten(0, 1), episode.query_y.flatten())


def support_losses(learner, weights, episode, shared):
    """Per-task support losses (B,), computed task by task with plain functional_call."""
    losses = []
    for i in range(len(episode)):
        w = weights if shared else {k: v[i] for k, v in weights.items()}
        logits = functional_call(learner.net, w, episode.support_x[i])
        losses.append(F.cross_entropy(logits, episode.support_y[i]))
    return torch.stack(losses)


@pytest.mark.parametrize("task_mode", ["loop", "vmap"])
def test_second_order_meta_gradient_matches_finite_differences(
    make_learner, make_engine, episode, finite_differences, task_mode
):
    # softplus keeps the meta-loss smooth; batch norm is in the Conv-4 (the vmap trap's layer)
    learner = make_learner("maml", activation="softplus", inner_lr=0.3)
    finite_differences(learner, make_engine(task_mode), episode)


def test_second_order_differs_from_first_order(make_learner, make_engine, episode):
    grads = {}
    for first_order in (False, True):
        learner = make_learner("maml", first_order=first_order)
        loss, _ = learner.meta_loss(make_engine(), episode)
        grads[first_order] = torch.autograd.grad(loss, list(learner.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(grads[False], grads[True], strict=True))


def test_first_order_meta_gradient_is_query_gradient_at_adapted_weights(
    make_learner, make_engine, episode
):
    learner, engine = make_learner("maml", first_order=True), make_engine()
    params = dict(learner.net.named_parameters())
    loss, _ = learner.meta_loss(engine, episode)
    meta_grads = torch.autograd.grad(loss, list(params.values()))
    adapted = engine.adapt(learner, episode.support_x, episode.support_y)
    adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}  # (B, *shape) leaves
    query_grads = torch.autograd.grad(
        query_loss(learner, engine, adapted, episode), list(adapted.values())
    )
    expected = [g.sum(0) for g in query_grads]  # theta_i = theta - const: d/dtheta sums tasks
    torch.testing.assert_close(list(meta_grads), expected, **TOL)


def test_zero_steps_is_identity(make_learner, make_engine, episode):
    learner = make_learner("maml")
    fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=0)
    for name, p in learner.net.named_parameters():
        torch.testing.assert_close(fast[name], p.detach().expand(len(episode), *p.shape), **TOL)


def test_one_step_lowers_support_loss(make_learner, make_engine, episode):
    learner = make_learner("maml", inner_lr=0.01)
    theta = learner.initial_weights()
    fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=1)
    before = support_losses(learner, theta, episode, shared=True)
    after = support_losses(learner, fast, episode, shared=False)
    assert (after < before).all(), (before, after)


def test_one_step_is_sgd_by_hand(make_learner, make_engine, episode):
    learner = make_learner("maml", inner_lr=0.25)
    theta = learner.initial_weights()
    fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=1)
    for i in range(len(episode)):
        loss = F.cross_entropy(
            functional_call(learner.net, theta, episode.support_x[i]), episode.support_y[i]
        )
        grads = torch.autograd.grad(loss, list(theta.values()))
        for (name, w), g in zip(theta.items(), grads, strict=True):
            torch.testing.assert_close(fast[name][i], w - 0.25 * g, **TOL)


def test_maml_update_is_a_pure_sgd_step():
    weights = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor(3.0)}
    grads = {"a": torch.tensor([0.5, -1.0]), "b": torch.tensor(2.0)}
    new = maml_update(weights, grads, lr=0.1)
    torch.testing.assert_close(new, {"a": torch.tensor([0.95, 2.1]), "b": torch.tensor(2.8)})
    assert weights["a"].tolist() == [1.0, 2.0]  # inputs untouched


def test_adapt_from_given_init(make_learner, make_engine, episode):
    learner, other = make_learner("maml", seed=0), make_learner("maml", seed=1)
    engine = make_engine()
    fast = engine.adapt(learner, episode.support_x, episode.support_y, init=other.initial_weights())
    expected = engine.adapt(other, episode.support_x, episode.support_y)
    torch.testing.assert_close(fast, expected, **TOL)
