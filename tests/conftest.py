"""Shared fixtures: the Omniglot mirror, and processed data built from it once per session."""

import os
import shutil
from pathlib import Path

import pytest

from metastress.data.download import fetch_archives
from metastress.data.prepare import load_processed, prepare
from metastress.data.splits import make_split

REPO = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path | None:
    """The offline Omniglot mirror: OMNIGLOT_MIRROR, else ../shared/omniglot beside the repo."""
    candidate = Path(os.environ.get("OMNIGLOT_MIRROR") or REPO.parent / "shared" / "omniglot")
    return candidate if (candidate / "MD5SUMS").is_file() else None


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: the tiny models gain nothing from more, and on a loaded
    2-core machine OpenMP's spinning threads made the algorithm tests ~10x slower. Test folders
    that need it make it autouse (tests/algorithms, tests/engine, test_train.py)."""
    import torch  # only the tests that use it pay for the import

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mirror() -> Path:
    found = mirror_dir()
    if found is None:
        pytest.skip("no Omniglot mirror: set OMNIGLOT_MIRROR to a folder with the archives")
    return found


@pytest.fixture(scope="session")
def raw_dir(mirror, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("raw")
    fetch_archives(dest, mirror=str(mirror))
    return dest


@pytest.fixture(scope="session")
def processed_path(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("processed") / "omniglot28.npz"
    prepare(raw_dir, out)
    return out


@pytest.fixture(scope="session")
def processed(processed_path):
    return load_processed(processed_path)


@pytest.fixture(scope="session")
def paper_split(processed):
    return make_split(processed, "paper", seed=0)


@pytest.fixture
def mirror_copy(mirror, tmp_path) -> Path:
    """A writable copy of the mirror, for tampering."""
    copy = tmp_path / "mirror"
    shutil.copytree(mirror, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def copy_repository(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked-but-not-ignored files into a fresh git repo."""
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(command, cwd=dest, check=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path, mirror, monkeypatch) -> Path:
    """A throw-away copy of the repository, with the mirror and the venv's tools on PATH."""
    import sys

    monkeypatch.setenv("OMNIGLOT_MIRROR", str(mirror))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return copy_repository(tmp_path / "repo")
