"""The commands people type: `metastress train ALGO SETTING` and `metastress evaluate ALGO
SETTING` read params.yaml (with --set overrides), take the search's choice when there is one,
and write where the workflow's rules write; the rules' flags still work beside them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metastress import __version__, paths
from metastress.cli import main
from metastress.config import load_params
from metastress.data.splits import write_split
from metastress.experiments import apply_choice, final_run_config
from metastress.train import train_config
from tests.conftest import REPO

TINY = ["--params", str(REPO / "params.yaml"), "--set", "profile=tiny"]


@pytest.fixture
def workspace(processed_path, paper_split, tmp_path, monkeypatch):
    """A repository root with the data phase's outputs, as the current directory."""
    (tmp_path / "data" / "processed").mkdir(parents=True)
    os.symlink(processed_path, tmp_path / paths.PROCESSED)
    write_split(paper_split, tmp_path / paths.split_file("paper"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def saved_config(algo: str, setting: str, seed: int = 0) -> dict:
    return torch.load(paths.model_file(algo, setting, seed), weights_only=True)["config"]


def write_choice(algo: str, setting: str, choice: dict) -> Path:
    best = Path(paths.search_best(algo, setting))
    best.parent.mkdir(parents=True)
    best.write_text(json.dumps({"choice": choice}))
    return best


def test_train_by_name_without_a_search_names_the_search_to_run(workspace):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "anil", "20w1s", *TINY])
    assert "run the search first: snakemake --cores 2 results/search/anil/20w1s/best.json" in str(
        exit_.value
    )
    assert not Path(paths.run_dir("anil", "20w1s", 0)).exists()


def test_train_then_evaluate_by_name_write_the_rules_files(workspace, capsys):
    choice = {"inner_steps": 1, "inner_lr": 0.1, "meta_lr": 0.01, "meta_batch": 2}
    write_choice("anil", "20w1s", choice)
    main(["train", "anil", "20w1s", *TINY])
    params = load_params(REPO / "params.yaml", ["profile=tiny"])
    expected = train_config(apply_choice(final_run_config(params, "anil", "20w1s", 0), choice))
    expected = expected.hashed()
    assert saved_config("anil", "20w1s") == expected
    for name in ("metrics.tsv", "summary.json"):
        assert (Path(paths.run_dir("anil", "20w1s", 0)) / name).is_file()
    assert not (Path(paths.run_dir("anil", "20w1s", 0)) / "trajectory.pt").exists()
    assert len(list(Path(paths.train_work_root("anil", "20w1s")).iterdir())) == 1

    main(["evaluate", "anil", "20w1s", "--test", "20w5s", *TINY])
    result = json.loads(Path(paths.evaluation_file("anil", "20w1s", "20w5s", 0)).read_text())
    assert (result["algo"], result["test_setting"], result["n_tasks"]) == ("anil", "20w5s", 4)
    assert result["seed"] == 0
    assert "anil 20w1s -> 20w5s" in capsys.readouterr().out


def test_a_second_seed_by_name_trains_and_is_tested_on_the_same_tasks(workspace):
    choice = {"inner_steps": 1, "inner_lr": 0.1, "meta_lr": 0.01, "meta_batch": 2}
    write_choice("anil", "20w1s", choice)
    two_seeds = [*TINY, "--set", "protocol.seeds=2"]
    for seed in ("0", "1"):
        main(["train", "anil", "20w1s", "--seed", seed, *two_seeds])
        main(["evaluate", "anil", "20w1s", "--seed", seed, *two_seeds])
    first, second = (saved_config("anil", "20w1s", seed) for seed in (0, 1))
    assert (first["seed"], second["seed"]) == (0, 1)
    assert {**first, "seed": 1} == second  # the seed is all that differs
    results = [
        json.loads(Path(paths.evaluation_file("anil", "20w1s", "20w1s", seed)).read_text())
        for seed in (0, 1)
    ]
    assert [r["seed"] for r in results] == [0, 1]
    assert results[0]["n_tasks"] == results[1]["n_tasks"] == 4
    assert len(list(Path(paths.train_work_root("anil", "20w1s")).iterdir())) == 2


def test_train_by_name_takes_the_searchs_choice(workspace, capsys):
    choice = {"inner_steps": 1, "inner_lr": 0.1, "meta_lr": 0.01, "meta_batch": 2}
    best = write_choice("maml", "20w1s", choice)
    main(["train", "maml", "20w1s", *TINY])
    assert f"using the search's choice in {best}" in capsys.readouterr().err
    params = load_params(REPO / "params.yaml", ["profile=tiny"])
    run = apply_choice(final_run_config(params, "maml", "20w1s", 0), choice)
    assert saved_config("maml", "20w1s") == train_config(run).hashed()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "maml", "20w1s", "--set", "maml.inner_steps=0"], "maml.inner_steps: 0 is less"),
        (["train", "maml", "20w1s", "--set", "maml.inner_steps"], "expected KEY=VALUE"),
        (["train", "maml", "30w1s"], "setting '30w1s' is not in params.yaml's settings"),
        (["train", "maml"], "name what to run, e.g. maml 20w1s"),
        (["train", "maml", "20w1s", "--seed", "1"], "--seed 1 is not one of this run's"),
        (["train", "maml", "20w1s", "--out", "x"], "takes --run, --processed, --split, --out"),
        (["evaluate", "maml", "20w1s"], "models/maml/20w1s/seed0/model.pt does not exist"),
    ],
)
def test_mistakes_are_named(workspace, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--params", str(REPO / "params.yaml")])
    assert message in str(exit_.value)


def test_missing_data_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"snakemake --cores 2 data/splits/paper.json"):
        main(["train", "maml", "20w1s", *TINY])


def test_an_explicit_mirror_beats_the_environment_variable(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIGLOT_MIRROR", str(tmp_path / "no-such-mirror"))
    main(["data", "download", "--out", str(tmp_path / "raw"), "--mirror", str(mirror)])
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(
        p.name for p in mirror.glob("*.zip")
    )


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "metastress", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"metastress {__version__}"
