"""Sharing artifacts through a DVC remote (a local directory stands in for S3 or SSH).

On a copy of the tiny profile's complete Snakemake run, `dvc repro` records the outputs in
dvc.lock (rebuilding nothing) and `dvc push` sends them to the remote. With the outputs and
the cache deleted, `dvc pull` must bring back identical files, and so must a fresh clone of
the repository: after `snakemake --touch` there, Snakemake and DVC both see nothing to do.
"""

import shutil
import time
from pathlib import Path

import pytest
from workflow_helpers import copy_repo, run, versioned_files, versioned_paths

pytestmark = pytest.mark.slow

UP_TO_DATE = "Data and pipelines are up to date"


def remove_outputs(repo: Path) -> None:
    for name in versioned_paths(repo):
        path = repo / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def test_push_then_pull_restores_identical_artifacts(tiny_build, tmp_path: Path):
    repo, remote = copy_repo(tiny_build.repo, tmp_path / "repo"), tmp_path / "dvc-remote"
    run(["dvc", "repro"], repo)
    assert UP_TO_DATE in run(["dvc", "status"], repo)
    run(["git", "add", "dvc.lock", "metrics"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], repo)
    built = versioned_files(repo)
    assert any(name.endswith("model.pt") for name in built)
    assert any("/rung0/part" in name for name in built)

    t0 = time.monotonic()
    run(["dvc", "remote", "add", "--default", "local", str(remote)], repo)
    run(["dvc", "push"], repo)
    assert any(p.is_file() for p in (remote / "files" / "md5").rglob("*"))

    # 1. the same workspace, without the cached outputs and without the cache (the metrics
    #    are git's: they stay)
    metrics = {name: md5 for name, md5 in built.items() if name.startswith("metrics/")}
    remove_outputs(repo)
    run(["git", "checkout", "-q", "--", "metrics"], repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    run(["dvc", "pull"], repo)
    assert versioned_files(repo) == built

    # 2. a collaborator: a fresh clone of the commit that records dvc.lock, the metrics and
    #    the remote
    run(["git", "add", ".dvc/config"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "remote"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert {n: m for n, m in versioned_files(clone).items() if n in metrics} == metrics
    run(["dvc", "pull"], clone)
    assert versioned_files(clone) == built
    assert UP_TO_DATE in run(["dvc", "status"], clone)
    # pulled files get fresh modification times in no particular order: Snakemake must be told
    # that they are current, after which it has nothing to rebuild
    run(["snakemake", "--cores", "1", "--touch"], clone)
    dry_run = run(["snakemake", "--cores", "1", "--dry-run"], clone)
    assert "Nothing to be done" in dry_run, dry_run
    assert versioned_files(clone) == built
    print(f"\n[test_dvc_remote] remote, push, pull twice: {time.monotonic() - t0:.1f} s")
