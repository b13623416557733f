"""A checkpoint records its config's hash: resuming under another config is refused, naming
each differing key, and nothing is written."""

import pytest
from reliability_helpers import snapshot, tiny_run, train_args

from metastress.cli import main
from metastress.train import TrainConfig, train

RUN = tiny_run(iterations=4, validate_every=2, trajectory=False)


def test_resuming_under_a_changed_config_is_refused(data_path, split_path, tmp_path):
    out, work = tmp_path / "run", tmp_path / "work"
    train(TrainConfig(**dict(RUN, iterations=2)), data_path, split_path, out, work)
    before = snapshot(out, work)
    changed = dict(RUN, meta_lr=0.005, algorithm=dict(RUN["algorithm"], inner_lr=0.2))
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(data_path, split_path, changed, out, work))
    message = str(exit_info.value.code)
    assert f"{work / 'last.pt'} was trained with another config" in message
    assert "algorithm.inner_lr: 0.4 -> 0.2" in message
    assert "iterations: 2 -> 4" in message and "meta_lr: 0.003 -> 0.005" in message
    assert "n_way" not in message  # only the keys that differ
    assert f"Delete {work} to start afresh" in message
    assert snapshot(out, work) == before


def test_resuming_on_another_device_is_refused_naming_both(data_path, split_path, tmp_path):
    from metastress import checkpoint

    out, work = tmp_path / "run", tmp_path / "work"
    train(TrainConfig(**dict(RUN, iterations=2)), data_path, split_path, out, work)
    saved = checkpoint.load(work / "last.pt", regenerate="-")
    assert saved["device"] == "cpu"
    checkpoint.save(work / "last.pt", dict(saved, device="cuda"))  # as if started on a GPU
    before = snapshot(out, work)
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(data_path, split_path, dict(RUN, iterations=2), out, work))
    message = str(exit_info.value.code)
    assert f"{work / 'last.pt'} was written by a run on cuda and this run is on cpu" in message
    assert f"delete {work} to train afresh" in message
    assert snapshot(out, work) == before
