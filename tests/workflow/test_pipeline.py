"""End to end on the tiny profile: Snakemake builds every table and figure, DVC then knows
them, and a change to one algorithm's params reruns only that algorithm's stages."""

import pandas as pd
import pytest
from workflow_helpers import run, tiny_params

pytestmark = pytest.mark.slow

ALGORITHMS = ["maml", "metasgd", "taml", "metalstm", "metalstm_pp"]


def test_every_table_and_figure_then_dvc(repo_copy):
    tiny_params(repo_copy)
    run(["git", "commit", "-qam", "tiny profile"], repo_copy)
    run(["snakemake", "--cores", "2"], repo_copy)

    for name in ("fig1", "fig2", "fig3", "fig4a", "fig4b"):
        for ext in ("pdf", "png", "csv"):
            assert (repo_copy / "figures" / f"{name}.{ext}").stat().st_size > 0
    table = pd.read_csv(repo_copy / "tables/table1.csv")
    assert sorted(table["algo"].unique()) == sorted(ALGORITHMS)
    assert sorted(table["k_shot"].unique()) == [1, 5]
    markdown = (repo_copy / "tables/table1.md").read_text()
    assert all(name in markdown for name in ("MAML", "MetaSGD", "TAML", "MetaLSTM++"))
    assert "Nothing to be done" in run(["snakemake", "--cores", "2"], repo_copy)

    # DVC adopts what Snakemake built, then sees nothing to do
    run(["dvc", "commit", "--force"], repo_copy)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo_copy)
    run(["git", "add", "dvc.lock"], repo_copy)
    run(["git", "commit", "-qm", "lock"], repo_copy)

    # an experiment on one algorithm's param reruns only that algorithm's stages (and the
    # shared evaluation and report after them)
    rerun = run(["dvc", "exp", "run", "-S", "taml.lam=0.5"], repo_copy)
    assert "Running stage 'search@taml'" in rerun and "Running stage 'train@taml'" in rerun
    for other in ("maml", "metasgd", "metalstm", "metalstm_pp"):
        assert f"Running stage 'search@{other}'" not in rerun
        assert f"Running stage 'train@{other}'" not in rerun
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo_copy)
    shown = run(["dvc", "exp", "show", "--no-pager", "--csv"], repo_copy)
    assert "taml.lam" in shown and "0.5" in shown
