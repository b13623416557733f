"""Figure 4b's hand optimizer: its learning rate and steps are chosen on the validation tasks the
model trained with, never on the test tasks, recorded with every grid point, then tested."""

import json

import pytest
import torch

from metastress import evaluate as evaluate_module
from metastress.cli import main
from metastress.data.splits import write_split
from metastress.data.tasks import TaskSampler
from metastress.engine import Engine
from metastress.evaluate import tune_hand_optimizer, tuned_swap
from metastress.train import TrainConfig, train

GRID = {"lr": [0.001, 0.1], "steps": [1, 3]}


@pytest.fixture(scope="module")
def trained(processed_path, paper_split, tmp_path_factory):
    """(model.pt, processed, split, its TrainConfig): a 5-way 1-shot MAML barely trained."""
    folder = tmp_path_factory.mktemp("tuning")
    split = folder / "paper.json"
    write_split(paper_split, split)
    config = TrainConfig(
        algo="maml",
        n_way=5,
        k_shot=1,
        n_query=1,
        meta_lr=0.01,
        meta_batch=2,
        iterations=2,
        patience=0,
        validate_every=2,
        validation_tasks=3,
        seed=4,
        device="cpu",
        algorithm={"inner_steps": 1, "inner_lr": 0.4, "hidden": 4},
    )
    train(config, processed_path, split, folder / "model")
    return folder / "model" / "model.pt", processed_path, split, config


def evaluation(n_way=5, k_shot=1):
    return {
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": 1,
        "setting": f"{n_way}w{k_shot}s",
        "test_tasks": 4,
        "eval_batch": 2,
        "seed": 0,
        "rotate": True,
        "device": "cpu",
    }


def test_tuning_reads_only_the_validation_part_and_records_every_grid_point(
    trained, tmp_path, monkeypatch
):
    model, processed, split, config = trained
    parts, load_part = [], evaluate_module.load_part
    monkeypatch.setattr(
        evaluate_module, "load_part", lambda *args: (parts.append(args[2]), load_part(*args))[1]
    )
    record = tune_hand_optimizer(
        model, "adam", GRID, evaluation(), processed, split, tmp_path / "choice.json"
    )
    assert parts == ["validation"]
    assert json.loads((tmp_path / "choice.json").read_text()) == record
    assert [(p["lr"], p["steps"]) for p in record["grid"]] == [
        (0.001, 1),
        (0.001, 3),
        (0.1, 1),
        (0.1, 3),
    ]
    assert all(0 <= p["val_accuracy"] <= 1 and p["val_loss"] > 0 for p in record["grid"])
    best = max(record["grid"], key=lambda p: (p["val_accuracy"], -p["val_loss"]))
    assert record["chosen"] == {"lr": best["lr"], "steps": best["steps"]}
    assert record["val_accuracy"] == best["val_accuracy"]
    assert (record["optimizer"], record["init_of"], record["setting"]) == ("adam", "maml", "5w1s")
    assert (record["seed"], record["validation_tasks"]) == (config.seed, config.validation_tasks)


def test_the_validation_tasks_are_those_the_training_validated_on(trained, tmp_path, monkeypatch):
    model, processed, split, config = trained
    asked, fixed_tasks = [], TaskSampler.fixed_tasks

    def recorded(self, count, seed, batch):
        asked.append((count, seed))
        return fixed_tasks(self, count, seed, batch)

    monkeypatch.setattr(TaskSampler, "fixed_tasks", recorded)
    tune_hand_optimizer(model, "sgd", GRID, evaluation(), processed, split, tmp_path / "c.json")
    assert asked == [(config.validation_tasks, config.seed)]


