"""Inequality measures of a meta-batch's per-task losses, as pure differentiable functions.

Each takes losses (B,) of B tasks, all > 0 (cross-entropies are), and returns a scalar that is
0 when every loss is equal and unchanged when all losses are scaled by the same factor. With
r_i = l_i / mean(l):

    theil:                (1/B) sum r_i ln r_i
    generalized entropy:  (1/B) sum (r_i^a - 1) / (a (a - 1)); a=1 is Theil,
                          a=0 the mean log deviation -(1/B) sum ln r_i
    atkinson:             1 - mean(l^(1-e))^(1/(1-e)) / mean(l); e=1 uses the geometric mean
    gini:                 sum_ij |l_i - l_j| / (2 B^2 mean(l))

References:
    Jamal & Qi (2019). Task Agnostic Meta-Learning for Few-Shot Learning. CVPR.
    Theil (1967); Atkinson (1970). On the measurement of inequality. J. Econ. Theory;
    Shorrocks (1980). The class of additively decomposable inequality measures. Econometrica.
"""

import torch
from torch import Tensor


def _ratios(losses: Tensor) -> Tensor:
    if losses.dim() != 1 or losses.numel() == 0:
        raise ValueError(
            f"losses must be a non-empty 1-D tensor (B,), got shape {tuple(losses.shape)}"
        )
    return losses / losses.mean()  # (B,)


def theil(losses: Tensor) -> Tensor:
    """Theil index (1/B) sum r ln r of losses (B,)."""
    r = _ratios(losses)
    return torch.xlogy(r, r).mean()


def generalized_entropy(losses: Tensor, alpha: float) -> Tensor:
    """Generalized entropy index GE(alpha) of losses (B,); alpha=1 is Theil, alpha=0 the MLD."""
    r = _ratios(losses)
    if alpha == 1:
        return torch.xlogy(r, r).mean()
    if alpha == 0:
        return -torch.log(r).mean()
    return (r.pow(alpha) - 1).mean() / (alpha * (alpha - 1))


def atkinson(losses: Tensor, epsilon: float) -> Tensor:
    """Atkinson index A(epsilon) of losses (B,); epsilon >= 0 is the inequality aversion."""
    if epsilon < 0:
        raise ValueError(f"atkinson epsilon must be >= 0, got {epsilon}")
    r = _ratios(losses)
    if epsilon == 1:
        return 1 - torch.log(r).mean().exp()
    return 1 - r.pow(1 - epsilon).mean().pow(1 / (1 - epsilon))


def gini(losses: Tensor) -> Tensor:
    """Gini coefficient sum_ij |l_i - l_j| / (2 B^2 mean) of losses (B,)."""
    r = _ratios(losses)
    return (r[:, None] - r[None, :]).abs().mean() / 2
