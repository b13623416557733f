"""Seconds per meta-iteration and per evaluated task on this CPU, for `metastress cost`.

    python -m benchmarks.cost_cpu                 # every width and point (about 10 minutes)
    python -m benchmarks.cost_cpu --widths 16 --algorithms maml   # a part of it
    python -m benchmarks.cost_cpu --jobs          # only the jobs' start-up and the data phase

The workflow's jobs run on one thread each (`threads: 1`), so this measures one thread: for
each conv-4 width and each algorithm as params.yaml configures it (first order where the
section says so), `Engine.meta_step` with `task_mode: auto` (the fused engine here) and
`torch.optim.Adam`, as `metastress train` runs it, at a grid of (N-way, K-shot, meta-batch B,
inner steps S) points with Q = K; then `Engine.evaluate` on fixed tasks (what validation and
test evaluation run). Each point: one untimed iteration, then the median of up to 5 timed
ones within a 10 s budget. Tasks are uniform random bytes drawn like Omniglot tasks (speed
does not depend on pixel values). With --jobs (also part of a full run): the wall seconds of
the data phase's three commands from the Omniglot mirror (OMNIGLOT_MIRROR), and, medians of 3,
a `metastress search rung` job that trains one 20w1s iteration at width 4 and validates 2
tasks (what every torch job pays to start: Python, torch, the data, first calls) and a
`metastress search select` job (what a light job pays).

Writes benchmarks/out/cost-cpu.csv (meta-iterations, evaluation) and cost-jobs.csv (start-up,
data phase), with --results also into benchmarks/results/, which benchmarks/fit_cost.py turns
into the coefficients of `metastress cost` (src/metastress/cost_model.json).
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks.common import sampler_for
from metastress import registry
from metastress.algorithms import build
from metastress.engine import resolve_engine
from metastress.engine.malloc import keep_freed_memory
from metastress.experiments import algorithm_config, run_config, search_space

HERE = Path(__file__).resolve().parent
WIDTHS = (8, 16, 64)  # the quick profile's, the halving measurement's, the paper's
POINTS = [  # (N, K, B, S): 1- and 5-shot, B and S apart, up to 100-way
    (20, 1, 1, 1), (20, 1, 4, 1), (20, 1, 4, 5), (20, 1, 16, 2), (20, 5, 2, 2), (100, 1, 2, 1),
    (100, 1, 4, 4),
]  # fmt: skip
EVAL_POINTS = [(20, 1, 10, 5), (20, 5, 10, 2), (100, 1, 5, 1)]  # (N, K, tasks together, S)
BUDGET_S, MAX_TIMED = 10.0, 5


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def timed_median(step) -> float:
    step()  # untimed: first-call costs
    times, start = [], time.perf_counter()
    while len(times) < MAX_TIMED and (not times or time.perf_counter() - start < BUDGET_S):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return median(times)


def learner_for(params: dict, algo: str, width: int, n_way: int, steps: int):
    config = {**algorithm_config(params, algo), "hidden": width, "inner_steps": steps}
    return build(algo, n_way, config, 0)


def meta_iteration_s(params, algo, width, point) -> float:
    n_way, k_shot, batch, steps = point
    learner = learner_for(params, algo, width, n_way, steps)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    engine = resolve_engine("auto", "fp32", torch.device("cpu"))
    episode = sampler_for(n_way, k_shot, k_shot).sample(batch, torch.Generator().manual_seed(1))
    learner.train()
    return timed_median(lambda: engine.meta_step(learner, optimizer, episode))


def evaluation_s_per_task(params, algo, width, point) -> float:
    n_way, k_shot, together, steps = point
    learner = learner_for(params, algo, width, n_way, steps)
    engine = resolve_engine("auto", "fp32", torch.device("cpu"))
    tasks = sampler_for(n_way, k_shot, k_shot).fixed_tasks(together, seed=3, batch=together)
    learner.eval()
    return timed_median(lambda: engine.evaluate(learner, tasks)) / together


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return time.perf_counter() - start


def job_rows(params: dict, folder: Path) -> list[dict]:
    """Wall seconds of the data phase's commands and of a torch and a light job."""
    cli = [sys.executable, "-m", "metastress"]
    raw, processed, split = folder / "raw", folder / "omniglot28.npz", folder / "paper.json"
    rows = [
        ("download", wall([*cli, "data", "download", "--out", str(raw),
                           "--mirror", os.environ["OMNIGLOT_MIRROR"]])),
        ("prepare", wall([*cli, "data", "prepare", "--raw", str(raw), "--out", str(processed),
                          "--workers", "2"])),
        ("split", wall([*cli, "data", "split", "--processed", str(processed), "--name", "paper",
                        "--seed", "0", "--out", str(split)])),
    ]  # fmt: skip
    tiny = {**params, "profile": "tiny"}
    run = {**run_config(tiny, "maml", "20w1s", "search"), "validation_tasks": 2}
    plan = {"method": "random", "trials": 1, "iterations": 1, "eta": 2, "rungs": 1,
            "trials_per_job": 1}  # fmt: skip
    torch_jobs, light_jobs = [], []
    for i in range(3):
        out = folder / f"part{i}.json"
        torch_jobs.append(wall([
            *cli, "search", "rung", "--processed", str(processed), "--split", str(split),
            "--run", json.dumps(run), "--space", json.dumps(search_space(tiny, "maml")),
            "--plan", json.dumps(plan), "--rung", "0", "--part", "0", "--out", str(out),
            "--work-root", str(folder / f"work{i}"),
        ]))  # fmt: skip
        light_jobs.append(wall([*cli, "search", "select", "--parts", str(out),
                                "--out", str(folder / f"best{i}.json")]))  # fmt: skip
    rows += [("torch", median(torch_jobs)), ("light", median(light_jobs))]
    return [{"kind": "job", "algo": name, "seconds": f"{seconds:.3f}"} for name, seconds in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--algorithms", nargs="+", default=registry.in_paper())
    parser.add_argument("--jobs", action="store_true", help="only start-up and the data phase")
    parser.add_argument("--results", action="store_true", help="write benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    params = yaml.safe_load((HERE.parent / "params.yaml").read_text())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {commit}")
    folders = [HERE / "out"] + ([HERE / "results"] if args.results else [])
    with tempfile.TemporaryDirectory() as folder:
        jobs = job_rows(params, Path(folder))
    for row in jobs:
        row.update(load=f"{_load():.2f}", commit=commit, date=stamp)
        print(f"job {row['algo']}: {row['seconds']} s")
    write_csv("cost-jobs.csv", jobs, folders)
    if args.jobs:
        return
    rows = []
    for width in args.widths:
        for algo in args.algorithms:
            for kind, points, measure in (
                ("train", POINTS, meta_iteration_s),
                ("eval", EVAL_POINTS, evaluation_s_per_task),
            ):
                for point in points:
                    seconds = measure(params, algo, width, point)
                    n_way, k_shot, batch, steps = point
                    rows.append(
                        dict(kind=kind, width=width, algo=algo, n_way=n_way, k_shot=k_shot,
                             batch=batch, steps=steps, seconds=f"{seconds:.5f}",
                             load=f"{_load():.2f}", commit=commit, date=stamp)
                    )  # fmt: skip
                    print(f"{kind} w{width} {algo} {point}: {seconds:.4f} s  (load {_load():.2f})")
    write_csv("cost-cpu.csv", rows, folders)


def write_csv(name: str, rows: list[dict], folders: list[Path]) -> None:
    for folder in folders:
        folder.mkdir(exist_ok=True)
        with open(folder / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    main()
