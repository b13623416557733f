"""Corrupt or truncated inputs (archive, processed .npz, split file, checkpoints) stop the
step that reads them with an error naming the file and how to regenerate it, and no output is
written or changed."""

import json
import shutil

import pytest
import torch
from reliability_helpers import (
    EVALUATION,
    flip_byte_in_largest_record,
    snapshot,
    tiny_run,
    train_args,
    truncate,
)

from metastress.checkpoint import CheckpointError
from metastress.cli import main
from metastress.data.prepare import CorruptInputError, load_processed, prepare
from metastress.data.splits import write_split
from metastress.evaluate import evaluate
from metastress.train import TrainConfig, train

SMALL_RUN = tiny_run(iterations=4, validate_every=2, trajectory=False)


def refused(args: list[str]) -> str:
    """Run the CLI in this process; it must exit with an error message, returned."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    message = str(exit_info.value.code)
    assert message.startswith(f"metastress {args[0]}: error: "), message
    return message


@pytest.fixture
def archives(small_archives, tmp_path):
    """A writable copy of the small archives, to tamper with."""
    return shutil.copytree(small_archives, tmp_path / "raw")


@pytest.fixture(scope="module")
def finished(data_path, split_path, tmp_path_factory):
    """A finished SMALL_RUN: (run folder, work folder)."""
    root = tmp_path_factory.mktemp("finished")
    train(TrainConfig(**SMALL_RUN), data_path, split_path, root / "run", root / "work")
    return root / "run", root / "work"


@pytest.fixture
def finished_copy(finished, tmp_path):
    """A writable copy of the finished run, to tamper with."""
    run, work = (shutil.copytree(folder, tmp_path / folder.name) for folder in finished)
    return run, work


def test_small_archives_prepare(archives, tmp_path):
    prepare(archives, tmp_path / "out.npz", workers=1)
    assert load_processed(tmp_path / "out.npz")["images"].shape == (40, 20, 28, 28)


@pytest.mark.parametrize("damage", [truncate, flip_byte_in_largest_record])
def test_damaged_archive_stops_prepare(archives, tmp_path, damage):
    archive = archives / "images_evaluation.zip"
    damage(archive)
    out = tmp_path / "out.npz"
    with pytest.raises(CorruptInputError, match="images_evaluation.zip.*metastress data download"):
        prepare(archives, out, workers=1)
    assert list(tmp_path.glob("out.npz*")) == [] and not list(tmp_path.glob(".out.npz*"))


@pytest.mark.parametrize("damage", [truncate, flip_byte_in_largest_record])
def test_damaged_array_file_stops_training(data_path, split_path, tmp_path, damage):
    bad = tmp_path / "omniglot28.npz"
    shutil.copyfile(data_path, bad)
    damage(bad)
    out, work = tmp_path / "run", tmp_path / "work"
    message = refused(train_args(bad, split_path, SMALL_RUN, out, work))
    assert f"{bad} is truncated or corrupt" in message and "metastress data prepare" in message
    assert not out.exists() and not work.exists()


def test_split_with_overlapping_classes_stops_training(data_path, split, tmp_path):
    bad = tmp_path / "split.json"
    write_split(dict(split, test=split["test"] + split["validation"][:1]), bad)
    out, work = tmp_path / "run", tmp_path / "work"
    message = refused(train_args(data_path, bad, SMALL_RUN, out, work))
    assert f"{bad}: character" in message and "in both 'validation' and 'test'" in message
    assert "metastress data split" in message
    assert not out.exists() and not work.exists()


def test_truncated_split_file_stops_evaluation(finished, data_path, split_path, tmp_path):
    split = tmp_path / "split.json"
    shutil.copyfile(split_path, split)
    truncate(split)
    out = tmp_path / "result.json"
    args = [
        "evaluate", "--processed", str(data_path), "--split", str(split),
        "--model", str(finished[0] / "model.pt"), "--evaluation", json.dumps(EVALUATION),
        "--out", str(out),
    ]  # fmt: skip
    message = refused(args)
    assert f"{split} is not valid JSON" in message and "metastress data split" in message
    assert not out.exists()


@pytest.mark.parametrize("damage", [truncate, flip_byte_in_largest_record])
def test_damaged_last_checkpoint_stops_resuming(finished_copy, data_path, split_path, damage):
    run, work = finished_copy
    damage(work / "last.pt")
    before = snapshot(run, work)
    message = refused(train_args(data_path, split_path, SMALL_RUN, run, work))
    assert f"{work / 'last.pt'} is corrupt or truncated" in message
    assert f"delete {work} to train afresh" in message
    assert snapshot(run, work) == before


def test_damaged_best_checkpoint_never_becomes_the_model(finished_copy, data_path, split_path):
    run, work = finished_copy
    flip_byte_in_largest_record(work / "best.pt")
    torch.load(work / "best.pt", weights_only=True)  # torch alone would take the flipped weights
    before = snapshot(run, work)
    message = refused(train_args(data_path, split_path, SMALL_RUN, run, work))
    assert f"{work / 'best.pt'} is corrupt or truncated" in message
    assert "CRC-32" in message and f"delete {work} to train afresh" in message
    assert snapshot(run, work) == before


@pytest.mark.parametrize("damage", [truncate, flip_byte_in_largest_record])
def test_damaged_model_stops_evaluation(finished_copy, data_path, split_path, damage):
    run, _ = finished_copy
    damage(run / "model.pt")
    out = run / "result.json"
    with pytest.raises(CheckpointError, match="model.pt is corrupt or truncated.*rerun its train"):
        evaluate(run / "model.pt", EVALUATION, data_path, split_path, out)
    assert not out.exists()


def test_foreign_file_as_checkpoint_is_refused(finished_copy, data_path, split_path):
    run, work = finished_copy
    torch.save({"weights": torch.zeros(3)}, work / "last.pt")
    message = refused(train_args(data_path, split_path, SMALL_RUN, run, work))
    assert f"{work / 'last.pt'} is not a metastress checkpoint" in message


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"rung": 0, "part": 1, "iterations": 2, "trials": [{"trial": 0, "choice": {"inner_',
         "unreadable rung record"),
        ('{"rung": 0, "part": 1, "trials": []}', "not a rung record"),
        ('{"rung": 0, "part": 1, "iterations": 2, "trials": [{"trial": 0, "status": "ok"}]}',
         "not a trial record"),
        ('{"rung": 0, "part": 1, "iterations": 2, "trials": [{"trial": 0, "choice": {}, '
         '"iterations": 2, "status": "ok", "reason": null, "val_accuracy": NaN}]}',
         "trial 0: status 'ok' with val_accuracy nan"),
    ],
)  # fmt: skip
def test_damaged_rung_record_stops_selection(tmp_path, text, problem):
    good, bad = tmp_path / "part0.json", tmp_path / "part1.json"
    record = {"trial": 1, "choice": {}, "iterations": 2, "status": "ok", "reason": None,
              "val_accuracy": 0.5}  # fmt: skip
    good.write_text(json.dumps({"rung": 0, "part": 0, "iterations": 2, "trials": [record]}))
    bad.write_text(text)
    out = tmp_path / "best.json"
    message = refused(["search", "select", "--parts", str(good), str(bad), "--out", str(out)])
    assert f"{bad}: {problem}" in message and "reruns that rung job" in message
    assert not out.exists()


def test_truncated_search_result_is_named(tmp_path):
    from metastress.selection import read_choice

    result = tmp_path / "best.json"
    result.write_text('{"choice": {"inner_lr": 0.4}, "trial"')
    with pytest.raises(RuntimeError, match=f"{result}: unreadable search result.*search select"):
        read_choice(result)
