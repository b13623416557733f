"""TAML: inequality measures against their formulas, and the penalty in the meta-gradient."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metastress.algorithms import inequality
from metastress.algorithms.taml import prediction_entropy

LOSSES = [1.0, 2.0, 3.0, 6.0]  # mean 3
MEAN = sum(LOSSES) / len(LOSSES)
RATIOS = [x / MEAN for x in LOSSES]
B = len(LOSSES)


def as_tensor(values):
    return torch.tensor(values, dtype=torch.float64)


EXPECTED = {
    "theil": sum(r * math.log(r) for r in RATIOS) / B,
    "ge_alpha_2": sum(r**2 - 1 for r in RATIOS) / (B * 2 * 1),
    "ge_alpha_0": -sum(math.log(r) for r in RATIOS) / B,  # mean log deviation
    "atkinson_half": 1 - (sum(math.sqrt(x) for x in LOSSES) / B) ** 2 / MEAN,
    "atkinson_one": 1 - math.prod(LOSSES) ** (1 / B) / MEAN,  # geometric mean
    "atkinson_two": 1 - (B / sum(1 / x for x in LOSSES)) / MEAN,  # harmonic mean
    "gini": sum(abs(a - b) for a in LOSSES for b in LOSSES) / (2 * B**2 * MEAN),  # = 1/3
}

MEASURES = {
    "theil": inequality.theil,
    "ge_alpha_2": lambda x: inequality.generalized_entropy(x, alpha=2.0),
    "ge_alpha_0": lambda x: inequality.generalized_entropy(x, alpha=0.0),
    "atkinson_half": lambda x: inequality.atkinson(x, epsilon=0.5),
    "atkinson_one": lambda x: inequality.atkinson(x, epsilon=1.0),
    "atkinson_two": lambda x: inequality.atkinson(x, epsilon=2.0),
    "gini": inequality.gini,
}


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_measure_matches_its_formula(name):
    torch.testing.assert_close(MEASURES[name](as_tensor(LOSSES)).item(), EXPECTED[name])


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_measure_is_zero_for_equal_losses(name):
    assert abs(MEASURES[name](as_tensor([2.5] * 5)).item()) < 1e-12


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_measure_is_scale_invariant(name):
    losses = as_tensor([0.3, 1.7, 0.9, 2.2, 1.1])
    torch.testing.assert_close(MEASURES[name](7.3 * losses), MEASURES[name](losses))


def test_generalized_entropy_at_one_is_theil_and_continuous_there():
    losses = as_tensor(LOSSES)
    torch.testing.assert_close(
        inequality.generalized_entropy(losses, 1.0), inequality.theil(losses)
    )
    near = inequality.generalized_entropy(losses, 1.0 + 1e-6)
    torch.testing.assert_close(near, inequality.theil(losses), rtol=1e-5, atol=0)


def test_atkinson_is_continuous_at_one():
    losses = as_tensor(LOSSES)
    near = inequality.atkinson(losses, 1.0 + 1e-6)
    torch.testing.assert_close(near, inequality.atkinson(losses, 1.0), rtol=1e-5, atol=0)


def test_measures_reject_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        inequality.theil(torch.ones(2, 2))
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        inequality.atkinson(torch.ones(3), -1.0)


def per_task_losses(logits, labels):
    return torch.stack([F.cross_entropy(lg, y) for lg, y in zip(logits, labels, strict=True)])


def penalty_by_hand(maml, engine, episode, config):
    """The TAML penalty from MAML's adapted/initial model, computed task by task."""
    theta = maml.initial_weights()
    initial = torch.stack([functional_call(maml.net, theta, x) for x in episode.support_x])
    fast = engine.adapt(maml, episode.support_x, episode.support_y)
    adapted = engine.logits(maml, fast, episode.query_x)
    if config["variant"] == "entropy":
        return prediction_entropy(adapted) - prediction_entropy(initial)
    if config["measure_on"] == "adapted":
        losses = per_task_losses(adapted, episode.query_y)
    else:
        losses = per_task_losses(initial, episode.support_y)
    return {
        "theil": inequality.theil,
        "gini": inequality.gini,
        "atkinson": lambda x: inequality.atkinson(x, config["atkinson_epsilon"]),
        "generalized_entropy": lambda x: inequality.generalized_entropy(x, config["ge_alpha"]),
    }[config["measure"]](losses)


CONFIGS = [
    {"variant": "inequality", "measure": "theil", "measure_on": "adapted"},
    {"variant": "inequality", "measure": "theil", "measure_on": "initial"},
    {"variant": "inequality", "measure": "atkinson", "measure_on": "adapted"},
    {"variant": "inequality", "measure": "generalized_entropy", "measure_on": "initial"},
    {"variant": "inequality", "measure": "gini", "measure_on": "adapted"},
    {"variant": "entropy", "measure": "theil", "measure_on": "adapted"},
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c['variant']}-{c['measure']}-{c['measure_on']}"
)
def test_meta_gradient_is_maml_plus_lambda_penalty_gradient(
    make_learner, make_engine, make_episode, config
):
    episode, engine = make_episode(n_tasks=3), make_engine()
    config = {**config, "lam": 0.7, "atkinson_epsilon": 0.8, "ge_alpha": 1.5}
    taml, maml = make_learner("taml", **config), make_learner("maml")
    theta_taml, theta_maml = list(taml.parameters()), list(maml.parameters())
    torch.testing.assert_close(theta_taml, theta_maml, rtol=0, atol=0)  # same seed, same theta
    objective, metrics = taml.meta_loss(engine, episode)
    maml_loss, _ = maml.meta_loss(engine, episode)
    penalty = penalty_by_hand(maml, engine, episode, config)
    expected = [
        a + 0.7 * b
        for a, b in zip(
            torch.autograd.grad(maml_loss, theta_maml),
            torch.autograd.grad(penalty, theta_maml),
            strict=True,
        )
    ]
    torch.testing.assert_close(list(torch.autograd.grad(objective, theta_taml)), expected)
    assert metrics["loss"] == pytest.approx(maml_loss.item(), rel=1e-12)
    assert metrics["objective"] == pytest.approx(maml_loss.item() + 0.7 * penalty.item(), rel=1e-12)
    if config["variant"] == "inequality":
        assert metrics["inequality"] == pytest.approx(penalty.item(), rel=1e-9)
    else:
        assert {"entropy_initial", "entropy_adapted"} <= set(metrics)


def test_penalty_changes_the_meta_gradient(make_learner, make_engine, episode):
    taml, maml, engine = make_learner("taml", lam=1.0), make_learner("maml"), make_engine()
    g_taml = torch.autograd.grad(taml.meta_loss(engine, episode)[0], list(taml.parameters()))
    g_maml = torch.autograd.grad(maml.meta_loss(engine, episode)[0], list(maml.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(g_taml, g_maml, strict=True))


def test_prediction_entropy_of_uniform_predictions_is_log_n():
    logits = torch.zeros(2, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(prediction_entropy(logits).item(), math.log(5))
