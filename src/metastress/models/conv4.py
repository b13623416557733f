"""The conv-4 base learner of MAML (Finn et al., 2017), usable as a pure function of a weight dict.

Four blocks of [3x3 conv (padding 1), batch norm, ReLU, 2x2 max-pool] take a 28x28 image to
64 features (28 -> 14 -> 7 -> 3 -> 1), then a linear head gives N logits.

Batch norm always normalises with the statistics of the batch it sees (transductive, as in
MAML's own code), so no running statistics are kept: the authors' momentum of 0.95 only
affects running statistics that this protocol never reads. It is written from tensor ops
because `torch.func.vmap` over `F.batch_norm` returns wrong second-order gradients.

References:
    Finn, Abbeel & Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-3  # the authors' value (TensorFlow's batch_norm default)

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "softplus": F.softplus,  # smooth, for finite-difference checks of second-order gradients
}


class BatchStatNorm(nn.Module):
    """Batch norm over (N, H, W) per channel using only the current batch's statistics."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:  # x: (M, C, H, W)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        x_hat = (x - mean) * torch.rsqrt(var + self.eps)
        return x_hat * self.weight[:, None, None] + self.bias[:, None, None]


class Conv4(nn.Module):
    """Conv-4 classifier for (M, 1, 28, 28) images.

    Args:
        n_way (int): number of output classes.
        hidden (int, optional, default=64): channels of every conv block.
        activation (str, optional, default="relu"): key of ACTIVATIONS.
    """

    def __init__(self, n_way: int, hidden: int = 64, activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = ACTIVATIONS[activation]
        channels = [1, hidden, hidden, hidden, hidden]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.norms = nn.ModuleList(BatchStatNorm(c) for c in channels[1:])
        self.head = nn.Linear(hidden, n_way)

    def forward(self, x: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.max_pool2d(self.activation(norm(conv(x))), kernel_size=2)  # 28->14->7->3->1
        return self.head(x.flatten(1))  # (M, hidden) -> (M, n_way)


def init_weights(model: nn.Module) -> dict[str, Tensor]:
    """Detached copies of a model's parameters, the weight dict that algorithms meta-learn."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
