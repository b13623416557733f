"""The cost model's arithmetic against hand computations: one meta-iteration, widths between
measured ones, each kind of job of a profile, and the totals; and the shipped coefficients
cover every algorithm. (Job counts against Snakemake's own dry run: tests/workflow.)"""

import copy
import math

import pytest
import yaml

from metastress import registry
from metastress.cost import (
    DeviceModel,
    Estimator,
    Shape,
    estimate,
    iteration_seconds,
    load_models,
    time_limit_minutes,
)
from metastress.cost_report import describe, report
from metastress.experiments import sample, search_space
from tests.conftest import REPO

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())
ZERO = dict.fromkeys(("l0", "l1", "l2", "l3", "cq", "cs"), 0.0)


def test_one_meta_iteration_by_hand():
    c = {"l0": 0.01, "l1": 0.002, "l2": 0.003, "l3": 0.0004, "cq": 1e-5, "cs": 2e-5}
    shape = Shape(n_way=20, k_shot=1, n_query=1, batch=4, steps=5)
    overhead = 0.01 + 0.002 * 5 + 4 * (0.003 + 0.0004 * 5)  # 0.04
    work = 4 * (1e-5 * 20 * 2 + 2e-5 * 5 * 20 * 1)  # 4 * (0.0004 + 0.002) = 0.0096
    assert iteration_seconds(c, "sum", shape) == pytest.approx(overhead + work)
    assert iteration_seconds(c, "max", shape) == pytest.approx(0.04)
    big = Shape(n_way=200, k_shot=1, n_query=1, batch=32, steps=5)  # the work dominates
    assert iteration_seconds(c, "max", big) == pytest.approx(32 * (1e-5 * 400 + 2e-5 * 5 * 200))


def model(coefficients: dict, startup=(5.0, 1.0), combine="sum") -> DeviceModel:
    return DeviceModel(
        name="test",
        combine=combine,
        coefficients=coefficients,
        startup_s={"torch": startup[0], "light": startup[1]},
        data_s={"download": 2.0, "prepare": 10.0, "split": 1.0},
        parallel=2,
        measured="by hand",
        fit={
            a: {w: {"median_abs_error": 0.0, "max_abs_error": 0.0} for w in widths}
            for a, widths in coefficients.items()
        },  # fmt: skip
        aliases={"anil": "maml"},
    )


def test_widths_between_measured_ones_are_interpolated_and_beyond_them_clamped():
    at = {"8": {**ZERO, "l0": 1.0, "eval_fraction": 1.0},
          "64": {**ZERO, "l0": 8.0, "eval_fraction": 1.0}}  # fmt: skip
    device = model({"maml": at})
    shape = Shape(20, 1, 1, 4, 5)
    assert device.iteration("maml", 8, shape) == 1.0
    assert device.iteration("maml", 36, shape) == pytest.approx(4.5)  # half way: 1 + 7 / 2
    assert device.iteration("maml", 4, shape) == 1.0 and device.iteration("maml", 128, shape) == 8
    assert device.iteration("anil", 64, shape) == 8.0  # ANIL stands in for MAML
    with pytest.raises(ValueError, match="no measured cost for algorithm 'metasgd'"):
        device.iteration("metasgd", 8, shape)


def tiny_halving() -> dict:
    """The tiny profile, halving 3 trials (budgets 1, 2; 3 then 2 trials; 2 per job), MAML."""
    params = copy.deepcopy(SHIPPED)
    params["profile"] = "tiny"
    params["profiles"]["tiny"].update(
        search_method="halving", search_trials=3, search_eta=2, search_rungs=2,
        search_trials_per_job=2, validate_every=1, validation_tasks=2,
    )  # fmt: skip
    return params


