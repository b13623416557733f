"""Shared inner-loop machinery, and properties every registered algorithm must have.

The vmap-vs-loop comparisons use float64 and second-order meta-gradients on a Conv-4 WITH
batch norm: `vmap` over `F.batch_norm` gives wrong second-order gradients, and these tests
fail if the base learner ever goes back to it.
"""

import re

import pytest
import torch
from torch import nn

from metastress.algorithms import ALGORITHMS, HAND_OPTIMIZERS
from metastress.algorithms.inner import (
    Skeleton,
    check_init,
    loss_and_grads,
    map_tasks,
    resolve_steps,
    resolve_task_mode,
)
from metastress.models.conv4 import Conv4, init_weights

TOL = {"rtol": 1e-9, "atol": 1e-12}
META_TRAINED = sorted(ALGORITHMS)


def meta_gradients(learner, episode):
    loss, _ = learner.meta_loss(episode)
    names = [name for name, _ in learner.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in learner.named_parameters()])
    return loss.detach(), dict(zip(names, grads, strict=True))


def test_auto_task_mode_is_vmap_on_cuda_and_fused_on_cpu():
    """As measured: benchmarks/RESULTS.md."""
    assert resolve_task_mode("auto", torch.device("cpu")) == "fused"
    assert resolve_task_mode("auto", torch.device("cuda", 0)) == "vmap"
    assert resolve_task_mode("loop", torch.device("cuda", 0)) == "loop"
    with pytest.raises(ValueError, match="task_mode must be one of"):
        resolve_task_mode("batched", torch.device("cpu"))


def test_map_tasks_loop_equals_vmap_with_shared_and_batched_arguments():
    shared = {"w": torch.randn(3, dtype=torch.float64)}
    batched = torch.randn(4, 3, dtype=torch.float64)

    def fn(weights, x):
        return {"y": (weights["w"] * x).sin(), "s": (weights["w"] @ x).exp()}

    loop = map_tasks(fn, "loop", (None, 0), shared, batched)
    torch.testing.assert_close(loop, map_tasks(fn, "vmap", (None, 0), shared, batched), **TOL)
    assert loop["y"].shape == (4, 3) and loop["s"].shape == (4,)
    with pytest.raises(ValueError, match="at least one batched argument"):
        map_tasks(fn, "loop", (None, None), shared, batched)


def test_resolve_steps_defaults_and_rejects_negative():
    assert resolve_steps(None, 5) == 5
    assert resolve_steps(0, 5) == 0
    with pytest.raises(ValueError, match="steps must be >= 0"):
        resolve_steps(-1, 5)


def test_skeleton_round_trip_and_no_registered_parameters():
    net = Conv4(3, hidden=4)
    weights = init_weights(net)
    skeleton = Skeleton.of(net)
    flat = skeleton.flatten(weights)
    assert flat.shape == (skeleton.n_params,) == (sum(w.numel() for w in weights.values()),)
    torch.testing.assert_close(skeleton.unflatten(flat), weights, rtol=0, atol=0)
    holder = nn.Module()
    holder.skeleton = skeleton
    assert list(holder.parameters()) == []


def test_check_init_names_the_mismatch():
    shapes = {"a": torch.Size([2]), "b": torch.Size([3])}
    with pytest.raises(ValueError, match="keys"):
        check_init({"a": torch.zeros(2)}, shapes)
    with pytest.raises(ValueError, match=r"init\['b'\] must have shape \(3,\)"):
        check_init({"a": torch.zeros(2), "b": torch.zeros(4)}, shapes)


def test_first_order_gradients_are_constants(episode):
    net = Conv4(2, hidden=4).double()
    weights = {k: w.detach().requires_grad_() for k, w in init_weights(net).items()}
    x, y = episode.support_x[0], episode.support_y[0]
    first, _ = loss_and_grads(net, weights, x, y, first_order=True)
    second, _ = loss_and_grads(net, weights, x, y, first_order=False)
    assert all(not g.requires_grad for g in first.values())
    assert all(g.requires_grad for g in second.values())
    torch.testing.assert_close(first, {k: g.detach() for k, g in second.items()}, **TOL)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_vmap_equals_loop_including_second_order_meta_gradients(make_learner, episode, algo):
    results = {
        mode: meta_gradients(make_learner(algo, task_mode=mode), episode)
        for mode in ("loop", "vmap")
    }
    torch.testing.assert_close(results["vmap"], results["loop"], **TOL)


