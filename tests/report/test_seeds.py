"""Several training seeds per model: the report's mean over seeds, their standard deviation and
the task interval of the seed-averaged per-task accuracies, from constructed files; one seed
gives exactly its file's numbers."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from metastress.intervals import confidence_half_width
from metastress.report import ReportInputError, fig2, fig4b, table1
from metastress.report import figures as figures_module
from metastress.report.significance import holm, paired_p_value

TASKS = np.array([0.90, 0.80, 0.85, 0.95, 0.90, 0.80, 0.85, 0.95])  # 8 tasks
# per algorithm, the two seeds' per-task accuracies: MAML's seeds straddle 0.05 below
# MetaLSTM++'s, so its seed-averaged tasks sit 0.05 below on every task
SEEDS = {
    "maml": (TASKS - 0.03, TASKS - 0.07),
    "metalstm_pp": (TASKS + 0.01, TASKS - 0.01),
}


def two_seed_files(write_eval, train="20w1s", **overrides):
    return [
        write_eval(
            algo=algo,
            train=train,
            seed=seed,
            accuracy=float(per_task.mean()),
            ci95=0.02,
            per_task=per_task.tolist(),
            n_tasks=len(per_task),
            **overrides,
        )
        for algo, runs in SEEDS.items()
        for seed, per_task in enumerate(runs)
    ]


def expected(algo: str) -> dict:
    """The numbers by hand: mean of the seeds' means, their s.d., the CI of the averaged tasks."""
    runs = SEEDS[algo]
    averaged = (runs[0] + runs[1]) / 2
    std = statistics.stdev(averaged.tolist())
    return {
        "accuracy": 100 * statistics.fmean(float(r.mean()) for r in runs),
        "seed_std": 100 * statistics.stdev(float(r.mean()) for r in runs),
        "ci95": 100 * confidence_half_width(std, len(averaged), 0.95),
        "ci999": 100 * confidence_half_width(std, len(averaged), 0.999),
        "per_task": averaged,
    }


def test_table1_two_seeds_mean_spread_interval_and_marks(write_eval, tmp_path):
    table1(two_seed_files(write_eval), tmp_path / "table1")
    csv = pd.read_csv(tmp_path / "table1.csv").set_index("algo")
    assert list(csv.columns) == [
        "k_shot",
        "accuracy",
        "ci95",
        "seeds",
        "seed_std",
        "best",
        "p_holm",
        "tied_with_best",
    ]
    for algo in SEEDS:
        numbers = expected(algo)
        assert csv.loc[algo, "seeds"] == 2
        for column in ("accuracy", "seed_std", "ci95"):
            assert csv.loc[algo, column] == pytest.approx(numbers[column], rel=1e-9), column
    # significance on the seed-averaged tasks: MAML 0.05 below on all 8 (p = 2/2**8)
    p = paired_p_value(expected("metalstm_pp")["per_task"], expected("maml")["per_task"])
    assert p == pytest.approx(2 / 2**8)
    assert csv.loc["maml", "p_holm"] == pytest.approx(holm([p])[0])
    assert csv["best"].tolist() == [False, True] and csv["tied_with_best"].tolist() == [False, True]

    markdown = (tmp_path / "table1.md").read_text()
    maml = expected("maml")
    cell = f"{maml['accuracy']:.2f} ± {maml['ci95']:.2f} (s.d. {maml['seed_std']:.2f})"
    assert f"| MAML | {cell} |" in markdown
    assert "the mean over 2 training seeds" in markdown
    assert "s.d. the standard deviation over seeds" in markdown
    latex = (tmp_path / "table1.tex").read_text()
    assert cell.replace("±", r"$\pm$") in latex


def test_one_seed_is_its_files_numbers(write_eval, tmp_path):
    files = two_seed_files(write_eval)[::2]  # seed 0 of each algorithm
    table1(files, tmp_path / "table1")
    csv = pd.read_csv(tmp_path / "table1.csv").set_index("algo")
    for algo, runs in SEEDS.items():
        assert csv.loc[algo, "accuracy"] == pytest.approx(100 * float(runs[0].mean()), rel=1e-12)
        assert csv.loc[algo, "ci95"] == pytest.approx(2.0, rel=1e-12)  # the file's own CI
        assert csv.loc[algo, "seeds"] == 1 and math.isnan(csv.loc[algo, "seed_std"])
    markdown = (tmp_path / "table1.md").read_text()
    assert "(s.d." not in markdown and "seeds" not in markdown


def test_fig2_two_seeds_draws_their_spread(write_eval, tmp_path, monkeypatch):
    drawn = []
    save = figures_module.save_figure
    monkeypatch.setattr(
        figures_module,
        "save_figure",
        lambda figure, data, prefix: (drawn.append(figure), save(figure, data, prefix)),
    )
    fig2(two_seed_files(write_eval), tmp_path / "fig2")
    csv = pd.read_csv(tmp_path / "fig2.csv").set_index("algo")
    for algo in SEEDS:
        numbers = expected(algo)
        assert csv.loc[algo, "seeds"] == 2
        for column in ("accuracy", "seed_std", "ci999"):
            assert csv.loc[algo, column] == pytest.approx(numbers[column], rel=1e-9), column
    (ax,) = drawn[0].axes
    spreads = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(spreads) == len(SEEDS)  # one per algorithm, in its colour
    for container, algo in zip(spreads, SEEDS, strict=True):
        ((low, high),) = container.lines[2][0].get_segments()
        assert high[1] - low[1] == pytest.approx(2 * expected(algo)["seed_std"])
    assert "± s.d. over 2 seeds" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_fig4b_labels_the_rates_the_seeds_chose(write_eval, tmp_path):
    files = [
        write_eval(
            algo="metalstm",
            train="20w5s",
            seed=seed,
            accuracy=accuracy,
            optimizer="adam",
            optimizer_lr=lr,
            steps=20,
        )
        for seed, (lr, accuracy) in enumerate([(0.001, 0.5), (0.01, 0.7)])
    ]
    fig4b(files, tmp_path / "fig4b")
    csv = pd.read_csv(tmp_path / "fig4b.csv")
    assert csv["label"].tolist() == ["MetaLSTM init + Adam (lr 0.001/0.01, 20 steps)"]
    assert csv["accuracy"].tolist() == pytest.approx([60.0])
    assert csv["seeds"].tolist() == [2]


def test_two_files_of_one_seed_are_refused(write_eval, tmp_path):
    files = [write_eval(seed=0), write_eval(seed=0)]
    with pytest.raises(ReportInputError, match="more than one file") as error:
        table1(files, tmp_path / "table1")
    assert all(str(f) in str(error.value) for f in files)


def test_seeds_over_different_task_counts_are_refused(write_eval, tmp_path):
    files = [write_eval(seed=0), write_eval(seed=1, n_tasks=2, per_task=[0.9, 0.9])]
    with pytest.raises(ReportInputError, match="table1: the seeds' results cover different"):
        table1(files, tmp_path / "table1")
