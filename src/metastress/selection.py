"""Pick the best search trial. Kept free of torch so this small job starts in a blink."""

import json
from pathlib import Path

from metastress.atomic import write_json


def select_best(trial_paths: list[Path], out: Path) -> dict:
    """Choose the trial with the best validation accuracy; failed trials score worst."""
    records = []
    for path in trial_paths:
        try:
            records.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise RuntimeError(
                f"{path}: unreadable trial record ({e}); delete it so the "
                "workflow reruns that trial"
            ) from e
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
