"""Figure 1's record: the initialization before and after every update, and its lengths summed in
float64 by hand."""

import math

import pytest
import torch

from metastress import snapshots


class Moving:
    """A stand-in learner whose initialization is whatever weights it was last given."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        self.weights = weights

    def initial_weights(self) -> dict[str, torch.Tensor]:
        return self.weights


def test_record_sums_step_lengths_and_measures_displacement_in_float64(tmp_path):
    learner = Moving({"w": torch.zeros(2, 2), "b": torch.zeros(1)})
    trajectory = snapshots.start(learner)
    # steps (3, 4, 0, 0 | 0) and (0, 0, 0, 0 | 12): lengths 5 and 12, displacement 13
    learner.weights = {"w": torch.tensor([[3.0, 4.0], [0.0, 0.0]]), "b": torch.zeros(1)}
    snapshots.record(trajectory, learner, iteration=1)
    learner.weights = {"w": torch.tensor([[3.0, 4.0], [0.0, 0.0]]), "b": torch.tensor([12.0])}
    snapshots.record(trajectory, learner, iteration=1)
    # a long step: lengths of float32 weights summed in float64
    learner.weights = {"w": torch.full((2, 2), 1e4), "b": torch.tensor([12.0])}
    snapshots.record(trajectory, learner, iteration=2)

    assert trajectory["iteration"] == [0, 1, 1, 2]
    assert trajectory["path_length"][:3] == [0.0, 5.0, 17.0]
    assert trajectory["displacement"][:3] == [0.0, 5.0, 13.0]
    far = math.sqrt((1e4 - 3) ** 2 + (1e4 - 4) ** 2 + 2 * 1e4**2)  # from (3, 4, 0, 0 | 12)
    assert trajectory["path_length"][3] == pytest.approx(17 + far, rel=1e-12)
    assert trajectory["displacement"][3] == pytest.approx(math.sqrt(4 * 1e8 + 144), rel=1e-12)

    snapshots.save(trajectory, tmp_path / "trajectory.pt")
    saved = torch.load(tmp_path / "trajectory.pt", weights_only=True)
    assert saved["snapshots"].dtype == torch.float32 and saved["snapshots"].shape == (4, 5)
    assert saved["snapshots"][1].tolist() == [3, 4, 0, 0, 0]  # weights in their dict order
    assert saved["path_length"].dtype == saved["displacement"].dtype == torch.float64
    assert saved["iteration"].tolist() == [0, 1, 1, 2]


def test_the_first_snapshot_is_a_copy_taken_before_any_update():
    weights = {"w": torch.ones(3)}
    trajectory = snapshots.start(Moving(weights))
    weights["w"].add_(1.0)  # an optimizer updates parameters in place
    assert trajectory["snapshots"][0].tolist() == [1.0, 1.0, 1.0]
