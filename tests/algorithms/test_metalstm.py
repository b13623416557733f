"""MetaLSTM / MetaLSTM++: preprocessing, the cell update rule, update schedules, no 2nd order."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metastress.algorithms.metalstm import MetaLSTM
from metastress.models.meta_lstm import (
    MetaLSTMCell,
    MetaLSTMNet,
    MetaLSTMState,
    lstm_cell,
    preprocess,
)

TOL = {"rtol": 1e-9, "atol": 1e-12}


def test_preprocess_matches_the_formula():
    p = 10.0
    values = [3.0, -0.5, 1e-3, 1e-5, -2e-6, 0.0, math.exp(-p)]
    out = preprocess(torch.tensor(values, dtype=torch.float64), p)
    for x, (a, b) in zip(values, out.tolist(), strict=True):
        if abs(x) >= math.exp(-p):
            expected = (math.log(abs(x)) / p, math.copysign(1.0, x))
        else:
            expected = (-1.0, math.exp(p) * x)
        assert a == pytest.approx(expected[0], rel=1e-12) and b == pytest.approx(
            expected[1], rel=1e-12
        )


def test_tensor_op_lstm_cell_matches_nn_lstmcell():
    cell = nn.LSTMCell(4, 6).double()
    x, h, c = (torch.randn(9, n, dtype=torch.float64) for n in (4, 6, 6))
    torch.testing.assert_close(lstm_cell(x, h, c, cell), cell(x, (h, c)), **TOL)


def test_meta_lstm_cell_matches_ravi_and_larochelle_equations():
    P, H = 7, 5
    cell = MetaLSTMCell(H, torch.randn(P, dtype=torch.float64)).double()
    h, grad, c, f_prev, i_prev = (
        torch.randn(*shape, dtype=torch.float64) for shape in [(P, H), (P,), (P,), (P,), (P,)]
    )
    state = MetaLSTMState(h, h, f_prev, i_prev, c)
    f = torch.sigmoid(torch.cat([h, c[:, None], f_prev[:, None]], dim=1) @ cell.W_F + cell.b_F)
    i = torch.sigmoid(torch.cat([h, c[:, None], i_prev[:, None]], dim=1) @ cell.W_I + cell.b_I)
    torch.testing.assert_close(cell(h, grad, state), (f * c - i * grad, f, i), **TOL)


def test_initialisation_follows_ravi_and_larochelle(make_learner):
    learner = make_learner("metalstm")
    cell = learner.meta.cell
    assert 4 <= cell.b_F.item() <= 6 and -5 <= cell.b_I.item() <= -4
    assert cell.W_F.abs().max() <= 0.01 and cell.W_I.abs().max() <= 0.01
    assert learner.meta_grad_clip == 0.25


def test_initial_weights_are_the_cell_state_and_match_maml_for_the_same_seed(make_learner):
    learner, maml = make_learner("metalstm", seed=5), make_learner("maml", seed=5)
    weights = learner.initial_weights()
    torch.testing.assert_close(learner.skeleton.flatten(weights), learner.meta.cell.c_I, **TOL)
    torch.testing.assert_close(weights, maml.initial_weights(), **TOL)
    assert sum(p.numel() for p in learner.parameters()) > learner.skeleton.n_params


def test_saturated_gates_make_one_step_plain_sgd(make_learner, make_engine, episode):
    alpha = 0.3
    learner = make_learner("metalstm")
    cell = learner.meta.cell
    with torch.no_grad():
        cell.W_F.zero_()
        cell.W_I.zero_()
        cell.b_F.fill_(50.0)  # sigmoid(50) == 1.0 in float64
        cell.b_I.fill_(math.log(alpha / (1 - alpha)))  # sigmoid(b_I) == alpha
    theta = {k: w.detach() for k, w in learner.initial_weights().items()}
    for steps in (1, 2):
        fast = make_engine().adapt(learner, episode.support_x, episode.support_y, steps=steps)
        for i in range(len(episode)):
            weights = theta
            for _ in range(steps):
                weights = {k: w.requires_grad_() for k, w in weights.items()}
                logits = functional_call(learner.skeleton.module, weights, episode.support_x[i])
                loss = F.cross_entropy(logits, episode.support_y[i])
                grads = torch.autograd.grad(loss, list(weights.values()))
                weights = {
                    k: (w - alpha * g).detach()
                    for (k, w), g in zip(weights.items(), grads, strict=True)
                }
            torch.testing.assert_close({k: v[i] for k, v in fast.items()}, weights, **TOL)


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
def test_learner_loss_and_gradient_enter_as_constants(
    make_learner, make_engine, episode, monkeypatch, task_mode
):
    seen = []
    step = MetaLSTMNet.forward

    def recording_step(self, state, loss, grad):
        tasks = grad.shape[0] if grad.dim() == 2 else 1  # a fused chunk steps T tasks at once
        seen.extend([(state.c.requires_grad, loss.requires_grad, grad.requires_grad)] * tasks)
        return step(self, state, loss, grad)

    monkeypatch.setattr(MetaLSTMNet, "forward", recording_step)
    learner = make_learner("metalstm", inner_steps=3)
    loss, _ = learner.meta_loss(make_engine(task_mode), episode)
    loss.backward()
    assert len(seen) == 3 * len(episode)
    assert all(c and not loss_ and not g for c, loss_, g in seen), seen


def test_init_replaces_the_learned_cell_state(make_learner, make_engine, episode):
    learner, maml = make_learner("metalstm", seed=0), make_learner("maml", seed=1)
    engine, x, y = make_engine(), episode.support_x, episode.support_y
    init = maml.initial_weights()
    swapped = engine.adapt(learner, x, y, init=init)
    with torch.no_grad():
        learner.meta.cell.c_I.copy_(learner.skeleton.flatten(init))
    torch.testing.assert_close(swapped, engine.adapt(learner, x, y), **TOL)
    zero = engine.adapt(learner, x, y, steps=0, init=init)
    torch.testing.assert_close({k: v[0] for k, v in zero.items()}, init, **TOL)
    with pytest.raises(ValueError, match="same n_way, hidden and activation"):
        engine.adapt(learner, x, y, init=make_learner("maml", n_way=3).initial_weights())


class CountingSGD(torch.optim.SGD):
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


@pytest.mark.parametrize(("algo", "updates"), [("metalstm", 3), ("metalstm_pp", 1)])
def test_meta_updates_per_meta_batch(make_learner, make_engine, make_episode, algo, updates):
    learner = make_learner(algo)
    optimizer = CountingSGD(learner.parameters(), lr=1e-3)
    make_engine().meta_step(learner, optimizer, make_episode(n_tasks=3))
    assert optimizer.steps == updates


def test_meta_step_clips_the_meta_gradient_norm(make_learner, make_engine, episode):
    learner = make_learner("metalstm_pp", meta_grad_clip=1e-6)
    make_engine().meta_step(learner, torch.optim.SGD(learner.parameters(), lr=0.0), episode)
    norm = torch.nn.utils.get_total_norm([p.grad for p in learner.parameters()])
    assert norm.item() == pytest.approx(1e-6, rel=1e-6)


def test_plus_plus_is_the_same_network_updated_per_meta_batch(make_learner):
    plain, plus = make_learner("metalstm"), make_learner("metalstm_pp")
    assert isinstance(plus, MetaLSTM) and plain.updates_per_task and not plus.updates_per_task
    torch.testing.assert_close(dict(plus.named_parameters()), dict(plain.named_parameters()))
