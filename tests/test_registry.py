"""The registry is the one list of algorithms and report outputs: what is derived from it
agrees with it, and what cannot be derived (params.yaml, dvc.yaml, the report package) is
checked against it here."""

import re

import pytest
import yaml

from metastress import hyperparameters, registry
from metastress.config import (
    ParamsError,
    load_params,
    load_schema,
    validate_params,
    with_algorithms,
)
from tests.conftest import REPO

SCHEMA_TYPES = {"integer": int, "number": float, "boolean": bool}
CHOICES = {
    "variant": hyperparameters.TAML_VARIANTS,
    "measure": hyperparameters.MEASURES,
    "measure_on": hyperparameters.MEASURED_ON,
}


@pytest.fixture(scope="module")
def schema():
    return load_schema(REPO / "params.yaml")


def test_every_meta_trained_algorithm_has_a_required_section_of_its_keys(schema):
    common = {"meta_lr", "meta_batch", "space"}
    for algo in registry.meta_trained():
        section = schema["properties"][algo]
        assert algo in schema["required"]
        assert set(section["properties"]) == set(registry.section_keys(algo)) | common
        assert section["required"] == ["space"]  # the rest: set or searched (check_search_keys)
        assert section["additionalProperties"] is False
    assert schema["$defs"]["algorithm_id"]["enum"] == registry.meta_trained()


def test_described_keys_are_the_algorithms_keys_with_their_types_and_choices(schema):
    described = schema["$defs"]["algorithm_keys"]
    used = {key for algo in registry.meta_trained() for key in registry.section_keys(algo)}
    assert set(described) == used
    for algo in registry.meta_trained():
        types = hyperparameters.field_types(registry.algorithm(algo).config)
        for key in registry.section_keys(algo):
            if "enum" in described[key]:
                assert types[key] is str and set(described[key]["enum"]) == set(CHOICES[key])
            else:
                assert SCHEMA_TYPES[described[key]["type"]] is types[key], (algo, key)


def test_an_undescribed_key_is_named(schema):
    raw = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    del raw["$defs"]["algorithm_keys"]["lam"]
    with pytest.raises(ParamsError, match=r"no entry for \['lam'\], config keys of taml"):
        with_algorithms(raw)


def test_params_yaml_has_every_section_and_the_papers_algorithms_by_default():
    params = load_params(REPO / "params.yaml")
    assert params["experiments"]["algorithms"] == registry.in_paper()
    assert "anil" in params and "anil" not in registry.in_paper()


def test_an_algorithm_outside_the_registry_is_refused_with_the_known_ids(schema):
    params = load_params(REPO / "params.yaml")
    params["experiments"]["fig4b"]["swaps"][0]["optimizer_of"] = "adamw"
    with pytest.raises(
        ParamsError, match=r"optimizer_of: .*expected one of \['adam', 'sgd', 'maml'"
    ):
        validate_params(params, schema)
    assert schema["$defs"]["hand_optimizer_id"]["enum"] == registry.hand_optimizers()


def test_report_names_and_kinds_follow_the_registry():
    from metastress.report import EVAL_REPORTS, KINDS
    from metastress.report.data import ALGO_NAMES, HAND_OPTIMIZER_NAMES
    from metastress.report.style import ALGO_STYLE

    assert list(ALGO_NAMES) == registry.meta_trained() == list(ALGO_STYLE)
    assert ALGO_NAMES["metalstm_pp"] == "MetaLSTM++" and ALGO_NAMES["anil"] == "ANIL"
    assert list(HAND_OPTIMIZER_NAMES) == registry.hand_optimizers()
    assert set(KINDS) == set(registry.report_ids())
    reads_evaluations = {r.id for r in registry.REPORTS if r.reads == "evaluations"}
    assert set(EVAL_REPORTS) == reads_evaluations


def test_styles_stay_distinct_for_any_number_of_algorithms():
    from metastress.report.style import styles

    looks = styles([f"algo{i}" for i in range(90)])
    assert len({(s.marker, s.dashes, s.hatch) for s in looks.values()}) == 90
    first_ten = list(looks.values())[:10]
    assert len({s.colour for s in first_ten}) == 10


def test_the_command_line_offers_the_registrys_choices():
    from metastress.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    choices = {
        name: {a.dest: a.choices for a in commands[name]._actions if a.choices}
        for name in ("train", "evaluate", "report")
    }
    assert list(choices["train"]["algo"]) == registry.meta_trained()
    assert list(choices["evaluate"]["algo"]) == registry.meta_trained()
    assert list(choices["evaluate"]["optimizer"]) == registry.hand_optimizers()
    assert list(choices["report"]["kind"]) == registry.report_ids()


def test_dvc_yaml_names_no_algorithm():
    """dvc.yaml cannot import the registry: its one stage runs the whole workflow, so no list
    of algorithms there can fall behind the registry's."""
    words = set(re.split(r"[^a-z_]+", (REPO / "dvc.yaml").read_text()))
    assert not words & {entry.id for entry in registry.ALGORITHMS}


def test_unknown_algo_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown algo 'mamll'; known algorithms: \['maml'"):
        registry.algorithm("mamll")
