"""Table 1: cells, missing runs, and the three output formats."""

import numpy as np
import pandas as pd
import pytest

from metastress.report import ALGO_NAMES, ReportInputError, table1

ACCURACY = {
    "maml": (0.9193, 0.9765),
    "metasgd": (0.9458, 0.9779),
    "taml": (0.9225, 0.9514),
    "metalstm": (0.9063, 0.9711),
    "metalstm_pp": (0.9650, 0.9841),
}


def test_table1_writes_every_cell(write_eval, tmp_path):
    paths = [
        write_eval(algo=algo, train=f"20w{k}s", accuracy=acc, ci95=0.0072)
        for algo, pair in ACCURACY.items()
        for k, acc in zip((1, 5), pair, strict=True)
    ]
    table1(paths, tmp_path / "tables" / "table1")

    csv = pd.read_csv(tmp_path / "tables" / "table1.csv")
    assert list(csv.columns) == [
        "algo",
        "k_shot",
        "accuracy",
        "ci95",
        "seeds",
        "seed_std",
        "best",
        "p_holm",
        "tied_with_best",
    ]
    assert list(csv["algo"]) == [a for a in ALGO_NAMES if a in ACCURACY for _ in (1, 5)]
    assert list(csv["k_shot"]) == [1, 5] * 5
    expected = [100 * acc for pair in ACCURACY.values() for acc in pair]
    assert csv["accuracy"].tolist() == pytest.approx(expected)
    assert csv["ci95"].tolist() == pytest.approx([0.72] * 10)

    # 4 tasks, each algorithm a constant gap below the best: p = 2/2**4 even before Holm, so
    # no difference is significant and every cell is bold
    markdown = (tmp_path / "tables" / "table1.md").read_text()
    assert "| Model | 1-shot | 5-shot |" in markdown
    assert "| MAML | **91.93 ± 0.72** | **97.65 ± 0.72** |" in markdown
    assert "| MetaLSTM++ | **96.50 ± 0.72** | **98.41 ± 0.72** |" in markdown
    latex = (tmp_path / "tables" / "table1.tex").read_text()
    assert r"MetaLSTM++ & \textbf{96.50 $\pm$ 0.72} & \textbf{98.41 $\pm$ 0.72} \\" in latex
    assert r"\begin{tabular}{lcc}" in latex
    assert csv["best"].tolist() == [False, False] * 4 + [True, True]


def test_missing_run_is_a_dash_and_other_files_are_ignored(write_eval, tmp_path):
    paths = [
        write_eval(algo="maml", train="20w1s", accuracy=0.5),
        write_eval(algo="maml", train="20w5s", accuracy=0.6),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.7),
        write_eval(algo="metalstm", train="20w5s", accuracy=0.1, optimizer="adam"),  # a swap
        write_eval(algo="maml", train="40w1s", test="20w5s", accuracy=0.2),  # a transfer
    ]
    table1(paths, tmp_path / "table1")
    csv = pd.read_csv(tmp_path / "table1.csv")
    assert csv[["algo", "k_shot", "accuracy"]].values.tolist() == [
        ["maml", 1, 50.0],
        ["maml", 5, 60.0],
        ["metalstm", 5, 70.0],
    ]
    markdown = (tmp_path / "table1.md").read_text()
    assert "| MetaLSTM | — | **70.00 ± 1.00** |" in markdown
    assert "| MetaLSTM++ | — | — |" in markdown
    assert "| MetaLSTM | ---" not in (tmp_path / "table1.tex").read_text()


def test_rows_are_the_papers_algorithms_and_any_other_with_files(write_eval, tmp_path):
    table1([write_eval(algo="maml")], tmp_path / "table1")
    rows = [line.split(" | ")[0] for line in (tmp_path / "table1.md").read_text().splitlines()]
    assert "| ANIL" not in rows and "| MetaLSTM++" in rows  # a missing paper run: a dash
    table1([write_eval(algo="maml"), write_eval(algo="anil")], tmp_path / "table1")
    assert "| ANIL | **90.00 ± 1.00** |" in (tmp_path / "table1.md").read_text()


def test_mixed_ways_are_refused(write_eval, tmp_path):
    paths = [write_eval(train="20w1s"), write_eval(train="40w5s")]
    with pytest.raises(ReportInputError, match="mix 20, 40-way"):
        table1(paths, tmp_path / "table1")


BASE = np.array([0.90, 0.80, 0.85, 0.95, 0.90, 0.80, 0.85, 0.95])  # 8 tasks, mean 0.875


def test_bold_marks_the_best_and_those_not_significantly_different(write_eval, tmp_path):
    one_shot = {
        "maml": BASE - 0.1,  # below the best on all 8 tasks: p = 2/2**8 = 1/128
        "metasgd": BASE - np.eye(8)[0] * 0.01,  # one task lower: no evidence
        "taml": BASE - 0.2,
        "metalstm": BASE - 0.3,
        "metalstm_pp": BASE,
    }
    paths = [
        write_eval(
            algo=algo,
            train=f"20w{k}s",
            accuracy=float(per_task.mean()),
            ci95=0.01,
            per_task=per_task.tolist(),
            n_tasks=8,
        )
        for algo, accuracies in one_shot.items()
        for k, per_task in ((1, accuracies), (5, BASE))  # 5-shot: every algorithm equal
    ]
    table1(paths, tmp_path / "table1")

    csv = pd.read_csv(tmp_path / "table1.csv")
    one = csv[csv["k_shot"] == 1].set_index("algo")
    assert one["best"].tolist() == [False, False, False, False, True]
    assert one["tied_with_best"].tolist() == [False, True, False, False, True]
    # Holm over 4 comparisons: the three 1/128 become 4/128 (step-down), metasgd's p stays 1
    assert one.loc[["maml", "taml", "metalstm"], "p_holm"].tolist() == pytest.approx([1 / 32] * 3)
    assert one.loc["metasgd", "p_holm"] == pytest.approx(1.0)
    five = csv[csv["k_shot"] == 5]
    assert five["best"].tolist() == [True, False, False, False, False]  # first of equal means
    assert five["tied_with_best"].all()

    markdown = (tmp_path / "table1.md").read_text()
    assert "| MAML | 77.50 ± 1.00 | **87.50 ± 1.00** |" in markdown
    assert "| MetaSGD | **87.38 ± 1.00** | **87.50 ± 1.00** |" in markdown
    assert "| MetaLSTM++ | **87.50 ± 1.00** | **87.50 ± 1.00** |" in markdown
    assert "Bold: the best mean of each column" in markdown and "Holm" in markdown
    latex = (tmp_path / "table1.tex").read_text()
    assert r"MAML & 77.50 $\pm$ 1.00 & \textbf{87.50 $\pm$ 1.00} \\" in latex
    assert r"$\alpha$ = 0.05" in latex
