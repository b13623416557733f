"""From params.yaml to job configs: one meaning per key. A searched key reaches a job only
through the search's choice; a fixed one only through its section; the README's example
experiments change what the jobs run (applied with DVC's own `-S` parser)."""

import copy
import re
import shlex

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from metastress.config import ParamsError, load_params
from metastress.experiments import (
    apply_choice,
    evaluation_config,
    fig1_run_config,
    final_run_config,
    run_config,
    sample,
    search_space,
    seeds,
)
from metastress.train import train_config
from tests.conftest import REPO

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


def test_searched_keys_reach_the_run_only_through_the_choice():
    run = run_config(SHIPPED, "maml", "20w1s", "search")
    assert "meta_lr" not in run and "meta_batch" not in run
    assert not {"inner_lr", "inner_steps"} & set(run["algorithm"])
    choice = sample(search_space(SHIPPED, "maml"), run["seed"], trial=0)
    config = train_config(apply_choice(run, choice))
    assert (config.meta_lr, config.meta_batch) == (choice["meta_lr"], choice["meta_batch"])
    assert config.algorithm["inner_lr"] == choice["inner_lr"]
    assert config.algorithm["inner_steps"] == choice["inner_steps"]
    assert config.algorithm["first_order"] is True  # fixed in the section


def test_a_key_both_fixed_and_chosen_is_refused():
    run = run_config(SHIPPED, "maml", "20w1s", "final")
    with pytest.raises(ValueError, match=r"the search chose \['meta_lr'\], which the run"):
        apply_choice({**run, "meta_lr": 0.1}, {"meta_lr": 0.01})
    with pytest.raises(ValueError, match=r"the search chose \['first_order'\]"):
        apply_choice(run, {"first_order": False})


def test_a_fixed_key_is_what_runs():
    params = copy.deepcopy(SHIPPED)
    del params["maml"]["space"]["inner_lr"]
    params["maml"]["inner_lr"] = 0.1
    assert run_config(params, "maml", "20w1s", "search")["algorithm"]["inner_lr"] == 0.1
    assert "inner_lr" not in search_space(params, "maml")


def test_a_profile_may_give_a_setting_its_own_final_iterations():
    params = copy.deepcopy(SHIPPED)
    quick = params["profiles"]["quick"]
    quick.update(final_iterations=7, final_iterations_by_setting={"20w5s": 11})
    assert run_config(params, "maml", "20w5s", "final")["iterations"] == 11
    assert run_config(params, "maml", "40w1s", "final")["iterations"] == 7
    assert run_config(params, "maml", "20w5s", "search")["iterations"] == quick["search_iterations"]
    del quick["final_iterations_by_setting"]  # optional: without it, every setting gets the same
    assert run_config(params, "maml", "20w5s", "final")["iterations"] == 7


def test_the_profile_replaces_the_ranges_of_the_keys_an_algorithm_searches():
    quick = SHIPPED["profiles"]["quick"]["space"]
    assert search_space(SHIPPED, "maml") == {k: quick[k] for k in SHIPPED["maml"]["space"]}
    taml = search_space(SHIPPED, "taml")
    assert taml["lam"] == SHIPPED["taml"]["space"]["lam"]  # the quick profile has no lam
    assert "inner_lr" not in search_space(SHIPPED, "metalstm")  # nor does metalstm


def test_evaluation_config_uses_the_profile_names():
    evaluation = evaluation_config(SHIPPED, "20w5s")
    quick = SHIPPED["profiles"]["quick"]
    assert (evaluation["test_tasks"], evaluation["eval_batch"]) == (
        quick["test_tasks"],
        quick["eval_batch"],
    )


def job_configs(params: dict) -> dict:
    """What every search trial, final training and evaluation of the profile would run with."""
    jobs = {}
    trials = params["profiles"][params["profile"]]["search_trials"]
    for algo in params["experiments"]["algorithms"]:
        space = search_space(params, algo)
        for setting in params["settings"]:
            run = run_config(params, algo, setting, "search")
            for trial in range(trials):
                jobs["search", algo, setting, trial] = apply_choice(
                    run, sample(space, run["seed"], trial)
                )
            jobs["final", algo, setting] = run_config(params, algo, setting, "final")
    for setting in params["settings"]:
        jobs["evaluate", setting] = evaluation_config(params, setting)
    return jobs


def readme_experiments() -> list[list[str]]:
    """The `-S` overrides of each `dvc exp run` command line in the README's code blocks."""
    readme = (REPO / "README.md").read_text()
    lines = re.findall(r"^dvc exp run .*$", readme, flags=re.MULTILINE)
    experiments = []
    for line in lines:
        words = shlex.split(line, comments=True)
        experiments.append([words[i + 1] for i, word in enumerate(words) if word == "-S"])
    return experiments


def test_the_readme_has_example_experiments():
    assert len(readme_experiments()) >= 4
    assert all(readme_experiments())


@pytest.mark.parametrize("overrides", readme_experiments(), ids=" ".join)
def test_each_readme_experiment_changes_what_runs(overrides, tmp_path):
    edited = tmp_path / "params.yaml"
    edited.write_text((REPO / "params.yaml").read_text())
    apply_overrides(str(edited), overrides)  # what `dvc exp run -S` does
    params = load_params(edited)  # valid: the experiment runs
    before, after = job_configs(SHIPPED), job_configs(params)
    assert before.keys() == after.keys()
    assert [job for job in before if before[job] != after[job]], f"{overrides} changes no job"


def test_final_models_train_with_consecutive_seeds_and_the_first_is_the_one_seed_run():
    params = copy.deepcopy(SHIPPED)
    params["protocol"].update(seed=3, seeds=2)
    assert seeds(params) == [3, 4]
    first, second = (final_run_config(params, "maml", "20w1s", s) for s in (3, 4))
    assert first == run_config(params, "maml", "20w1s", "final")  # as with one seed
    assert {**first, "seed": 4} == second
    assert evaluation_config(params, "20w1s")["seed"] == 3  # every seed on the same test tasks
    assert seeds(SHIPPED) == [SHIPPED["protocol"]["seed"]]  # one seed by default


def test_the_figure_1_pair_shares_everything_but_its_update_schedule():
    fig1 = SHIPPED["experiments"]["fig1"]
    runs = {algo: fig1_run_config(SHIPPED, algo) for algo in fig1["algorithms"]}
    assert {algo: run.pop("algo") for algo, run in runs.items()} == {
        a: a for a in fig1["algorithms"]
    }
    first, *others = runs.values()
    assert all(other == first for other in others)
    assert (first["meta_lr"], first["meta_batch"]) == (fig1["meta_lr"], fig1["meta_batch"])
    assert first["algorithm"]["inner_steps"] == fig1["inner_steps"]
    assert first["seed"] == SHIPPED["protocol"]["seed"] and first["trajectory"] is True
    quick = SHIPPED["profiles"]["quick"]
    assert first["iterations"] == first["validate_every"] == quick["fig1_iterations"]
    assert first["patience"] == 0
    train_config({**first, "algo": fig1["algorithms"][0]})  # a valid TrainConfig
    # the final trainings of the same algorithms record nothing
    assert run_config(SHIPPED, "metalstm", fig1["setting"], "final")["trajectory"] is False


def test_figure_1_refuses_an_algorithm_that_searches_what_it_does_not_fix(tmp_path):
    edited = tmp_path / "params.yaml"
    params = copy.deepcopy(SHIPPED)
    params["experiments"]["fig1"]["algorithms"] = ["maml", "metalstm_pp"]
    edited.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"fig1.algorithms: maml searches \['inner_lr'\]"):
        load_params(edited)
