"""Sharing artifacts through a DVC remote (a local directory stands in for S3 or SSH).

Snakemake builds, on the tiny profile, the data stages and one algorithm's search and
training; `dvc commit` records them in dvc.lock (as `dvc repro train@maml` would, but in one
Snakemake run instead of five stage runs) and `dvc push` sends them to the remote. With the
outputs and the cache deleted, `dvc pull` must bring back byte-identical files, and so must a
fresh clone of the repository: after `snakemake --touch` there, Snakemake and DVC both see
nothing to do.
"""

import shutil
import time
from pathlib import Path

import pytest
from workflow_helpers import run, tiny_params

pytestmark = pytest.mark.slow

ALGO = "maml"
STAGE = f"train@{ALGO}"  # with its upstream stages: download, prepare, split, search@maml
TARGETS = [f"results/search/{ALGO}.json", f"models/{ALGO}.json"]  # the two stages' commands
# every output of those stages (a folder stands for all the files under it)
OUTPUTS = [
    "data/raw/images_background.zip",
    "data/raw/images_evaluation.zip",
    "data/processed/omniglot28.npz",
    "data/splits/paper.json",
    f"results/search/{ALGO}",
    f"results/search/{ALGO}.json",
    f"models/{ALGO}",
    f"models/{ALGO}.json",
]
UP_TO_DATE = "Data and pipelines are up to date"


def snapshot(repo: Path) -> dict[str, bytes]:
    """Path -> content of every file of OUTPUTS."""
    files = {}
    for name in OUTPUTS:
        path = repo / name
        assert path.exists(), f"{name} was not built"
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files.update({str(p.relative_to(repo)): p.read_bytes() for p in found})
    return files


def remove_outputs(repo: Path) -> None:
    for name in OUTPUTS:
        path = repo / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def test_push_then_pull_restores_identical_artifacts(repo_copy: Path, tmp_path: Path):
    repo, remote = repo_copy, tmp_path / "dvc-remote"
    tiny_params(repo)
    t0 = time.monotonic()
    run(["snakemake", "--cores", "2", *TARGETS], repo)
    build_s = time.monotonic() - t0
    run(["dvc", "commit", "--force", "--with-deps", STAGE], repo)
    assert UP_TO_DATE in run(["dvc", "status", "--with-deps", STAGE], repo)
    built = snapshot(repo)
    assert any(name.endswith("model.pt") for name in built)
    assert any("/trial" in name for name in built)

    t0 = time.monotonic()
    run(["dvc", "remote", "add", "--default", "local", str(remote)], repo)
    run(["dvc", "push", "--with-deps", STAGE], repo)
    assert any(p.is_file() for p in (remote / "files" / "md5").rglob("*"))

    # 1. the same workspace, without the outputs and without the cache
    remove_outputs(repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    run(["dvc", "pull", "--with-deps", STAGE], repo)
    assert snapshot(repo) == built

    # 2. a collaborator: a fresh clone of the commit that records dvc.lock and the remote
    run(["git", "add", "params.yaml", "dvc.lock", ".dvc/config"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "built"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull", "--with-deps", STAGE], clone)
    assert snapshot(clone) == built
    assert UP_TO_DATE in run(["dvc", "status", "--with-deps", STAGE], clone)
    # pulled files get fresh modification times in no particular order: Snakemake must be told
    # that they are current, after which it has nothing to rebuild
    run(["snakemake", "--cores", "1", "--touch", *TARGETS], clone)
    dry_run = run(["snakemake", "--cores", "1", "--dry-run", *TARGETS], clone)
    assert "Nothing to be done" in dry_run, dry_run
    assert snapshot(clone) == built
    print(
        f"\n[test_dvc_remote] snakemake {' '.join(TARGETS)}: {build_s:.1f} s; "
        f"remote, push, pull twice: {time.monotonic() - t0:.1f} s"
    )
