"""Successive halving against random search: meta-iterations spent, and the test accuracy of
the configuration each one picks after final training, over several seeds.

    python -m benchmarks.halving_vs_random                     # the committed measurement
    python -m benchmarks.halving_vs_random --seeds 0 --trials 3 --iterations 18 --final 20

Everything runs through the workflow's own functions: params.yaml (its `maml` section and
settings) turned into run configs by `metastress.experiments` under a profile built from the
arguments, both searches as rung jobs (`search.run_rung`, one job per rung here), the pick by
`selection.select_best`, the final training by `train.train` with the profile's early
stopping, and the test score by `evaluate.evaluate` on the setting's fixed test tasks. Trial
i's draw depends only on (space, seed, i), so within a seed both methods search the same
configurations; a configuration both pick is trained once (same config hash).

Needs the data phase's files (snakemake --cores 2 data/splits/paper.json). One thread, as
the workflow's jobs. Writes benchmarks/out/halving/ (checkpoints) and, with --results,
benchmarks/results/halving-vs-random.{md,json}.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import yaml

from metastress import paths
from metastress.engine.malloc import keep_freed_memory
from metastress.evaluate import evaluate
from metastress.experiments import (
    apply_choice,
    evaluation_config,
    final_run_config,
    run_config,
    search_plan,
    search_space,
)
from metastress.search import run_rung
from metastress.selection import read_choice, select_best
from metastress.train import train, train_config, work_dir_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPACE = {  # MAML's keys, ranges where 20w1s at width 16 learns within a few hundred iterations
    "inner_steps": [1, 2, 4],
    "inner_lr": {"log_uniform": [0.03, 1.0]},
    "meta_lr": {"log_uniform": [1.0e-4, 3.0e-2]},
    "meta_batch": [2, 4, 8],
}


def bench_params(args, seed: int, method: str) -> dict:
    """params.yaml with a `bench` profile from the arguments, active, at `seed`."""
    params = yaml.safe_load((ROOT / paths.PARAMS).read_text())
    params = copy.deepcopy(params)
    params["profile"] = "bench"
    params["protocol"].update(seed=seed, device="cpu")
    params["profiles"]["bench"] = {
        "hidden": args.width,
        "search_method": method,
        "search_trials": args.trials,
        "search_iterations": args.iterations,
        "search_eta": args.eta,
        "search_rungs": args.rungs,
        "search_trials_per_job": args.trials,
        "final_iterations": args.final,
        "patience": args.patience,
        "validate_every": args.validate_every,
        "validation_tasks": args.validation_tasks,
        "test_tasks": args.test_tasks,
        "eval_batch": 50,
        "step_ablation_max": 1,
        "fig1_iterations": 1,
        "space": SPACE,
    }
    return params


def search(params: dict, algo: str, setting: str, root: Path) -> tuple[dict, float]:
    """Every rung of the profile's search, then the pick; returns (best.json, seconds)."""
    plan, start = search_plan(params), time.perf_counter()
    run, space = run_config(params, algo, setting, "search"), search_space(params, algo)
    data = (Path(paths.PROCESSED), Path(paths.split_file(params["data"]["split"])))
    parts: list[list[Path]] = []
    for rung in range(plan.rung_count):
        parts.append([root / f"rung{rung}" / f"part{p}.json" for p in range(plan.parts(rung))])
        previous = parts[rung - 1] if rung else []
        for part, out in enumerate(parts[rung]):
            run_rung(run, space, plan, rung, part, previous, *data, out, root / "checkpoints")
    best = select_best([p for rung in parts for p in rung], root / "best.json")
    return best, time.perf_counter() - start


