"""Shared by the end-to-end workflow tests: running a command in a repository copy, and the
tiny profile trimmed to two settings so that the whole DAG runs in a few minutes."""

import subprocess
from pathlib import Path

import yaml

COMMAND_TIMEOUT_S = 1800  # a hang guard, far above any command's time here


def run(command: list[str], cwd: Path) -> str:
    """stdout + stderr of `command`; a non-zero exit fails the test with both printed."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def tiny_params(repo: Path, search_trials: int | None = None, device: str | None = None) -> None:
    """Switch repo/params.yaml to the tiny profile on the settings 20w1s and 20w5s only,
    optionally with `search_trials` trials and on `device`."""
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
    path.write_text(yaml.safe_dump(params, sort_keys=False))
