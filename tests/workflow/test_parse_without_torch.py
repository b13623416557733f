"""Snakemake parses the workflow without torch (validation, run configs and paths are
torch-free), and the files metastress.paths names are ones its rules build."""

import os
import re
import subprocess

import pytest
from workflow_helpers import run

from metastress import paths

pytestmark = pytest.mark.slow


def test_snakemake_dry_run_imports_no_torch(repo_copy, tmp_path, monkeypatch):
    blocker = tmp_path / "blocked" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        'raise ImportError("torch was imported while Snakemake parsed the workflow")\n'
    )
    pythonpath = [str(blocker.parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, pythonpath)))
    blocked = subprocess.run(["python", "-c", "import torch"], capture_output=True, text=True)
    assert "torch was imported" in blocked.stderr  # the blocker is in the way
    targets = [
        paths.PROCESSED,
        paths.split_file("paper"),
        paths.search_best("maml", "20w1s"),
        paths.model_file("maml", "20w1s", 0),
        paths.evaluation_file("maml", "20w1s", "20w5s", 0),
        paths.swap_choice_file("20w5s", "adam", "metalstm", 0),
        paths.trajectory_file("metalstm", "20w1s"),
    ]
    for command in (["snakemake", "-n"], ["snakemake", "-n", *targets]):
        log = run(command, repo_copy)
        assert "torch was imported" not in log
    jobs = {"search_select": 2, "train_final": 2, "evaluate": 1, "evaluate_hand_swap": 1}
    jobs["train_fig1"] = 1
    for rule, count in jobs.items():  # the dry run's job stats
        assert re.search(rf"^{rule}\s+{count}$", log, re.MULTILINE), rule
