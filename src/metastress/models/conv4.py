"""The conv-4 base learner of MAML (Finn et al., 2017), usable as a pure function of a weight dict.

Four blocks of [3x3 conv (padding 1), batch norm, ReLU, 2x2 max-pool] take a 28x28 image to
64 features (28 -> 14 -> 7 -> 3 -> 1), then a linear head gives N logits.

Batch norm always normalises with the statistics of the batch it sees (transductive, as in
MAML's own code), so no running statistics are kept: the authors' momentum of 0.95 only
affects running statistics that this protocol never reads. It is written from tensor ops
because `torch.func.vmap` over `F.batch_norm` returns wrong second-order gradients.

`forward_tasks` is the same network for a chunk of tasks with their own weights, written for
CPU speed: the model's fused form (`Conv4.forward_tasks`), which the fused engine asks for and
never runs under vmap. Tasks are stacked on the channel axis (grouped convolutions),
channels-last memory, the native batch norm kernel, pooling before the activation (exact for
monotone activations), and the one-channel first layer with its batch norm folded in, as one
matrix product over image patches computed once per image tensor, run in cache-sized blocks
of images. It equals `Conv4.forward` task by task up to rounding
(tests/algorithms).

References:
    Finn, Abbeel & Levine (2017). Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks. ICML.
"""

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-3  # the authors' value (TensorFlow's batch_norm default)
# Full-size first-layer activations per block of images in `forward_tasks`: 2-4 MiB per
# block measured best on a 2-core EPYC (512 KiB L2 per core, 32 MiB shared L3)
FIRST_BLOCK_BYTES = 4 << 20

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

    def forward_tasks(
        self, weights: dict[str, Tensor], x: Tensor, double_backward: bool = False
    ) -> Tensor:
        """This network's fused form: T tasks at once, each with its own weights
        (weights name -> (T, *shape), x (T, M, C, H, W) -> (T, M, n_way); `forward_tasks`)."""
        return forward_tasks(weights, x, self.activation, self.norms[0].eps, double_backward)


def forward_tasks(
    weights: dict[str, Tensor],
    x: Tensor,
    activation: Callable[[Tensor], Tensor] = F.relu,
    eps: float = BN_EPS,
    double_backward: bool = False,
) -> Tensor:
    """`Conv4.forward` of T tasks at once, each task with its own weights (fast CPU path).

    Args:
        weights (dict): Conv4 parameter names -> (T, *parameter_shape).
        x (Tensor): float (T, M, C, H, W), M images per task.
        activation (callable, default=F.relu): a monotone non-decreasing function (pooling
            runs before it: max(act(a), act(b)) = act(max(a, b)), gradients included).
        eps (float, default=BN_EPS): batch-norm epsilon.
        double_backward (bool, default=False): the result will be differentiated twice
            (second-order inner steps); then batch norm is written from tensor ops, whose
            double backward is faster on the CPU than that of the native kernel.

    Returns:
        Tensor: (T, M, n_way) logits.
    """
    norm = _folded_batch_norm if double_backward else _native_batch_norm
    n_tasks, m = x.shape[:2]
    layers = sum(1 for name in weights if name.startswith("convs.") and name.endswith(".weight"))
    h = _first_block(
        weights["convs.0.weight"],
        weights["convs.0.bias"],
        weights["norms.0.weight"],
        weights["norms.0.bias"],
        x,
        eps,
        activation,
    )  # (M, T*C, H/2, W/2), channels last
    for layer in range(1, layers):
        w = weights[f"convs.{layer}.weight"].flatten(0, 1)  # (T*C, C, 3, 3)
        w = w.contiguous(memory_format=torch.channels_last)
        b = weights[f"convs.{layer}.bias"].flatten()
        h = F.conv2d(h, w, b, padding=1, groups=n_tasks)  # (M, T*C, H, W), channels last
        gamma = weights[f"norms.{layer}.weight"].flatten()  # (T*C,)
        beta = weights[f"norms.{layer}.bias"].flatten()
        h = norm(h, gamma, beta, eps)
        h = activation(F.max_pool2d(h, kernel_size=2))
    features = h.reshape(m, n_tasks, -1).transpose(0, 1)  # (T, M, C)
    head_w, head_b = weights["head.weight"], weights["head.bias"]  # (T, N, C), (T, N)
    return torch.baddbmm(head_b[:, None, :], features, head_w.transpose(1, 2))  # (T, M, N)


def _native_batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """Batch norm with the batch's statistics (x: (M, C, H, W)), one fused kernel."""
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def _folded_batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """The same from tensor ops, normalisation and affine folded into one scale and shift."""
    var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False, keepdim=True)
    scale = gamma[:, None, None] * torch.rsqrt(var + eps)  # (1, C, 1, 1)
    return torch.addcmul(beta[:, None, None] - mean * scale, x, scale)


