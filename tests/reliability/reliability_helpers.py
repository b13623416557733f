"""Helpers of the fault-injection suite: tiny configs, the CLI in a subprocess, kill points
found by polling the files a run writes, and comparisons of finished runs."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "fault_driver.py"  # runs the CLI with one write cut short by SIGKILL
CLI = [sys.executable, "-c", "from metastress.cli import main; main()"]
POLL_S = 0.002
TIMEOUT_S = 120
SPACE = {"inner_lr": {"log_uniform": [0.1, 1.0]}, "meta_lr": {"log_uniform": [1e-3, 1e-2]}}
EVALUATION = {
    "n_way": 5,
    "k_shot": 1,
    "n_query": 1,
    "setting": "5w1s",
    "test_tasks": 40,
    "eval_batch": 10,
    "seed": 0,
    "rotate": True,
    "device": "cpu",
}


def tiny_run(**overrides) -> dict:
    """A TrainConfig dict: 5-way 1-shot MAML on a Conv-4 with 8 channels, 40 iterations,
    a checkpoint every 5 (~50 ms an iteration on one thread)."""
    run = {
        "algo": "maml",
        "n_way": 5,
        "k_shot": 1,
        "n_query": 1,
        "meta_lr": 0.003,
        "meta_batch": 2,
        "iterations": 40,
        "patience": 0,
        "validate_every": 5,
        # 20 queries (steps of 0.05): test_fault_kill needs a validation gain after the first
        # checkpoint, and with 2 tasks (steps of 0.1) none came once ink became 1 - x
        "validation_tasks": 4,
        "seed": 0,
        "rotate": True,
        "device": "cpu",
        "task_mode": "loop",
        "trajectory": True,  # Figure 1's record of every meta-update resumes with the rest
        "algorithm": {"inner_steps": 1, "inner_lr": 0.4, "hidden": 8, "first_order": True},
    }
    return {**run, **overrides}


def without_searched(run: dict, space: dict) -> dict:
    """A search trial's run config: `run` minus the keys `space` searches (the trial's choice
    fills them in; a key both fixed and chosen is refused)."""
    algorithm = {k: v for k, v in run["algorithm"].items() if k not in space}
    return {**{k: v for k, v in run.items() if k not in space}, "algorithm": algorithm}


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_args(processed: Path, split: Path, run: dict, out: Path, work: Path) -> list[str]:
    return [
        "train", "--processed", str(processed), "--split", str(split),
        "--run", json.dumps(run), "--out", str(out), "--work-dir", str(work),
    ]  # fmt: skip


def one_trial_plan(run: dict) -> dict:
    """A search plan (as JSON) of one trial in one rung, to the run's iterations."""
    return {"method": "random", "trials": 1, "iterations": run["iterations"], "eta": 2,
            "rungs": 1, "trials_per_job": 1}  # fmt: skip


def rung_args(
    processed: Path, split: Path, run: dict, space: dict, out: Path, work: Path
) -> list[str]:
    """`metastress search rung` for trial 0 of `space`, alone in the one rung of its plan."""
    return [
        "search", "rung", "--processed", str(processed), "--split", str(split),
        "--run", json.dumps(without_searched(run, space)), "--space", json.dumps(space),
        "--plan", json.dumps(one_trial_plan(run)), "--rung", "0", "--part", "0",
        "--out", str(out), "--work-root", str(work),
    ]  # fmt: skip


def trial_work(run: dict, space: dict, trial: int, work_root: Path) -> Path:
    """The folder under work_root where `search rung` keeps that trial's run."""
    from metastress.experiments import apply_choice, sample
    from metastress.train import train_config, work_dir_for

    run = without_searched(run, space)
    return work_dir_for(
        train_config(apply_choice(run, sample(space, run["seed"], trial))),
        work_root / f"trial{trial}",
    )


