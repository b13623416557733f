"""Is one thread per task chunk faster than two threads per operation? (CPU, 2 cores)

    .venv/bin/python -m benchmarks.two_streams   # about 2 min

MAML FO on (20,5,5,16,5), ours (fused), in one process: the meta-batch as one stream with 2
intra-op threads (what the workflow and benchmarks/run.py do), against its two halves of 8
tasks in two Python threads with 1 intra-op thread each (torch releases the GIL in its
kernels). Both compute the same work; the halves' meta-gradients are not combined here, as
this only measures the time. Medians of 3 interleaved rounds after one warm-up each; the
2-thread float32 matmul rate is measured in each round as the reference.
"""

import statistics
import threading
import time

import torch

from benchmarks import measure
from benchmarks.common import meta_iteration_flops, sampler_for
from benchmarks.implementations import Impl, make_step
from metastress.malloc import keep_freed_memory

ROW = (20, 5, 5, 16, 5)
ROUNDS = 3


def main() -> None:
    keep_freed_memory()
    n_way, k_shot, n_query, batch, steps = ROW
    episode = sampler_for(n_way, k_shot, n_query).sample(batch, torch.Generator().manual_seed(1))
    impl = Impl("ours", "maml", "fo")
    whole = make_step(impl, n_way, steps, episode).step
    halves = [
        make_step(impl, n_way, steps, episode.tasks(start, start + batch // 2)).step
        for start in (0, batch // 2)
    ]

    def one_stream() -> None:
        torch.set_num_threads(2)
        whole()

    def two_streams() -> None:
        def run(step) -> None:
            torch.set_num_threads(1)
            step()

        workers = [threading.Thread(target=run, args=(step,)) for step in halves]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    columns = {"one stream, 2 threads per op": one_stream, "two streams, 1 thread": two_streams}
    times = {name: [] for name in columns}
    matmul = []
    for run in columns.values():
        run()
    for _ in range(ROUNDS):
        torch.set_num_threads(2)
        matmul.append(measure.matmul_gflops())
        for name, run in columns.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    flops = meta_iteration_flops(ROW, "fo")
    reference = statistics.median(matmul)
    print(f"2-thread matmul: {reference:.1f} GFLOP/s")
    for name, seconds in times.items():
        gflops = flops / statistics.median(seconds) / 1e9
        rounded = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:29s} s/iteration {rounded}: {gflops:.1f} GFLOP/s, {gflops / reference:.0%}")


if __name__ == "__main__":
    main()
