"""Fixtures of the fault-injection suite: a small cut of Omniglot and its split, and
uninterrupted reference runs made once per session (in this process, on one thread like the
CLI runs they are compared to)."""

import zipfile

import pytest
import torch
from reliability_helpers import (
    EVALUATION,
    SPACE,
    one_trial_plan,
    tiny_run,
    trial_work,
    without_searched,
)

from metastress.data.prepare import ARCHIVE_FLAGS, load_processed, prepare
from metastress.data.splits import write_split
from metastress.evaluate import evaluate
from metastress.halving import SearchPlan
from metastress.search import run_rung
from metastress.train import TrainConfig, train

CHARACTERS_PER_ARCHIVE = 20  # 40 characters: 24 train, 8 validation, 8 test


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread, as the CLI runs get through OMP_NUM_THREADS=1."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_archives(raw_dir, tmp_path_factory):
    """Both Omniglot archives cut to their first CHARACTERS_PER_ARCHIVE characters."""
    folder = tmp_path_factory.mktemp("small_raw")
    for name in ARCHIVE_FLAGS:
        with zipfile.ZipFile(raw_dir / name) as src, zipfile.ZipFile(folder / name, "w") as dst:
            pngs = sorted(n for n in src.namelist() if n.endswith(".png"))
            for member in pngs[: CHARACTERS_PER_ARCHIVE * 20]:
                dst.writestr(member, src.read(member))
    return folder


@pytest.fixture(scope="session")
def data_path(small_archives, tmp_path_factory):
    """The processed array file of the small archives (prepare takes a second)."""
    path = tmp_path_factory.mktemp("small_processed") / "omniglot28.npz"
    prepare(small_archives, path, workers=1)
    return path


@pytest.fixture(scope="session")
def split(data_path):
    characters = sorted(load_processed(data_path)["characters"].tolist())
    return {
        "name": "small",
        "seed": 0,
        "train": characters[0::5] + characters[1::5] + characters[2::5],
        "validation": characters[3::5],
        "test": characters[4::5],
    }


@pytest.fixture(scope="session")
def split_path(split, tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "small.json"
    write_split(split, path)
    return path


@pytest.fixture(scope="session")
def reference_training(data_path, split_path, tmp_path_factory):
    """The run folder of an uninterrupted tiny_run() training."""
    root = tmp_path_factory.mktemp("reference_training")
    train(TrainConfig(**tiny_run()), data_path, split_path, root / "run", root / "work")
    return root / "run"


@pytest.fixture(scope="session")
def reference_trial(data_path, split_path, tmp_path_factory):
    """The rung record and work folder of an uninterrupted search trial 0 of SPACE."""
    root = tmp_path_factory.mktemp("reference_trial")
    record, work = root / "part0.json", root / "work"
    plan = SearchPlan(**one_trial_plan(tiny_run()))
    run = without_searched(tiny_run(), SPACE)
    run_rung(run, SPACE, plan, 0, 0, [], data_path, split_path, record, work)
    return record, trial_work(tiny_run(), SPACE, 0, work)


@pytest.fixture(scope="session")
def reference_evaluation(reference_training, data_path, split_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference_evaluation") / "result.json"
    evaluate(reference_training / "model.pt", EVALUATION, data_path, split_path, out)
    return out
