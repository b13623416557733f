"""MetaSGD: per-coordinate learned learning rates."""

import re

import torch
import torch.nn.functional as F
from torch.func import functional_call

from metastress.algorithms.metasgd import meta_sgd_update

TOL = {"rtol": 1e-9, "atol": 1e-12}


def test_learning_rates_start_at_inner_lr_with_parameter_shapes(make_learner):
    learner = make_learner("metasgd", inner_lr=0.3)
    lrs = learner.learning_rates()
    for name, p in learner.net.named_parameters():
        assert lrs[name].shape == p.shape and lrs[name].requires_grad
        torch.testing.assert_close(lrs[name], torch.full_like(p, 0.3))


def test_meta_sgd_update_is_elementwise():
    weights = {"a": torch.tensor([1.0, 2.0])}
    lrs = {"a": torch.tensor([0.1, 0.5])}
    grads = {"a": torch.tensor([2.0, -2.0])}
    torch.testing.assert_close(
        meta_sgd_update(weights, lrs, grads), {"a": torch.tensor([0.8, 3.0])}
    )


def test_one_step_is_theta_minus_alpha_times_gradient(make_learner, make_engine, episode):
    learner = make_learner("metasgd")
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # distinct rates per coordinate
        for lr in learner.lrs:
            lr.copy_(torch.rand(lr.shape, generator=generator, dtype=lr.dtype))
    theta, alpha = learner.initial_weights(), learner.learning_rates()
    fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=1)
    for i in range(len(episode)):
        logits = functional_call(learner.net, theta, episode.support_x[i])
        grads = torch.autograd.grad(
            F.cross_entropy(logits, episode.support_y[i]), list(theta.values())
        )
        for (name, w), g in zip(theta.items(), grads, strict=True):
            torch.testing.assert_close(fast[name][i], w - alpha[name] * g, **TOL)


def test_learning_rates_receive_meta_gradient(make_learner, make_engine, episode):
    learner = make_learner("metasgd")
    loss, _ = learner.meta_loss(make_engine(), episode)
    grads = torch.autograd.grad(loss, list(learner.lrs))
    names = [name for name, _ in learner.net.named_parameters()]
    largest = max(g.abs().max() for g in grads)
    for name, g in zip(names, grads, strict=True):
        assert torch.isfinite(g).all(), name
        if re.search(r"\bconvs\.\d+\.bias$", name):  # batch norm cancels these
            assert g.abs().max() <= 1e-9 * largest, name
        else:
            assert g.abs().sum() > 0, name


def test_uniform_rates_reproduce_maml(make_learner, make_engine, episode):
    maml = make_learner("maml", inner_lr=0.25)
    metasgd = make_learner("metasgd", inner_lr=0.25)
    with torch.no_grad():
        for lr in metasgd.lrs:
            lr.fill_(0.25)  # exactly the float64 rate MAML uses
    engine = make_engine()
    torch.testing.assert_close(
        engine.adapt(metasgd, episode.support_x, episode.support_y),
        engine.adapt(maml, episode.support_x, episode.support_y),
        **TOL,
    )
