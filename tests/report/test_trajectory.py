"""Figure 1: path length and displacement by hand, the projection, and bad trajectory files."""

import pandas as pd
import pytest
import torch
from report_helpers import assert_figure_files

from metastress.report import ReportInputError, algo_from_path, main
from metastress.report.trajectory import project

# MetaLSTM: steps (3, 4, 0, 0) and (0, 0, 0, 12): length 5 + 12 = 17, displacement |(3,4,0,12)| = 13
METALSTM = torch.tensor([[0.0, 0, 0, 0], [3, 4, 0, 0], [3, 4, 0, 12]])
# MetaLSTM++: steps (1, 0, 0, 0) twice, then back: length 3, displacement 1
METALSTM_PP = torch.tensor([[0.0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [1, 0, 0, 0]])


def save(root, algo, tensor):
    path = root / "models" / algo / "20w1s" / "trajectory.pt"
    path.parent.mkdir(parents=True)
    torch.save(tensor, path)
    return path


def test_fig1_path_length_and_displacement_by_hand(tmp_path):
    inputs = [save(tmp_path, "metalstm_pp", METALSTM_PP), save(tmp_path, "metalstm", METALSTM)]
    main("fig1", inputs, tmp_path / "figures" / "fig1", every=10)

    assert_figure_files(tmp_path / "figures" / "fig1")
    summary = pd.read_csv(tmp_path / "figures" / "fig1_summary.csv")
    assert list(summary.columns) == [
        "algo",
        "snapshots",
        "path_length",
        "displacement",
        "pc1_explained",
        "pc2_explained",
    ]
    assert summary["algo"].tolist() == ["metalstm", "metalstm_pp"]
    assert summary["snapshots"].tolist() == [3, 4]
    assert summary["path_length"].tolist() == pytest.approx([17, 3])
    assert summary["displacement"].tolist() == pytest.approx([13, 1])
    assert (summary["pc1_explained"] >= summary["pc2_explained"]).all()

    points = pd.read_csv(tmp_path / "figures" / "fig1.csv")
    assert list(points.columns) == ["algo", "iteration", "pc1", "pc2"]
    assert points["iteration"].tolist() == [10, 20, 30, 10, 20, 30, 40]


def test_projection_keeps_distances_of_planar_paths():
    # Every snapshot lies in one 2-D plane of R^5, so two components keep all distances.
    plane = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64))[0].T  # (2, 5), orthonormal
    a, b = torch.randn(6, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    coordinates, explained = project({"metalstm": a @ plane, "metalstm_pp": b @ plane})
    both = torch.cat([coordinates["metalstm"], coordinates["metalstm_pp"]])
    assert torch.allclose(
        torch.cdist(both, both), torch.cdist(torch.cat([a, b]), torch.cat([a, b]))
    )
    assert explained.sum().item() == pytest.approx(1.0)


def test_bad_trajectories_are_named(tmp_path):
    good = save(tmp_path, "metalstm", METALSTM)
    wider = save(tmp_path, "metalstm_pp", torch.zeros(2, 5))
    with pytest.raises(ReportInputError, match="same number of parameters"):
        main("fig1", [good, wider], tmp_path / "fig1", every=1)

    wider.write_bytes(b"not a torch file")
    with pytest.raises(ReportInputError, match="not a readable torch file") as error:
        main("fig1", [good, wider], tmp_path / "fig1", every=1)
    assert str(wider) in str(error.value)

    torch.save(torch.zeros(3, dtype=torch.long), wider)
    with pytest.raises(ReportInputError, match="expected a float tensor"):
        main("fig1", [good, wider], tmp_path / "fig1", every=1)


def test_algo_comes_from_the_nearest_algorithm_folder(tmp_path):
    assert algo_from_path(tmp_path / "models/metalstm/20w1s/trajectory.pt") == "metalstm"
    assert algo_from_path(tmp_path / "maml/metalstm_pp/trajectory.pt") == "metalstm_pp"
    with pytest.raises(ReportInputError, match="no enclosing folder"):
        algo_from_path(tmp_path / "models/lstm/trajectory.pt")
