"""Shared by the end-to-end workflow tests: running a command in a repository copy, the tiny
profile trimmed to two settings so that the whole DAG runs in a few minutes, and the content
of every file DVC versions."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import yaml

COMMAND_TIMEOUT_S = 1800  # a hang guard, far above any command's time here


def run(command: list[str], cwd: Path, env: dict | None = None) -> str:
    """stdout + stderr of `command`; a non-zero exit fails the test with both printed."""
    result = run_unchecked(command, cwd, env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def run_unchecked(command: list[str], cwd: Path, env: dict | None = None):
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=env
    )


TINY_GRID = {"lr": [1.0e-3, 1.0e-1], "steps": [1, 2]}  # Figure 4b's Adam: 4 grid points


def tiny_params(repo: Path, search_trials: int | None = None, device: str | None = None) -> None:
    """Switch repo/params.yaml to the tiny profile on the settings 20w1s and 20w5s only, with
    a tiny grid for Figure 4b's Adam, optionally with `search_trials` trials and on `device`."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["profile"] = "tiny"
    if search_trials is not None:
        params["profiles"]["tiny"]["search_trials"] = search_trials
    if device is not None:
        params["protocol"]["device"] = device
    params["experiments"].update(
        fig2=["20w1s"],
        fig3=[{"train": "20w5s", "test": "20w1s"}, {"train": "20w1s", "test": "20w5s"}],
        fig4a={"train": "20w1s", "test": "20w5s"},
    )
    params["experiments"]["fig4b"]["grid"] = TINY_GRID
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def versioned_paths(repo: Path) -> list[str]:
    """The outputs, metrics and plots of every stage in repo/dvc.yaml."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for stage in stages.values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
    ]


def versioned_files(repo: Path) -> dict[str, str]:
    """Relative path -> MD5 of every file DVC versions that exists in repo."""
    files = {}
    for name in versioned_paths(repo):
        path = repo / name
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found = [p for p in found if p.exists()]
        files.update(
            {str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest() for p in found}
        )
    return files


def copy_repo(repo: Path, dest: Path) -> Path:
    """A copy of a built repository (git, DVC cache, Snakemake's records, modification times)."""
    shutil.copytree(repo, dest, symlinks=True)
    return dest
