"""params.yaml: the shipped file is valid, and each kind of mistake is one clear message."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from metastress.config import ParamsError, load_params, load_schema, validate_params
from tests.conftest import REPO, copy_repository

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


def check(mutate):
    params = copy.deepcopy(SHIPPED)
    mutate(params)
    validate_params(params, load_schema(REPO / "params.yaml"))


def test_shipped_params_are_valid():
    assert load_params(REPO / "params.yaml")["profile"] == "quick"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda p: p["maml"].update(inner_step=3),
            r"maml: Additional properties .*'inner_step'.*known keys here: .*inner_steps",
        ),
        (
            lambda p: p["maml"].update(inner_steps="five"),
            r"maml.inner_steps: 'five' is not of type 'integer'",
        ),
        (
            lambda p: p["maml"].update(inner_steps=0),
            r"maml.inner_steps: 0 is less than the minimum of 1",
        ),
        (
            lambda p: p["data"].update(split="random"),
            r"data.split: 'random' is not one of \['paper', 'lake'\]",
        ),
        (
            lambda p: p["settings"].update({"500w1s": {"n_way": 500, "k_shot": 1}}),
            r"settings.500w1s.n_way: 500-way tasks need 500 classes, but the paper split's "
            r"validation part has only 220",
        ),
        (
            lambda p: p["settings"].update({"5w15s": {"n_way": 5, "k_shot": 15}}),
            r"settings.5w15s: k_shot \+ n_query = 15 \+ 15 exceeds the 20 images",
        ),
        (
            lambda p: (
                p["protocol"].update(n_query=10)
                or p["settings"].update({"5w12s": {"n_way": 5, "k_shot": 12}})
            ),
            r"k_shot \+ n_query = 12 \+ 10",
        ),
        (lambda p: p.update(profile="huge"), r"profile: 'huge' is not one of"),
        (  # what yaml.safe_load makes of `graphs: off`
            lambda p: p["protocol"].update(graphs=False),
            r"protocol.graphs: False is not one of \['auto', 'off'\]; YAML reads a bare off, "
            r"on, no or yes as a boolean: put the word in quotes",
        ),
        (
            lambda p: p["experiments"].update(table1=["20w2s"]),
            r"experiments.table1: setting '20w2s' is not defined",
        ),
        (
            lambda p: p["profiles"]["quick"]["final_iterations_by_setting"].update({"20w2s": 5}),
            r"profiles.quick.final_iterations_by_setting: setting '20w2s' is not defined",
        ),
        (
            lambda p: p["experiments"].update(fig4a={"train": "40w1s", "test": "20w5s"}),
            r"experiments.fig4a: 40w1s and 20w5s differ in n_way",
        ),
        (
            lambda p: p["data"].update(split="lake"),
            r"settings.100w1s.n_way: .*lake split's validation part has only 96",
        ),
        (  # the quick profile replaces maml's inner_lr range: its entry is the one to edit
            lambda p: p["maml"].update(inner_lr=0.1),
            r"maml.inner_lr: 0.1 would never run: the search chooses maml.inner_lr \(its range "
            r"is profiles.quick.space.inner_lr\). To change what the search tries, edit "
            r"profiles.quick.space.inner_lr; to run one fixed value, delete maml.space.inner_lr",
        ),
        (  # no profile replaces lam's range
            lambda p: p["taml"].update(lam=0.5),
            r"taml.lam: 0.5 would never run: .*its range is taml.space.lam\)",
        ),
        (  # an algorithm's own key, neither set nor searched: no silent default runs
            lambda p: p["taml"].pop("variant"),
            r"taml.variant is not set: give it a value in taml, or search it",
        ),
        (
            lambda p: p["metalstm"]["space"].pop("meta_lr"),
            r"metalstm.meta_lr is not set: give it a value in metalstm, or search it",
        ),
        (
            lambda p: p["profiles"]["quick"]["space"].update(inner_step=[1, 2]),
            r"profiles.quick.space: \['inner_step'\] is searched by no algorithm",
        ),
    ],
)
def test_bad_params_are_named_with_the_fix(mutate, message):
    with pytest.raises(ParamsError, match=message):
        check(mutate)


def test_shipped_algorithm_sections_hold_no_searched_key():
    for algo in ("maml", "metasgd", "taml", "metalstm", "metalstm_pp"):
        assert not set(SHIPPED[algo]) & set(SHIPPED[algo]["space"]), algo


def test_a_key_taken_out_of_the_space_can_be_fixed():
    def fix_inner_lr(params):
        del params["maml"]["space"]["inner_lr"]
        params["maml"]["inner_lr"] = 0.1

    check(fix_inner_lr)


def test_yaml_syntax_error_is_reported(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("profile: [quick\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_snakemake_words_a_bad_params_yaml_as_the_cli_does(tmp_path):
    repo = copy_repository(tmp_path / "repo")
    params = copy.deepcopy(SHIPPED)
    params["data"]["split"] = "random"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError) as expected:
        validate_params(params, load_schema(REPO / "params.yaml"))
    result = subprocess.run(
        [Path(sys.executable).parent / "snakemake", "--dry-run", "data/splits/paper.json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(expected.value) in said, said
    assert "Failed validating" not in said  # no raw jsonschema dump
