"""Hyperparameter search: sampled trials scored on meta-validation, then the best chosen.

Each trial is its own job (a cluster runs thousands side by side) and resumes from its own
checkpoint folder; `metastress.selection` then picks the best. A trial that diverges or runs
out of memory is recorded as failed with its reason and scored worst; the search goes on.
"""

from pathlib import Path

import torch

from metastress.atomic import write_json
from metastress.experiments import apply_choice, sample
from metastress.train import DivergenceError, train, train_config, work_dir_for

FAILURES = (DivergenceError, torch.OutOfMemoryError, MemoryError)  # recorded, scored worst


def run_trial(
    run: dict, space: dict, trial: int, processed: Path, split: Path, out: Path, work_root: Path
) -> dict:
    """Train trial `trial` of the space and write its record to `out` (a .json); its model
    and checkpoints go to a folder of `work_root` named by the trial's config hash."""
    choice = sample(space, run["seed"], trial)
    record = {"trial": trial, "choice": choice}
    try:
        config = train_config(apply_choice(run, choice))
        work_dir = work_dir_for(config, work_root)
        summary = train(config, processed, split, work_dir)
    except FAILURES as e:
        record.update(status="failed", reason=f"{type(e).__name__}: {e}", val_accuracy=None)
    else:
        record.update(status="ok", reason=None, val_accuracy=summary["best_val_accuracy"])
    write_json(out, record)
    return record
