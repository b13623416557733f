"""Independent pieces of CPU work on one-thread workers, results in submission order.

On a few cores, two task chunks computed at once with one intra-op thread each are faster than
one chunk after another with every thread working on each operation: Conv-4's memory-bound
passes (batch norm, max-pool, the first layer) barely speed up with threads, and the backward
of its small convolutions scales poorly (benchmarks/two_streams.py, benchmarks/RESULTS.md).

Every piece runs with one intra-op thread, as under `torch.set_num_threads(1)`, and the
results come back in submission order, so whatever the caller sums from them is bit-identical
at any thread count. PyTorch's kernels release the GIL, so Python threads suffice; the pool
is the standard library's, and the only hand-written part is giving each worker one intra-op
thread.
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def map_ordered(fn: Callable[[Any], Any], items: Sequence[Any], device: torch.device) -> list[Any]:
    """`[fn(item) for item in items]`, on as many one-thread workers as the caller has
    intra-op threads (at most one per item) when `device` is the CPU; otherwise, or with one
    thread, in the caller's thread.

    The workers run under the caller's grad mode and CPU autocast state, which PyTorch keeps
    per thread. `fn` must not change shared state: the items run concurrently.
    """
    workers = min(torch.get_num_threads(), len(items))
    if device.type != "cpu" or workers < 2:
        return [fn(item) for item in items]
    grad_enabled = torch.is_grad_enabled()
    autocast_enabled = torch.is_autocast_enabled("cpu")
    autocast_dtype = torch.get_autocast_dtype("cpu")

    def run(item: Any) -> Any:
        with (
            torch.set_grad_enabled(grad_enabled),
            torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_enabled),
        ):
            return fn(item)

    return list(_pool(workers).map(run, items))


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of `workers` threads, each set to one intra-op thread once.

    `torch.set_num_threads` also sets the count that threads started later begin with, so the
    caller's count is restored once every worker has set its own.
    """
    with _pools_lock:
        if workers not in _pools:
            callers_threads = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, thread_name_prefix="metastress-worker")
            all_started = threading.Barrier(workers)

            def start() -> None:  # blocks until `workers` threads hold one each
                torch.get_num_threads()  # PyTorch's lazy per-thread set-up, which would
                torch.set_num_threads(1)  # otherwise undo this at the first parallel op
                all_started.wait()

            for started in [pool.submit(start) for _ in range(workers)]:
                started.result()
            torch.set_num_threads(callers_threads)
            _pools[workers] = pool
        return _pools[workers]
