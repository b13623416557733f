"""Float precision of a run: strict float32, TF32 on GPUs, or bf16 autocast.

"fp32" keeps TF32 off, although PyTorch turns it on for GPU convolutions by default: on an
H200 TF32 bent MAML's meta-gradient (20w1s, 5 inner steps) to cosine 0.61 with the float64
one, where strict fp32 gave 1.000000 (benchmarks/RESULTS.md). "tf32" allows TF32 convolutions
and matmuls on GPUs; "bf16" runs adaptation and the meta-loss under bf16 autocast. Both are
faster on GPUs and less exact; CPUs ignore "tf32".
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")


def autocast(precision: str, device: torch.device, cache: bool = True) -> torch.autocast:
    """bf16 autocast on `device`'s type for "bf16", a disabled autocast otherwise.

    `cache=False` recasts the weights at every use instead of caching their bf16 copies (the
    same values): CUDA graphs must not capture autocast's cache.
    """
    check_precision(precision)
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=cache
    )


@contextmanager
def tf32(precision: str) -> Iterator[None]:
    """TF32 convolutions and matmuls on GPUs exactly when `precision` is "tf32", restored after."""
    check_precision(precision)
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    enabled = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
