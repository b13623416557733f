"""SIGKILL at several points of a training run, a search trial and an evaluation: rerunning
the same command ends with exactly the results of an uninterrupted run, and no output file is
ever half-written (a killed write leaves only a `.NAME.XXXXXXXX.tmp` that the rerun removes)."""

import json

from reliability_helpers import (
    EVALUATION,
    SPACE,
    assert_same_run,
    checkpointed,
    kill_when,
    metrics_sans_seconds,
    run_with_cut_write,
    rung_args,
    seconds_per_iteration,
    temporaries,
    tiny_run,
    train_args,
    trial_work,
)

from metastress import checkpoint
from metastress.cli import main

EVERY = tiny_run()["validate_every"]


def assert_interrupted(out, work, at=None):
    """After a kill mid-training: no final outputs, complete metrics, a loadable last.pt (one
    checkpoint ahead of metrics.tsv if the kill fell between writing the two)."""
    assert not (out / "model.pt").exists() and not (out / "summary.json").exists()
    metrics_sans_seconds(out / "metrics.tsv")  # every row complete
    shown = checkpointed(out / "metrics.tsv")
    saved = checkpoint.load(work / "last.pt", regenerate="")["state"]["iteration"]
    assert saved in (shown, shown + EVERY)
    if at is not None:
        assert shown == saved == at


def first_improvement(metrics):
    """The first checkpoint after the first one where validation accuracy improved."""
    rows = metrics_sans_seconds(metrics)[1:]
    scores = [(int(row[0]), float(row[4])) for row in rows if row[4]]
    best_so_far = scores[0][1]
    for iteration, accuracy in scores[1:]:
        if accuracy > best_so_far:
            return iteration
        best_so_far = max(best_so_far, accuracy)
    raise AssertionError("the reference run never improves after its first checkpoint")


def test_training_killed_at_three_points_resumes_identically(
    data_path, split_path, reference_training, tmp_path
):
    out, work = tmp_path / "run", tmp_path / "work"
    args = train_args(data_path, split_path, tiny_run(), out, work)
    metrics = out / "metrics.tsv"
    # 1. right after the first checkpoint (iteration 5)
    kill_when(args, lambda: checkpointed(metrics) >= 5, tmp_path / "1.log")
    assert_interrupted(out, work)
    # 2. mid-way, 2.5 iterations past the checkpoint at 20: the work after it is lost
    delay = 2.5 * seconds_per_iteration(metrics)
    kill_when(args, lambda: checkpointed(metrics) >= 20, tmp_path / "2.log", delay=delay)
    assert_interrupted(out, work)
    # 3. right after a late checkpoint (30 of 40)
    kill_when(args, lambda: checkpointed(metrics) >= 30, tmp_path / "3.log")
    assert_interrupted(out, work)
    main(args)  # the same command again, in this process to spare a torch import
    assert_same_run(out, reference_training)
    assert not temporaries(out)


def test_search_trial_killed_at_four_points_resumes_identically(
    data_path, split_path, reference_trial, tmp_path
):
    record, work_root = tmp_path / "part0.json", tmp_path / "work"
    args = rung_args(data_path, split_path, tiny_run(), SPACE, record, work_root)
    work = trial_work(tiny_run(), SPACE, 0, work_root)
    metrics, checkpoints = work / "metrics.tsv", work / "checkpoints"
    reference_record, reference_work = reference_trial
    # 1. at a checkpoint that improves validation best.pt is written, then last.pt: killed
    # half-way through the latter, best.pt is one checkpoint ahead, and resuming redoes it
    improved = first_improvement(reference_work / "metrics.tsv")
    run_with_cut_write(args, "last.pt", improved // EVERY, tmp_path / "1.log")
    assert_interrupted(work, checkpoints, at=improved - EVERY)
    assert checkpoint.load(checkpoints / "best.pt", regenerate="")["state"]["iteration"] == improved
    assert temporaries(checkpoints)  # the half-written last.pt, ignored
    # 2. mid-way, 2.5 iterations past the checkpoint at 20: the work after it is lost
    delay = 2.5 * seconds_per_iteration(metrics)
    kill_when(args, lambda: checkpointed(metrics) >= 20, tmp_path / "2.log", delay=delay)
    assert_interrupted(work, checkpoints)
    # 3. training done, killed half-way through writing model.pt
    run_with_cut_write(args, "model.pt", 1, tmp_path / "3.log")
    assert_interrupted(work, checkpoints, at=40)
    assert temporaries(work)
    # 4. killed half-way through writing the rung record
    run_with_cut_write(args, record.name, 1, tmp_path / "4.log")
    assert not record.exists() and temporaries(tmp_path)
    main(args)  # the same command again, in this process to spare a torch import
    assert json.loads(record.read_text())["trials"][0]["status"] == "ok"
    assert record.read_bytes() == reference_record.read_bytes()
    assert_same_run(work, reference_work)
    assert not temporaries(tmp_path) and not temporaries(work)


def test_evaluation_killed_mid_write_reruns_identically(
    data_path, split_path, reference_training, reference_evaluation, tmp_path
):
    out = tmp_path / "result.json"
    args = [
        "evaluate", "--processed", str(data_path), "--split", str(split_path),
        "--model", str(reference_training / "model.pt"),
        "--evaluation", json.dumps(EVALUATION), "--out", str(out),
    ]  # fmt: skip
    run_with_cut_write(args, out.name, 1, tmp_path / "1.log")
    assert not out.exists() and temporaries(tmp_path)
    main(args)
    assert out.read_bytes() == reference_evaluation.read_bytes()
    assert not temporaries(tmp_path)
