"""Figures 2-4: which files each one uses, the CSV beside it, what is drawn, valid PDF/PNG."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from report_helpers import assert_figure_files

from metastress.report import ReportInputError, fig2, fig3, fig4a, fig4b
from metastress.report import figures as figures_module
from metastress.report.figures import paper_comparison

ALGOS = ["maml", "metalstm_pp"]


def capture_figures(monkeypatch) -> list:
    """Keep each figure the report saves, to look at what it drew."""
    saved = []
    save = figures_module.save_figure

    def keep(figure, data, out_prefix):
        saved.append(figure)
        save(figure, data, out_prefix)

    monkeypatch.setattr(figures_module, "save_figure", keep)
    return saved


def bar_heights(ax) -> list[float]:
    return [
        patch.get_height()
        for container in ax.containers
        if isinstance(container, BarContainer)
        for patch in container
    ]


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
    assert list(csv.columns) == [
        "algo",
        "n_way",
        "accuracy",
        "ci999",
        "seeds",
        "seed_std",
        "best",
        "p_holm",
        "tied_with_best",
    ]
    assert csv[["algo", "n_way"]].values.tolist() == [[a, w] for a in ALGOS for w in ways]
    assert (csv["seeds"] == 1).all() and csv["seed_std"].isna().all()
    expected = [100 * (w / 400 + i / 10) for i in range(2) for w in ways]
    assert csv["accuracy"].tolist() == pytest.approx(expected)
    assert csv["ci999"].tolist() == pytest.approx([0.34] * 6)


def test_fig2_marks_significance_per_number_of_ways(write_eval, tmp_path, monkeypatch):
    """At 20 ways MAML is below MetaLSTM++ on all 8 tasks (p = 2/2**8); at 40 ways they tie."""
    tasks = np.linspace(0.5, 0.85, 8)
    per_task = {("maml", 20): tasks - 0.1, ("metalstm_pp", 20): tasks}
    per_task |= {(a, 40): tasks for a in ALGOS}
    paths = [
        write_eval(
            algo=a,
            train=f"{w}w1s",
            accuracy=float(np.mean(v)),
            per_task=list(v),
            n_tasks=8,
        )
        for (a, w), v in per_task.items()
    ]
    figures = capture_figures(monkeypatch)
    fig2(paths, tmp_path / "fig2")

    csv = pd.read_csv(tmp_path / "fig2.csv").set_index(["algo", "n_way"])
    assert csv.loc[("maml", 20), "p_holm"] == pytest.approx(2 / 2**8)
    assert csv.loc[("metalstm_pp", 20), "best"] and csv.loc[("maml", 40), "best"]
    assert csv.loc[("metalstm_pp", 40), "p_holm"] == 1.0
    tied = csv[csv["tied_with_best"]].index.tolist()
    assert sorted(tied) == [("maml", 40), ("metalstm_pp", 20), ("metalstm_pp", 40)]
    # the rings are drawn exactly on the tied points, and named in the legend
    (ax,) = figures[0].axes
    ring = next(line for line in ax.get_lines() if line.get_markersize() == 13)
    assert sorted(ring.get_xdata()) == [20, 40, 40]
    assert list(ring.get_ydata()) == pytest.approx([100 * tasks.mean()] * 3)
    assert "Holm" in ax.get_legend().get_texts()[-1].get_text()


def test_fig2_without_one_shot_files_is_an_error(write_eval, tmp_path):
    with pytest.raises(ReportInputError, match="fig2 .*none of the 1 file"):
        fig2([write_eval(train="20w5s")], tmp_path / "fig2")


def fig3_inputs(write_eval, accuracies=None, ci95=0.01):
    """Each algorithm's four files: 40w5s and 40w1s in-setting, and both transfers."""
    accuracies = accuracies or {
        ("40w5s", "40w5s"): 0.95,
        ("40w5s", "40w1s"): 0.61,
        ("40w1s", "40w1s"): 0.81,
        ("40w1s", "40w5s"): 0.85,
    }
    return [
        write_eval(algo=a, train=train, test=test, accuracy=accuracy, ci95=ci95)
        for a in ALGOS
        for (train, test), accuracy in accuracies.items()
    ]


