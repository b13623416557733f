"""Evaluation on fixed meta-test tasks, identical for every algorithm of a setting.

Beyond the in-setting score it covers the paper's other questions with the same code: a
test setting other than the training one (transfer), an adaptation-steps override
(ablation), and swapping the initialization or the inner optimizer between models (or for
plain Adam/SGD) — Figure 4b. A hand optimizer's learning rate and step count are chosen from a
grid on the validation tasks the model was trained with (`tune_hand_optimizer`), never on the
test tasks, before it is tested (`tuned_swap`). A model is evaluated by the engine it was
trained with (its task mode and precision) on the evaluation's device.
"""

import math
from pathlib import Path

import torch

from metastress import checkpoint
from metastress.algorithms import MetaLearner, build
from metastress.atomic import write_json
from metastress.data.tasks import Episode, TaskSampler
from metastress.dataset import load_part
from metastress.engine import Engine, resolve_device, resolve_engine
from metastress.intervals import confidence_half_width


def detached(weights: dict) -> dict:
    return {k: w.detach() for k, w in weights.items()}


def load_trained(path: Path, device: torch.device | str = "cpu") -> tuple[MetaLearner, dict]:
    """A trained learner and its run config (train.TrainConfig's hashed fields), from model.pt
    or a checkpoint."""
    saved = checkpoint.load(
        path, regenerate="rerun its training (snakemake reruns it when the file is deleted)"
    )
    config = saved["config"]
    learner = build(config["algo"], config["n_way"], config["algorithm"], config["seed"])
    learner.load_state_dict(saved["learner"])
    return learner.to(device).eval(), config


def evaluate(
    model: Path,
    evaluation: dict,
    processed: Path,
    split: Path,
    out: Path,
    steps: int | None = None,
    init_from: Path | None = None,
    optimizer: str | None = None,
    optimizer_lr: float | None = None,
) -> dict:
    """Score a trained model on the test split and write the result JSON to `out`.

    Args:
        model: model.pt of the model whose inner optimizer adapts (or whose init is used with
            `optimizer`).
        evaluation: experiments.evaluation_config of the test setting.
        steps: adaptation steps; None uses the model's own `inner_steps`.
        init_from: take the initialization from this other model's model.pt.
        optimizer: a hand optimizer ("adam", "sgd"): adapt the model's initialization with it
            (learning rate `optimizer_lr`) instead of its own inner loop.
    """
    device = resolve_device(evaluation["device"])
    learner, train_config = load_trained(model, device)
    engine = _engine(train_config, device)
    init, donor_algo = None, None
    if init_from is not None:
        donor, donor_config = load_trained(init_from, device)
        init, donor_algo = detached(donor.initial_weights()), donor_config["algo"]
    if optimizer is not None:
        init = init or detached(learner.initial_weights())
        learner = hand_learner(optimizer, optimizer_lr, learner, train_config["n_way"], device)
    if evaluation["n_way"] != train_config["n_way"]:
        raise ValueError(
            f"{model} was trained {train_config['n_way']}-way; it cannot be "
            f"tested on {evaluation['n_way']}-way tasks"
        )
    tasks = _fixed_tasks(
        processed, split, "test", evaluation, evaluation["test_tasks"], evaluation["seed"],
        evaluation["eval_batch"], device,
    )  # fmt: skip
    scores = engine.evaluate(learner, tasks, steps, init)
    accuracy = torch.tensor(scores["per_task"], dtype=torch.float64)
    std = accuracy.std(unbiased=True).item() if len(accuracy) > 1 else 0.0
    result = {
        "algo": train_config["algo"],
        "seed": train_config["seed"],
        "train_setting": f"{train_config['n_way']}w{train_config['k_shot']}s",
        "test_setting": evaluation["setting"],
        "n_way": evaluation["n_way"],
        "k_shot": evaluation["k_shot"],
        "accuracy": accuracy.mean().item(),
        "std": std,
        "ci95": confidence_half_width(std, len(accuracy), 0.95),
        "ci999": confidence_half_width(std, len(accuracy), 0.999),
        "n_tasks": len(accuracy),
        "per_task": scores["per_task"],
        "steps": steps if steps is not None else learner.config.inner_steps,
        "init_from": donor_algo,
        "optimizer": optimizer,
        "optimizer_lr": optimizer_lr if optimizer is not None else None,
    }
    write_json(out, result)
    return result


