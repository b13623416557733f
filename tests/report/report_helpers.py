"""Helpers for the report tests: synthetic evaluation records and output checks."""

from pathlib import Path

from PIL import Image


def make_eval(
    algo: str = "maml",
    train: str = "20w1s",
    test: str | None = None,
    accuracy: float = 0.9,
    ci95: float = 0.01,
    **overrides,
) -> dict:
    """A valid evaluation record; settings are named like params.yaml ("40w5s")."""
    test = test or train
    n_way, k_shot = (int(part) for part in test.rstrip("s").split("w"))
    record = {
        "algo": algo,
        "seed": 0,
        "train_setting": train,
        "test_setting": test,
        "n_way": n_way,
        "k_shot": k_shot,
        "accuracy": accuracy,
        "std": ci95 * 9,
        "ci95": ci95,
        "ci999": ci95 * 1.7,
        "n_tasks": 4,
        "per_task": [accuracy] * 4,
        "steps": 5,
        "init_from": None,
        "optimizer": None,
        "optimizer_lr": None,
    }
    return {**record, **overrides}


def assert_figure_files(prefix: Path) -> None:
    """PDF, PNG and CSV exist beside `prefix`, are non-empty, and the PNG is a real image."""
    for suffix in (".pdf", ".png", ".csv"):
        path = prefix.with_name(prefix.name + suffix)
        assert path.stat().st_size > 0, path
    assert prefix.with_name(prefix.name + ".pdf").read_bytes().startswith(b"%PDF")
    with Image.open(prefix.with_name(prefix.name + ".png")) as image:
        image.verify()
        assert image.format == "PNG" and min(image.size) > 100
