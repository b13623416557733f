"""Clocks, memory and FLOP counters for the benchmarks (CPU, one process).

Memory: the peak resident set growth during one meta-iteration, in the same process. Before
the iteration glibc's free memory is returned to the OS (`malloc_trim(0)`) and the kernel's
high-water mark is reset (`echo 5 > /proc/self/clear_refs`); after it, VmHWM - VmRSS(before)
is what the iteration added at its peak: live tensors, autograd graphs, allocator slack and
oneDNN scratch space. (`tracemalloc` does not see torch's allocations.)
"""

import ctypes
import os
import re
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

_LIBC = ctypes.CDLL("libc.so.6")


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def peak_memory_supported() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed_with_peak(fn: Callable[[], None], peak: bool) -> tuple[float, float | None]:
    """(seconds, peak RSS growth in MiB or None) of one call of fn."""
    before = None
    if peak:
        _LIBC.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    if before is None:
        return seconds, None
    return seconds, (_status_kb("VmHWM") - before) / 1024


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 n x n matmul GFLOP/s at the current torch thread count (median of repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / median([timed(lambda: a @ b) for _ in range(repeats)]) / 1e9


def conv_gflops(images: int = 100, hidden: int = 64, repeats: int = 5) -> float:
    """float32 GFLOP/s of Conv-4's hidden 3x3 convolutions alone (14x14, 7x7 and 3x3 inputs,
    channels-last, as the fused path runs them): forward, input and weight gradients.

    The ceiling PyTorch's CPU convolution kernels set for a whole meta-iteration, whose other
    operations (batch norm, max-pool, ReLU, the first layer, the head) are memory-bound.
    """
    layers = []
    for size in (14, 7, 3):
        x = torch.randn(images, hidden, size, size).contiguous(memory_format=torch.channels_last)
        w = torch.randn(hidden, hidden, 3, 3).contiguous(memory_format=torch.channels_last)
        layers.append((x.requires_grad_(), w.requires_grad_()))
    flops = sum(3 * 2 * x.numel() * hidden * 9 for x, _ in layers)  # forward + two backward

    def run() -> None:
        for x, w in layers:
            y = F.conv2d(x, w, padding=1)
            torch.autograd.grad(y, (x, w), torch.ones_like(y))

    run()
    return flops / median([timed(run) for _ in range(repeats)]) / 1e9


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls and convolutions fn runs, forward and
    backward, as torch.utils.flop_counter counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
    return match.group(1).strip() if match else "unknown CPU"
