"""Figure 1's record: the learned initialization before the first meta-update and after every
one, with its path length and displacement measured as it goes.

A meta-update is one optimizer step: MetaLSTM makes one per task (B per meta-iteration),
MetaLSTM++ and the initialization learners one per meta-iteration. Snapshots are the
learner's float32 initialization flattened (stored as float32, which is exact: the weights are
float32), for the report's PCA picture; the step norms and the distance from the first
snapshot are summed in float64 over the full weight space as the updates happen, so the
lengths never depend on the projection.

The record is a plain dict of tensors and lists, so that a training checkpoint carries it and a
resumed run continues it.
"""

from pathlib import Path

import torch
from torch import Tensor

from metastress.algorithms import MetaLearner
from metastress.atomic import atomic_path

KEYS = ("snapshots", "iteration", "path_length", "displacement")


def flat_initialization(learner: MetaLearner) -> Tensor:
    """The learned initialization as one float32 vector (P,) on the CPU."""
    weights = learner.initial_weights()
    return torch.cat([w.detach().flatten() for w in weights.values()]).float().cpu()


def start(learner: MetaLearner) -> dict:
    """A record holding the initialization before any meta-update (iteration 0)."""
    return {
        "snapshots": [flat_initialization(learner)],
        "iteration": [0],
        "path_length": [0.0],
        "displacement": [0.0],
    }


def record(trajectory: dict, learner: MetaLearner, iteration: int) -> None:
    """Append the initialization after a meta-update made during meta-iteration `iteration`
    (counted from 1), with the path length and displacement so far, in float64."""
    snapshot = flat_initialization(learner)
    now = snapshot.double()
    step = (now - trajectory["snapshots"][-1].double()).norm().item()
    trajectory["snapshots"].append(snapshot)
    trajectory["iteration"].append(iteration)
    trajectory["path_length"].append(trajectory["path_length"][-1] + step)
    trajectory["displacement"].append((now - trajectory["snapshots"][0].double()).norm().item())


def save(trajectory: dict, path: Path) -> None:
    """Write the record as tensors: snapshots float32 (U+1, P), iteration int64 (U+1,),
    path_length and displacement float64 (U+1,), for U meta-updates."""
    tensors = {
        "snapshots": torch.stack(trajectory["snapshots"]),
        "iteration": torch.tensor(trajectory["iteration"], dtype=torch.int64),
        "path_length": torch.tensor(trajectory["path_length"], dtype=torch.float64),
        "displacement": torch.tensor(trajectory["displacement"], dtype=torch.float64),
    }
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
