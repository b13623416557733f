"""Figure 1: every meta-update drawn, lengths from the record (full weight space) by hand, the
projection, and bad trajectory files."""

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from report_helpers import assert_figure_files

from metastress.report import ReportInputError, algo_from_path, main
from metastress.report import trajectory as trajectory_module
from metastress.report.trajectory import _marker_spacing, project

# MetaLSTM, 2 tasks per meta-iteration: steps (3, 4, 0, 0) and (0, 0, 0, 12) in iteration 1:
# path length 5 then 5 + 12 = 17, displacement 5 then |(3, 4, 0, 12)| = 13
METALSTM = {
    "snapshots": torch.tensor([[0.0, 0, 0, 0], [3, 4, 0, 0], [3, 4, 0, 12]]),
    "iteration": torch.tensor([0, 1, 1]),
    "path_length": torch.tensor([0.0, 5, 17], dtype=torch.float64),
    "displacement": torch.tensor([0.0, 5, 13], dtype=torch.float64),
}
# MetaLSTM++, one update per meta-iteration: (1, 0, 0, 0) twice, then back: length 3,
# displacement 1
METALSTM_PP = {
    "snapshots": torch.tensor([[0.0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [1, 0, 0, 0]]),
    "iteration": torch.tensor([0, 1, 2, 3]),
    "path_length": torch.tensor([0.0, 1, 2, 3], dtype=torch.float64),
    "displacement": torch.tensor([0.0, 1, 2, 1], dtype=torch.float64),
}


def save(root, algo, record):
    path = root / "results" / "fig1" / algo / "20w1s" / "trajectory.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, path)
    return path


def test_fig1_every_update_with_lengths_by_hand(tmp_path, monkeypatch):
    drawn: list[Figure] = []
    save_figure = trajectory_module.save_figure
    monkeypatch.setattr(
        trajectory_module,
        "save_figure",
        lambda figure, data, prefix: (drawn.append(figure), save_figure(figure, data, prefix)),
    )
    inputs = [save(tmp_path, "metalstm_pp", METALSTM_PP), save(tmp_path, "metalstm", METALSTM)]
    main("fig1", inputs, tmp_path / "figures" / "fig1")

    assert_figure_files(tmp_path / "figures" / "fig1")
    summary = pd.read_csv(tmp_path / "figures" / "fig1_summary.csv")
    assert list(summary.columns) == [
        "algo",
        "updates",
        "iterations",
        "path_length",
        "displacement",
        "path_length_per_update",
        "pc1_explained",
        "pc2_explained",
    ]
    assert summary["algo"].tolist() == ["metalstm", "metalstm_pp"]  # the registry's order
    assert summary["updates"].tolist() == [2, 3]
    assert summary["iterations"].tolist() == [1, 3]
    assert summary["path_length"].tolist() == pytest.approx([17, 3])
    assert summary["displacement"].tolist() == pytest.approx([13, 1])
    assert summary["path_length_per_update"].tolist() == pytest.approx([8.5, 1])
    assert (summary["pc1_explained"] >= summary["pc2_explained"]).all()

    points = pd.read_csv(tmp_path / "figures" / "fig1.csv")
    assert list(points.columns) == [
        "algo",
        "update",
        "iteration",
        "pc1",
        "pc2",
        "path_length",
        "displacement",
    ]
    assert points["update"].tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert points["iteration"].tolist() == [0, 1, 1, 0, 1, 2, 3]
    assert points["path_length"].tolist() == pytest.approx([0, 5, 17, 0, 1, 2, 3])
    assert points["displacement"].tolist() == pytest.approx([0, 5, 13, 0, 1, 2, 1])

    # both paths through every snapshot, the lengths in the legend
    (ax,) = drawn[0].axes
    paths = [line for line in ax.get_lines() if line.get_linestyle() != "None"]
    assert sorted(len(line.get_xdata()) for line in paths) == [3, 4]
    markers = [line for line in ax.get_lines() if line.get_markersize() == 5]
    assert sorted(len(line.get_xdata()) for line in markers) == [1, 3]  # iteration ends
    legend = [t.get_text() for t in drawn[0].legends[0].get_texts()]
    assert legend[0] == "MetaLSTM: 2 updates, path length 17 (8.5 per update), displacement 13"
    assert legend[1].startswith("MetaLSTM++: 3 updates, path length 3 (1 per update)")


def test_markers_end_meta_iterations_at_round_spacings():
    assert [_marker_spacing(n) for n in (1, 10, 11, 50, 200, 201, 2000)] == [
        1,
        1,
        2,
        5,
        20,
        50,
        200,
    ]


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
    wider = {**METALSTM_PP, "snapshots": torch.zeros(4, 5)}
    bad = save(tmp_path, "metalstm_pp", wider)
    with pytest.raises(ReportInputError, match="same number of parameters"):
        main("fig1", [good, bad], tmp_path / "fig1")

    bad.write_bytes(b"not a torch file")
    with pytest.raises(ReportInputError, match="not a readable torch file") as error:
        main("fig1", [good, bad], tmp_path / "fig1")
    assert str(bad) in str(error.value)

    torch.save(torch.zeros(3, 4), bad)  # the old format: a bare tensor of snapshots
    with pytest.raises(ReportInputError, match="expected metastress.snapshots' record"):
        main("fig1", [good, bad], tmp_path / "fig1")

    torch.save({**METALSTM_PP, "path_length": torch.zeros(2)}, bad)
    with pytest.raises(ReportInputError, match="path_length of shape \\(2,\\) for 4 snapshots"):
        main("fig1", [good, bad], tmp_path / "fig1")

    torch.save({**METALSTM_PP, "iteration": torch.tensor([1, 1, 2, 3])}, bad)
    with pytest.raises(ReportInputError, match="iterations that do not start at 0"):
        main("fig1", [good, bad], tmp_path / "fig1")


def test_algo_comes_from_the_nearest_algorithm_folder(tmp_path):
    assert algo_from_path(tmp_path / "results/fig1/metalstm/20w1s/trajectory.pt") == "metalstm"
    assert algo_from_path(tmp_path / "maml/metalstm_pp/trajectory.pt") == "metalstm_pp"
    with pytest.raises(ReportInputError, match="no enclosing folder"):
        algo_from_path(tmp_path / "models/lstm/trajectory.pt")
