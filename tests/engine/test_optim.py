"""The capturable Adam (engine/optim.py) against torch.optim.Adam, step for step."""

import pytest
import torch

from metastress import checkpoint
from metastress.engine.optim import Adam

SHAPES = [(3, 4), (5,), (2, 3, 3, 3), ()]
LR = 0.01


def parameters(dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=generator, dtype=dtype).requires_grad_() for s in SHAPES]


def gradients(dtype, steps, seed=1):
    """Random gradients over three orders of magnitude, and one parameter's always zero (a
    conv bias before batch norm)."""
    generator = torch.Generator().manual_seed(seed)
    return [
        [
            torch.randn(s, generator=generator, dtype=dtype) * 10.0 ** (step % 3 - 1)
            for s in SHAPES[:-1]
        ]
        + [torch.zeros((), dtype=dtype)]
        for step in range(steps)
    ]


def run(optimizer, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.clone()
        optimizer.step()


def copies(params):
    return [p.detach().clone().requires_grad_() for p in params]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ten_steps_equal_torch_optim_adam(dtype):
    """Bit for bit on this project's CPU (the same operations in the same order); asserted to
    1e-12 relative in float64 and float32's own rounding in float32."""
    reference = parameters(dtype)
    ours = copies(reference)
    grads = gradients(dtype, 10)
    run(torch.optim.Adam(reference, lr=LR), reference, grads)
    run(Adam(ours, lr=LR), ours, grads)
    tolerance = {"rtol": 1e-12, "atol": 0} if dtype == torch.float64 else {}
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs, **tolerance)
    assert not torch.equal(ours[0], parameters(dtype)[0])  # it moved


def test_a_torch_checkpoint_resumes_here_and_ours_resumes_itself(tmp_path):
    """Five steps, the state saved (through metastress.checkpoint, weights-only loading),
    five more: the same as ten uninterrupted steps of torch.optim.Adam."""
    grads = gradients(torch.float64, 10)
    straight = parameters(torch.float64)
    run(torch.optim.Adam(straight, lr=LR), straight, grads)

    theirs = parameters(torch.float64)
    torch_adam = torch.optim.Adam(theirs, lr=LR)
    run(torch_adam, theirs, grads[:5])
    resumed = copies(theirs)
    ours = Adam(resumed, lr=0.5)  # the saved learning rate wins, as with torch.optim
    ours.load_state_dict(torch_adam.state_dict())
    assert ours.lr.item() == LR and ours.step_count.item() == 5
    run(ours, resumed, grads[5:7])

    path = tmp_path / "last.pt"
    checkpoint.save(path, {"config_hash": "x", "learner": {}, "optimizer": ours.state_dict()})
    again = copies(resumed)
    reloaded = Adam(again, lr=LR)
    reloaded.load_state_dict(checkpoint.load(path, regenerate="")["optimizer"])
    run(reloaded, again, grads[7:])
    for mine, reference in zip(again, straight, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=0)


def test_torch_optim_resumes_from_ours():
    grads = gradients(torch.float64, 6)
    ours = parameters(torch.float64)
    adam = Adam(ours, lr=LR)
    run(adam, ours, grads[:3])
    theirs = copies(ours)
    torch_adam = torch.optim.Adam(theirs, lr=LR)
    torch_adam.load_state_dict(adam.state_dict())
    run(adam, ours, grads[3:])
    run(torch_adam, theirs, grads[3:])
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=0)


def test_the_learning_rate_is_a_tensor_the_step_reads():
    """What a population of trials needs: the rate changes without rebuilding anything."""
    params = parameters(torch.float64)
    adam = Adam(params, lr=LR)
    before = copies(params)
    adam.lr.fill_(0.0)
    run(adam, params, gradients(torch.float64, 1))
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)
    assert adam.step_count.item() == 1 and adam.exp_avgs[0].abs().sum() > 0


def test_zero_grad_and_a_missing_gradient():
    params = parameters(torch.float64)
    adam = Adam(params, lr=LR)
    for p in params:
        p.grad = torch.ones_like(p)
    adam.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in params)
    adam.zero_grad()
    params[0].grad = torch.ones_like(params[0])
    with pytest.raises(RuntimeError, match=r"parameters \[1, 2, 3\] have no gradient"):
        adam.step()


def test_foreign_or_mismatched_state_is_refused():
    params = parameters(torch.float64)
    other = torch.optim.Adam(params[:2], lr=LR)
    with pytest.raises(ValueError, match="one parameter group of 4 parameters, got \\[2\\]"):
        Adam(params, lr=LR).load_state_dict(other.state_dict())
    amsgrad = torch.optim.Adam(params, lr=LR, betas=(0.8, 0.99))
    with pytest.raises(ValueError, match=r"betas \(0.8, 0.99\).*train afresh"):
        Adam(params, lr=LR).load_state_dict(amsgrad.state_dict())
    torch_adam = torch.optim.Adam(params, lr=LR)
    params[0].grad = torch.ones_like(params[0])
    torch_adam.step()  # only parameter 0 took a step: per-parameter counts differ
    with pytest.raises(ValueError, match="different step counts"):
        Adam(params, lr=LR).load_state_dict(torch_adam.state_dict())
    with pytest.raises(ValueError, match="share one device and dtype"):
        Adam([params[0], params[1].float()], lr=LR)
