"""Accuracy over test tasks and over seeds: the normal confidence interval of a mean over tasks,
and the results of several training seeds of one model, scored on the same test tasks, as one.

Torch-free: evaluation, the report and the DVC metrics summary all use it.
"""

from collections.abc import Mapping, Sequence
from statistics import NormalDist, fmean, stdev


def confidence_half_width(std: float, n: int, level: float) -> float:
    """z * std / sqrt(n) for a two-sided normal interval at `level`."""
    return NormalDist().inv_cdf(0.5 + level / 2) * std / n**0.5


def over_seeds(records: Sequence[Mapping]) -> dict:
    """One result from the evaluations of several seeds of one model on the same test tasks.

    Args:
        records: evaluation results (accuracy, std, ci95, ci999 and per_task, as fractions),
            one per seed, each over the same tasks in the same order.

    Returns:
        dict: accuracy (mean over seeds), seed_std (standard deviation of the seeds'
        accuracies; None for one seed), seeds (how many), per_task (task i's accuracy averaged
        over seeds), std, ci95 and ci999 (over tasks, of those averages: the task interval of
        the seed-averaged model). One seed gives its own record's numbers unchanged.

    Raises:
        ValueError: no records, or records over different numbers of tasks.
    """
    if not records:
        raise ValueError("no evaluation results to combine")
    sizes = sorted({len(r["per_task"]) for r in records})
    if len(sizes) > 1:
        raise ValueError(
            f"the seeds' results cover different numbers of test tasks ({sizes}); evaluate every "
            "seed on the same test tasks (same profile test_tasks)"
        )
    if len(records) == 1:
        (record,) = records
        own = {key: record[key] for key in ("accuracy", "std", "ci95", "ci999")}
        return {**own, "seed_std": None, "seeds": 1, "per_task": list(record["per_task"])}
    per_task = [fmean(values) for values in zip(*(r["per_task"] for r in records), strict=True)]
    std = stdev(per_task) if len(per_task) > 1 else 0.0
    accuracies = [r["accuracy"] for r in records]
    return {
        "accuracy": fmean(accuracies),
        "std": std,
        "ci95": confidence_half_width(std, len(per_task), 0.95),
        "ci999": confidence_half_width(std, len(per_task), 0.999),
        "seed_std": stdev(accuracies),
        "seeds": len(records),
        "per_task": per_task,
    }
