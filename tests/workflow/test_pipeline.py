"""End to end on the tiny profile: a plain `snakemake` builds the data, every table and figure
and the metrics; its report holds them; and a deleted versioned file is planned again."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import copy_repo, run

pytestmark = pytest.mark.slow

ALGORITHMS = ["maml", "metasgd", "taml", "metalstm", "metalstm_pp"]
FIGURES = ["fig1", "fig2", "fig3", "fig4a", "fig4b"]


def test_snakemake_builds_every_table_figure_and_metric(tiny_build):
    repo = tiny_build.repo
    # a plain `snakemake` picks up profiles/default (the greedy scheduler, input checksums)
    assert "Using workflow specific profile profiles/default" in tiny_build.log
    with np.load(repo / "data/processed/omniglot28.npz") as npz:
        assert npz["images"].shape == (1623, 20, 28, 28)
    split = json.loads((repo / "data/splits/paper.json").read_text())
    assert [len(split[p]) for p in ("train", "validation", "test")] == [980, 220, 423]

    for name in FIGURES:
        for ext in ("pdf", "png", "csv"):
            assert (repo / "figures" / f"{name}.{ext}").stat().st_size > 0
    table = pd.read_csv(repo / "tables/table1.csv")
    assert sorted(table["algo"].unique()) == sorted(ALGORITHMS)
    assert sorted(table["k_shot"].unique()) == [1, 5]
    markdown = (repo / "tables/table1.md").read_text()
    assert all(name in markdown for name in ("MAML", "MetaSGD", "TAML", "MetaLSTM++"))

    # the headline is each algorithm's mean over Figure 2's settings (here only 20w1s)
    headline = json.loads((repo / "metrics/headline.json").read_text())
    detail = json.loads((repo / "metrics/by_setting.json").read_text())["by_setting"]
    assert sorted(headline) == sorted(detail) == sorted(ALGORITHMS)
    for algo in ALGORITHMS:
        evaluation = json.loads((repo / f"results/eval/{algo}/20w1s/20w1s.json").read_text())
        assert headline[algo] == round(100 * evaluation["accuracy"], 2)
        assert sorted(detail[algo]) == ["20w1s", "20w1s_to_20w5s", "20w5s", "20w5s_to_20w1s"]
    assert "Nothing to be done" in run(["snakemake", "--cores", "2"], repo)


def test_report_holds_table1_and_the_five_figures_with_captions(tiny_build, tmp_path):
    report = tmp_path / "report.zip"
    run(["snakemake", "--cores", "1", "--report", str(report)], tiny_build.repo)
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
        html = archive.read("report/report.html").decode()
    assert any(name.endswith("/table1.csv") for name in names)
    for figure in FIGURES:
        assert any(name.endswith(f"/{figure}.png") for name in names), figure
    for caption in ("Table 1.", "Figure 1.", "Figure 2.", "Figure 3.", "Figure 4a.", "Figure 4b."):
        assert caption in html, caption


def test_a_deleted_model_is_rebuilt_by_a_plain_snakemake(tiny_build, tmp_path):
    repo = copy_repo(tiny_build.repo, tmp_path / "repo")
    (repo / "models/maml/20w1s/model.pt").unlink()
    plan = run(["snakemake", "--cores", "1", "--dry-run"], repo)
    assert "Training maml on 20w1s" in plan
    assert "Missing output files: models/maml/20w1s/model.pt" in plan