def test_each_job_by_hand():
    params, tiny = tiny_halving(), SHIPPED["profiles"]["tiny"]
    # one second per task in the meta-batch and per iteration; a task evaluated costs half
    # a second (eval_fraction 0.5 of a meta-iteration's share per task)
    per_task = {**ZERO, "l2": 1.0, "eval_fraction": 0.5}
    estimator = Estimator(params, model({"maml": {"4": per_task}}))
    space, seed = search_space(params, "maml"), params["protocol"]["seed"]
    assert space["inner_steps"] == [1] and space["meta_batch"] == [1, 2]  # the tiny profile's
    batches = [sample(space, seed, trial)["meta_batch"] for trial in range(3)]

    # rung 0, part 0: trials 0 and 1, one iteration each, validated once on 2 tasks
    cost = estimator.cost("search_rung", {"algo": "maml", "setting": "20w1s", "rung": "0",
                                          "part": "0"})  # fmt: skip
    by_hand = sum(1 * b + 1 * 2 * 0.5 for b in batches[:2]) + 5.0
    assert (cost.phase, cost.iterations, cost.seconds) == ("search", 2, pytest.approx(by_hand))
    # rung 1: 2 survivors, unknown: each at the mean meta-batch, one more iteration
    cost = estimator.cost("search_rung", {"algo": "maml", "setting": "20w1s", "rung": "1",
                                          "part": "0"})  # fmt: skip
    mean = sum(batches) / 3
    assert cost.iterations == 2
    assert cost.seconds == pytest.approx(2 * (1 * mean + 1 * 2 * 0.5) + 5.0)
    # final training: tiny's final_iterations, validated every iteration, at the mean
    final = tiny["final_iterations"]
    cost = estimator.cost("train_final", {"algo": "maml", "setting": "20w1s", "seed": "0"})
    assert cost.iterations == final
    assert cost.seconds == pytest.approx(final * mean + final * 2 * 0.5 + 5.0)
    # a setting with its own final iterations costs them
    params["profiles"]["tiny"]["final_iterations_by_setting"] = {"20w5s": 2 * final}
    estimator = Estimator(params, model({"maml": {"4": per_task}}))
    assert estimator.cost("train_final", {"algo": "maml", "setting": "20w5s", "seed": "0"}
                          ).iterations == 2 * final  # fmt: skip
    assert describe(params).count(f"{2 * final} on 20w5s") == 1
    # evaluation: test_tasks tasks, eval_batch together; a meta-batch of eval_batch tasks
    # costs eval_batch seconds, so a task costs 0.5 s
    cost = estimator.cost("evaluate", {"algo": "maml", "train": "20w1s", "test": "20w5s"})
    assert (cost.phase, cost.seconds) == ("evaluation", pytest.approx(tiny["test_tasks"] * 0.5 + 5))
    # data, light and unknown rules
    assert estimator.cost("prepare", {}).seconds == 10.0
    assert estimator.cost("table1", {}).seconds == 1.0 and estimator.cost("all", {}).seconds == 0
    unknown = estimator.cost("train_fig1_pair", {})
    assert (unknown.phase, unknown.seconds, unknown.modelled) == ("training", 5.0, False)


def test_figure_jobs_by_hand():
    """Figure 1's runs: experiments.fig1's meta-batch for the profile's fig1_iterations,
    validated once; Figure 4b's tuned Adam: every grid point on the validation tasks, then the
    test tasks at the grid's mean step count (a task costs the same at any step count here)."""
    params, tiny = tiny_halving(), SHIPPED["profiles"]["tiny"]
    per_task = {**ZERO, "l2": 1.0, "eval_fraction": 0.5}
    estimator = Estimator(params, model({"metalstm": {"4": per_task}, "maml": {"4": per_task}}))
    fig1, iterations = params["experiments"]["fig1"], tiny["fig1_iterations"]
    cost = estimator.cost("train_fig1", {"algo": "metalstm", "setting": fig1["setting"]})
    by_hand = iterations * fig1["meta_batch"] + 1 * tiny["validation_tasks"] * 0.5 + 5.0
    assert (cost.phase, cost.iterations, cost.seconds) == ("training", iterations, by_hand)
    grid = params["experiments"]["fig4b"]["grid"]
    job = {"test": "20w5s", "optimizer_of": "adam", "init_of": "metalstm", "seed": "0"}
    cost = estimator.cost("evaluate_hand_swap", job)
    points = len(grid["lr"]) * len(grid["steps"])
    by_hand = (points * tiny["validation_tasks"] + tiny["test_tasks"]) * 0.5 + 5.0
    assert (cost.phase, cost.modelled, cost.seconds) == ("evaluation", True, by_hand)


