"""Read the search's rung records and pick the best trial of the last rung. Kept free of
torch so that this small job starts in a blink."""

import json
import math
from pathlib import Path

from metastress.atomic import write_json
from metastress.halving import rank

RECORD_KEYS = ("trial", "choice", "iterations", "status", "reason", "val_accuracy")
PART_KEYS = ("rung", "part", "iterations", "trials")


def read_part(path: Path) -> dict:
    """One rung job's records, checked: a damaged file is an error, never a silently skipped
    trial."""
    fix = "delete it so that the workflow reruns that rung job"
    try:
        part = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RuntimeError(f"{path}: unreadable rung record ({e}); {fix}") from e
    if not isinstance(part, dict) or any(key not in part for key in PART_KEYS):
        raise RuntimeError(f"{path}: not a rung record (keys {list(PART_KEYS)} needed); {fix}")
    if not isinstance(part["trials"], list):
        raise RuntimeError(f"{path}: 'trials' is {part['trials']!r}, not a list; {fix}")
    for record in part["trials"]:
        _check_record(record, path, fix)
    return part


def _check_record(record, path: Path, fix: str) -> None:
    if not isinstance(record, dict) or any(key not in record for key in RECORD_KEYS):
        raise RuntimeError(f"{path}: not a trial record (keys {list(RECORD_KEYS)} needed); {fix}")
    status, accuracy = record["status"], record["val_accuracy"]
    finite = isinstance(accuracy, int | float) and math.isfinite(accuracy)
    if not (status == "failed" or (status == "ok" and finite)):
        raise RuntimeError(
            f"{path}: trial {record['trial']}: status {status!r} with val_accuracy {accuracy!r}; "
            f"expected 'failed', or 'ok' with a finite accuracy; {fix}"
        )


def read_rung(paths: list[Path], rung: int) -> list[dict]:
    """Every trial record of rung `rung`, from its part files."""
    records = []
    for path in paths:
        part = read_part(path)
        if part["rung"] != rung:
            raise RuntimeError(
                f"{path}: holds rung {part['rung']}, expected rung {rung}; delete it so that "
                "the workflow reruns that rung job"
            )
        records += part["trials"]
    return records


def select_best(part_paths: list[Path], out: Path) -> dict:
    """Choose the best trial of the last rung by validation accuracy (failed trials score
    worst, ties go to the lower trial index); `part_paths` are every rung's part files."""
    parts = sorted((read_part(path) for path in part_paths), key=lambda p: p["rung"])
    if not parts:
        raise RuntimeError("no rung records given; pass the part files of every rung")
    last = parts[-1]["rung"]
    final = [r for part in parts if part["rung"] == last for r in part["trials"]]
    latest = {r["trial"]: r for part in parts for r in part["trials"]}  # furthest rung wins
    best = sorted(final, key=rank)[0]
    if best["status"] != "ok":
        reasons = "; ".join(f"trial {r['trial']}: {r['reason']}" for r in final)
        raise RuntimeError(
            f"every trial of the last rung failed ({reasons}); narrow the search space in "
            "params.yaml, e.g. lower meta_lr's upper bound"
        )
    result = {
        "choice": best["choice"],
        "trial": best["trial"],
        "val_accuracy": best["val_accuracy"],
        "iterations": best["iterations"],
        "trials": [latest[trial] for trial in sorted(latest)],
        "failed": sum(r["status"] != "ok" for r in latest.values()),
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
