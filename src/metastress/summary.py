"""The metrics DVC compares across commits and experiments, small enough for git and for
`dvc exp show` in a 120-column terminal. Kept free of torch so this small job starts in a blink.

- headline.json: one number per algorithm, its mean test accuracy (%) over the headline
  settings (the workflow passes Figure 2's: 1-shot, 20 to 200 ways), so that `dvc exp show`
  has one column per algorithm.
- by_setting.json: {"by_setting": {algo: {setting: {...}}}}, per trained setting the test
  accuracy and its 95% CI (%), the number of training seeds, the best validation accuracy (%),
  the meta-iterations run and the seconds they took, and per transfer pair
  (`<train>_to_<test>`) the test accuracy and CI. The top-level key lets
  `dvc exp show --drop by_setting` hide these columns.
- validation_curves.csv: validation accuracy (%) over iterations, per algorithm, setting and
  seed, for `dvc plots` (one series per algorithm, whatever the list of algorithms).

With several training seeds (protocol.seeds), a model's test accuracy is the mean over its
seeds, `seed_std` their standard deviation, and the CI the task interval of the per-task
accuracies averaged over seeds (`metastress.intervals.over_seeds`); the best validation
accuracy and the iterations are means over seeds and the seconds their sum. One seed gives its
own numbers. Accuracies are rounded to 0.01% and seconds to 0.1 s: the full records stay in
the DVC-cached results/eval and models folders.
"""

import csv
import io
import json
from pathlib import Path
from statistics import fmean

from metastress import paths
from metastress.atomic import write_json, write_text
from metastress.intervals import over_seeds

DETAIL_KEY = "by_setting"


def summarize(
    evaluations: list[Path], models: list[Path], headline_settings: list[str], out_dir: Path
) -> dict:
    """Write the three files into out_dir; return the two JSON ones' contents.

    Args:
        evaluations: results/eval/<algo>/<train>/seed<N>/<test>.json files (in-setting and
            transfer), every seed of each model.
        models: models/<algo>/<setting>/seed<N>/ folders of the final trainings (summary.json
            and metrics.tsv inside).
        headline_settings: settings averaged into each algorithm's headline number.
    """
    detail: dict[str, dict[str, dict]] = {}
    accuracy: dict[tuple[str, str], float] = {}  # unrounded, for the headline means
    curves = []
    tested: dict[tuple[str, str], dict[int, dict]] = {}  # (algo, key) -> seed -> record
    for path in evaluations:
        where = _layout(paths.parse_evaluation_file, path)
        train, test = where["train"], where["test"]
        key = train if train == test else f"{train}_to_{test}"
        record = _read_json(path, ("accuracy", "std", "ci95", "ci999", "per_task"))
        _add_seed(tested.setdefault((where["algo"], key), {}), where["seed"], record, path)
    for (algo, key), by_seed in tested.items():
        try:
            result = over_seeds([by_seed[seed] for seed in sorted(by_seed)])
        except ValueError as e:
            raise RuntimeError(f"{algo} {key}: {e}") from e
        accuracy[algo, key] = result["accuracy"]
        numbers = {"accuracy": _percent(result["accuracy"]), "ci95": _percent(result["ci95"])}
        numbers["seeds"] = result["seeds"]
        if result["seed_std"] is not None:
            numbers["seed_std"] = _percent(result["seed_std"])
        detail.setdefault(algo, {}).setdefault(key, {}).update(numbers)
    trained: dict[tuple[str, str], dict[int, dict]] = {}  # (algo, setting) -> seed -> training
    for folder in models:
        where = _layout(paths.parse_run_dir, folder)
        training = _read_json(Path(folder) / "summary.json", ("best_val_accuracy", "iterations"))
        rows = _training_log(Path(folder) / "metrics.tsv")
        training = {**training, "seconds": sum(row["seconds"] for row in rows)}
        runs = trained.setdefault((where["algo"], where["setting"]), {})
        _add_seed(runs, where["seed"], training, folder)
        curves += [
            {
                "algo": where["algo"],
                "setting": where["setting"],
                "seed": where["seed"],
                "iteration": row["iteration"],
                "val_accuracy": _percent(row["val_accuracy"]),
            }
            for row in rows
            if row["val_accuracy"] is not None
        ]
    for (algo, setting), by_seed in trained.items():
        runs = [by_seed[seed] for seed in sorted(by_seed)]
        iterations = fmean(run["iterations"] for run in runs)
        detail.setdefault(algo, {}).setdefault(setting, {}).update(
            best_val_accuracy=_percent(fmean(run["best_val_accuracy"] for run in runs)),
            iterations=int(iterations) if iterations.is_integer() else iterations,
            train_seconds=round(sum(run["seconds"] for run in runs), 1),
        )
    headline = {}
    for algo in detail:
        missing = [s for s in headline_settings if (algo, s) not in accuracy]
        if missing:
            raise ValueError(
                f"no in-setting evaluation of {algo} on {missing} among the inputs; pass "
                f"results/eval/{algo}/<setting>/<setting>.json for every headline setting"
            )
        headline[algo] = _percent(fmean(accuracy[algo, s] for s in headline_settings))
    out_dir = Path(out_dir)
    write_json(out_dir / "headline.json", headline)
    write_json(out_dir / "by_setting.json", {DETAIL_KEY: detail})
    table = io.StringIO()
    writer = csv.DictWriter(table, ["algo", "setting", "seed", "iteration", "val_accuracy"])
    writer.writeheader()
    writer.writerows(curves)
    write_text(out_dir / "validation_curves.csv", table.getvalue())
    return {"headline": headline, DETAIL_KEY: detail}


def _percent(fraction: float) -> float:
    return round(100 * fraction, 2)


def _layout(parse, path: Path) -> dict:
    try:
        return parse(path)
    except ValueError as e:
        raise RuntimeError(f"{e}; pass the files the workflow writes (metastress.paths)") from e


def _add_seed(by_seed: dict[int, dict], seed: int, record: dict, path: Path) -> None:
    if seed in by_seed:
        raise RuntimeError(f"{path}: a second result for seed {seed}; pass each file once")
    by_seed[seed] = record


def _read_json(path: Path, fields: tuple[str, ...]) -> dict:
    fix = "delete it and run snakemake to regenerate it"
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise RuntimeError(f"{path}: unreadable result ({e}); {fix}") from e
    missing = [f for f in fields if not isinstance(record, dict) or f not in record]
    if missing:
        raise RuntimeError(f"{path}: lacks the field(s) {missing}; {fix}")
    return record


def _training_log(metrics_tsv: Path) -> list[dict]:
    """Iteration, seconds and validation accuracy (None between validations) of each
    meta-iteration in a training's metrics.tsv."""
    try:
        with open(metrics_tsv, newline="") as f:
            return [
                {
                    "iteration": int(row["iteration"]),
                    "seconds": float(row["seconds"]),
                    "val_accuracy": float(row["val_accuracy"]) if row["val_accuracy"] else None,
                }
                for row in csv.DictReader(f, delimiter="\t")
            ]
    except (OSError, KeyError, ValueError) as e:
        raise RuntimeError(
            f"{metrics_tsv}: unreadable training log ({e!r}); delete its model folder and run "
            "snakemake to retrain it"
        ) from e
