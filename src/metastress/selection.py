"""Pick the best search trial. Kept free of torch so this small job starts in a blink."""

import json
import math
from pathlib import Path

from metastress.atomic import write_json

RECORD_KEYS = ("trial", "choice", "status", "reason", "val_accuracy")


def read_record(path: Path) -> dict:
    """One trial record, checked: a damaged one is an error, never a silently skipped trial."""
    fix = "delete it so that the workflow reruns that trial"
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RuntimeError(f"{path}: unreadable trial record ({e}); {fix}") from e
    if not isinstance(record, dict) or any(key not in record for key in RECORD_KEYS):
        raise RuntimeError(f"{path}: not a trial record (keys {list(RECORD_KEYS)} needed); {fix}")
    status, accuracy = record["status"], record["val_accuracy"]
    finite = isinstance(accuracy, int | float) and math.isfinite(accuracy)
    if not (status == "failed" or (status == "ok" and finite)):
        raise RuntimeError(
            f"{path}: status {status!r} with val_accuracy {accuracy!r}; expected 'failed', or "
            f"'ok' with a finite accuracy; {fix}"
        )
    return record


def select_best(trial_paths: list[Path], out: Path) -> dict:
    """Choose the trial with the best validation accuracy; failed trials score worst."""
    records = [read_record(path) for path in trial_paths]
    succeeded = [r for r in records if r["status"] == "ok"]
    if not succeeded:
        reasons = "; ".join(f"trial {r['trial']}: {r['reason']}" for r in records)
        raise RuntimeError(
            f"every trial failed ({reasons}); narrow the search space in "
            "params.yaml, e.g. lower meta_lr's upper bound"
        )
    best = max(succeeded, key=lambda r: (r["val_accuracy"], -r["trial"]))
    result = {
        "choice": best["choice"],
        "trial": best["trial"],
        "val_accuracy": best["val_accuracy"],
        "trials": sorted(records, key=lambda r: r["trial"]),
        "failed": sum(r["status"] != "ok" for r in records),
    }
    write_json(out, result)
    return result


def read_choice(path: Path) -> dict:
    """The chosen config in a search result written by `select_best`, checked."""
    fix = "delete it so that the workflow reruns `metastress search select`"
    try:
        choice = json.loads(Path(path).read_text())["choice"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"{path}: unreadable search result ({e!r}); {fix}") from e
    if not isinstance(choice, dict):
        raise RuntimeError(f"{path}: 'choice' is {choice!r}, not a dict of config keys; {fix}")
    return choice