def final_score(params: dict, algo: str, setting: str, best: Path, root: Path) -> dict:
    """Train the pick as the workflow's train_final does and score it on the test tasks."""
    config = train_config(apply_choice(final_run_config(params, algo, setting), read_choice(best)))
    work = work_dir_for(config, root / "final")
    data = (Path(paths.PROCESSED), Path(paths.split_file(params["data"]["split"])))
    start = time.perf_counter()
    summary = train(config, *data, work / "run", work / "checkpoints")
    result = evaluate(work / "run" / "model.pt", evaluation_config(params, setting), *data,
                      work / "test.json")  # fmt: skip
    return {
        "final_iterations": summary["iterations"],
        "final_seconds": time.perf_counter() - start,
        "test_accuracy": result["accuracy"],
        "test_ci95": result["ci95"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", default="maml")
    parser.add_argument("--setting", default="20w1s")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=540, help="full search budget R")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--rungs", type=int, default=3)
    parser.add_argument("--final", type=int, default=1500, help="final training iterations")
    parser.add_argument("--patience", type=int, default=600)
    parser.add_argument("--validate-every", type=int, default=150)
    parser.add_argument("--validation-tasks", type=int, default=100)
    parser.add_argument("--test-tasks", type=int, default=300)
    parser.add_argument("--results", action="store_true", help="write benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    rows = []
    for seed in args.seeds:
        for method in ("random", "halving"):
            params = bench_params(args, seed, method)
            root = HERE / "out" / "halving" / f"seed{seed}"
            best, seconds = search(params, args.algo, args.setting, root / method)
            score = final_score(params, args.algo, args.setting, root / method / "best.json", root)
            rows.append({
                "seed": seed, "method": method, "search_iterations": search_plan(params).spent(),
                "search_seconds": seconds, "trial": best["trial"], "choice": best["choice"],
                "val_accuracy": best["val_accuracy"], "failed": best["failed"], **score,
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    report = {"arguments": vars(args), "space": SPACE, "runs": rows}
    for folder in [HERE / "out"] + ([HERE / "results"] if args.results else []):
        (folder / "halving-vs-random.json").write_text(json.dumps(report, indent=1) + "\n")
        (folder / "halving-vs-random.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    args, runs = report["arguments"], report["runs"]
    lines = [
        "# Successive halving against random search",
        "",
        f"{args['algo']} on {args['setting']}, conv-4 width {args['width']}, one thread; "
        f"{args['trials']} trials of the space below per seed; random trains each to "
        f"{args['iterations']} iterations, halving (eta {args['eta']}, {args['rungs']} rungs) "
        f"extends the best 1/{args['eta']} of each rung; the pick is trained for up to "
        f"{args['final']} iterations (patience {args['patience']}, validation every "
        f"{args['validate_every']} on {args['validation_tasks']} tasks) and tested on "
        f"{args['test_tasks']} fixed test tasks (95% CI).",
        "",
        f"Space: `{json.dumps(report['space'])}`",
        "",
        "| seed | method | search iterations | search s | trial picked | choice | "
        "validation % | test % (95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        choice = ", ".join(f"{k}={_short(v)}" for k, v in sorted(r["choice"].items()))
        lines.append(
            f"| {r['seed']} | {r['method']} | {r['search_iterations']:,} | "
            f"{r['search_seconds']:.0f} | {r['trial']} | {choice} | "
            f"{100 * r['val_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} ± "
            f"{100 * r['test_ci95']:.2f} |"
        )
    lines += ["", *verdict(runs), ""]
    return "\n".join(lines)


def verdict(runs: list[dict]) -> list[str]:
    """Per seed: iterations saved, and whether halving's pick lies in random's 95% CI."""
    lines = []
    for seed in sorted({r["seed"] for r in runs}):
        rand, halv = (next(r for r in runs if (r["seed"], r["method"]) == (seed, m))
                      for m in ("random", "halving"))  # fmt: skip
        ratio = rand["search_iterations"] / halv["search_iterations"]
        gap = 100 * (halv["test_accuracy"] - rand["test_accuracy"])
        inside = abs(gap) <= 100 * rand["test_ci95"]
        lines.append(
            f"- seed {seed}: halving spent {ratio:.2f}x fewer search iterations "
            f"({rand['search_seconds'] / halv['search_seconds']:.2f}x less search time); its "
            f"pick tests {gap:+.2f} points from random's, "
            f"{'inside' if inside else 'OUTSIDE'} random's 95% CI (± {100 * rand['test_ci95']:.2f})"
        )
    return lines


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
