"""Successive halving through Snakemake on the tiny profile: the rung jobs run as a static DAG
(rung 0 in two parts, rung 1 extending the survivors from their checkpoints), the choice comes
from the last rung; and `metastress cost` counts the jobs Snakemake's own dry run plans."""

import json
import re
from collections import Counter

import pytest
import torch
import yaml
from workflow_helpers import copy_repo, run, tiny_params

from metastress.config import load_params
from metastress.cost_report import snakemake_jobs
from metastress.experiments import apply_choice, run_config, sample, search_space
from metastress.halving import survivors
from metastress.train import train_config, work_dir_for

pytestmark = pytest.mark.slow

# budgets 1 and 2 iterations; 3 trials, then 2; 2 trials per job: rung 0 in two parts
HALVING = dict(search_method="halving", search_trials=3, search_eta=2, search_rungs=2,
               search_trials_per_job=2)  # fmt: skip


def set_profile(repo, **keys) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["profiles"][params["profile"]].update(keys)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def job_stats(log: str) -> Counter:
    """Snakemake's own job counts: the 'Job stats' table of a dry run."""
    table = log.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)})


def test_halving_runs_the_rungs_and_extends_the_survivors(tiny_build, tmp_path):
    repo = copy_repo(tiny_build.repo, tmp_path / "repo")
    set_profile(repo, **HALVING)
    search = repo / "results/search/maml/20w1s"
    log = run(["snakemake", "--cores", "2", "results/search/maml/20w1s/best.json"], repo)
    assert job_stats(log) == Counter(search_rung=3, search_select=1)

    rung0 = [r for p in ("part0", "part1") for r in json.loads(
        (search / "rung0" / f"{p}.json").read_text())["trials"]]  # fmt: skip
    rung1 = json.loads((search / "rung1/part0.json").read_text())
    assert [r["trial"] for r in rung0] == [0, 1, 2] and {r["iterations"] for r in rung0} == {1}
    kept = [r["trial"] for r in survivors(rung0, 2)]
    assert [r["trial"] for r in rung1["trials"]] == kept and rung1["iterations"] == 2
    params = load_params(repo / "params.yaml")
    run_, space = run_config(params, "maml", "20w1s", "search"), search_space(params, "maml")
    for trial in range(3):  # survivors extended to 2 iterations, in their own folders
        config = train_config(apply_choice(run_, sample(space, run_["seed"], trial)))
        folder = work_dir_for(config, repo / "checkpoints/search/maml/20w1s" / f"trial{trial}")
        saved = torch.load(folder / "checkpoints/last.pt", weights_only=True)
        assert saved["state"]["iteration"] == (2 if trial in kept else 1), trial
    best = json.loads((search / "best.json").read_text())
    assert best["trial"] in kept and best["iterations"] == 2
    assert [(r["trial"], r["iterations"]) for r in best["trials"]] == [
        (t, 2 if t in kept else 1) for t in range(3)
    ]
    # done; and the whole tiny DAG plans three rung jobs per algorithm and setting
    assert "Nothing to be done" in run(
        ["snakemake", "-n", "results/search/maml/20w1s/best.json"], repo
    )
    planned = job_stats(run(["snakemake", "-n", "--forceall"], repo))
    assert planned["search_rung"] == 3 * planned["search_select"] == 3 * 10


@pytest.mark.parametrize("method", ["random", "halving"])
def test_cost_counts_the_jobs_of_snakemakes_own_dry_run(repo_copy, method):
    tiny_params(repo_copy, search_trials=3)
    set_profile(repo_copy, **{**HALVING, "search_method": method})
    params = load_params(repo_copy / "params.yaml")
    counted = Counter(rule for rule, _ in snakemake_jobs(params, repo_copy))
    assert counted == job_stats(run(["snakemake", "-n", "--forceall"], repo_copy))
    assert counted["search_rung"] == 10 * (2 if method == "random" else 3)


def test_cost_prints_every_profile(repo_copy):
    out = run(["metastress", "cost", "--all"], repo_copy)
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    for name in params["profiles"]:
        assert f"Profile {name}:" in out
    assert out.count("| **total** |") == len(params["profiles"])
    assert "Assumptions:" in out and "one H200" in out
