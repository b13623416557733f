"""Paired Wilcoxon tests against the best, Holm-corrected: against hand-computed values."""

import numpy as np
import pytest

from metastress.report import ReportInputError
from metastress.report.data import load_evals
from metastress.report.significance import (
    ALPHA,
    compare_with_best,
    holm,
    mark_best,
    merge_ties,
    paired_p_value,
)

TASKS = 6
# Six tasks, distinct per-task gaps: with every gap in the best's favour, the exact two-sided
# signed-rank p is 2 * P(W- = 0) = 2 / 2**6 (one of the 64 equally likely sign patterns).
BEST = np.array([0.80, 0.70, 0.90, 0.60, 0.75, 0.85])
GAPS = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])


def test_holm_matches_hand_computed_adjustments():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, and never below an earlier step: 0.5*2 = 1.0, then max(1.0, 0.6)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.2]) == pytest.approx([0.2])  # one test: nothing to correct
    assert holm([]).shape == (0,)


def test_holm_refuses_values_that_are_not_p_values():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        holm([0.2, 1.5])


def test_wilcoxon_p_matches_the_exact_sign_pattern_count():
    assert paired_p_value(BEST, BEST - GAPS) == pytest.approx(2 / 2**TASKS)
    # the smallest gap turned against the best: W- = 1, and P(W- <= 1) = 2/64 (no task or
    # only the rank-1 task negative), so two-sided p = 4/64
    flipped = BEST - GAPS * np.array([-1, 1, 1, 1, 1, 1])
    assert paired_p_value(BEST, flipped) == pytest.approx(4 / 2**TASKS)


def test_identical_accuracies_and_float_noise_are_no_difference():
    assert paired_p_value(BEST, BEST) == 1.0
    noisy = np.full(5, 0.1) + np.full(5, 0.2)  # 0.30000000000000004, a tie in exact arithmetic
    assert paired_p_value(np.full(5, 0.3), noisy) == 1.0


def test_float32_accuracies_keep_the_ties_of_exact_arithmetic():
    """Every task differs by exactly 0.05 (one of 20 queries), one task the other way.

    All six sizes tie, so each signed rank is 3.5 and W- = 3.5 * (tasks against the best):
    P(W- <= 3.5) = P(at most 1 of 6 signs negative) = 7/64, two-sided 14/64. Ranked apart by
    float32 noise the same data gave 6/64.
    """
    a = np.float32([0.95, 0.10, 0.55, 0.30, 0.80, 0.45]).astype(float)
    b = np.float32([0.90, 0.05, 0.50, 0.35, 0.75, 0.40]).astype(float)
    assert len(set(np.abs(a - b))) > 1  # the noise is there to be merged
    assert paired_p_value(a, b) == pytest.approx(14 / 64)


def test_merge_ties_groups_sizes_by_their_gaps_not_by_rounding():
    a = np.float32([1 / 42, 23 / 42, 3 / 42, 0.5, 0.25]).astype(float)
    b = np.float32([0 / 42, 22 / 42, 4 / 42, 0.5, 0.25 + 3e-8]).astype(float)
    assert np.round(a[0] - b[0], 6) != np.round(a[1] - b[1], 6)  # what rounding would do
    merged = merge_ties(a - b)
    assert merged[0] == merged[1] == -merged[2] > 0  # three differences of 1/42
    assert merged[0] == pytest.approx(1 / 42, abs=1e-7)  # float32 1/42, not the exact one
    assert merged[3] == merged[4] == 0.0
    assert merge_ties(np.zeros(3)).tolist() == [0.0] * 3


def test_clearly_better_is_significant_and_a_tie_is_not():
    rng = np.random.default_rng(0)
    best = rng.uniform(0.6, 0.9, 30)
    result = compare_with_best(
        {"a": best - rng.uniform(0.05, 0.1, 30), "b": best, "c": best.copy()}
    )
    assert result["best"].tolist() == [False, True, False]  # b is first of the equal means
    # a is below b on all 30 tasks: p = 2 / 2**30, times 2 for Holm's two comparisons
    assert result.loc["a", "p_value"] == pytest.approx(2 / 2**30)
    assert result.loc["a", "p_holm"] == pytest.approx(4 / 2**30)
    assert result.loc["c", "p_value"] == 1.0 and result.loc["c", "p_holm"] == 1.0
    assert np.isnan(result.loc["b", "p_holm"])
    assert result["tied_with_best"].tolist() == [False, True, True]


def test_holm_turns_two_uncorrected_differences_into_ties():
    result = compare_with_best({"best": BEST, "x": BEST - GAPS, "y": BEST - GAPS[::-1]})
    others = result.loc[["x", "y"]]
    assert others["p_value"].tolist() == pytest.approx([1 / 32] * 2)  # each alone: significant
    assert (others["p_value"] < ALPHA).all()
    assert others["p_holm"].tolist() == pytest.approx([1 / 16] * 2)  # together: not
    assert others["tied_with_best"].all()


def test_one_algorithm_is_its_own_best():
    result = compare_with_best({"only": BEST})
    assert result["best"].all() and result["tied_with_best"].all()


def test_unpaired_sequences_are_refused():
    with pytest.raises(ValueError, match="same tasks, got shapes \\(6,\\) and \\(5,\\)"):
        paired_p_value(BEST, BEST[:5])


def paired(write_eval, algo, per_task, setting="20w1s", **overrides):
    return write_eval(
        algo=algo,
        train=setting,
        accuracy=float(np.mean(per_task)),
        per_task=list(per_task),
        n_tasks=len(per_task),
        **overrides,
    )


def test_mark_best_groups_by_setting(write_eval):
    paths = [
        paired(write_eval, "maml", BEST - GAPS),
        paired(write_eval, "metalstm", BEST),
        paired(write_eval, "maml", BEST, setting="20w5s"),
        paired(write_eval, "metalstm", BEST, setting="20w5s"),
    ]
    marked = mark_best(load_evals(paths), "k_shot", "table1")
    assert marked[["algo", "k_shot", "best", "tied_with_best"]].values.tolist() == [
        ["maml", 1, False, False],  # one comparison in 1-shot: p = 1/32 stays significant
        ["metalstm", 1, True, True],
        ["maml", 5, True, True],  # equal means: the first is the best, the other tied
        ["metalstm", 5, False, True],
    ]
    assert marked["p_holm"].tolist()[0] == pytest.approx(1 / 32)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"per_task": [0.5] * 5, "n_tasks": 5}, "differ in n_tasks"),
        ({"test": "20w5s"}, "differ in test_setting"),
    ],
)
def test_files_that_do_not_share_tasks_are_refused(write_eval, overrides, message):
    odd = write_eval(algo="metalstm", train="20w1s", **overrides)
    paths = [write_eval(algo="maml", train="20w1s"), odd]
    with pytest.raises(ReportInputError, match=message) as error:
        mark_best(load_evals(paths), "n_way", "fig2")
    assert str(odd) in str(error.value) and "snakemake --force" in str(error.value)
