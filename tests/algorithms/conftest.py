"""Tiny shared fixtures: float64 episodes of random 28x28 images and tiny float64 learners.

Helpers are handed out as factory fixtures (`make_episode`, `make_learner`, `make_engine`,
`meta_gradients`) rather than imported by the bare name `conftest`, which the conftest modules
of other test folders share; what a module needs at import time it imports from
`tests.algorithms.conftest`.
"""

import re

import pytest
import torch

from metastress.algorithms import build
from metastress.data.tasks import Episode
from metastress.engine import resolve_engine

TINY = {"hidden": 4, "inner_steps": 2}  # Conv-4 with 4 channels: ~500 parameters
TOL = {"rtol": 1e-9, "atol": 1e-12}
# A conv bias followed by batch norm is subtracted again: its gradient is exactly 0, so what
# an optimizer does with it is rounding noise, except where the optimizer scales gradients.
CANCELLED_BY_BATCH_NORM = re.compile(r"\bconvs\.\d+\.bias$")
# Adam moves a zero-gradient weight by lr * noise / (|noise| + eps) per step: in float64 noise
# is below 1e-12 here, so 3 steps of lr 0.05 with eps 1e-6 move it far less than this.
CANCELLED_DRIFT = 1e-6


def random_episode(
    n_tasks: int = 2, n_way: int = 2, k_shot: int = 1, n_query: int = 2, seed: int = 0
) -> Episode:
    """B random tasks in float64; labels 0..N-1, each repeated K (support) or Q (query) times."""
    generator = torch.Generator().manual_seed(seed)

    def images(per_class: int) -> torch.Tensor:
        shape = (n_tasks, n_way * per_class, 1, 28, 28)
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    def labels(per_class: int) -> torch.Tensor:
        return torch.arange(n_way).repeat_interleave(per_class).expand(n_tasks, -1).clone()

    return Episode(images(k_shot), labels(k_shot), images(n_query), labels(n_query), n_way)


def tiny_learner(algo: str, n_way: int = 2, seed: int = 0, **config):
    """A float64 learner of `algo` on the tiny Conv-4, with TINY keys overridable by config."""
    return build(algo, n_way, {**TINY, **config}, seed).double()


def cpu_engine(task_mode: str = "auto", precision: str = "fp32"):
    """The engine of `task_mode` on the CPU ("auto" is fused there)."""
    return resolve_engine(task_mode, precision, torch.device("cpu"))


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    """Every algorithm test on one intra-op thread (tests/conftest.py says why)."""


@pytest.fixture
def make_episode():
    """`random_episode(n_tasks=2, n_way=2, k_shot=1, n_query=2, seed=0)`."""
    return random_episode


@pytest.fixture
def make_learner():
    """`tiny_learner(algo, n_way=2, seed=0, **config)`."""
    return tiny_learner


def meta_gradients(learner, episode, engine) -> tuple[torch.Tensor, dict]:
    """(meta-loss, {meta-parameter name: meta-gradient}) of one meta-batch."""
    loss, _ = learner.meta_loss(engine, episode)
    params = dict(learner.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    return loss.detach(), dict(zip(params, grads, strict=True))


def assert_meta_gradient_matches_finite_differences(learner, engine, episode) -> None:
    """The meta-gradient along one random direction per meta-parameter equals the central
    difference of the meta-loss (float64, step 1e-6; use a smooth activation)."""
    _, grads = meta_gradients(learner, episode, engine)
    generator = torch.Generator().manual_seed(1)
    eps = 1e-6
    for name, p in learner.named_parameters():
        direction = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        with torch.no_grad():
            p.add_(eps * direction)
            plus = learner.meta_loss(engine, episode)[0]
            p.sub_(2 * eps * direction)
            minus = learner.meta_loss(engine, episode)[0]
            p.add_(eps * direction)
        numeric = (plus - minus) / (2 * eps)
        analytic = (grads[name] * direction).sum()
        torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-9, msg=name)


@pytest.fixture
def finite_differences():
    """`assert_meta_gradient_matches_finite_differences(learner, engine, episode)`."""
    return assert_meta_gradient_matches_finite_differences


@pytest.fixture(name="meta_gradients")
def meta_gradients_fixture():
    """`meta_gradients(learner, episode, engine)`."""
    return meta_gradients


@pytest.fixture
def make_engine():
    """`cpu_engine(task_mode="auto", precision="fp32")`."""
    return cpu_engine


@pytest.fixture
def episode() -> Episode:
    """Two 2-way 1-shot tasks with 2 query images per class, float64."""
    return random_episode()


def assert_adapted_close(actual: dict, expected: dict, init: dict) -> None:
    """Adapted weights agree where the maths determines them.

    Weights with a gradient agree to TOL. A conv bias before batch norm has gradient 0, so
    the maths says it stays at its init: both sides must stay within CANCELLED_DRIFT of it
    (Adam turns each side's own rounding noise into its own tiny step, so they need not
    agree with each other).
    """
    assert set(actual) == set(expected)
    for name in actual:
        if CANCELLED_BY_BATCH_NORM.search(name):
            start = init[name].detach().expand_as(actual[name])
            for side in (actual[name], expected[name]):
                assert (side - start).abs().max() <= CANCELLED_DRIFT, name
        else:
            torch.testing.assert_close(actual[name], expected[name], **TOL, msg=name)


def cancelled(name: str) -> bool:
    return bool(CANCELLED_BY_BATCH_NORM.search(name))


def cancelled_mask(learner, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The coordinates of a meta-parameter that stand for conv biases cancelled by batch
    norm: those biases themselves, MetaSGD's rates for them, MetaLSTM's c_I entries of them."""
    mask = torch.zeros(tensor.shape, dtype=torch.bool)
    base_names = list(learner.base_model.state_dict())
    if name.startswith("net."):
        mask[...] = cancelled(name)
    elif name.startswith("lrs."):
        mask[...] = cancelled(base_names[int(name.split(".")[1])])
    elif name == "meta.cell.c_I":
        offset = 0
        for base_name, shape in learner.skeleton.shapes.items():
            mask[offset : offset + shape.numel()] = cancelled(base_name)
            offset += shape.numel()
    return mask


def assert_meta_parameters_close(learner, actual: dict, expected: dict, initial: dict) -> None:
    """Meta-parameters (state dicts) agree to TOL where the maths determines them, and the
    coordinates standing for cancelled conv biases stay at their initial values on both sides
    (as `assert_adapted_close`)."""
    assert actual.keys() == expected.keys()
    for name, value in actual.items():
        cancelled = cancelled_mask(learner, name, value)
        torch.testing.assert_close(value[~cancelled], expected[name][~cancelled], **TOL, msg=name)
        for side in (value, expected[name]):
            drift = (side - initial[name]).abs()[cancelled]
            assert (drift <= CANCELLED_DRIFT).all(), name


@pytest.fixture
def adapted_close():
    """`assert_adapted_close(actual, expected, init)`."""
    return assert_adapted_close