def test_a_search_jobs_time_limit_is_three_times_its_estimate_per_attempt():
    params = tiny_halving()
    per_iteration = {**ZERO, "l0": 100.0, "eval_fraction": 0.0}  # 100 s per meta-iteration
    estimator = Estimator(params, model({"maml": {"4": per_iteration}}))
    job = {"algo": "maml", "setting": "20w1s", "rung": "0", "part": "0"}
    # 2 trials x 1 iteration x 100 s + a 5 s start = 205 s; x 3 = 615 s = 10.25 -> 11 min
    assert time_limit_minutes(estimator, "search_rung", job, attempt=1) == 11
    assert time_limit_minutes(estimator, "search_rung", job, attempt=2) == 22
    quick = Estimator(params, model({"maml": {"4": {**ZERO, "eval_fraction": 0.0}}}))
    assert time_limit_minutes(quick, "search_rung", job, attempt=1) == 10  # at least 10


def test_totals_by_hand():
    params = tiny_halving()
    params["experiments"]["algorithms"] = ["maml"]
    device = model({"maml": {"4": {**ZERO, "l0": 2.0, "eval_fraction": 0.0}}})
    jobs = [
        ("download", {}), ("prepare", {}), ("split", {"split": "paper"}),
        ("search_rung", {"algo": "maml", "setting": "20w1s", "rung": "0", "part": "0"}),
        ("search_rung", {"algo": "maml", "setting": "20w1s", "rung": "0", "part": "1"}),
        ("search_rung", {"algo": "maml", "setting": "20w1s", "rung": "1", "part": "0"}),
        ("search_select", {"algo": "maml", "setting": "20w1s"}),
        ("train_final", {"algo": "maml", "setting": "20w1s", "seed": "0"}),
        ("evaluate", {"algo": "maml", "train": "20w1s", "test": "20w1s"}),
        ("table1", {}), ("all", {}),
    ]  # fmt: skip
    result = estimate(params, jobs, {"cpu": device, "gpu": device})
    final = params["profiles"]["tiny"]["final_iterations"]
    assert result.jobs == {"data": 3, "search": 4, "training": 1, "evaluation": 1, "report": 1}
    # rung 0: 3 trials x 1 iteration; rung 1: 2 trials x 1 more
    assert result.iterations == {"data": 0, "search": 5, "training": final, "evaluation": 0,
                                 "report": 0}  # fmt: skip
    seconds = result.seconds["cpu"]
    assert seconds["data"] == 13.0
    assert seconds["search"] == pytest.approx(5 * 2.0 + 3 * 5.0 + 1.0)  # + 3 starts, 1 light
    assert seconds["training"] == pytest.approx(final * 2.0 + 5.0)
    assert seconds["evaluation"] == pytest.approx(5.0) and seconds["report"] == 1.0
    rest = seconds["search"] + seconds["training"] + seconds["evaluation"] + seconds["report"]
    assert result.wall_hours("cpu", 2) == pytest.approx((13.0 + rest / 2) / 3600)
    text = report(params, result, {"cpu": device, "gpu": device})
    assert "| search | 4 | 5 |" in text and "successive halving, 3 trials" in text


def test_the_shipped_model_covers_every_algorithm_on_both_devices():
    models = load_models()
    shape = Shape(20, 1, 1, 16, 5)
    for device in models.values():
        for algo in registry.meta_trained():
            for width in (8, 16, 64):
                seconds = device.iteration(algo, width, shape)
                assert math.isfinite(seconds) and seconds > 0, (device.name, algo, width)
        assert device.startup_s["torch"] > device.startup_s["light"] > 0
