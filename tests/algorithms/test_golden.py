"""Numbers did not move: three meta-steps of every algorithm give the meta-parameters, metrics,
adapted weights and logits that the code before the engine room gave (float64).

golden/meta_steps_25f928e.pt was made at commit 25f928e (before `metastress.engine` existed)
by this same procedure written against that commit's API (`train.meta_step`,
`learner.adapt/predict` with `task_mode` in the algorithm's config), on one thread: a tiny
3-way Conv-4, Adam (lr 0.01) over three fixed random meta-batches of 3 tasks, then an
evaluation (no gradients) on 2 other tasks, for the loop and fused task modes; and plain
Adam/SGD adapting the trained second-order MAML's initialization. Values agree to 1e-9
relative, except where the maths leaves only rounding noise: the conv biases that batch norm
cancels have a zero gradient, so Adam turns each side's noise into its own tiny step, and
both sides must stay at their initialization instead (`assert_adapted_close`).
"""

from pathlib import Path

import pytest
import torch

from tests.algorithms.conftest import (
    CANCELLED_DRIFT,
    TOL,
    assert_adapted_close,
    assert_meta_parameters_close,
    cancelled,
    cpu_engine,
    random_episode,
    tiny_learner,
)

GOLDEN = torch.load(Path(__file__).parent / "golden" / "meta_steps_25f928e.pt", weights_only=False)
CASES = {
    "maml_fo": ("maml", {"first_order": True}),
    "maml_so": ("maml", {"first_order": False}),
    "metasgd_so": ("metasgd", {"first_order": False}),
    "taml_so": ("taml", {"first_order": False}),
    "taml_fo_entropy": ("taml", {"first_order": True, "variant": "entropy"}),
    "taml_so_initial_gini": ("taml", {"measure_on": "initial", "measure": "gini"}),
    "metalstm": ("metalstm", {}),
    "metalstm_pp": ("metalstm_pp", {}),
}
N_WAY, META_LR, ITERATIONS = 3, 0.01, 3


def episodes():
    train = [
        random_episode(n_tasks=3, n_way=N_WAY, k_shot=2, n_query=2, seed=100 + i)
        for i in range(ITERATIONS)
    ]
    return train, random_episode(n_tasks=2, n_way=N_WAY, k_shot=1, n_query=3, seed=999)


def unpack(packed: dict) -> dict[str, torch.Tensor]:
    sizes = [torch.Size(shape).numel() for shape in packed["shapes"]]
    pieces = packed["values"].split(sizes)
    return {
        name: piece.view(shape)
        for name, shape, piece in zip(packed["names"], packed["shapes"], pieces, strict=True)
    }


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_meta_steps_give_the_golden_numbers(task_mode, case):
    algo, config = CASES[case]
    golden = GOLDEN[f"{task_mode}/{case}"]
    train, test = episodes()
    engine = cpu_engine(task_mode)
    learner = tiny_learner(algo, n_way=N_WAY, **config)
    initial = {k: v.detach().clone() for k, v in learner.state_dict().items()}
    optimizer = torch.optim.Adam(learner.parameters(), lr=META_LR)
    metrics = [engine.meta_step(learner, optimizer, episode) for episode in train]
    with torch.no_grad():
        fast = engine.adapt(learner, test.support_x, test.support_y)
        logits = engine.logits(learner, fast, test.query_x)
    assert metrics == [pytest.approx(m, rel=1e-9) for m in golden["metrics"]]
    assert_meta_parameters_close(
        learner, learner.state_dict(), unpack(golden["meta_parameters"]), initial
    )
    adapted = unpack(golden["adapted_task0"])
    for name, value in fast.items():  # a cancelled bias starts where Adam's noise left it
        tolerance = {"rtol": 0, "atol": CANCELLED_DRIFT} if cancelled(name) else TOL
        torch.testing.assert_close(value[0], adapted[name], **tolerance, msg=name)
    torch.testing.assert_close(logits, golden["logits"], **TOL)


@pytest.mark.parametrize("task_mode", ["loop", "fused"])
@pytest.mark.parametrize("hand", ["adam", "sgd"])
def test_hand_optimizers_give_the_golden_numbers(task_mode, hand):
    _, test = episodes()
    engine = cpu_engine(task_mode)
    maml = tiny_learner("maml", n_way=N_WAY, first_order=False)
    maml.load_state_dict(unpack(GOLDEN[f"{task_mode}/maml_so"]["meta_parameters"]))
    init = {k: w.detach().clone() for k, w in maml.initial_weights().items()}
    adapter = tiny_learner(hand, n_way=N_WAY, inner_steps=3, inner_lr=0.05)
    with torch.no_grad():
        fast = engine.adapt(adapter, test.support_x, test.support_y, init=init)
        logits = engine.logits(adapter, fast, test.query_x)
    golden = GOLDEN[f"{task_mode}/{hand}_adapts_maml_so"]
    assert_adapted_close({k: v[0] for k, v in fast.items()}, unpack(golden["adapted_task0"]), init)
    torch.testing.assert_close(logits, golden["logits"], **TOL)
