"""Reading evaluation files: percent conversion and errors that name the file and the fix."""

import json

import pytest
from report_helpers import make_eval

from metastress.report import ReportInputError, main
from metastress.report.data import load_evals, require_unique


def test_load_evals_reads_percent_and_nulls(write_eval):
    frame = load_evals([write_eval(accuracy=0.9193, ci95=0.0072, optimizer="adam")])
    row = frame.iloc[0]
    assert row["accuracy"] == pytest.approx(91.93) and row["ci95"] == pytest.approx(0.72)
    assert row["name"] == "MAML" and row["optimizer"] == "adam"
    assert frame["init_from"].isna().all()
    assert frame["per_task"].tolist() == [[0.9193] * 4]  # fractions, for paired tests


def test_missing_key_names_file_key_and_rebuild_command(write_eval):
    record = make_eval()
    del record["ci95"]
    path = write_eval(record)
    with pytest.raises(ReportInputError, match="'ci95'") as error:
        load_evals([path])
    assert str(path) in str(error.value) and f"snakemake --force {path}" in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "holds a JSON list"),
        (json.dumps(make_eval(algo="metalstm++")), "algo is 'metalstm\\+\\+'"),
        (json.dumps(make_eval(optimizer="rmsprop")), "optimizer is 'rmsprop'"),
        (json.dumps(make_eval(accuracy=93.0)), "fraction in \\[0, 1\\]"),
        (json.dumps(make_eval(per_task=[0.9] * 3)), "one accuracy per test task .* got 3 values"),
        (json.dumps(make_eval(per_task=0.9)), "per_task must list .* got 0.9"),
    ],
)
def test_malformed_files_are_named(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ReportInputError, match=message) as error:
        load_evals([path])
    assert str(path) in str(error.value)


def test_absent_file_and_no_files(tmp_path):
    with pytest.raises(ReportInputError, match="does not exist"):
        load_evals([tmp_path / "absent.json"])
    with pytest.raises(ReportInputError, match="no evaluation files"):
        load_evals([])


def test_two_files_for_one_cell_are_both_named(write_eval):
    paths = [write_eval(), write_eval()]
    with pytest.raises(ReportInputError, match="more than one file") as error:
        require_unique(load_evals(paths), ["algo", "k_shot"], "table1")
    assert all(str(p) in str(error.value) for p in paths)


def test_main_rejects_unknown_kind_and_no_trajectories(write_eval, tmp_path):
    with pytest.raises(ReportInputError, match="unknown report 'fig9'"):
        main("fig9", [write_eval()], tmp_path / "fig9")
    with pytest.raises(ReportInputError, match="no trajectory files"):
        main("fig1", [], tmp_path / "fig1")
