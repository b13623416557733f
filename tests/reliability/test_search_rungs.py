"""Successive halving on real (small) Omniglot: a trial extended from its rung checkpoint ends
where a run straight to the larger budget ends, validation does not steer training, rung jobs
extend exactly the survivors that the records name, a rung rerun after the next one scores as
before, and a failed survivor stays failed without training again."""

import json

import torch
from reliability_helpers import SPACE, tiny_run, without_searched

from metastress import checkpoint
from metastress.experiments import apply_choice, sample
from metastress.halving import SearchPlan, survivors
from metastress.search import run_rung, run_trial
from metastress.selection import read_part, select_best
from metastress.train import train_config, work_dir_for

FIRST, FULL = 10, 30  # a rung's budget and the full budget (eta 3)


def search_run(**overrides) -> dict:
    """A search trial's run config, as experiments.run_config makes it: extendable, validated
    every first-rung budget, no trajectory."""
    fields = {"validate_every": FIRST, "trajectory": False, "extendable": True, **overrides}
    run = tiny_run(**fields)
    return without_searched(run, SPACE)


def last_state(work_root, run: dict, trial: int) -> dict:
    config = train_config(apply_choice(run, sample(SPACE, run["seed"], trial)))
    work = work_dir_for(config, work_root / f"trial{trial}")
    return checkpoint.load(work / "checkpoints" / "last.pt", regenerate="")


def assert_same_training(a: dict, b: dict) -> None:
    """Equal weights, optimizer state and sampler position, bit for bit."""
    for key, tensor in a["learner"].items():
        assert torch.equal(tensor, b["learner"][key]), key
    first, second = a["optimizer"]["state"], b["optimizer"]["state"]
    assert first.keys() == second.keys()
    for index in first:
        for name, value in first[index].items():
            assert torch.equal(value, second[index][name]), (index, name)
    assert torch.equal(a["generator"], b["generator"])
    assert a["state"]["iteration"] == b["state"]["iteration"]


def validation_rows(state: dict) -> list:
    return [(r["iteration"], r["val_accuracy"]) for r in state["state"]["rows"] if "val_loss" in r]


def test_extending_a_trial_equals_training_it_straight(data_path, split_path, tmp_path):
    run = search_run()
    extended, straight, unvalidated = tmp_path / "extended", tmp_path / "straight", tmp_path / "u"
    first = run_trial(run, SPACE, 0, FIRST, data_path, split_path, extended)
    longer = run_trial(run, SPACE, 0, FULL, data_path, split_path, extended)  # resumes at 10
    direct = run_trial(run, SPACE, 0, FULL, data_path, split_path, straight)

    # one checkpoint folder per trial, whatever the budget: the budget is not hashed
    assert len(list((extended / "trial0").iterdir())) == 1
    assert longer == direct and first["iterations"] == FIRST and longer["iterations"] == FULL
    a, b = last_state(extended, run, 0), last_state(straight, run, 0)
    assert_same_training(a, b)
    assert validation_rows(a) == validation_rows(b)
    assert [i for i, _ in validation_rows(a)] == [10, 20, 30]

    # validation does not steer training: validated only at the end, the same weights
    rare = search_run(validate_every=FULL)
    run_trial(rare, SPACE, 0, FULL, data_path, split_path, unvalidated)
    c = last_state(unvalidated, rare, 0)
    assert_same_training(b, c)
    assert validation_rows(c) == [(30, validation_rows(b)[-1][1])]


def test_rungs_extend_the_survivors_the_records_name(data_path, split_path, tmp_path):
    run, work = search_run(), tmp_path / "work"
    plan = SearchPlan("halving", trials=3, iterations=FULL, eta=3, rungs=2, trials_per_job=2)
    assert (plan.budgets(), plan.sizes(), plan.parts(0), plan.parts(1)) == ([10, 30], [3, 1], 2, 1)

    def rung(index, part, previous, name):
        out = tmp_path / name
        run_rung(run, SPACE, plan, index, part, previous, data_path, split_path, out, work)
        return out

    rung0 = [rung(0, 0, [], "r0p0.json"), rung(0, 1, [], "r0p1.json")]
    rung1 = rung(1, 0, rung0, "r1p0.json")
    records0 = [r for path in rung0 for r in read_part(path)["trials"]]
    assert [r["trial"] for r in records0] == [0, 1, 2] and all(
        r["status"] == "ok" for r in records0
    )
    (winner,) = survivors(records0, 1)
    final = read_part(rung1)
    assert [r["trial"] for r in final["trials"]] == [winner["trial"]]
    assert final["iterations"] == FULL and final["trials"][0]["iterations"] == FULL
    for trial in range(3):  # the survivor was extended, the others stayed at the first rung
        wanted = FULL if trial == winner["trial"] else FIRST
        assert last_state(work, run, trial)["state"]["iteration"] == wanted

    # rung 0 rerun after rung 1 extended its survivor: the same records, from the history
    again = rung(0, 0, [], "again.json")
    assert json.loads(again.read_text()) == json.loads(rung0[0].read_text())

    best = select_best([*rung0, rung1], tmp_path / "best.json")
    assert best["trial"] == winner["trial"] and best["iterations"] == FULL
    assert best["val_accuracy"] == final["trials"][0]["val_accuracy"]


def test_a_failed_survivor_stays_failed_and_is_not_trained(data_path, split_path, tmp_path):
    run, work = search_run(), tmp_path / "work"
    plan = SearchPlan("halving", trials=3, iterations=FULL, eta=2, rungs=2, trials_per_job=2)
    assert plan.sizes() == [3, 2]
    (tmp_path / "rung0.json").write_text(
        json.dumps(
            {
                "rung": 0,
                "part": 0,
                "iterations": 15,
                "trials": [
                    {
                        "trial": t,
                        "choice": sample(SPACE, run["seed"], t),
                        "iterations": 15,
                        "status": "ok" if t == 0 else "failed",
                        "val_accuracy": 0.5 if t == 0 else None,
                        "reason": None if t == 0 else "DivergenceError: nan",
                    }
                    for t in range(3)
                ],
            }
        )  # fmt: skip
    )
    out = tmp_path / "rung1.json"
    run_rung(run, SPACE, plan, 1, 0, [tmp_path / "rung0.json"], data_path, split_path, out, work)
    trained, carried = read_part(out)["trials"]
    assert (trained["trial"], trained["status"], trained["iterations"]) == (0, "ok", FULL)
    assert carried == json.loads((tmp_path / "rung0.json").read_text())["trials"][1]
    assert not (work / "trial1").exists()
