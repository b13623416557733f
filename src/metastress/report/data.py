"""Evaluation results as one DataFrame: with the trajectories, the report phase's only input.

The report never looks for files. It reads exactly the paths it is given, checks that each
holds every key the evaluation step writes, and when one does not it names the file, the
problem and the command that rebuilds it. Results of several training seeds of one model
become one row (`over_seeds`): the mean over seeds, the standard deviation over seeds, and the
95%/99.9% task intervals of the per-task accuracies averaged over seeds.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from metastress import intervals, registry

ALGO_NAMES: dict[str, str] = registry.names(registry.meta_trained())
"""Algorithm ids (as in params.yaml and file names) -> display names, in the registry's order
(the paper's first)."""

HAND_OPTIMIZER_NAMES = registry.names(registry.hand_optimizers())

EVAL_KEYS = (
    "algo",
    "seed",
    "train_setting",
    "test_setting",
    "n_way",
    "k_shot",
    "accuracy",
    "std",
    "ci95",
    "ci999",
    "n_tasks",
    "per_task",
    "steps",
    "init_from",
    "optimizer",
    "optimizer_lr",
)
PERCENT_COLUMNS = ["accuracy", "std", "ci95", "ci999"]  # fractions in the files
# What names one model and its test: rows that differ only in `seed` are its seeds.
MODEL_KEYS = ("algo", "train_setting", "test_setting", "init_from", "optimizer", "steps")
COMBINED = {*PERCENT_COLUMNS, "per_task", "path", "seed"}  # computed anew over seeds


class ReportInputError(ValueError):
    """A result file the report reads is missing, malformed, or clashes with another one."""


def rebuild_hint(path: Path) -> str:
    return f"rerun `snakemake --force {path}`"


def load_evals(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Read evaluation JSON files, one row per file.

    Args:
        paths: the files to read, exactly as the workflow lists them.

    Returns:
        DataFrame with every key of EVAL_KEYS, plus `name` (the display name) and `path`.
        accuracy, std, ci95 and ci999 are in percent; `per_task` stays a list of fractions
        (task i at position i, for paired tests); init_from, optimizer and optimizer_lr are
        missing values (NaN) where the file has null.
    """
    rows = [_read_eval(Path(path)) for path in paths]
    if not rows:
        raise ReportInputError("no evaluation files were given to the report")
    frame = pd.DataFrame(rows)
    frame[PERCENT_COLUMNS] = frame[PERCENT_COLUMNS].astype(float) * 100
    return frame


def _read_eval(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ReportInputError(f"{path} does not exist; {rebuild_hint(path)}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportInputError(f"{path} is not valid JSON ({e}); {rebuild_hint(path)}") from e
    if not isinstance(record, dict):
        raise ReportInputError(
            f"{path} holds a JSON {type(record).__name__}, expected an "
            f"object with keys {', '.join(EVAL_KEYS)}; {rebuild_hint(path)}"
        )
    missing = [key for key in EVAL_KEYS if key not in record]
    if missing:
        raise ReportInputError(
            f"{path} lacks key(s) {', '.join(map(repr, missing))} that the "
            f"evaluation step writes; {rebuild_hint(path)}"
        )
    for key in ("algo", "init_from"):
        if record[key] is not None and record[key] not in ALGO_NAMES:
            raise ReportInputError(
                f"{path}: {key} is {record[key]!r}, expected one of "
                f"{', '.join(ALGO_NAMES)}; {rebuild_hint(path)}"
            )
    if record["optimizer"] is not None and record["optimizer"] not in HAND_OPTIMIZER_NAMES:
        raise ReportInputError(
            f"{path}: optimizer is {record['optimizer']!r}, expected null or "
            f"one of {', '.join(HAND_OPTIMIZER_NAMES)}; {rebuild_hint(path)}"
        )
    if not 0 <= record["accuracy"] <= 1:
        raise ReportInputError(
            f"{path}: accuracy must be a fraction in [0, 1], got "
            f"{record['accuracy']}; {rebuild_hint(path)}"
        )
    per_task = record["per_task"]
    if not isinstance(per_task, list) or len(per_task) != record["n_tasks"]:
        got = f"{len(per_task)} values" if isinstance(per_task, list) else repr(per_task)
        raise ReportInputError(
            f"{path}: per_task must list one accuracy per test task (n_tasks = "
            f"{record['n_tasks']}), got {got}; {rebuild_hint(path)}"
        )
    return {**record, "name": ALGO_NAMES[record["algo"]], "path": str(path)}


def over_seeds(frame: pd.DataFrame, what: str, keys: Sequence[str] = MODEL_KEYS) -> pd.DataFrame:
    """One row per model and test (the columns `keys`) from the rows of its training seeds.

    Args:
        frame: rows of `load_evals`.
        what: the output's name, for error messages.
        keys: the columns that name a model and its test; rows equal in them are its seeds.

    Returns:
        The rows, one per group, with accuracy (mean over seeds), seed_std (standard deviation
        over seeds, percent; NaN for one seed), seeds (how many), per_task (averaged over
        seeds), std, ci95 and ci999 (over tasks of those averages, percent: see
        `metastress.intervals.over_seeds`) and `path` (the files, comma-separated). One seed's
        row keeps its file's numbers. Another column keeps its value where the seeds agree and
        becomes the tuple of their sorted values where they do not (a hand optimizer's chosen
        steps and rate, Figure 4b).

    Raises:
        ReportInputError: two files for one seed, or seeds scored on different numbers of tasks.
    """
    keys = list(keys)
    require_unique(frame, [*keys, "seed"], what)
    rows = []
    for _, group in frame.groupby(keys, sort=False, dropna=False):
        group = group.sort_values("seed", kind="stable")
        if len(group) == 1:
            rows.append({**group.iloc[0].to_dict(), "seeds": 1, "seed_std": np.nan})
            continue
        fractions = [
            {**{k: row[k] / 100 for k in PERCENT_COLUMNS}, "per_task": row["per_task"]}
            for row in group.to_dict("records")
        ]
        try:
            combined = intervals.over_seeds(fractions)
        except ValueError as e:
            listed = ", ".join(group["path"])
            raise ReportInputError(f"{what}: {e} ({listed})") from e
        rows.append(
            {
                **{c: _agreed(group[c]) for c in group.columns if c not in COMBINED},
                **{k: 100 * combined[k] for k in [*PERCENT_COLUMNS, "seed_std"]},
                "per_task": combined["per_task"],
                "seeds": combined["seeds"],
                "path": ", ".join(group["path"]),
            }
        )
    return pd.DataFrame(rows, columns=[*frame.columns, "seeds", "seed_std"]).drop(columns="seed")


def _agreed(values: pd.Series):
    """The one value of a column across seeds, or the sorted tuple of its values."""
    distinct = list(dict.fromkeys(values.dropna())) or [values.iloc[0]]
    return distinct[0] if len(distinct) == 1 else tuple(sorted(distinct))


def own_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows where each model used its own initialization and its own inner optimizer."""
    return frame[frame["init_from"].isna() & frame["optimizer"].isna()]


def in_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows tested on the setting they were trained on."""
    return frame[frame["train_setting"] == frame["test_setting"]]


def in_algo_order(frame: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Sort rows by the paper's algorithm order, then by the columns `then`."""
    rank = frame["algo"].map(list(ALGO_NAMES).index).rename("_rank")
    ordered = frame.assign(_rank=rank).sort_values(["_rank", *then], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def require_rows(frame: pd.DataFrame, what: str, paths: Sequence[str | Path]) -> None:
    """Fail when a filter left nothing to draw, rather than writing an empty figure."""
    if frame.empty:
        listed = ", ".join(map(str, paths))
        raise ReportInputError(
            f"{what}: none of the {len(paths)} file(s) given qualifies "
            f"({listed}); pass the evaluation files this output is built from"
        )


def require_unique(frame: pd.DataFrame, keys: Sequence[str], what: str) -> None:
    """Fail when two files would fill the same cell, instead of silently keeping one."""
    clashes = frame[frame.duplicated(list(keys), keep=False)]
    if not clashes.empty:
        groups = clashes.groupby(list(keys), sort=False, dropna=False)["path"].apply(", ".join)
        raise ReportInputError(
            f"{what}: more than one file for the same {', '.join(keys)}: "
            f"{'; '.join(groups)}; pass one file per cell"
        )
