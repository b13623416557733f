"""A sixth algorithm joins the workflow by its module, registry entry and params.yaml section:
added to `experiments.algorithms`, ANIL is searched, trained and evaluated on the tiny profile."""

import json

import pytest
import yaml
from workflow_helpers import run, tiny_params

from metastress import paths

pytestmark = pytest.mark.slow


def test_anil_is_searched_trained_and_evaluated(repo_copy):
    tiny_params(repo_copy)
    params_file = repo_copy / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["experiments"]["algorithms"].append("anil")
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    result = paths.evaluation_file("anil", "20w1s", "20w5s", 0)
    run(
        ["snakemake", "--cores", "2", result, "models/anil.json", "results/search/anil.json"],
        repo_copy,
    )
    scores = json.loads((repo_copy / result).read_text())
    assert (scores["algo"], scores["train_setting"], scores["test_setting"]) == (
        "anil",
        "20w1s",
        "20w5s",
    )
    trained = json.loads((repo_copy / "models/anil.json").read_text())
    assert sorted(trained) == ["20w1s/seed0/summary", "20w5s/seed0/summary"]