def _first_block(
    weight: Tensor,
    bias: Tensor,
    gamma: Tensor,
    beta: Tensor,
    x: Tensor,
    eps: float,
    activation: Callable[[Tensor], Tensor],
) -> Tensor:
    """The first block (3x3 convolution, batch norm, max-pool, activation) of T tasks, the
    convolution and its batch norm as one batched matrix product.

    With one input channel the convolution's output statistics follow from the 9x9 covariance
    of the image patches: channel c's output is w_c . p + b_c, so its batch mean is
    w_c . mean(p) + b_c and its variance w_c' Cov(p) w_c. Batch norm is then one scale and
    shift of each channel's weights, so convolution and normalisation are a single im2col +
    bmm, and the largest activation of the network is never normalised in a separate pass
    (forward or backward); the shift commutes with max-pooling, so it is added to the pooled
    map, a quarter of the size. The conv bias cancels in the normalisation: its gradient is 0.
    oneDNN's own kernels are slow for one input channel; the bmm is not, and its output is
    already channels-last. Knowing the statistics beforehand also lets the images go through
    in blocks of about FIRST_BLOCK_BYTES of full-size activations, which stay in the cache
    from the bmm to the pooling (forward) and from the pooling's gradient to the weights'
    (backward): 25-35% faster for this block, most with two workers sharing the L3.

    Args:
        weight (Tensor): (T, C, C_in, 3, 3); bias (Tensor): (T, C) of the convolution;
        gamma, beta (Tensor): (T, C) batch-norm affine;
        x (Tensor): (T, M, C_in, H, W); eps (float): batch-norm epsilon;
        activation (callable): monotone, applied after pooling.

    Returns:
        Tensor: (M, T*C, H/2, W/2) in channels-last memory.
    """
    n_tasks, m, _, height, width = x.shape
    c_out = weight.shape[1]
    patches = _patches(x)
    kernel = weight.reshape(n_tasks, c_out, -1)  # (T, C, C_in*9)
    var = (torch.bmm(kernel, patches.cov) * kernel).sum(2)  # (T, C)
    scale = gamma * torch.rsqrt(var + eps)  # (T, C)
    mean = torch.bmm(patches.mean, kernel.transpose(1, 2)).squeeze(1) + bias  # (T, C)
    shift = beta + scale * (bias - mean)  # (T, C)
    folded = (kernel * scale[:, :, None]).transpose(1, 2)  # (T, C_in*9, C)
    cols = patches.cols.view(n_tasks, m, height * width, -1)  # (T, M, H*W, C_in*9)
    per_block = max(1, FIRST_BLOCK_BYTES // (height * width * n_tasks * c_out * x.element_size()))
    if x.device.type != "cpu":
        per_block = m  # the blocks are for CPU caches; a GPU takes all images in one product
    pooled = []
    for start in range(0, m, per_block):
        images = cols[:, start : start + per_block]  # (T, b, H*W, C_in*9)
        b = images.shape[1]
        out = torch.bmm(images.flatten(1, 2), folded)  # (T, b*H*W, C)
        out = out.view(n_tasks, b, height, width, c_out).permute(1, 2, 3, 0, 4)  # (b, H, W, T, C)
        out = out.reshape(b, height, width, n_tasks * c_out).permute(0, 3, 1, 2)  # (b, T*C, H, W)
        pooled.append(F.max_pool2d(out, kernel_size=2))
    return activation(torch.cat(pooled) + shift.flatten()[:, None, None])  # (M, T*C, H/2, W/2)


@dataclass(frozen=True)
class Patches:
    """A chunk's 3x3 image patches (T, M*H*W, C_in*9), their mean (T, 1, C_in*9) and
    covariance (T, C_in*9, C_in*9) over each task's images."""

    cols: Tensor
    mean: Tensor
    cov: Tensor


class _LastPatches(threading.local):
    """`Patches` of the image tensor seen last, while that tensor lives unmodified.

    The inner loop runs the network on the same support images at every step; their patches
    do not depend on the weights, so they are computed once per adaptation, not once per step.
    One entry per thread, so that threads adapting different tasks never share it.
    """

    def __init__(self):
        self._images: weakref.ref | None = None
        self._key: tuple = ()
        self._patches: Patches | None = None

    def __call__(self, x: Tensor) -> Patches:
        key = (x._version, x.device, x.dtype)
        if self._images is None or self._images() is not x or self._key != key:
            self._patches = _compute_patches(x)
            self._images, self._key = weakref.ref(x), key
        return self._patches


def _compute_patches(x: Tensor) -> Patches:
    n_tasks, m, c_in, height, width = x.shape
    with torch.autocast(x.device.type, enabled=False), torch.no_grad():
        cols = F.unfold(x.flatten(0, 1), kernel_size=3, padding=1)  # (T*M, C_in*9, H*W)
        cols = cols.view(n_tasks, m, c_in * 9, height * width).transpose(2, 3)
        cols = cols.reshape(n_tasks, m * height * width, c_in * 9)  # (T, M*H*W, C_in*9)
        mean = cols.mean(1, keepdim=True)  # (T, 1, C_in*9)
        centred = cols - mean
        cov = torch.bmm(centred.transpose(1, 2), centred) / cols.shape[1]
    return Patches(cols, mean, cov)


_patches = _LastPatches()


def init_weights(model: nn.Module) -> dict[str, Tensor]:
    """Detached copies of a model's parameters, the weight dict that algorithms meta-learn."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
