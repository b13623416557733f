"""Fit the cost model of `metastress cost` to the measurements and write its coefficients.

    python -m benchmarks.fit_cost      # writes src/metastress/cost_model.json, prints the fit

Inputs (committed under benchmarks/results/):
- GPU, one H200: gpu-h200.csv (benchmarks/gpu.py, run 2): every algorithm on the five
  benchmark rows (B = 4, 16, 32; S = 1, 5) and on 20w1s, 100w1s, 200w1s at B=16 with S = 5
  and 20 (the cost section), and the evaluation throughput (20w1s, 20w5s, 200w1s; S=5);
- CPU, this machine, one thread: cost-cpu.csv (benchmarks/cost_cpu.py): every algorithm at
  conv-4 widths 8, 16 and 64 on a grid of (N, K, B, S), and evaluation per task;
  cost-jobs.csv: a torch job's and a light job's start-up, and the data phase.

The model (metastress.cost.iteration_seconds) has six non-negative coefficients per algorithm
(and width): fitted by least squares on log seconds, so every point counts by its relative
error. An evaluated task costs `eval_fraction` of a meta-iteration's share per task (median
over the measured points). The GPU has no width but the paper's 64: other widths take its
coefficients (an upper bound: narrower networks are no slower).
"""

import ast
import csv
import json
import statistics
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from metastress.cost import MODEL_FILE, Shape, iteration_seconds

RESULTS = Path(__file__).resolve().parent / "results"
TERMS = ("l0", "l1", "l2", "l3", "cq", "cs")
GPU_IMPLEMENTATIONS = {"maml FO": "maml", "metasgd FO": "metasgd", "taml FO": "taml",
                       "metalstm": "metalstm", "metalstm_pp": "metalstm_pp"}  # fmt: skip
GPU_EVAL_BATCH = {"20w1s": 50, "20w5s": 50, "200w1s": 10}  # as benchmarks/gpu.py evaluated
GPU_EVAL_STEPS = 5
CORES = 2  # this machine's: one-thread jobs, two at a time (snakemake --cores 2)


def setting(name: str) -> tuple[int, int]:
    n_way, k_shot = name.rstrip("s").split("w")
    return int(n_way), int(k_shot)


def fit(points: list[tuple[Shape, float]], combine: str) -> tuple[dict, list[float]]:
    """Coefficients minimising the squared log error; and each point's relative error."""
    seconds = np.array([t for _, t in points])
    scale = float(np.median(seconds))

    def predict(x):
        coefficients = dict(zip(TERMS, x * scale, strict=True))
        return np.array([iteration_seconds(coefficients, combine, s) for s, _ in points])

    def residuals(x):
        return np.log(np.maximum(predict(x), 1e-12)) - np.log(seconds)

    best = None
    for start in (1e-1, 1e-2, 1e-3, 1e-4):  # a few starts: max() has flat regions
        result = least_squares(residuals, np.full(len(TERMS), start), bounds=(0, np.inf))
        if best is None or result.cost < best.cost:
            best = result
    errors = (predict(best.x) / seconds - 1).tolist()
    return dict(zip(TERMS, (best.x * scale).tolist(), strict=True)), errors


def eval_fraction(coefficients: dict, combine: str, points: list[tuple[Shape, float]]) -> float:
    """Median of (measured seconds per task) / (model's meta-iteration seconds per task)."""
    return statistics.median(
        per_task / (iteration_seconds(coefficients, combine, shape) / shape.batch)
        for shape, per_task in points
    )