def test_the_choice_follows_validation_where_the_test_tasks_prefer_another(
    trained, tmp_path, monkeypatch
):
    """Constructed scores: validation prefers (lr 0.001, 3 steps), the test tasks (0.1, 1)."""
    model, processed, split, _ = trained
    scores = {
        "validation": {(0.001, 1): 0.5, (0.001, 3): 0.8, (0.1, 1): 0.6, (0.1, 3): 0.4},
        "test": {(0.001, 1): 0.3, (0.001, 3): 0.35, (0.1, 1): 0.9, (0.1, 3): 0.2},
    }
    part_of_images, load_part = {}, evaluate_module.load_part

    def tagged_load_part(processed_path, split_path, part, device):
        images = load_part(processed_path, split_path, part, device)
        part_of_images[id(images)] = part
        return images

    def tagged_tasks(self, count, seed, batch):
        return [part_of_images[id(self.images)]]

    def scored(self, learner, tasks, steps=None, init=None):
        (part,) = tasks
        accuracy = scores[part][learner.config.inner_lr, steps]
        return {"loss": 1 - accuracy, "accuracy": accuracy, "per_task": [accuracy] * 4}

    monkeypatch.setattr(evaluate_module, "load_part", tagged_load_part)
    monkeypatch.setattr(TaskSampler, "fixed_tasks", tagged_tasks)
    monkeypatch.setattr(Engine, "evaluate", scored)
    result = tuned_swap(
        model,
        "adam",
        GRID,
        evaluation(),
        processed,
        split,
        tmp_path / "result.json",
        tmp_path / "choice.json",
    )
    choice = json.loads((tmp_path / "choice.json").read_text())
    assert choice["chosen"] == {"lr": 0.001, "steps": 3} and choice["val_accuracy"] == 0.8
    assert [p["val_accuracy"] for p in choice["grid"]] == [0.5, 0.8, 0.6, 0.4]
    assert (result["optimizer"], result["optimizer_lr"], result["steps"]) == ("adam", 0.001, 3)
    assert result["accuracy"] == pytest.approx(0.35)  # the test score of the choice, not 0.9


def test_ties_go_to_the_lower_loss_and_a_diverged_point_loses(trained, tmp_path, monkeypatch):
    model, processed, split, _ = trained
    scores = {(0.001, 1): (0.5, 1.0), (0.001, 3): (0.5, 0.7), (0.1, 1): (0.9, float("nan"))}
    scores[0.1, 3] = (0.2, 2.0)

    def scored(self, learner, tasks, steps=None, init=None):
        accuracy, loss = scores[learner.config.inner_lr, steps]
        return {"loss": loss, "accuracy": accuracy, "per_task": [accuracy]}

    monkeypatch.setattr(Engine, "evaluate", scored)
    record = tune_hand_optimizer(
        model, "adam", GRID, evaluation(), processed, split, tmp_path / "c"
    )
    assert record["chosen"] == {"lr": 0.001, "steps": 3}


def test_the_rules_form_tunes_then_tests(trained, tmp_path):
    model, processed, split, _ = trained
    out, choice = tmp_path / "swap.json", tmp_path / "swap.choice.json"
    args = ["evaluate", "--processed", str(processed), "--split", str(split)]
    args += ["--model", str(model), "--evaluation", json.dumps(evaluation()), "--out", str(out)]
    main([*args, "--optimizer", "adam", "--tune", json.dumps(GRID), "--choice-out", str(choice)])
    chosen = json.loads(choice.read_text())["chosen"]
    result = json.loads(out.read_text())
    assert (result["optimizer_lr"], result["steps"]) == (chosen["lr"], chosen["steps"])
    assert result["n_tasks"] == 4 and result["seed"] == 4 and result["init_from"] is None

    with pytest.raises(SystemExit, match=r"needs --optimizer and --choice-out \(missing: --choice"):
        main([*args, "--optimizer", "adam", "--tune", json.dumps(GRID)])
    tuned = [*args, "--optimizer", "adam", "--tune", json.dumps(GRID), "--choice-out", str(choice)]
    with pytest.raises(SystemExit, match=r"without --optimizer-lr.*given: --optimizer-lr"):
        main([*tuned, "--optimizer-lr", "0.1"])


def test_an_untuned_result_records_its_rate(trained, tmp_path):
    model, processed, split, _ = trained
    out = tmp_path / "r.json"
    result = evaluate_module.evaluate(
        model, evaluation(), processed, split, out, optimizer="sgd", optimizer_lr=0.05
    )
    assert (result["optimizer"], result["optimizer_lr"]) == ("sgd", 0.05)
    own = evaluate_module.evaluate(model, evaluation(), processed, split, tmp_path / "o.json")
    assert own["optimizer_lr"] is None and own["seed"] == 4
    assert torch.tensor(own["per_task"]).shape == (4,)
