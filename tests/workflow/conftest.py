"""The tiny profile built once per session by a plain `snakemake`; the workflow tests work on
copies of it, so that one DAG run serves them all."""

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from workflow_helpers import run, tiny_params

from tests.conftest import copy_repository


@dataclass(frozen=True)
class TinyBuild:
    repo: Path  # a git repository, tiny params committed, every output built
    log: str  # the snakemake run's output
    seconds: float


@pytest.fixture(scope="session")
def tiny_build(mirror, tmp_path_factory) -> TinyBuild:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMNIGLOT_MIRROR", str(mirror))
        patch.setenv("DVC_NO_ANALYTICS", "1")
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        repo = copy_repository(tmp_path_factory.mktemp("tiny") / "repo")
        tiny_params(repo)
        run(["git", "commit", "-qam", "tiny profile"], repo)
        t0 = time.monotonic()
        log = run(["snakemake", "--cores", "2"], repo)
        seconds = time.monotonic() - t0
        print(f"\n[tiny_build] snakemake --cores 2 on the tiny profile: {seconds:.1f} s")
        yield TinyBuild(repo, log, seconds)