def gpu_model() -> dict:
    rows = list(csv.DictReader(open(RESULTS / "gpu-h200.csv")))
    train, evals = {}, {}
    for row in rows:
        if row["section"] == "rows" and row["implementation"] in GPU_IMPLEMENTATIONS:
            n, k, q, b, s = ast.literal_eval(row["row"])
            algo = GPU_IMPLEMENTATIONS[row["implementation"]]
            train.setdefault(algo, []).append((Shape(n, k, q, b, s), float(row["s_per_it"])))
        elif row["section"] == "cost" and row["s_per_it"]:
            n, k = setting(row["setting"])
            shape = Shape(n, k, k, 16, int(row["steps"]))
            train.setdefault(row["implementation"], []).append((shape, float(row["s_per_it"])))
        elif row["section"] == "eval":
            n, k = setting(row["setting"])
            shape = Shape(n, k, k, GPU_EVAL_BATCH[row["setting"]], GPU_EVAL_STEPS)
            evals.setdefault(row["implementation"], []).append(
                (shape, 1 / float(row["tasks_per_s"]))
            )
    coefficients, quality = {}, {}
    for algo, points in train.items():
        fitted, errors = fit(points, "max")
        fitted["eval_fraction"] = eval_fraction(fitted, "max", evals[algo])
        coefficients[algo] = {"64": fitted}
        quality[algo] = {"64": _quality(errors)}
    return {
        "name": "one NVIDIA H200 (strict fp32)",
        "combine": "max",
        "parallel": 1,
        "measured": "benchmarks/results/gpu-h200.csv: benchmarks/gpu.py at commit dc664cf, "
        "2026-11-28 07:03 UTC (torch 2.11.0+cu130)",
        "coefficients": coefficients,
        "fit": quality,
        "notes": [
            "measured at width 64 only; other widths use its coefficients (an upper bound)",
            "eager engine (vmap), strict fp32; the CUDA-graph engine of issue 16 is not measured",
            "process start-up and the data phase as measured on this project's CPU (a GPU "
            "node's CUDA initialisation not included)",
        ],
    }


def cpu_model() -> dict:
    rows = list(csv.DictReader(open(RESULTS / "cost-cpu.csv")))
    jobs = {r["algo"]: float(r["seconds"]) for r in csv.DictReader(open(RESULTS / "cost-jobs.csv"))}
    train, evals = {}, {}
    for row in rows:
        n, k, b, s = (int(row[key]) for key in ("n_way", "k_shot", "batch", "steps"))
        key = (row["algo"], row["width"])
        target = train if row["kind"] == "train" else evals
        target.setdefault(key, []).append((Shape(n, k, k, b, s), float(row["seconds"])))
    coefficients, quality = {}, {}
    for (algo, width), points in train.items():
        fitted, errors = fit(points, "sum")
        fitted["eval_fraction"] = eval_fraction(fitted, "sum", evals[algo, width])
        coefficients.setdefault(algo, {})[width] = fitted
        quality.setdefault(algo, {})[width] = _quality(errors)
    first = rows[-1]
    return {
        "name": "this project's CPU, one thread per job (2 cores)",
        "combine": "sum",
        "parallel": CORES,
        "measured": "benchmarks/results/cost-cpu.csv and cost-jobs.csv: benchmarks/cost_cpu.py "
        f"at commit {first['commit']}, {first['date']}",
        "coefficients": coefficients,
        "fit": quality,
        "startup_s": {"torch": jobs["torch"], "light": jobs["light"]},
        "data_s": {rule: jobs[rule] for rule in ("download", "prepare", "split")},
        "notes": [
            "one thread per job, two jobs at a time (2 cores); the data phase runs alone",
            "widths between measured ones interpolated linearly; beyond them, the nearest",
        ],
    }


def _quality(errors: list[float]) -> dict:
    return {
        "points": len(errors),
        "median_abs_error": round(statistics.median(abs(e) for e in errors), 4),
        "max_abs_error": round(max(abs(e) for e in errors), 4),
    }


def main() -> None:
    cpu, gpu = cpu_model(), gpu_model()
    gpu["startup_s"], gpu["data_s"] = cpu["startup_s"], cpu["data_s"]
    model = {
        "about": "Coefficients of metastress.cost (seconds per meta-iteration), fitted by "
        "benchmarks/fit_cost.py; see benchmarks/RESULTS.md",
        "aliases": {"anil": "maml"},
        "cpu": cpu,
        "gpu": gpu,
    }
    MODEL_FILE.write_text(json.dumps(model, indent=1, sort_keys=False) + "\n")
    for device, entry in (("cpu", cpu), ("gpu", gpu)):
        for algo, widths in entry["fit"].items():
            for width, q in widths.items():
                print(f"{device} {algo} w{width}: {q['points']} points, median |error| "
                      f"{q['median_abs_error']:.1%}, max {q['max_abs_error']:.1%}")  # fmt: skip
    print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
