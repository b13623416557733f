"""Hand-designed inner optimizers: step for step equal to torch.optim on a model copy."""

import pytest
import torch
import torch.nn.functional as F

from metastress.models.conv4 import Conv4

OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.8, 0.99), eps=1e-6),
}


@pytest.mark.parametrize("algo", ["sgd", "adam"])
@pytest.mark.parametrize("task_mode", ["loop", "vmap"])
def test_adaptation_equals_torch_optim_on_a_model_copy(
    make_learner, make_engine, episode, adapted_close, algo, task_mode
):
    config = {"inner_steps": 3, "inner_lr": 0.05}
    if algo == "adam":
        config |= {"adam_beta1": 0.8, "adam_beta2": 0.99, "adam_eps": 1e-6}
    learner = make_learner(algo, **config)
    init = make_learner("maml").initial_weights()
    fast = make_engine(task_mode).adapt(learner, episode.support_x, episode.support_y, init=init)
    for i in range(len(episode)):
        model = Conv4(2, hidden=4).double()
        model.load_state_dict({k: w.detach() for k, w in init.items()})
        optimizer = OPTIMIZERS[algo](model.parameters(), 0.05)
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(episode.support_x[i]), episode.support_y[i]).backward()
            optimizer.step()
        expected = {k: p.detach() for k, p in model.named_parameters()}
        adapted_close({k: v[i] for k, v in fast.items()}, expected, init)


@pytest.mark.parametrize("algo", ["sgd", "adam"])
def test_needs_an_init_and_has_no_meta_parameters(make_learner, make_engine, episode, algo):
    learner = make_learner(algo)
    assert learner.name == algo and list(learner.parameters()) == []
    with pytest.raises(ValueError, match="pass init="):
        learner.initial_weights()
    with pytest.raises(ValueError, match="pass init="):
        make_engine().adapt(learner, episode.support_x, episode.support_y)


def test_adaptation_builds_no_graph_to_the_init(make_learner, make_engine, episode):
    init = make_learner("maml").initial_weights()
    fast = make_engine().adapt(
        make_learner("adam"), episode.support_x, episode.support_y, init=init
    )
    assert all(not w.requires_grad for w in fast.values())
