"""End to end on the tiny profile: a plain `snakemake` builds the data, every table and figure
and the metrics, with one training seed and then with two; its report holds them; and a deleted
versioned file is planned again."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY_GRID, copy_repo, run, versioned_files

from metastress import paths

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
        evaluation = json.loads(
            (repo / paths.evaluation_file(algo, "20w1s", "20w1s", 0)).read_text()
        )
        assert headline[algo] == round(100 * evaluation["accuracy"], 2)
        assert sorted(detail[algo]) == ["20w1s", "20w1s_to_20w5s", "20w5s", "20w5s_to_20w1s"]
        assert detail[algo]["20w1s"]["seeds"] == 1
    assert (table["seeds"] == 1).all() and table["seed_std"].isna().all()

    # Figure 1: a run of its own per algorithm, every meta-update recorded from iteration 0
    params = yaml.safe_load((repo / "params.yaml").read_text())
    fig1, tiny = params["experiments"]["fig1"], params["profiles"]["tiny"]
    summary = pd.read_csv(repo / "figures/fig1_summary.csv").set_index("algo")
    updates = tiny["fig1_iterations"] * fig1["meta_batch"]
    assert summary.loc["metalstm", "updates"] == updates
    assert summary.loc["metalstm_pp", "updates"] == tiny["fig1_iterations"]
    for algo in fig1["algorithms"]:
        assert not (repo / paths.run_dir(algo, "20w1s", 0) / "trajectory.pt").exists()

    # Figure 4b: Adam's rate and steps chosen on validation tasks, every grid point kept
    for swap in params["experiments"]["fig4b"]["swaps"]:
        if swap["optimizer_of"] != "adam":
            continue
        where = ("20w5s", "adam", swap["init_of"], 0)
        choice = json.loads((repo / paths.swap_choice_file(*where)).read_text())
        grid = [(p["lr"], p["steps"]) for p in choice["grid"]]
        assert grid == [(lr, s) for lr in TINY_GRID["lr"] for s in TINY_GRID["steps"]]
        result = json.loads((repo / paths.swap_file(*where)).read_text())
        chosen = choice["chosen"]
        assert (result["optimizer_lr"], result["steps"]) == (chosen["lr"], chosen["steps"])
    labels = pd.read_csv(repo / "figures/fig4b.csv")["label"].tolist()
    assert any(label.startswith("MetaLSTM init + Adam (lr ") for label in labels), labels
    assert "Nothing to be done" in run(["snakemake", "--cores", "2"], repo)


def test_two_seeds_add_the_second_and_report_over_both(tiny_build, tmp_path):
    repo = copy_repo(tiny_build.repo, tmp_path / "repo")
    before = versioned_files(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["protocol"]["seeds"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = run(["snakemake", "--cores", "2"], repo)

    # only seed 1 was trained and evaluated: seed 0's files, the search and Figure 1 untouched
    assert "(seed 1)" in log and "(seed 0)" not in log and "Search " not in log
    after = versioned_files(repo)
    kept = [f for f in before if "/seed0/" in f or f.startswith(("data/", "results/search/"))]
    kept += [f for f in before if f.startswith("results/fig1/")]
    assert kept and all(after[f] == before[f] for f in kept)
    for algo in ALGORITHMS:
        assert (repo / paths.model_file(algo, "20w5s", 1)).is_file()
    assert (repo / paths.swap_choice_file("20w5s", "adam", "metalstm", 1)).is_file()

    # every table and figure, and the metrics, over the two seeds
    table = pd.read_csv(repo / "tables/table1.csv")
    assert (table["seeds"] == 2).all() and table["seed_std"].notna().all()
    assert "the mean over 2 training seeds" in (repo / "tables/table1.md").read_text()
    for name in ("fig2", "fig3", "fig4a", "fig4b"):
        assert (pd.read_csv(repo / f"figures/{name}.csv")["seeds"] == 2).all(), name
    detail = json.loads((repo / "metrics/by_setting.json").read_text())["by_setting"]
    for algo in ALGORITHMS:
        assert detail[algo]["20w1s"]["seeds"] == 2 and "seed_std" in detail[algo]["20w1s"]
        assert detail[algo]["20w5s_to_20w1s"]["seeds"] == 2
    curves = pd.read_csv(repo / "metrics/validation_curves.csv")
    assert sorted(curves["seed"].unique()) == [0, 1]
    assert "Nothing to be done" in run(["snakemake", "--cores", "2"], repo)
    report = tmp_path / "report.zip"
    run(["snakemake", "--cores", "1", "--report", str(report)], repo)
    with zipfile.ZipFile(report) as archive:
        html = archive.read("report/report.html").decode()
    assert "the mean over 2 training seeds" in html and "standard deviation over seeds" in html


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
    model = paths.model_file("maml", "20w1s", 0)
    (repo / model).unlink()
    plan = run(["snakemake", "--cores", "1", "--dry-run"], repo)
    assert "Training maml on 20w1s (seed 0)" in plan
    assert f"Missing output files: {model}" in plan
