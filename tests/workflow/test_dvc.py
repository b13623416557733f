"""DVC on top of a complete Snakemake run (tiny profile), as a researcher drives it: `dvc repro`
records without rebuilding, an experiment from the README changes a result that `dvc exp show`
compares, `dvc exp apply` brings it back, and bad params never touch an output."""

import csv
import io
import json
import os
import re
import shlex
import time

import pytest
import yaml
from workflow_helpers import copy_repo, run, run_unchecked, versioned_files

from tests.conftest import REPO

pytestmark = pytest.mark.slow

EXPERIMENT = ["-S", "metalstm.lstm_hidden=8"]  # one of the README's example experiments
CHANGED, UNCHANGED = "metalstm", ["maml", "metasgd", "taml", "metalstm_pp"]
UP_TO_DATE = "Data and pipelines are up to date"


def readme_command(prefix: str) -> list[str]:
    """The words of the README's first command line that starts with `prefix`."""
    line = re.search(rf"^{prefix} .*$", (REPO / "README.md").read_text(), flags=re.MULTILINE)
    assert line, f"the README has no `{prefix}` line"
    return shlex.split(line.group(0), comments=True)


def exp_show_rows(repo) -> list[dict]:
    return list(csv.DictReader(io.StringIO(run(["dvc", "exp", "show", "--csv"], repo))))


def metric_columns(row: dict, algo: str) -> dict:
    """The headline and per-setting accuracies of `algo` in an `exp show --csv` row."""
    return {
        k: v
        for k, v in row.items()
        if k == algo or (k.startswith(f"by_setting.{algo}.") and "accuracy" in k)
    }


def test_dvc_records_snakemake_and_compares_an_experiment(tiny_build, tmp_path):
    repo = copy_repo(tiny_build.repo, tmp_path / "repo")
    built = versioned_files(repo)

    # 1. after a complete snakemake run, `dvc repro` rebuilds nothing and records everything
    t0 = time.monotonic()
    recorded = run(["dvc", "repro"], repo)
    repro_s = time.monotonic() - t0
    assert "Nothing to be done" in recorded, recorded
    assert versioned_files(repo) == built
    assert UP_TO_DATE in run(["dvc", "status"], repo)
    run(["git", "add", "dvc.lock", "metrics"], repo)
    run(["git", "commit", "-qm", "tiny results"], repo)

    # 2. the README's experiment reruns only MetaLSTM's jobs (and the report) and changes its
    #    results, which `dvc exp show --csv` holds beside the baseline's
    t0 = time.monotonic()
    experiment = run(["dvc", "exp", "run", *EXPERIMENT], repo)
    experiment_s = time.monotonic() - t0
    assert f"Training {CHANGED} on 20w1s" in experiment
    for algo in UNCHANGED:
        assert f"Training {algo} on" not in experiment and f"Search {algo} " not in experiment
    rows = exp_show_rows(repo)
    baseline = next(r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace")
    branch = next(r for r in rows if r["typ"] == "branch_base")  # the experiment
    assert baseline["metalstm.lstm_hidden"] == "20" and branch["metalstm.lstm_hidden"] == "8"
    changed = metric_columns(baseline, CHANGED), metric_columns(branch, CHANGED)
    assert len(changed[0]) >= 5 and changed[0].keys() == changed[1].keys()
    assert changed[0] != changed[1], changed
    for algo in UNCHANGED:
        assert metric_columns(baseline, algo) == metric_columns(branch, algo), algo

    # 3. the README's `dvc exp show` fits a 120-column terminal and shows what changed
    shown = run(readme_command("dvc exp show"), repo, env={**os.environ, "COLUMNS": "120"})
    assert max(len(line) for line in shown.splitlines()) <= 120, shown
    assert "…" not in shown and CHANGED in shown and "metalstm.lstm_hidden" in shown, shown
    diff = run(["dvc", "exp", "diff", "HEAD"], repo)
    assert f"by_setting.{CHANGED}." in diff and "metalstm.lstm_hidden" in diff, diff

    # 4. Figures 2 and 4a compare revisions with one series per algorithm
    name = branch["Experiment"]
    plots = json.loads(run(["dvc", "plots", "diff", "HEAD", name, "--json"], repo))["data"]
    for figure in ("figures/fig2.csv", "figures/fig4a.csv"):
        encoding = plots[figure][0]["content"]["encoding"]
        assert encoding["color"]["field"] == "algo" and encoding["strokeDash"]["field"] == "rev"

    # 5. back to the baseline and to the experiment: after `snakemake --touch`, Snakemake and
    #    DVC both have nothing to do
    run(["git", "checkout", "-q", "--", "."], repo)
    run(["dvc", "checkout", "--force"], repo)
    assert versioned_files(repo) == built
    for restored in ([], ["dvc", "exp", "apply", name]):
        if restored:
            run(restored, repo)
        run(["snakemake", "--cores", "1", "--touch"], repo)
        assert "Nothing to be done" in run(["snakemake", "--cores", "1", "--dry-run"], repo)
        assert UP_TO_DATE in run(["dvc", "status"], repo)
    applied, applied_params = versioned_files(repo), (repo / "params.yaml").read_text()
    headline = json.loads((repo / "metrics/headline.json").read_text())
    assert headline[CHANGED] == float(branch[CHANGED])

    # 6. params that must not run stop `dvc exp run` and `dvc repro` before any output changes
    refused = run_unchecked(["dvc", "exp", "run", "-S", "+maml.inner_lr=0.1"], repo)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "maml.inner_lr: 0.1 would never run" in said and "edit maml.space.inner_lr" in said
    params = yaml.safe_load(applied_params)
    params["settings"]["200w1s"]["n_way"] = 5000
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    invalid = run_unchecked(["dvc", "repro"], repo)
    assert invalid.returncode != 0
    assert "settings.200w1s.n_way: 5000-way tasks need" in invalid.stdout + invalid.stderr
    assert versioned_files(repo) == applied
    print(
        f"\n[test_dvc] snakemake {tiny_build.seconds:.1f} s; then dvc repro {repro_s:.1f} s "
        f"(nothing rebuilt); dvc exp run {' '.join(EXPERIMENT)}: {experiment_s:.1f} s"
    )
