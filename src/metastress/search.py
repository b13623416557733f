"""Hyperparameter search: sampled trials trained rung by rung and scored on meta-validation.

A rung job (`metastress search rung`) trains its share of a rung's trials one after another
(`metastress.halving` says which), each to the rung's budget in its own checkpoint folder,
extending the checkpoint the previous rung left; `metastress.selection` then picks the best
of the last rung. A trial that diverges or runs out of memory is recorded as failed with its
reason and scored worst, in its rung and every later one; the search goes on.
"""

from pathlib import Path

import torch

from metastress.atomic import write_json
from metastress.experiments import apply_choice, sample
from metastress.halving import SearchPlan, part_trials
from metastress.selection import read_rung
from metastress.train import DivergenceError, train, train_config, work_dir_for

FAILURES = (DivergenceError, torch.OutOfMemoryError, MemoryError)  # recorded, scored worst


def run_rung(
    run: dict,
    space: dict,
    plan: SearchPlan,
    rung: int,
    part: int,
    previous: list[Path],
    processed: Path,
    split: Path,
    out: Path,
    work_root: Path,
) -> dict:
    """Train part `part` of rung `rung` and write its records to `out` (a .json).

    `previous` are the part files of rung - 1 (none for rung 0): which trials survived is
    read from them. Trial i's checkpoints live in work_root/trial<i>/<config hash>."""
    survivors = part_trials(plan, rung, part, read_rung(previous, rung - 1) if rung else [])
    budget = plan.budgets()[rung]
    records = []
    for entry in survivors:
        before = entry["before"]
        if before is not None and before["status"] == "failed":
            records.append(before)  # failed stays failed: not trained again
            continue
        trial = entry["trial"]
        records.append(run_trial(run, space, trial, budget, processed, split, work_root))
    result = {"rung": rung, "part": part, "iterations": budget, "trials": records}
    write_json(out, result)
    return result


def run_trial(
    run: dict,
    space: dict,
    trial: int,
    budget: int,
    processed: Path,
    split: Path,
    work_root: Path,
) -> dict:
    """Train trial `trial` of the space to `budget` iterations, resuming or extending its
    checkpoint, and return its record: the validation accuracy at `budget` (as successive
    halving compares trials, and as random search's single validation scores them)."""
    choice = sample(space, run["seed"], trial)
    record = {"trial": trial, "choice": choice, "iterations": budget}
    try:
        config = train_config({**apply_choice(run, choice), "iterations": budget})
        work_dir = work_dir_for(config, Path(work_root) / f"trial{trial}")
        summary = train(config, processed, split, work_dir)
    except FAILURES as e:
        record.update(status="failed", reason=f"{type(e).__name__}: {e}", val_accuracy=None)
    else:
        record.update(
            status="ok", reason=None, val_accuracy=_accuracy_at(summary, budget, work_dir)
        )
    return record


def _accuracy_at(summary: dict, budget: int, work_dir: Path) -> float:
    """The validation accuracy at iteration `budget`, also when a later rung has extended the
    checkpoint past it (a rung rerun after the next one ran): every rung's budget is a
    multiple of the validation spacing."""
    scores = [accuracy for iteration, accuracy in summary["validations"] if iteration == budget]
    if not scores:
        raise RuntimeError(
            f"{work_dir} holds no validation at iteration {budget}; delete it so that the trial "
            "trains afresh"
        )
    return scores[0]
