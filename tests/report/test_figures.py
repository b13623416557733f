"""Figures 2-4: which files each one uses, the CSV beside it, and valid PDF/PNG output."""

import pandas as pd
import pytest
from report_helpers import assert_figure_files

from metastress.report import ReportInputError, fig2, fig3, fig4a, fig4b

ALGOS = ["maml", "metalstm_pp"]


def test_fig2_one_row_per_algorithm_and_ways(write_eval, tmp_path):
    ways = [20, 40, 200]
    paths = [
        write_eval(algo=a, train=f"{w}w1s", accuracy=w / 400 + i / 10, ci95=0.002)
        for i, a in enumerate(ALGOS)
        for w in ways
    ]
    paths.append(write_eval(algo="maml", train="20w5s"))  # 5-shot: not in Figure 2
    fig2(paths, tmp_path / "figures" / "fig2")

    assert_figure_files(tmp_path / "figures" / "fig2")
    csv = pd.read_csv(tmp_path / "figures" / "fig2.csv")
    assert list(csv.columns) == ["algo", "n_way", "accuracy", "ci999"]
    assert csv[["algo", "n_way"]].values.tolist() == [[a, w] for a in ALGOS for w in ways]
    expected = [100 * (w / 400 + i / 10) for i in range(2) for w in ways]
    assert csv["accuracy"].tolist() == pytest.approx(expected)
    assert csv["ci999"].tolist() == pytest.approx([0.34] * 6)


def test_fig2_without_one_shot_files_is_an_error(write_eval, tmp_path):
    with pytest.raises(ReportInputError, match="fig2 .*none of the 1 file"):
        fig2([write_eval(train="20w5s")], tmp_path / "fig2")


def test_fig3_pairs_transfer_with_in_setting(write_eval, tmp_path):
    paths = []
    for a in ALGOS:
        paths += [
            write_eval(algo=a, train="40w1s", accuracy=0.81),
            write_eval(algo=a, train="40w5s", test="40w1s", accuracy=0.61),
            write_eval(algo=a, train="40w5s", accuracy=0.95),
            write_eval(algo=a, train="40w1s", test="40w5s", accuracy=0.85),
        ]
    fig3(paths, tmp_path / "fig3")

    assert_figure_files(tmp_path / "fig3")
    csv = pd.read_csv(tmp_path / "fig3.csv")
    assert list(csv.columns) == [
        "panel",
        "algo",
        "kind",
        "train_setting",
        "test_setting",
        "accuracy",
        "ci95",
    ]
    rows = csv[["panel", "algo", "kind", "train_setting", "test_setting", "accuracy"]]
    assert sorted(rows.values.tolist()) == sorted(
        [["A", a, "in-setting", "40w1s", "40w1s", 81.0] for a in ALGOS]
        + [["A", a, "transfer", "40w5s", "40w1s", 61.0] for a in ALGOS]
        + [["B", a, "in-setting", "40w5s", "40w5s", 95.0] for a in ALGOS]
        + [["B", a, "transfer", "40w1s", "40w5s", 85.0] for a in ALGOS]
    )


def test_fig4a_steps_and_one_setting_pair(write_eval, tmp_path):
    paths = [
        write_eval(algo=a, train="40w1s", test="40w5s", steps=s, accuracy=0.5 + s / 100)
        for a in ALGOS
        for s in (1, 2, 4)
    ]
    fig4a(paths, tmp_path / "fig4a")
    assert_figure_files(tmp_path / "fig4a")
    csv = pd.read_csv(tmp_path / "fig4a.csv")
    assert list(csv.columns) == ["algo", "steps", "accuracy", "ci95"]
    assert csv[["algo", "steps"]].values.tolist() == [[a, s] for a in ALGOS for s in (1, 2, 4)]
    assert csv["accuracy"].tolist() == pytest.approx([51, 52, 54] * 2)

    paths.append(write_eval(algo="maml", train="20w1s", steps=8))
    with pytest.raises(ReportInputError, match="mix train->test settings 20w1s->20w1s"):
        fig4a(paths, tmp_path / "fig4a")


def test_fig4b_labels_each_swap(write_eval, tmp_path):
    paths = [
        write_eval(algo="metalstm", train="20w5s", accuracy=0.4, optimizer="adam"),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.97, init_from="maml"),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.96),
        write_eval(algo="maml", train="20w5s", accuracy=0.98),
        write_eval(algo="metalstm_pp", train="20w5s", accuracy=0.9, optimizer="sgd"),
    ]
    fig4b(paths, tmp_path / "fig4b")
    assert_figure_files(tmp_path / "fig4b")
    csv = pd.read_csv(tmp_path / "fig4b.csv", keep_default_na=False)
    assert list(csv.columns) == ["algo", "init_from", "optimizer", "label", "accuracy", "ci95"]
    assert csv[["label", "accuracy"]].values.tolist() == [
        ["MAML", 98.0],
        ["MAML init + MetaLSTM optimizer", 97.0],
        ["MetaLSTM", 96.0],
        ["MetaLSTM init + Adam", 40.0],
        ["MetaLSTM++ init + SGD", 90.0],
    ]
    assert csv.loc[1, "init_from"] == "maml" and csv.loc[3, "optimizer"] == "adam"
    assert csv.loc[0, "init_from"] == "" and csv.loc[0, "optimizer"] == ""


def test_fig4b_refuses_mixed_settings(write_eval, tmp_path):
    with pytest.raises(ReportInputError, match="mix test settings 20w1s, 20w5s"):
        fig4b([write_eval(train="20w5s"), write_eval(train="20w1s")], tmp_path / "fig4b")
