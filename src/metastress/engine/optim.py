"""Adam on the meta-parameters, written so that a CUDA graph can hold its step.

`torch.optim.Adam` reads its step count and learning rate on the host at every step (unless
built `capturable`), and building one imports `torch._dynamo` (`Optimizer.add_param_group`
is wrapped by `torch._disable_dynamo`): 1.1 s of a 3.3 s training job's start-up on this
project's CPU (`python -X importtime`, benchmarks/RESULTS.md). Here the state, step count
included, and the learning rate are tensors on the parameters' device, and every operation is
a tensor operation: no host sync, so the step can sit inside a captured meta-iteration
(engine/graphs.py), and a later population of trials can give each trial its own rate.

The arithmetic is `torch.optim.Adam`'s (default betas and eps, no weight decay, no amsgrad) in
its CPU form, `_single_tensor_adam`: the same operations in the same order, the host-side
bias corrections computed as float64 tensors (tests/engine/test_optim.py compares them step
for step). `state_dict` has torch's layout, so checkpoints written with `torch.optim.Adam`
resume here.

References:
    Kingma & Ba (2015). Adam: A Method for Stochastic Optimization. ICLR.
"""

from collections.abc import Iterable

import torch
from torch import Tensor

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
EPS = 1e-8


def adam_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    step: Tensor,
    lr: Tensor,
    betas: tuple[float, float] = BETAS,
    eps: float = EPS,
) -> None:
    """One Adam step in place: moments, step count (a float64 tensor) and parameters.

    Args:
        params, grads, exp_avgs, exp_avg_sqs (list of Tensor): parameter-shaped, same order.
        step (Tensor): float64 scalar, the steps taken so far (incremented here).
        lr (Tensor): float64 scalar learning rate, on the parameters' device.
    """
    beta1, beta2 = betas
    step.add_(1)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    # the bias corrections as float64 scalar tensors (torch.optim: Python floats, read from the
    # step count on the host), rounded to the parameters' dtype where torch rounds its scalars
    dtype = params[0].dtype
    step_size = (lr / (1 - beta1**step)).to(dtype)
    root_correction = (1 - beta2**step).sqrt().to(dtype)
    denominators = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denominators, root_correction)
    torch._foreach_add_(denominators, eps)
    # p + (-step_size * m) / denominator: torch's p.addcdiv_(m, denominator, value=-step_size)
    torch._foreach_addcdiv_(params, torch._foreach_mul(exp_avgs, -step_size), denominators)


class Adam:
    """`torch.optim.Adam(params, lr)`'s updates with tensor state (see module docstring).

    Every parameter must have a gradient at `step()` (a zero one is fine): the step count is
    shared, so a parameter cannot skip a step as torch.optim's per-parameter counts allow.

    Args:
        params (iterable of Tensor): the meta-parameters, updated in place.
        lr (float): the learning rate (`lr` holds it as a tensor).
    """

    def __init__(self, params: Iterable[Tensor], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got no parameters to optimize")
        device, dtype = self.params[0].device, self.params[0].dtype
        if any(p.device != device or p.dtype != dtype for p in self.params):
            raise ValueError(
                "Adam: every parameter must share one device and dtype, got "
                f"{sorted({(str(p.device), str(p.dtype)) for p in self.params})}"
            )
        self.lr = torch.tensor(float(lr), dtype=torch.float64, device=device)
        self.step_count = torch.zeros((), dtype=torch.float64, device=device)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        missing = [i for i, p in enumerate(self.params) if p.grad is None]
        if missing:
            raise RuntimeError(
                f"Adam: parameters {missing} have no gradient; every meta-parameter must be "
                "reached by the meta-loss (a zero gradient is fine)"
            )
        grads = [p.grad for p in self.params]
        adam_step(self.params, grads, self.exp_avgs, self.exp_avg_sqs, self.step_count, self.lr)

    def state_dict(self) -> dict:
        """torch.optim.Adam's layout: per-parameter step and moments, one parameter group."""
        state = {
            i: {"step": self.step_count.clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            for i, (m, v) in enumerate(zip(self.exp_avgs, self.exp_avg_sqs, strict=True))
        }
        group = {
            "lr": self.lr.item(),
            "betas": BETAS,
            "eps": EPS,
            "weight_decay": 0.0,
            "amsgrad": False,
            "params": list(range(len(self.params))),
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, saved: dict) -> None:
        """Copy saved state into this optimizer's own tensors (a captured graph holds their
        addresses). Accepts what `torch.optim.Adam(params, lr)` saves as well."""
        group = _one_group(saved, len(self.params))
        state = saved["state"]
        steps = {float(state[i]["step"]) for i in state}
        if len(steps) > 1 or (state and len(state) != len(self.params)):
            raise ValueError(
                f"optimizer state: parameters took different step counts ({sorted(steps)}) or "
                f"some have none ({len(state)} of {len(self.params)} saved); this Adam shares one "
                "count: train afresh"
            )
        self.lr.fill_(group["lr"])
        self.step_count.fill_(steps.pop() if steps else 0.0)
        for i, (m, v) in enumerate(zip(self.exp_avgs, self.exp_avg_sqs, strict=True)):
            if i in state:
                m.copy_(state[i]["exp_avg"])
                v.copy_(state[i]["exp_avg_sq"])
            else:
                m.zero_()
                v.zero_()


def _one_group(saved: dict, n_params: int) -> dict:
    """The saved single parameter group, checked against this optimizer's settings."""
    groups = saved.get("param_groups", [])
    if len(groups) != 1 or len(groups[0]["params"]) != n_params:
        raise ValueError(
            f"optimizer state: expected one parameter group of {n_params} parameters, got "
            f"{[len(g['params']) for g in groups]}; it belongs to another learner: train afresh"
        )
    group = groups[0]
    if (
        tuple(group.get("betas", BETAS)) != BETAS
        or group.get("eps", EPS) != EPS
        or group.get("weight_decay", 0.0) != 0.0
        or group.get("amsgrad", False)
    ):
        raise ValueError(
            f"optimizer state: betas {group.get('betas')}, eps {group.get('eps')}, weight "
            f"decay {group.get('weight_decay')}, amsgrad {group.get('amsgrad')} are not this "
            f"Adam's ({BETAS}, {EPS}, 0, False): train afresh"
        )
    return group
