"""Divergence and out-of-memory: a NaN/inf stops a training run with the iteration, the loss
and the config in the message; inside a search such a trial is recorded as failed with its
reason, scored worst, and the search goes on."""

import json

import pytest
import torch
from reliability_helpers import rung_args, tiny_run, train_args, without_searched

from metastress import checkpoint
from metastress.algorithms.maml import MAML
from metastress.atomic import write_json
from metastress.cli import main
from metastress.search import run_trial
from metastress.selection import select_best
from metastress.train import DivergenceError, TrainConfig, train

SMALL_RUN = tiny_run(iterations=6, validate_every=2, trajectory=False)
OK_SPACE = {"inner_lr": [0.4]}
ABSURD_SPACE = {"meta_lr": {"log_uniform": [1e10, 1e11]}}  # overflows at iteration 2


def spoil_meta_loss(monkeypatch, at_call: int, spoil) -> None:
    """From the `at_call`-th meta-loss on, return spoil(loss, learner) instead."""
    original, calls = MAML.meta_loss, []

    def meta_loss(self, engine, episode):
        loss, metrics = original(self, engine, episode)
        calls.append(1)
        return (spoil(loss, self) if len(calls) >= at_call else loss), metrics

    monkeypatch.setattr(MAML, "meta_loss", meta_loss)


def assert_stopped_at(out, work, iteration):
    """No model or summary; last.pt intact at the last checkpoint before the divergence."""
    assert not (out / "model.pt").exists() and not (out / "summary.json").exists()
    saved = checkpoint.load(work / "last.pt", regenerate="")
    assert saved["state"]["iteration"] == iteration


def test_forced_nan_loss_stops_training(data_path, split_path, tmp_path, monkeypatch):
    spoil_meta_loss(monkeypatch, 3, lambda loss, _: loss * float("nan"))
    out, work = tmp_path / "run", tmp_path / "work"
    with pytest.raises(DivergenceError) as error:
        train(TrainConfig(**SMALL_RUN), data_path, split_path, out, work)
    message = str(error.value)
    assert "maml diverged at iteration 3: meta-loss is nan" in message
    assert "'meta_lr': 0.003" in message and "'inner_lr': 0.4" in message  # the config
    assert f"{work / 'last.pt'}" in message and f"delete {work}" in message
    assert_stopped_at(out, work, 2)


def test_nan_gradient_of_a_finite_loss_stops_training(data_path, split_path, tmp_path, monkeypatch):
    def nan_gradient(loss, learner):  # d/dx sqrt(x) at 0 is inf, times 0: nan
        weight = next(learner.parameters())
        return loss + torch.sqrt(weight.sum() * 0.0)

    spoil_meta_loss(monkeypatch, 5, nan_gradient)
    out, work = tmp_path / "run", tmp_path / "work"
    with pytest.raises(DivergenceError, match="iteration 5: meta-gradient norm is nan"):
        train(TrainConfig(**SMALL_RUN), data_path, split_path, out, work)
    assert_stopped_at(out, work, 4)


def test_absurd_meta_lr_stops_the_cli_with_the_iteration_loss_and_config(
    data_path, split_path, tmp_path
):
    out, work = tmp_path / "run", tmp_path / "work"
    run = dict(SMALL_RUN, meta_lr=1e10)
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(data_path, split_path, run, out, work))
    message = str(exit_info.value.code)
    assert message.startswith("metastress train: error: maml diverged at iteration 2: ")
    assert "meta-loss is nan" in message and "'meta_lr': 10000000000.0" in message
    assert not (out / "model.pt").exists() and not (work / "last.pt").exists()


def test_search_records_diverged_and_out_of_memory_trials_and_goes_on(
    data_path, split_path, tmp_path, monkeypatch
):
    def trial(index, space):
        run = without_searched(SMALL_RUN, space)
        budget = SMALL_RUN["iterations"]
        return run_trial(run, space, index, budget, data_path, split_path, tmp_path / "work")

    def rung(name, *records):
        path = tmp_path / name
        write_json(path, {"rung": 0, "part": 0, "iterations": 6, "trials": list(records)})
        return path

    ok = trial(0, OK_SPACE)
    diverged = trial(1, ABSURD_SPACE)
    with monkeypatch.context() as patch:

        def out_of_memory(loss, _):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        spoil_meta_loss(patch, 2, out_of_memory)
        oom = trial(2, OK_SPACE)

    assert ok["status"] == "ok" and ok["val_accuracy"] is not None
    assert diverged["status"] == "failed" and diverged["val_accuracy"] is None
    assert diverged["reason"].startswith("DivergenceError: maml diverged at iteration 2: ")
    assert "meta-loss is nan" in diverged["reason"]
    assert oom["status"] == "failed" and oom["val_accuracy"] is None
    assert oom["reason"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"

    best = select_best([rung("all.json", diverged, oom, ok)], tmp_path / "best.json")
    assert best["trial"] == 0 and best["choice"] == ok["choice"] and best["failed"] == 2
    assert [r["trial"] for r in best["trials"]] == [0, 1, 2]

    with pytest.raises(RuntimeError, match="every trial of the last rung failed.*trial 1: Diverg"):
        select_best([rung("failed.json", diverged, oom)], tmp_path / "none.json")
    assert not (tmp_path / "none.json").exists()


def test_diverged_trial_through_the_cli_exits_cleanly(data_path, split_path, tmp_path):
    out, work = tmp_path / "part0.json", tmp_path / "work"
    main(rung_args(data_path, split_path, SMALL_RUN, ABSURD_SPACE, out, work))
    record = json.loads(out.read_text())["trials"][0]
    assert record["status"] == "failed" and "DivergenceError" in record["reason"]