def run_cli(args: list[str], log: Path) -> subprocess.CompletedProcess:
    """Run `metastress ARGS` to the end; stderr goes to `log`."""
    with open(log, "w") as stderr:
        done = subprocess.run(
            CLI + args, env=env(), stdout=subprocess.DEVNULL, stderr=stderr, timeout=TIMEOUT_S
        )
    done.stderr = log.read_text()
    return done


def kill_when(args: list[str], ready: Callable[[], bool], log: Path, delay: float = 0.0):
    """Start `metastress ARGS`, SIGKILL it `delay` s after `ready()` first holds."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen(CLI + args, env=env(), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while not ready():
                assert proc.poll() is None, f"it ended before the kill point: {log.read_text()}"
                assert time.monotonic() < deadline, "the kill point never came"
                time.sleep(POLL_S)
            time.sleep(delay)
            assert proc.poll() is None, "the run ended before the kill point"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def run_with_cut_write(args: list[str], name: str, nth: int, log: Path) -> None:
    """Run `metastress ARGS` until its `nth` atomic write of a file called `name`; that write
    is cut to half its bytes and the process SIGKILLed before the rename."""
    with open(log, "w") as stderr:
        done = subprocess.run(
            [sys.executable, str(DRIVER), name, str(nth), *args],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=TIMEOUT_S,
        )
    assert done.returncode == -signal.SIGKILL, log.read_text()


def checkpointed(metrics: Path) -> int:
    """The last checkpointed iteration that metrics.tsv shows (0 before the first)."""
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return 0
    return int(lines[-1].split("\t")[0]) if len(lines) > 1 else 0


def seconds_per_iteration(metrics: Path) -> float:
    rows = [line.split("\t") for line in metrics.read_text().splitlines()[1:]]
    seconds = sorted(float(row[-1]) for row in rows)
    return seconds[len(seconds) // 2]


def metrics_sans_seconds(path: Path) -> list[list[str]]:
    """metrics.tsv rows minus the wall-clock `seconds` column; every row complete."""
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows[0][-1] == "seconds" and all(len(row) == len(rows[0]) for row in rows)
    return [row[:-1] for row in rows]


def summary_sans_seconds(path: Path) -> dict:
    summary = json.loads(path.read_text())
    summary.pop("seconds_per_iteration")
    return summary


def assert_same_weights(a: Path, b: Path) -> None:
    """model.pt files hold equal learner state dicts (torch.equal, key by key)."""
    first, second = (torch.load(p, weights_only=True)["learner"] for p in (a, b))
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"weights differ: {different}"


def assert_same_run(ours: Path, reference: Path) -> None:
    """A finished run folder equals the uninterrupted one (up to wall-clock times)."""
    assert_same_weights(ours / "model.pt", reference / "model.pt")
    assert metrics_sans_seconds(ours / "metrics.tsv") == metrics_sans_seconds(
        reference / "metrics.tsv"
    )
    assert summary_sans_seconds(ours / "summary.json") == summary_sans_seconds(
        reference / "summary.json"
    )
    trajectories = [torch.load(d / "trajectory.pt", weights_only=True) for d in (ours, reference)]
    assert trajectories[0].keys() == trajectories[1].keys()
    for key, tensor in trajectories[0].items():
        assert torch.equal(tensor, trajectories[1][key]), key


def temporaries(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp"))


def snapshot(*folders: Path) -> dict[Path, bytes]:
    """Every file under the folders with its bytes, to show that a refused run changed none."""
    return {
        p: p.read_bytes() for folder in folders if folder.is_dir() for p in folder.rglob("*")
        if p.is_file()
    }  # fmt: skip


def flip_byte_in_largest_record(path: Path) -> None:
    """Invert one byte in the middle of the payload of the file's largest zip record (the
    biggest tensor of a checkpoint, the images of an .npz): only a checksum notices."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as zf:
        records = zf.infolist()
    tensors = [i for i in records if re.search(r"/data/\d+$", i.filename)]  # torch's storages
    info = max(tensors or records, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    header = info.header_offset
    name_len = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(data[header + 28 : header + 30], "little")
    data[header + 30 + name_len + extra_len + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
