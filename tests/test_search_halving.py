"""The search's rungs from constructed records: budgets, sizes and jobs of a plan computed by
hand, who survives (failed last, ties to the lower trial index), what each part trains, and
what selection keeps. No training: metastress.halving and metastress.selection are torch-free.
"""

import json

import pytest
import yaml

from metastress.config import ParamsError, load_schema, validate_params
from metastress.halving import SearchPlan, part_trials, plan_from_profile, survivors
from metastress.selection import select_best
from tests.conftest import REPO

SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


def plan(**overrides) -> SearchPlan:
    fields = dict(method="halving", trials=12, iterations=900, eta=3, rungs=3, trials_per_job=5)
    return SearchPlan(**{**fields, **overrides})


def ok(trial: int, accuracy: float, iterations: int = 100) -> dict:
    return {"trial": trial, "choice": {"meta_lr": trial / 100}, "iterations": iterations,
            "status": "ok", "reason": None, "val_accuracy": accuracy}  # fmt: skip


def failed(trial: int, iterations: int = 100) -> dict:
    return {"trial": trial, "choice": {"meta_lr": trial / 100}, "iterations": iterations,
            "status": "failed", "reason": "DivergenceError: nan", "val_accuracy": None}  # fmt: skip


def test_halving_plan_by_hand():
    halving = plan()
    # 900 / 3^2, 900 / 3, 900; 12 trials, then ceil(12 / 3) = 4, then ceil(4 / 3) = 2
    assert halving.budgets() == [100, 300, 900]
    assert halving.sizes() == [12, 4, 2]
    assert [halving.parts(r) for r in range(3)] == [3, 1, 1]  # 5 trials per job: 5 + 5 + 2
    assert [halving.part_size(0, p) for p in range(3)] == [5, 5, 2]
    # 12 x 100, then 4 trials extended by 200, then 2 by 600; random: 12 x 900
    assert halving.spent() == 12 * 100 + 4 * 200 + 2 * 600 == 3200
    assert plan(method="random").spent() == 12 * 900
    assert halving.validate_every() == 100


def test_random_is_one_rung_at_the_full_budget():
    random = plan(method="random", iterations=1000)  # eta and rungs unused: 1000 is fine
    assert (random.rung_count, random.budgets(), random.sizes()) == (1, [1000], [12])
    assert random.validate_every() == 1000  # as before halving: one validation, at the end
    assert [r["trial"] for r in part_trials(random, 0, 2, [])] == [10, 11]


def test_budgets_must_be_whole_iterations():
    with pytest.raises(ValueError, match="search_iterations 1000 is not a multiple of .* = 9"):
        plan(iterations=1000)


def test_survivors_rank_failed_last_and_break_ties_by_trial_index():
    records = [ok(0, 0.5), failed(1), ok(2, 0.7), ok(3, 0.5), ok(4, 0.2), failed(5)]
    assert [r["trial"] for r in survivors(records, 3)] == [0, 2, 3]  # 0 beats 3 on the tie
    assert [r["trial"] for r in survivors(records, 5)] == [0, 1, 2, 3, 4]  # failed 1 before 5


def test_each_part_of_a_rung_takes_its_share_of_the_survivors():
    halving = plan(trials_per_job=3)
    rung0 = [ok(t, accuracy) for t, accuracy in enumerate([3, 9, 1, 7, 5, 8, 2, 0, 6, 4, 9, 1])]
    assert [[r["trial"] for r in part_trials(halving, 0, p, [])] for p in range(4)] == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]
    ]  # fmt: skip
    # the best 4: accuracies 9 (trials 1 and 10), 8 (5), 7 (3); in trial order, 3 per job
    first, second = (part_trials(halving, 1, p, rung0) for p in range(2))
    assert [r["trial"] for r in first] == [1, 3, 5] and [r["trial"] for r in second] == [10]
    assert first[0]["before"] is rung0[1]
    shuffled = rung0[::-1]  # who survives depends on the records, not on their order
    assert [r["trial"] for r in part_trials(halving, 1, 0, shuffled)] == [1, 3, 5]


def test_a_rung_refuses_incomplete_records_or_a_part_outside_the_plan():
    halving = plan()
    with pytest.raises(
        ValueError, match=r"rung 0 holds the records of trials \[0, 1\], expected 12"
    ):
        part_trials(halving, 1, 0, [ok(0, 0.1), ok(1, 0.2)])
    with pytest.raises(ValueError, match="rung 1, part 1 is not in the search plan"):
        part_trials(halving, 1, 1, [ok(t, 0.1) for t in range(12)])


def write_part(path, rung, records, iterations=100):
    path.write_text(json.dumps({"rung": rung, "part": 0, "iterations": iterations,
                                "trials": records}))  # fmt: skip
    return path


def test_selection_takes_the_best_of_the_last_rung(tmp_path):
    rung0 = write_part(tmp_path / "r0.json", 0, [ok(0, 0.9), failed(1), ok(2, 0.5), ok(3, 0.4)])
    rung1 = write_part(tmp_path / "r1.json", 1, [ok(0, 0.6, 300), ok(2, 0.8, 300)], 300)
    best = select_best([rung1, rung0], tmp_path / "best.json")  # any order of files
    # trial 0 led rung 0 but trial 2 is better at the full budget
    assert (best["trial"], best["val_accuracy"], best["iterations"]) == (2, 0.8, 300)
    assert best["choice"] == {"meta_lr": 0.02}
    # every trial once, at the furthest rung it reached
    assert [(r["trial"], r["iterations"]) for r in best["trials"]] == [
        (0, 300), (1, 100), (2, 300), (3, 100)
    ]  # fmt: skip
    assert best["failed"] == 1
    assert json.loads((tmp_path / "best.json").read_text()) == best


def test_a_last_rung_of_failed_trials_is_an_error(tmp_path):
    rung0 = write_part(tmp_path / "r0.json", 0, [ok(0, 0.9), failed(1)])
    rung1 = write_part(tmp_path / "r1.json", 1, [failed(0, 300)], 300)
    with pytest.raises(RuntimeError, match="every trial of the last rung failed"):
        select_best([rung0, rung1], tmp_path / "best.json")


def test_every_shipped_profile_runs_with_either_method():
    schema = load_schema(REPO / "params.yaml")
    for name, profile in SHIPPED["profiles"].items():
        for method in ("random", "halving"):
            params = {**SHIPPED, "profile": name}
            params["profiles"] = {**SHIPPED["profiles"], name: {**profile, "search_method": method}}
            validate_params(params, schema)
            searched = plan_from_profile(params["profiles"][name])
            assert searched.budgets()[-1] == profile["search_iterations"], (name, method)


def test_an_uneven_halving_budget_names_the_profile_and_the_fix():
    params = {**SHIPPED, "profiles": {**SHIPPED["profiles"]}}
    params["profiles"]["quick"] = {**params["profiles"]["quick"], "search_method": "halving",
                                   "search_iterations": 5, "search_eta": 3}  # fmt: skip
    with pytest.raises(ParamsError, match=r"profiles.quick: search_iterations 5 is not a multiple"):
        validate_params(params, load_schema(REPO / "params.yaml"))
