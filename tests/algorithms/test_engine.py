"""The engine room: choosing an engine, mapping tasks, and the properties every registered
algorithm must have under every engine.

The vmap-vs-loop comparisons use float64 and second-order meta-gradients on a Conv-4 WITH
batch norm: `vmap` over `F.batch_norm` gives wrong second-order gradients, and these tests
fail if the base learner ever goes back to it.
"""

import re

import pytest
import torch
from torch import nn

from metastress import registry
from metastress.algorithms.base import Skeleton
from metastress.engine import (
    FusedEngine,
    LoopEngine,
    VmapEngine,
    resolve_engine,
    resolve_task_mode,
)
from metastress.engine.runners import ModuleRunner
from metastress.models.conv4 import Conv4, init_weights

TOL = {"rtol": 1e-9, "atol": 1e-12}
META_TRAINED = registry.meta_trained()
CPU = torch.device("cpu")


def test_auto_task_mode_is_vmap_on_cuda_and_fused_on_cpu():
    """As measured: benchmarks/RESULTS.md."""
    assert resolve_task_mode("auto", CPU) == "fused"
    assert resolve_task_mode("auto", torch.device("cuda", 0)) == "vmap"
    assert resolve_task_mode("loop", torch.device("cuda", 0)) == "loop"
    with pytest.raises(ValueError, match="task_mode must be one of"):
        resolve_task_mode("batched", CPU)


@pytest.mark.parametrize(
    ("task_mode", "engine"), [("auto", FusedEngine), ("loop", LoopEngine), ("vmap", VmapEngine)]
)
def test_resolve_engine_picks_the_mode_and_keeps_device_and_precision(task_mode, engine):
    chosen = resolve_engine(task_mode, "bf16", CPU)
    assert type(chosen) is engine and chosen.device == CPU and chosen.precision == "bf16"
    assert type(resolve_engine("auto", "fp32", torch.device("cuda", 0))) is VmapEngine


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'tf32', 'bf16'\]"):
        resolve_engine("loop", "fp16", CPU)


def test_map_tasks_loop_equals_vmap_with_shared_and_batched_arguments(make_engine):
    shared = {"w": torch.randn(3, dtype=torch.float64)}
    batched = torch.randn(4, 3, dtype=torch.float64)

    def fn(weights, x):
        return {"y": (weights["w"] * x).sin(), "s": (weights["w"] @ x).exp()}

    loop = make_engine("loop").map_tasks(fn, (shared,), (batched,), 1)
    vmapped = make_engine("vmap").map_tasks(fn, (shared,), (batched,), 1)
    torch.testing.assert_close(loop, vmapped, **TOL)
    assert loop["y"].shape == (4, 3) and loop["s"].shape == (4,)
    with pytest.raises(ValueError, match="at least one argument batched"):
        make_engine("loop").map_tasks(fn, (shared, batched), (), 1)


def test_steps_default_to_the_config_and_negative_is_refused(make_learner, make_engine, episode):
    learner, engine = make_learner("maml", inner_steps=3), make_engine("loop")
    default = engine.adapt(learner, episode.support_x, episode.support_y)
    torch.testing.assert_close(
        default, engine.adapt(learner, episode.support_x, episode.support_y, steps=3), **TOL
    )
    with pytest.raises(ValueError, match="steps must be >= 0"):
        engine.adapt(learner, episode.support_x, episode.support_y, steps=-1)


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


