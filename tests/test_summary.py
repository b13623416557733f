"""The metrics DVC compares: values computed by hand from made-up result files, one seed and
several."""

import csv
import json
import subprocess
import sys

import pytest

from metastress import paths
from metastress.summary import summarize


def write_evaluation(root, algo, train, test, accuracy, ci95, seed=0, per_task=None):
    path = root / paths.evaluation_file(algo, train, test, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"accuracy": accuracy, "std": 9 * ci95, "ci95": ci95, "ci999": 1.7 * ci95}
    path.write_text(json.dumps({**record, "per_task": per_task or [accuracy]}))
    return path


def write_model(root, algo, setting, best_val, seconds, val_accuracies, seed=0):
    """A model folder whose metrics.tsv has one row per entry of `seconds`; validation rows
    where `val_accuracies` is not None."""
    folder = root / paths.run_dir(algo, setting, seed)
    folder.mkdir(parents=True)
    summary = {"algo": algo, "iterations": len(seconds), "best_val_accuracy": best_val}
    (folder / "summary.json").write_text(json.dumps(summary))
    rows = ["iteration\tloss\taccuracy\tval_loss\tval_accuracy\tseconds"]
    for i, (s, val) in enumerate(zip(seconds, val_accuracies, strict=True), start=1):
        val_cells = "\t" if val is None else f"0.5\t{val}"
        rows.append(f"{i}\t1.0\t0.1\t{val_cells}\t{s}")
    (folder / "metrics.tsv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def results(tmp_path):
    evaluations = [
        write_evaluation(tmp_path, "maml", "20w1s", "20w1s", 0.25, 0.0125),
        write_evaluation(tmp_path, "maml", "40w1s", "40w1s", 0.125, 0.01),
        write_evaluation(tmp_path, "maml", "40w5s", "40w5s", 0.5, 0.02),
        write_evaluation(tmp_path, "maml", "40w5s", "40w1s", 0.0625, 0.03),
        write_evaluation(tmp_path, "taml", "20w1s", "20w1s", 0.2, 0.01),
        write_evaluation(tmp_path, "taml", "40w1s", "40w1s", 0.1, 0.01),
    ]
    models = [
        write_model(tmp_path, "maml", "20w1s", 0.3, [1.25, 2.5, 0.25], [None, 0.2, 0.3]),
        write_model(tmp_path, "taml", "20w1s", 0.4, [1.0, 1.0], [0.4, None]),
    ]
    return tmp_path, evaluations, models


def test_headline_is_the_mean_accuracy_over_the_headline_settings(results):
    root, evaluations, models = results
    out = summarize(evaluations, models, ["20w1s", "40w1s"], root / "metrics")
    expected = {"maml": 18.75, "taml": 15.0}  # (25 + 12.5) / 2, (20 + 10) / 2
    assert out["headline"] == expected
    assert json.loads((root / "metrics/headline.json").read_text()) == expected


def test_by_setting_holds_test_training_and_transfer_numbers(results):
    root, evaluations, models = results
    summarize(evaluations, models, ["20w1s"], root / "metrics")
    maml = json.loads((root / "metrics/by_setting.json").read_text())["by_setting"]["maml"]
    assert maml["20w1s"] == {
        "accuracy": 25.0,
        "ci95": 1.25,
        "seeds": 1,
        "best_val_accuracy": 30.0,
        "iterations": 3,
        "train_seconds": 4.0,  # 1.25 + 2.5 + 0.25
    }
    assert maml["40w5s_to_40w1s"] == {"accuracy": 6.25, "ci95": 3.0, "seeds": 1}
    assert maml["40w5s"] == {"accuracy": 50.0, "ci95": 2.0, "seeds": 1}


def test_validation_curves_have_one_row_per_validation(results):
    root, evaluations, models = results
    summarize(evaluations, models, ["20w1s"], root / "metrics")
    with open(root / "metrics/validation_curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [
        (r["algo"], r["setting"], r["seed"], r["iteration"], r["val_accuracy"]) for r in rows
    ] == [
        ("maml", "20w1s", "0", "2", "20.0"),
        ("maml", "20w1s", "0", "3", "30.0"),
        ("taml", "20w1s", "0", "1", "40.0"),
    ]


def test_a_missing_headline_setting_is_named(results):
    root, evaluations, models = results
    with pytest.raises(ValueError, match=r"no in-setting evaluation of maml on \['60w1s'\]"):
        summarize(evaluations, models, ["20w1s", "60w1s"], root / "metrics")


def test_several_seeds_give_the_mean_their_spread_and_the_task_interval(tmp_path):
    """Two seeds over the same 4 tasks: per-task means (0.3, 0.5, 0.7, 0.5), mean 0.5 over
    seeds (0.45 and 0.55), s.d. over seeds 0.0707; task CI 1.96 * 0.1633 / 2 = 0.16."""
    evaluations = [
        write_evaluation(tmp_path, "maml", "20w1s", "20w1s", 0.45, 0.01, 0, [0.2, 0.5, 0.6, 0.5]),
        write_evaluation(tmp_path, "maml", "20w1s", "20w1s", 0.55, 0.01, 1, [0.4, 0.5, 0.8, 0.5]),
    ]
    models = [
        write_model(tmp_path, "maml", "20w1s", 0.3, [1.0, 2.0], [None, 0.3], seed=0),
        write_model(tmp_path, "maml", "20w1s", 0.5, [1.5, 1.5, 1.0], [None, 0.4, 0.5], seed=1),
    ]
    out = summarize(evaluations, models, ["20w1s"], tmp_path / "metrics")
    assert out["headline"] == {"maml": 50.0}
    assert out["by_setting"]["maml"]["20w1s"] == {
        "accuracy": 50.0,
        "ci95": 16.0,  # 100 * 1.959964 * stdev(0.3, 0.5, 0.7, 0.5) / 2, rounded
        "seeds": 2,
        "seed_std": 7.07,
        "best_val_accuracy": 40.0,
        "iterations": 2.5,
        "train_seconds": 7.0,  # the seeds' seconds summed
    }
    with open(tmp_path / "metrics/validation_curves.csv", newline="") as f:
        rows = [(r["seed"], r["iteration"]) for r in csv.DictReader(f)]
    assert rows == [("0", "2"), ("1", "2"), ("1", "3")]


def test_a_file_outside_the_workflows_layout_is_named(results, tmp_path):
    root, evaluations, models = results
    stray = tmp_path / "elsewhere.json"
    stray.write_text(evaluations[0].read_text())
    with pytest.raises(RuntimeError, match="elsewhere.json is not laid out as results/eval"):
        summarize([stray], models, ["20w1s"], root / "metrics")


def test_a_damaged_training_log_names_the_file_and_the_fix(results):
    root, evaluations, models = results
    (models[0] / "metrics.tsv").write_text("iteration\tseconds\n1\tfast\n")
    with pytest.raises(RuntimeError, match=r"maml/20w1s/seed0/metrics.tsv: unreadable"):
        summarize(evaluations, models, ["20w1s"], root / "metrics")


def test_summary_job_does_not_import_torch():
    code = "import sys, metastress.summary; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
