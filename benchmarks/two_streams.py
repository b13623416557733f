"""Are task chunks on one-thread workers faster than one chunk at a time on every thread?

    .venv/bin/python -m benchmarks.two_streams   # 2 threads, about 2 min

The measurement behind `metastress.engine.workers`: MAML on (20,5,5,16,5), ours (fused), at the
current machine's 2 threads, in one process: the meta-batch's chunks on one-thread workers
(what the workflow does; the default), against the same chunks one after another with 2
intra-op threads per operation (`workers.map_ordered` replaced by a plain loop). First and
second order. Medians of 3 interleaved rounds after one warm-up each; the 2-thread float32
matmul rate is measured in each round as the reference.
"""

import statistics
import time
from unittest import mock

import torch

from benchmarks import measure
from benchmarks.common import meta_iteration_flops, sampler_for
from benchmarks.implementations import Impl, make_step
from metastress.engine import workers
from metastress.engine.malloc import keep_freed_memory

ROW = (20, 5, 5, 16, 5)
ROUNDS = 3
THREADS = 2


def one_at_a_time(fn, items, device):
    return [fn(item) for item in items]


def main() -> None:
    keep_freed_memory()
    torch.set_num_threads(THREADS)
    n_way, k_shot, n_query, batch, steps = ROW
    episode = sampler_for(n_way, k_shot, n_query).sample(batch, torch.Generator().manual_seed(1))
    for order in ("fo", "so"):
        step = make_step(Impl("ours", "maml", order), n_way, steps, episode).step

        def sequential(step=step) -> None:
            with mock.patch.object(workers, "map_ordered", one_at_a_time):
                step()

        columns = {"chunks on 1-thread workers": step, "one chunk at a time": sequential}
        times = {name: [] for name in columns}
        matmul = []
        for run in columns.values():
            run()
        for _ in range(ROUNDS):
            matmul.append(measure.matmul_gflops())
            for name, run in columns.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        flops = meta_iteration_flops(ROW, order)
        torch.set_num_threads(THREADS)
        reference = statistics.median(matmul)
        print(f"MAML {order.upper()}, {THREADS}-thread matmul: {reference:.1f} GFLOP/s")
        for name, seconds in times.items():
            gflops = flops / statistics.median(seconds) / 1e9
            share = gflops / reference
            rounded = ", ".join(f"{s:.2f}" for s in seconds)
            print(f"  {name:27s} s/iteration {rounded}: {gflops:.1f} GFLOP/s, {share:.0%}")


if __name__ == "__main__":
    main()
