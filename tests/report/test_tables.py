"""Table 1: cells, missing runs, and the three output formats."""

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
    assert list(csv.columns) == ["algo", "k_shot", "accuracy", "ci95"]
    assert list(csv["algo"]) == [a for a in ALGO_NAMES if a in ACCURACY for _ in (1, 5)]
    assert list(csv["k_shot"]) == [1, 5] * 5
    expected = [100 * acc for pair in ACCURACY.values() for acc in pair]
    assert csv["accuracy"].tolist() == pytest.approx(expected)
    assert csv["ci95"].tolist() == pytest.approx([0.72] * 10)

    markdown = (tmp_path / "tables" / "table1.md").read_text()
    assert "| Model | 1-shot | 5-shot |" in markdown
    assert "| MAML | 91.93 ± 0.72 | 97.65 ± 0.72 |" in markdown
    assert "| MetaLSTM++ | 96.50 ± 0.72 | 98.41 ± 0.72 |" in markdown
    latex = (tmp_path / "tables" / "table1.tex").read_text()
    assert r"MetaLSTM++ & 96.50 $\pm$ 0.72 & 98.41 $\pm$ 0.72 \\" in latex
    assert r"\begin{tabular}{lcc}" in latex


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
    assert "| MetaLSTM | — | 70.00 ± 1.00 |" in markdown
    assert "| MetaLSTM++ | — | — |" in markdown
    assert "| MetaLSTM | ---" not in (tmp_path / "table1.tex").read_text()


def test_mixed_ways_are_refused(write_eval, tmp_path):
    paths = [write_eval(train="20w1s"), write_eval(train="40w5s")]
    with pytest.raises(ReportInputError, match="mix 20, 40-way"):
        table1(paths, tmp_path / "table1")