@pytest.mark.parametrize("algo", ["maml", "metasgd", "metalstm_pp"])
def test_batched_meta_gradient_is_mean_of_per_task_gradients(make_learner, make_episode, algo):
    """One meta-batch of B tasks (vmap) == the B tasks one at a time (loop), averaged."""
    episode = make_episode(n_tasks=3)
    _, batched = meta_gradients(make_learner(algo, task_mode="vmap"), episode)
    per_task = [
        meta_gradients(make_learner(algo, task_mode="loop"), episode.tasks(i, i + 1))[1]
        for i in range(len(episode))
    ]
    mean = {k: torch.stack([g[k] for g in per_task]).mean(0) for k in batched}
    torch.testing.assert_close(batched, mean, **TOL)


@pytest.mark.parametrize("algo", HAND_OPTIMIZERS)
def test_hand_vmap_equals_loop(make_learner, episode, adapted_close, algo):
    init = make_learner("maml").initial_weights()
    fast = {
        mode: make_learner(algo, task_mode=mode).adapt(
            episode.support_x, episode.support_y, init=init
        )
        for mode in ("loop", "vmap")
    }
    adapted_close(fast["vmap"], fast["loop"], init)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_meta_gradients_reach_every_meta_parameter(make_learner, episode, algo):
    """Except the conv biases: batch norm subtracts them again, so their meta-gradient is 0
    (exactly, where the fused Conv-4 folds the first batch norm into its convolution)."""
    learner = make_learner(algo)
    _, grads = meta_gradients(learner, episode)
    largest = max(g.abs().max() for g in grads.values())
    base_names = [name for name, _ in learner.net.named_parameters()] if algo == "metasgd" else []
    for name, g in grads.items():
        assert torch.isfinite(g).all(), name
        if name.startswith("lrs."):  # MetaSGD's learning rate of the base parameter
            name = base_names[int(name.split(".")[1])]
        if re.search(r"\bconvs\.\d+\.bias$", name):
            assert g.abs().max() <= 1e-9 * largest, f"{algo}: {name} is not cancelled"
        else:
            assert g.abs().sum() > 0, f"{algo}: no meta-gradient reaches {name}"


@pytest.mark.parametrize("algo", META_TRAINED)
def test_zero_steps_returns_initial_weights(make_learner, episode, algo):
    learner = make_learner(algo)
    fast = learner.adapt(episode.support_x, episode.support_y, steps=0)
    for name, w in learner.initial_weights().items():
        torch.testing.assert_close(fast[name], w.detach().expand(len(episode), *w.shape), **TOL)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_predict_shape_and_metrics(make_learner, make_episode, algo):
    episode = make_episode(n_tasks=3, n_way=3, n_query=2)
    learner = make_learner(algo, n_way=3)
    fast = learner.adapt(episode.support_x, episode.support_y)
    assert learner.predict(fast, episode.query_x).shape == (3, 6, 3)  # (B, N*Q, N)
    _, metrics = learner.meta_loss(episode)
    assert {"loss", "accuracy"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("algo", META_TRAINED)
def test_adapt_under_no_grad_matches_and_builds_no_graph(make_learner, episode, algo):
    """Evaluation adapts under torch.no_grad(): torch.func.grad still takes inner gradients."""
    learner = make_learner(algo)
    fast = learner.adapt(episode.support_x, episode.support_y)
    with torch.no_grad():
        fast_eval = learner.adapt(episode.support_x, episode.support_y)
    assert all(not w.requires_grad for w in fast_eval.values())
    torch.testing.assert_close(fast_eval, {k: v.detach() for k, v in fast.items()}, **TOL)
