"""Tiny shared fixtures: float64 episodes of random 28x28 images and tiny float64 learners.

Helpers are handed out as factory fixtures (`make_episode`, `make_learner`) rather than imported,
so that this conftest never clashes with the conftest modules of other test folders.
"""

import pytest
import torch

from metastress.algorithms import build
from metastress.data.tasks import Episode

TINY = {"hidden": 4, "inner_steps": 2}  # Conv-4 with 4 channels: ~500 parameters


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


@pytest.fixture(autouse=True)
def one_thread():
    """Run on one intra-op thread: the tiny models gain nothing from more, and on a loaded
    2-core machine OpenMP's spinning threads made this suite ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_episode():
    """`random_episode(n_tasks=2, n_way=2, k_shot=1, n_query=2, seed=0)`."""
    return random_episode


@pytest.fixture
def make_learner():
    """`tiny_learner(algo, n_way=2, seed=0, **config)`."""
    return tiny_learner


@pytest.fixture
def episode() -> Episode:
    """Two 2-way 1-shot tasks with 2 query images per class, float64."""
    return random_episode()
