"""What the CPU (run.py) and GPU (gpu.py) benchmarks share: the algorithms as params.yaml runs
them, the paper's settings, random Omniglot-shaped tasks, the meta-gradient cross-check, FLOP
counts and number formatting."""

import torch

from benchmarks import measure
from benchmarks.implementations import Impl, make_step
from metastress.data.tasks import Episode, TaskSampler

PROFILE_ORDER = {"maml": "fo", "metasgd": "fo", "taml": "fo", "metalstm": "-", "metalstm_pp": "-"}
PAPER_SETTINGS = [(20, 1), (20, 5), (40, 1), (40, 5), (60, 1), (80, 1), (100, 1), (150, 1),
                  (175, 1), (200, 1)]  # fmt: skip
TRIALS, SEARCH_ITERATIONS, FINAL_ITERATIONS = 30, 5000, 20000  # the paper profile, per setting
PAPER_ITERATIONS = TRIALS * SEARCH_ITERATIONS + FINAL_ITERATIONS
CHARACTERS = 1200  # random "characters" in the image bank (>= the largest N)


def sampler_for(n_way: int, k_shot: int, n_query: int, device="cpu") -> TaskSampler:
    """Tasks of uniform random bytes drawn like Omniglot tasks: speed does not depend on the
    pixel values, and the benchmarks need no dataset."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (CHARACTERS, 20, 28, 28), generator=generator, dtype=torch.uint8)
    return TaskSampler(images.to(device), n_way, k_shot, n_query)


def as_float64(episode: Episode) -> Episode:
    return Episode(episode.support_x.double(), episode.support_y, episode.query_x.double(),
                   episode.query_y, episode.n_way)  # fmt: skip


def gradient_differences(impls: list[Impl], episode: Episode, steps: int = 2) -> dict[str, float]:
    """Per implementation, max |g - g_obvious| / max |g_obvious| of the MAML meta-gradient g
    on `episode` in float64; `impls` must hold the obvious loop of one order."""
    grads = {}
    for impl in impls:
        built = make_step(impl, episode.n_way, steps, as_float64(episode), dtype=torch.float64)
        built.step()
        grads[impl] = torch.cat([p.grad.flatten() for p in built.init])
    reference = next(g for impl, g in grads.items() if impl.kind == "obvious")
    return {
        impl.name: ((g - reference).abs().max() / reference.abs().max()).item()
        for impl, g in grads.items()
    }


def meta_iteration_flops(row: tuple, order: str) -> int:
    """FLOPs of one MAML meta-iteration on `row` (N, K, Q, B, S), counted by FlopCounterMode
    on the obvious loop for one task and multiplied by B: the useful work every column is
    credited with, whatever it computes on the way."""
    n_way, k_shot, n_query, batch, steps = row
    episode = sampler_for(n_way, k_shot, n_query).sample(1, torch.Generator().manual_seed(1))
    built = make_step(Impl("obvious", "maml", order), n_way, steps, episode)
    return measure.count_flops(built.step) * batch


def fmt(value, spec=".2f", empty="-") -> str:
    return empty if value is None else format(value, spec)