def test_an_init_of_another_shape_is_named(make_learner, make_engine, episode):
    learner, engine = make_learner("maml"), make_engine("loop")
    init = learner.initial_weights()
    with pytest.raises(ValueError, match="keys"):
        engine.adapt(
            learner, episode.support_x, episode.support_y, init={"head.bias": init["head.bias"]}
        )
    wrong = {**init, "head.bias": torch.zeros(7, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"init\['head.bias'\] must have shape \(2,\)"):
        engine.adapt(learner, episode.support_x, episode.support_y, init=wrong)


def test_first_order_gradients_are_constants(episode):
    net = Conv4(2, hidden=4).double()
    runner = ModuleRunner(net)
    weights = {k: w.detach().requires_grad_() for k, w in init_weights(net).items()}
    x, y = episode.support_x[0], episode.support_y[0]
    first, _ = runner.loss_and_grads(weights, x, y, first_order=True)
    second, _ = runner.loss_and_grads(weights, x, y, first_order=False)
    assert all(not g.requires_grad for g in first.values())
    assert all(g.requires_grad for g in second.values())
    torch.testing.assert_close(first, {k: g.detach() for k, g in second.items()}, **TOL)


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
def test_gradients_of_some_weights_equal_those_of_all(make_engine, episode, task_mode):
    """`wrt` names the weights differentiated (ANIL's head); the others are held fixed."""
    net = Conv4(2, hidden=4).double()
    weights = init_weights(net)
    x, y = episode.support_x, episode.support_y
    if task_mode == "loop":
        x, y = x[0], y[0]
    else:
        weights = {k: w[None] for k, w in weights.items()}
        x, y = x[:1], y[:1]
    runner = make_engine(task_mode).runner(net)
    every, loss = runner.loss_and_grads(weights, x, y, first_order=True)
    head, head_loss = runner.loss_and_grads(weights, x, y, True, wrt=["head.weight", "head.bias"])
    assert set(head) == {"head.weight", "head.bias"}
    torch.testing.assert_close(head, {k: every[k] for k in head}, **TOL)
    torch.testing.assert_close(head_loss, loss, **TOL)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_vmap_equals_loop_including_second_order_meta_gradients(
    make_learner, make_engine, meta_gradients, episode, algo
):
    learner = make_learner(algo)
    results = {
        mode: meta_gradients(learner, episode, make_engine(mode)) for mode in ("loop", "vmap")
    }
    torch.testing.assert_close(results["vmap"], results["loop"], **TOL)


@pytest.mark.parametrize("algo", ["maml", "metasgd", "metalstm_pp"])
def test_batched_meta_gradient_is_mean_of_per_task_gradients(
    make_learner, make_engine, make_episode, meta_gradients, algo
):
    """One meta-batch of B tasks (vmap) == the B tasks one at a time (loop), averaged."""
    episode, learner = make_episode(n_tasks=3), make_learner(algo)
    _, batched = meta_gradients(learner, episode, make_engine("vmap"))
    per_task = [
        meta_gradients(learner, episode.tasks(i, i + 1), make_engine("loop"))[1]
        for i in range(len(episode))
    ]
    mean = {k: torch.stack([g[k] for g in per_task]).mean(0) for k in batched}
    torch.testing.assert_close(batched, mean, **TOL)


@pytest.mark.parametrize("algo", registry.hand_optimizers())
def test_hand_vmap_equals_loop(make_learner, make_engine, episode, adapted_close, algo):
    init, learner = make_learner("maml").initial_weights(), make_learner(algo)
    fast = {
        mode: make_engine(mode).adapt(learner, episode.support_x, episode.support_y, init=init)
        for mode in ("loop", "vmap")
    }
    adapted_close(fast["vmap"], fast["loop"], init)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_meta_gradients_reach_every_meta_parameter(
    make_learner, make_engine, meta_gradients, episode, algo
):
    """Except the conv biases: batch norm subtracts them again, so their meta-gradient is 0
    (exactly, where the fused Conv-4 folds the first batch norm into its convolution)."""
    learner = make_learner(algo)
    _, grads = meta_gradients(learner, episode, make_engine())
    largest = max(g.abs().max() for g in grads.values())
    base_names = list(learner.base_model.state_dict())
    for name, g in grads.items():
        assert torch.isfinite(g).all(), name
        if name.startswith("lrs."):  # MetaSGD's learning rate of the base parameter
            name = base_names[int(name.split(".")[1])]
        if re.search(r"\bconvs\.\d+\.bias$", name):
            assert g.abs().max() <= 1e-9 * largest, f"{algo}: {name} is not cancelled"
        else:
            assert g.abs().sum() > 0, f"{algo}: no meta-gradient reaches {name}"


@pytest.mark.parametrize("algo", META_TRAINED)
def test_zero_steps_returns_initial_weights(make_learner, make_engine, episode, algo):
    learner = make_learner(algo)
    fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=0)
    for name, w in learner.initial_weights().items():
        torch.testing.assert_close(fast[name], w.detach().expand(len(episode), *w.shape), **TOL)


