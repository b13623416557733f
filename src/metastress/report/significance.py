"""Which differences between algorithms are real: paired tests against the best, Holm-corrected.

Every algorithm of a setting is scored on the same test tasks (task i is a pure function of
split, setting, seed and i), so per-task accuracies pair up across algorithms. Per setting,
the best algorithm is the one with the highest mean; each other one is compared with it by a
two-sided Wilcoxon signed-rank test over the shared tasks, and the p-values of a setting are
Holm-corrected together. An algorithm whose adjusted p is at least ALPHA is "tied with the
best": the tasks do not show it to be worse.

Zero differences (a task both algorithms score equally, common with accuracies in steps of
1/(N*Q)) are kept in the ranking and their ranks dropped (Pratt's method, the conservative
choice); when every difference is zero the two are not different (p = 1).

The functions take per-task accuracies, not files, so accuracies averaged over several seeds
per task pair up just the same.
"""

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from metastress.report.data import ReportInputError

ALPHA = 0.05  # family-wise error rate per setting
ZERO_METHOD = "pratt"
# Per-task accuracies are float32 fractions (correct / queries): equal differences can differ
# by ~1e-7, while real ones differ by at least 1 / (queries * seeds), far above 1e-6.
TIE_TOLERANCE = 1e-6
SIGNIFICANCE_NOTE = (
    "paired two-sided Wilcoxon signed-rank test over the shared test tasks with Pratt's "
    f"handling of zero differences, Holm-corrected within the setting, α = {ALPHA}"
)
"""What the marks mean, for captions."""


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values is scaled by (m - i + 1), made non-decreasing in that
    order, and capped at 1. Written here because scipy offers only false-discovery-rate
    corrections (`false_discovery_control`: BH, BY) and statsmodels is not a dependency.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError(f"p-values must be a flat sequence in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the per-task differences a - b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired accuracies must be two flat sequences over the same tasks, got shapes "
            f"{a.shape} and {b.shape}"
        )
    differences = merge_ties(a - b)
    if not differences.any():
        return 1.0  # identical on every task: no evidence of a difference
    return float(wilcoxon(differences, zero_method=ZERO_METHOD).pvalue)


def merge_ties(differences: np.ndarray, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Differences whose sizes lie within `tolerance` of the next smaller one get one size.

    The ranks must see the ties of exact arithmetic: with float32 accuracies 0.95 - 0.9 and
    0.1 - 0.05 differ by 2e-8 and would be ranked apart. Rounding to fixed decimals (scipy's
    advice) still splits values that straddle a rounding boundary (1/42 - 0 and 23/42 - 22/42
    give 0.023810 and 0.023809 at 6 decimals), so the sorted sizes are grouped by their gaps
    instead, each group taking its smallest size; sizes within `tolerance` of 0 become 0.
    """
    sizes = np.abs(differences)
    order = np.argsort(sizes, kind="stable")
    ranked = sizes[order]
    opens = np.diff(ranked, prepend=0.0) > tolerance  # where a new group of sizes begins
    opener = np.maximum.accumulate(np.where(opens, np.arange(len(ranked)), -1))  # -1: zeros
    merged = np.empty_like(sizes)
    merged[order] = np.where(opener >= 0, ranked[np.maximum(opener, 0)], 0.0)
    return np.sign(differences) * merged


def compare_with_best(
    per_task: Mapping[Hashable, Sequence[float]], alpha: float = ALPHA
) -> pd.DataFrame:
    """Test every entry against the one with the highest mean accuracy.

    Args:
        per_task: per-task accuracies (fractions) of each algorithm of one setting, task i at
            position i in every sequence; the first of equal means counts as the best.
        alpha: family-wise error rate of the setting's comparisons.

    Returns:
        DataFrame indexed by the keys of `per_task`, in their order, with columns mean, best
        (bool), p_value and p_holm (raw and Holm-adjusted p against the best; NaN for the best
        itself) and tied_with_best (bool: the best, or p_holm >= alpha).
    """
    keys = list(per_task)
    if not keys:
        raise ValueError("no algorithms to compare")
    means = pd.Series([float(np.mean(per_task[k])) for k in keys], index=keys, dtype=float)
    best = keys[int(np.argmax(means.to_numpy()))]  # argmax: the first of equal maxima
    others = [k for k in keys if k != best]
    raw = [paired_p_value(per_task[best], per_task[k]) for k in others]
    result = pd.DataFrame(
        {"mean": means, "best": [k == best for k in keys], "p_value": np.nan, "p_holm": np.nan},
        index=keys,
    )
    if others:
        result.loc[others, "p_value"] = raw
        result.loc[others, "p_holm"] = holm(raw)
    result["tied_with_best"] = result["best"] | (result["p_holm"] >= alpha)
    return result


def mark_best(frame: pd.DataFrame, by: str, what: str, alpha: float = ALPHA) -> pd.DataFrame:
    """Add best, p_holm and tied_with_best to evaluation rows, comparing within groups `by`.

    Args:
        frame: rows of `metastress.report.data.load_evals`, one per algorithm in each group,
            with their `per_task` accuracies.
        by: the column whose values are the settings, e.g. "k_shot" for Table 1.
        what: the output's name, for error messages.

    Raises:
        ReportInputError: the files of one group were not scored on the same tasks.
    """
    marked = frame.assign(best=False, p_holm=np.nan, tied_with_best=False)
    for _, group in frame.groupby(by, sort=False):
        _require_shared_tasks(group, what)
        comparison = compare_with_best(group["per_task"].to_dict(), alpha)
        for column in ("best", "p_holm", "tied_with_best"):
            marked.loc[group.index, column] = comparison[column]
    return marked.astype({"best": bool, "tied_with_best": bool})


def _require_shared_tasks(group: pd.DataFrame, what: str) -> None:
    """Paired tests need the same tasks: one test setting and one task count."""
    for key in ("test_setting", "n_tasks"):
        if group[key].nunique() > 1:
            listed = "; ".join(f"{row.path}: {getattr(row, key)}" for row in group.itertuples())
            raise ReportInputError(
                f"{what}: the files compared for significance differ in {key} ({listed}), "
                "so their per-task accuracies are not paired; evaluate every algorithm of a "
                "setting on the same test tasks (same settings and profile test_tasks) and "
                "rerun `snakemake --force` on the odd file(s)"
            )
