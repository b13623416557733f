"""Several training seeds of one model as one result, by hand; one seed unchanged."""

import math

import pytest

from metastress.intervals import confidence_half_width, over_seeds


def record(accuracy, per_task, ci95=0.01):
    return {
        "accuracy": accuracy,
        "std": 0.1,
        "ci95": ci95,
        "ci999": 1.7 * ci95,
        "per_task": per_task,
    }


def test_one_seed_keeps_its_own_numbers():
    single = record(0.4, [0.2, 0.6], ci95=0.123)
    combined = over_seeds([single])
    assert combined == {
        "accuracy": 0.4,
        "std": 0.1,
        "ci95": 0.123,
        "ci999": 1.7 * 0.123,
        "seed_std": None,
        "seeds": 1,
        "per_task": [0.2, 0.6],
    }


def test_several_seeds_mean_spread_and_the_interval_of_the_per_task_means():
    # seeds' accuracies 0.4, 0.6, 0.8 (mean 0.6, s.d. 0.2); per-task means 0.5 and 0.7
    combined = over_seeds(
        [record(0.4, [0.3, 0.5]), record(0.6, [0.5, 0.7]), record(0.8, [0.7, 0.9])]
    )
    assert combined["seeds"] == 3
    assert combined["accuracy"] == pytest.approx(0.6)
    assert combined["seed_std"] == pytest.approx(0.2)
    assert combined["per_task"] == pytest.approx([0.5, 0.7])
    std = math.sqrt(2 * 0.1**2)  # sample s.d. of (0.5, 0.7)
    assert combined["std"] == pytest.approx(std)
    assert combined["ci95"] == pytest.approx(1.959964 * std / math.sqrt(2), rel=1e-6)
    assert combined["ci999"] == pytest.approx(confidence_half_width(std, 2, 0.999))


def test_seeds_over_different_tasks_are_refused():
    with pytest.raises(ValueError, match=r"different numbers of test tasks \(\[1, 2\]\)"):
        over_seeds([record(0.5, [0.5]), record(0.5, [0.4, 0.6])])
    with pytest.raises(ValueError, match="no evaluation results"):
        over_seeds([])
