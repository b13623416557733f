"""End to end: Snakemake and DVC build the data phase from the mirror in a repository copy."""

import json

import numpy as np
import pytest
from workflow_helpers import run

pytestmark = pytest.mark.slow


def test_snakemake_then_dvc_build_the_data(repo_copy):
    log = run(
        ["snakemake", "--cores", "2", "data/processed/omniglot28.npz", "data/splits/paper.json"],
        repo_copy,
    )
    # a plain `snakemake` picks up profiles/default (the greedy scheduler)
    assert "Using workflow specific profile profiles/default" in log
    with np.load(repo_copy / "data/processed/omniglot28.npz") as npz:
        assert npz["images"].shape == (1623, 20, 28, 28)
    split = json.loads((repo_copy / "data/splits/paper.json").read_text())
    assert [len(split[p]) for p in ("train", "validation", "test")] == [980, 220, 423]

    run(["dvc", "repro", "split"], repo_copy)
    assert json.loads((repo_copy / "data/splits/paper.json").read_text()) == split
    status = run(["dvc", "status", "split"], repo_copy)
    assert "up to date" in status
    second = run(["dvc", "repro", "split"], repo_copy)
    assert "didn't change, skipping" in second