@pytest.mark.parametrize("algo", META_TRAINED)
def test_logits_shape_and_metrics(make_learner, make_engine, make_episode, algo):
    episode, engine = make_episode(n_tasks=3, n_way=3, n_query=2), make_engine()
    learner = make_learner(algo, n_way=3)
    fast = engine.adapt(learner, episode.support_x, episode.support_y)
    assert engine.logits(learner, fast, episode.query_x).shape == (3, 6, 3)  # (B, N*Q, N)
    _, metrics = learner.meta_loss(engine, episode)
    assert {"loss", "accuracy"} <= set(metrics)
    # 0-dim tensors, detached: reading them is the caller's one sync (engine/graphs.py)
    assert all(v.dim() == 0 and not v.requires_grad for v in metrics.values())


@pytest.mark.parametrize("algo", META_TRAINED)
def test_adapt_under_no_grad_matches_and_builds_no_graph(make_learner, make_engine, episode, algo):
    """Evaluation adapts under torch.no_grad(): the runners still take inner gradients."""
    learner, engine = make_learner(algo), make_engine("loop")
    fast = engine.adapt(learner, episode.support_x, episode.support_y)
    with torch.no_grad():
        fast_eval = engine.adapt(learner, episode.support_x, episode.support_y)
    assert all(not w.requires_grad for w in fast_eval.values())
    torch.testing.assert_close(fast_eval, {k: v.detach() for k, v in fast.items()}, **TOL)


def test_evaluate_scores_each_task_on_its_own(make_learner, make_engine, make_episode):
    """Mean loss and accuracy over tasks, and per-task accuracies, from adapt + logits."""
    episode, engine, learner = make_episode(n_tasks=3), make_engine("loop"), make_learner("maml")
    scores = engine.evaluate(learner, [episode.tasks(0, 2), episode.tasks(2, 3)])
    with torch.no_grad():
        logits = engine.logits(
            learner, engine.adapt(learner, episode.support_x, episode.support_y), episode.query_x
        )
    per_task = (logits.argmax(-1) == episode.query_y).double().mean(1)
    losses = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), episode.query_y, reduction="none"
    )
    assert scores["per_task"] == pytest.approx(per_task.tolist(), rel=1e-12)
    assert scores["accuracy"] == pytest.approx(per_task.mean().item(), rel=1e-12)
    assert scores["loss"] == pytest.approx(losses.mean().item(), rel=1e-6)  # of float32 logits


@pytest.mark.parametrize("algo", META_TRAINED)
def test_after_update_runs_after_every_optimizer_step(
    make_learner, make_engine, make_episode, algo
):
    """MetaLSTM steps once per task, the others once per meta-batch; each call sees the weights
    that step wrote."""
    learner = make_learner(algo)
    optimizer = torch.optim.Adam(learner.parameters(), lr=0.01)
    seen: list[dict[str, torch.Tensor]] = []

    def after_update():
        seen.append({k: p.detach().clone() for k, p in learner.named_parameters()})

    steps = {"n": 0}
    step = optimizer.step

    def counted_step(*args, **kwargs):
        steps["n"] += 1
        return step(*args, **kwargs)

    optimizer.step = counted_step
    episode = make_episode(n_tasks=3)
    before = {k: p.detach().clone() for k, p in learner.named_parameters()}
    make_engine("loop").meta_step(learner, optimizer, episode, after_update)

    assert len(seen) == steps["n"] == (3 if learner.updates_per_task else 1)
    for name, p in learner.named_parameters():
        assert torch.equal(seen[-1][name], p.detach())
    assert any(not torch.equal(seen[0][k], before[k]) for k in before)  # after, not before