def hand_learner(
    optimizer: str, lr: float, trained: MetaLearner, n_way: int, device: torch.device
) -> MetaLearner:
    """The hand optimizer `optimizer` at rate `lr` for the base learner of `trained`."""
    hand_config = {
        "inner_steps": trained.config.inner_steps,
        "inner_lr": lr,
        "hidden": trained.config.hidden,
        "activation": trained.config.activation,
    }
    return build(optimizer, n_way, hand_config, seed=0).to(device)


def tune_hand_optimizer(
    model: Path,
    optimizer: str,
    grid: dict,
    evaluation: dict,
    processed: Path,
    split: Path,
    out: Path,
) -> dict:
    """Choose the learning rate and step count with which `optimizer` adapts `model`'s
    initialization best, on the validation tasks the model's training validated on (the split's
    validation part; the test part is never read), and write every grid point's score to `out`.

    Args:
        model: model.pt whose initialization is adapted.
        optimizer: a hand optimizer id (registry.hand_optimizers()).
        grid: {"lr": [learning rates], "steps": [step counts]}; every pair is tried.
        evaluation: the evaluation config; its device and eval_batch are used.

    Returns:
        dict (written to `out`): optimizer, init_of, setting, seed, validation_tasks, chosen
        ({lr, steps}: the highest validation accuracy; ties go to the lower validation loss,
        then to the first in grid order), val_accuracy of the choice, and grid: one entry
        {lr, steps, val_accuracy, val_loss} per pair, lr-major in the grid's order.
    """
    device = resolve_device(evaluation["device"])
    trained, train_config = load_trained(model, device)
    engine = _engine(train_config, device)
    init = detached(trained.initial_weights())
    tasks = _fixed_tasks(
        processed, split, "validation", train_config, train_config["validation_tasks"],
        train_config["seed"], evaluation["eval_batch"], device,
    )  # fmt: skip
    scores = []
    for lr in grid["lr"]:
        learner = hand_learner(optimizer, lr, trained, train_config["n_way"], device)
        for steps in grid["steps"]:
            result = engine.evaluate(learner, tasks, steps, init)
            accuracy, loss = result["accuracy"], result["loss"]
            scores.append({"lr": lr, "steps": steps, "val_accuracy": accuracy, "val_loss": loss})
    best = max(scores, key=_validation_rank)  # max keeps the first of equal ranks
    record = {
        "optimizer": optimizer,
        "init_of": train_config["algo"],
        "setting": f"{train_config['n_way']}w{train_config['k_shot']}s",
        "seed": train_config["seed"],
        "validation_tasks": train_config["validation_tasks"],
        "chosen": {"lr": best["lr"], "steps": best["steps"]},
        "val_accuracy": best["val_accuracy"],
        "grid": scores,
    }
    write_json(out, record)
    return record


def tuned_swap(
    model: Path,
    optimizer: str,
    grid: dict,
    evaluation: dict,
    processed: Path,
    split: Path,
    out: Path,
    choice_out: Path,
) -> dict:
    """Figure 4b's hand-optimizer bar: tune on the validation tasks (`tune_hand_optimizer`,
    written to `choice_out`), then score the choice on the test tasks (written to `out`)."""
    choice = tune_hand_optimizer(model, optimizer, grid, evaluation, processed, split, choice_out)
    chosen = choice["chosen"]
    return evaluate(
        model,
        evaluation,
        processed,
        split,
        out,
        steps=chosen["steps"],
        optimizer=optimizer,
        optimizer_lr=chosen["lr"],
    )


def _validation_rank(score: dict) -> tuple[float, float]:
    """Higher is better: accuracy, then a lower loss; a diverged point (non-finite loss) last."""
    if not math.isfinite(score["val_loss"]):
        return (-math.inf, -math.inf)
    return (score["val_accuracy"], -score["val_loss"])


def _engine(train_config: dict, device: torch.device) -> Engine:
    """The engine the model was trained with, on the evaluation's device."""
    return resolve_engine(train_config["task_mode"], train_config["precision"], device)


def _fixed_tasks(
    processed: Path, split: Path, part: str, shape: dict, count: int, seed: int, batch: int,
    device: torch.device,
) -> list[Episode]:  # fmt: skip
    """`count` fixed tasks from `part` of the split, shaped as `shape` (a run or evaluation
    config: n_way, k_shot, n_query, rotate), task i a pure function of (seed, i)."""
    sampler = TaskSampler(
        load_part(processed, split, part, device),
        shape["n_way"], shape["k_shot"], shape["n_query"], shape["rotate"],
    )  # fmt: skip
    return sampler.fixed_tasks(count, seed, batch)
