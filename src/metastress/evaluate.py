"""Evaluation on fixed meta-test tasks, identical for every algorithm of a setting.

Beyond the in-setting score it covers the paper's other questions with the same code: a
test setting other than the training one (transfer), an adaptation-steps override
(ablation), and swapping the initialization or the inner optimizer between models (or for
plain Adam/SGD) — Figure 4b. A model is evaluated by the engine it was trained with (its task
mode and precision) on the evaluation's device.
"""

from pathlib import Path
from statistics import NormalDist

import torch

from metastress import checkpoint
from metastress.algorithms import MetaLearner, build
from metastress.atomic import write_json
from metastress.data.tasks import TaskSampler
from metastress.dataset import load_part
from metastress.engine import resolve_device, resolve_engine


def confidence_half_width(std: float, n: int, level: float) -> float:
    """z * std / sqrt(n) for a two-sided normal interval at `level`."""
    return NormalDist().inv_cdf(0.5 + level / 2) * std / n**0.5


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
        optimizer: "adam" or "sgd": adapt the model's initialization with that optimizer
            (learning rate `optimizer_lr`) instead of its own inner loop.
    """
    device = resolve_device(evaluation["device"])
    learner, train_config = load_trained(model, device)
    engine = resolve_engine(train_config["task_mode"], train_config["precision"], device)
    init, donor_algo = None, None
    if init_from is not None:
        donor, donor_config = load_trained(init_from, device)
        init, donor_algo = detached(donor.initial_weights()), donor_config["algo"]
    if optimizer is not None:
        init = init or detached(learner.initial_weights())
        hand_config = {
            "inner_steps": learner.config.inner_steps,
            "inner_lr": optimizer_lr,
            "hidden": learner.config.hidden,
            "activation": learner.config.activation,
        }
        learner = build(optimizer, train_config["n_way"], hand_config, seed=0).to(device)
    if evaluation["n_way"] != train_config["n_way"]:
        raise ValueError(
            f"{model} was trained {train_config['n_way']}-way; it cannot be "
            f"tested on {evaluation['n_way']}-way tasks"
        )
    sampler = TaskSampler(
        load_part(processed, split, "test", device),
        evaluation["n_way"],
        evaluation["k_shot"],
        evaluation["n_query"],
        evaluation["rotate"],
    )
    tasks = sampler.fixed_tasks(
        evaluation["test_tasks"], evaluation["seed"], evaluation["eval_batch"]
    )
    scores = engine.evaluate(learner, tasks, steps, init)
    accuracy = torch.tensor(scores["per_task"], dtype=torch.float64)
    std = accuracy.std(unbiased=True).item() if len(accuracy) > 1 else 0.0
    result = {
        "algo": train_config["algo"],
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
    }
    write_json(out, result)
    return result
