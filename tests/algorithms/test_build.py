"""build(): the registry's learner classes, config checking and seeded initialization."""

import dataclasses

import pytest
import torch

from metastress import registry
from metastress.algorithms import build
from metastress.hyperparameters import MAMLConfig, MetaLSTMConfig, TAMLConfig
from metastress.registry import config_keys, make_config

TINY = {"hidden": 4}


@pytest.mark.parametrize("algo", [entry.id for entry in registry.ALGORITHMS])
def test_every_registered_algorithm_builds_a_learner_of_its_name(algo):
    learner = build(algo, 3, TINY, seed=0)
    assert isinstance(learner, registry.learner_class(algo)) and learner.name == algo
    assert learner.config == make_config(algo, TINY)


def test_unknown_algo_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown algo 'mamll'.*'maml'"):
        build("mamll", 5, {}, seed=0)


def test_unknown_config_key_is_rejected_with_the_known_keys():
    with pytest.raises(
        ValueError, match=r"maml: unknown config key 'inner_step'; known keys: .*'inner_steps'"
    ):
        build("maml", 5, {"inner_step": 3}, seed=0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("inner_steps", "5"),
        ("inner_steps", 2.0),
        ("inner_steps", True),
        ("first_order", 1),
        ("inner_lr", "0.1"),
    ],
)
def test_ill_typed_values_are_rejected(key, value):
    with pytest.raises(ValueError, match=rf"maml: config key '{key}' must be"):
        make_config("maml", {key: value})


def test_ints_are_accepted_for_floats():
    config = make_config("maml", {"inner_lr": 1})
    assert config.inner_lr == 1.0 and isinstance(config.inner_lr, float)


@pytest.mark.parametrize(
    ("algo", "config", "message"),
    [
        ("maml", {"inner_steps": 0}, "maml: inner_steps must be >= 1, got 0"),
        ("maml", {"inner_lr": -0.1}, "maml: inner_lr must be > 0"),
        ("maml", {"task_mode": "fused"}, "maml: unknown config key 'task_mode'"),
        ("adam", {"optimizer": "sgd"}, "adam: config key 'optimizer' is fixed by the algo id"),
        ("taml", {"measure": "variance"}, "taml: measure must be one of"),
        ("taml", {"measure_on": "query"}, "taml: measure_on must be one of"),
        ("metalstm", {"meta_grad_clip": 0.0}, "metalstm: meta_grad_clip must be > 0"),
    ],
)
def test_invalid_values_name_algo_key_and_value(algo, config, message):
    with pytest.raises(ValueError, match=message):
        build(algo, 5, config, seed=0)


def test_config_keys_are_the_dataclass_fields():
    for algo in registry.meta_trained():
        fields = {f.name for f in dataclasses.fields(registry.algorithm(algo).config)}
        assert config_keys(algo) == fields
    assert config_keys("taml") == {f.name for f in dataclasses.fields(TAMLConfig)}
    assert config_keys("metalstm") == {f.name for f in dataclasses.fields(MetaLSTMConfig)}
    assert "inner_lr" not in config_keys("metalstm")
    for algo in registry.hand_optimizers():
        assert "optimizer" not in config_keys(algo) and "inner_lr" in config_keys(algo)


def test_build_applies_config_and_defaults():
    learner = build("maml", 3, {"hidden": 4, "inner_steps": 2}, seed=0)
    assert learner.config == MAMLConfig(hidden=4, inner_steps=2)
    assert learner.meta_grad_clip is None
    assert build("adam", 3, TINY, seed=0).config.optimizer == "adam"


@pytest.mark.parametrize("algo", registry.meta_trained())
def test_initialization_is_seeded_and_leaves_global_rng_alone(algo):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = build(algo, 3, TINY, seed=7).state_dict()
    assert torch.equal(torch.rand(3), expected_draw)
    second = build(algo, 3, TINY, seed=7).state_dict()
    other = build(algo, 3, TINY, seed=8).state_dict()
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert any(not torch.equal(first[k], other[k]) for k in first)