def test_fig3_three_bars_per_algorithm_from_known_inputs(write_eval, tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    fig3(fig3_inputs(write_eval), tmp_path / "fig3")

    assert_figure_files(tmp_path / "fig3")
    csv = pd.read_csv(tmp_path / "fig3.csv")
    assert list(csv.columns) == [
        "panel",
        "algo",
        "bar",
        "train_setting",
        "test_setting",
        "accuracy",
        "ci95",
        "ci95_low",
        "ci95_high",
        "seeds",
        "seed_std",
    ]
    rows = csv[["panel", "algo", "bar", "train_setting", "test_setting", "accuracy"]]
    # (A) trained 40w5s, tested 40w1s: own 40w5s result, transfer, own 40w1s result
    # (B) trained 40w1s, tested 40w5s: own 40w1s result, transfer, own 40w5s result
    assert rows.values.tolist() == [
        [panel, a, bar, train, test, accuracy]
        for panel, bars in (
            (
                "A",
                [
                    ("train in-setting", "40w5s", "40w5s", 95.0),
                    ("transfer", "40w5s", "40w1s", 61.0),
                    ("test in-setting", "40w1s", "40w1s", 81.0),
                ],
            ),
            (
                "B",
                [
                    ("train in-setting", "40w1s", "40w1s", 81.0),
                    ("transfer", "40w1s", "40w5s", 85.0),
                    ("test in-setting", "40w5s", "40w5s", 95.0),
                ],
            ),
        )
        for a in ALGOS
        for bar, train, test, accuracy in bars
    ]
    assert csv["ci95"].tolist() == pytest.approx([1.0] * 12)

    # what is drawn: per panel, bar heights left to right, algorithm names under each group
    panel_a, panel_b = figures[0].axes[:2]
    assert bar_heights(panel_a) == pytest.approx([95, 95, 61, 61, 81, 81])  # one colour a time
    assert bar_heights(panel_b) == pytest.approx([81, 81, 85, 85, 95, 95])
    assert [t.get_text() for t in panel_a.get_xticklabels()] == ["MAML", "MetaLSTM++"]
    assert "trained on 40w5s, tested on 40w1s" in panel_a.get_title()
    assert "the drop from its own 40w5s result" in panel_a.get_title()
    assert "the increase from its own 40w1s result" in panel_b.get_title()
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend[:3] == [
        "trained and tested on the train setting",
        "trained on the train setting, tested on the test setting",
        "trained and tested on the test setting",
    ]


def test_fig3_error_bars_stop_at_0_and_100_percent(write_eval, tmp_path, monkeypatch):
    accuracies = {
        ("40w5s", "40w5s"): 0.98,  # 98 +- 5: the bar ends at 100, not 103
        ("40w5s", "40w1s"): 0.02,  # 2 +- 5: the bar ends at 0, not -3
        ("40w1s", "40w1s"): 0.50,
    }
    figures = capture_figures(monkeypatch)
    fig3(fig3_inputs(write_eval, accuracies, ci95=0.05), tmp_path / "fig3")

    csv = pd.read_csv(tmp_path / "fig3.csv")
    assert csv["ci95"].tolist() == pytest.approx([5.0] * 6)  # the value itself is kept
    assert csv["accuracy"].tolist() == pytest.approx([98, 2, 50] * 2)
    assert csv["ci95_low"].tolist() == pytest.approx([93, 0, 45] * 2)
    assert csv["ci95_high"].tolist() == pytest.approx([100, 7, 55] * 2)
    (ax,) = figures[0].axes
    drawn = sorted(  # (x, low, high) of every error bar's vertical segment
        (segment[0][0], segment[0][1], segment[1][1])
        for container in ax.containers
        if isinstance(container, ErrorbarContainer)
        for segment in container.lines[2][0].get_segments()
    )
    assert [end for _, low, high in drawn for end in (low, high)] == pytest.approx(
        [93, 100, 0, 7, 45, 55] * 2
    )
    assert ax.get_ylim() == (0, 101)  # the axis stops just above 100% too


def test_fig3_refuses_a_transfer_without_its_in_setting_results(write_eval, tmp_path):
    paths = [
        write_eval(algo="maml", train="40w5s", test="40w1s"),
        write_eval(algo="maml", train="40w1s"),
    ]
    with pytest.raises(ReportInputError, match="lacks the train in-setting result of maml") as e:
        fig3(paths, tmp_path / "fig3")
    assert "results/eval/<algo>/40w5s/40w5s.json" in str(e.value)


def test_paper_comparison_follows_the_direction_of_difficulty():
    def setting(n_way, k_shot):
        return pd.Series({"n_way": n_way, "k_shot": k_shot, "test_setting": f"{n_way}w{k_shot}s"})

    assert paper_comparison(setting(40, 5), setting(40, 1)).startswith(
        "the drop from its own 40w5s"
    )
    assert paper_comparison(setting(40, 1), setting(40, 5)).startswith("the increase from")
    assert paper_comparison(setting(20, 1), setting(40, 1)).startswith("the drop")
    assert paper_comparison(setting(20, 1), setting(40, 5)).startswith("the change")


def test_fig4a_steps_and_one_setting_pair(write_eval, tmp_path):
    paths = [
        write_eval(algo=a, train="40w1s", test="40w5s", steps=s, accuracy=0.5 + s / 100)
        for a in ALGOS
        for s in (1, 2, 4)
    ]
    fig4a(paths, tmp_path / "fig4a")
    assert_figure_files(tmp_path / "fig4a")
    csv = pd.read_csv(tmp_path / "fig4a.csv")
    assert list(csv.columns) == ["algo", "steps", "accuracy", "ci95", "seeds", "seed_std"]
    assert csv[["algo", "steps"]].values.tolist() == [[a, s] for a in ALGOS for s in (1, 2, 4)]
    assert csv["accuracy"].tolist() == pytest.approx([51, 52, 54] * 2)

    paths.append(write_eval(algo="maml", train="20w1s", steps=8))
    with pytest.raises(ReportInputError, match="mix train->test settings 20w1s->20w1s"):
        fig4a(paths, tmp_path / "fig4a")


def test_fig4b_labels_each_swap_with_the_chosen_rate_and_steps(write_eval, tmp_path):
    paths = [
        write_eval(
            algo="metalstm",
            train="20w5s",
            accuracy=0.4,
            optimizer="adam",
            optimizer_lr=0.01,
            steps=20,
        ),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.97, init_from="maml"),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.96),
        write_eval(algo="maml", train="20w5s", accuracy=0.98),
        write_eval(
            algo="metalstm_pp",
            train="20w5s",
            accuracy=0.9,
            optimizer="sgd",
            optimizer_lr=0.1,
            steps=5,
        ),
    ]
    fig4b(paths, tmp_path / "fig4b")
    assert_figure_files(tmp_path / "fig4b")
    csv = pd.read_csv(tmp_path / "fig4b.csv", keep_default_na=False)
    assert list(csv.columns) == [
        "algo",
        "init_from",
        "optimizer",
        "optimizer_lr",
        "steps",
        "label",
        "accuracy",
        "ci95",
        "seeds",
        "seed_std",
    ]
    assert csv[["label", "accuracy"]].values.tolist() == [
        ["MAML", 98.0],
        ["MAML init + MetaLSTM optimizer", 97.0],
        ["MetaLSTM", 96.0],
        ["MetaLSTM init + Adam (lr 0.01, 20 steps)", 40.0],
        ["MetaLSTM++ init + SGD (lr 0.1, 5 steps)", 90.0],
    ]
    assert csv.loc[1, "init_from"] == "maml" and csv.loc[3, "optimizer"] == "adam"
    assert csv.loc[0, "init_from"] == "" and csv.loc[0, "optimizer"] == ""


def test_fig4b_refuses_mixed_settings(write_eval, tmp_path):
    with pytest.raises(ReportInputError, match="mix test settings 20w1s, 20w5s"):
        fig4b([write_eval(train="20w5s"), write_eval(train="20w1s")], tmp_path / "fig4b")
