"""Meta-iterations/s, peak memory, GFLOP/s and a cost model, ours against the usual baselines.

    .venv/bin/python -m benchmarks.run --results  # the table in benchmarks/results/ (34 min)
    .venv/bin/python -m benchmarks.run --quick    # a smoke run: one row, one timed round
    .venv/bin/python -m benchmarks.run --modes    # also MAML's loop and vmap task modes

For each thread count and each setting (N-way, K-shot, Q queries per class, meta-batch B,
inner steps S), every implementation (benchmarks/implementations.py) is built on the same
Conv-4 (hidden 64) and the same episode, then run in rounds inside this one process (one
thread: every algorithm and both baselines; two threads: MAML against the obvious loop):

1. warm-up: one full meta-iteration of each, untimed, which also measures its peak memory
   (measure.py; it first returns the process's free memory to the OS, so timing it would
   charge every column for faulting its memory back in);
2. timed rounds, the implementations interleaved within each round, so that a load change on
   this shared machine hits all of them alike; rounds stop at the row's time budget (>= 1
   round, <= 3), except that the GFLOP target's row at 2 threads always gets 3.

Reported: median seconds per meta-iteration over the timed rounds, meta-iterations/s, and
ratios ours/baseline of iterations/s (> 1: ours is faster). Images are uniform random bytes
drawn like Omniglot tasks (`TaskSampler`); speed does not depend on pixel values.

Writes benchmarks/out/<name>.md and .csv; with --results also benchmarks/results/cpu.md and
.csv (committed; benchmarks/RESULTS.md summarizes them).
"""

import argparse
import csv
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks import measure
from benchmarks.common import (
    PAPER_ITERATIONS,
    PAPER_SETTINGS,
    PROFILE_ORDER,
    fmt,
    gradient_differences,
    meta_iteration_flops,
    sampler_for,
)
from benchmarks.implementations import Impl, make_step
from metastress.algorithms import build
from metastress.engine import resolve_engine
from metastress.engine.malloc import keep_freed_memory

OUT = Path(__file__).parent / "out"
ROWS = [(5, 1, 15, 32, 1), (20, 1, 5, 16, 5), (20, 5, 5, 16, 5), (100, 1, 1, 4, 5),
        (200, 1, 1, 4, 5)]  # fmt: skip
GFLOP_ROW = (20, 5, 5, 16, 5)
COST_ROW = (20, 1, 1, 16, 5)  # 20w1s at B=16, S=5: the cost model's small-task point
OURS = [
    ("maml", "fo"), ("maml", "so"), ("metasgd", "fo"), ("metasgd", "so"),
    ("taml", "fo"), ("taml", "so"), ("metalstm", "-"), ("metalstm_pp", "-"),
]  # fmt: skip


HEAVY_IMAGES = 3000  # B*N*(K+Q) above which higher's second-order column is left out (time)


def main_impls(row, modes: bool) -> tuple[list[Impl], list[str]]:
    """The 1-thread columns, and the names of those left out on this row (printed).

    `modes` adds MAML in the loop and vmap task modes, the evidence for `task_mode: auto`."""
    impls = [Impl("ours", algo, order) for algo, order in OURS]
    for order in ("fo", "so"):
        if modes:
            impls += [Impl("ours", "maml", order, "loop"), Impl("ours", "maml", order, "vmap")]
        impls += [Impl("obvious", "maml", order), Impl("higher", "maml", order)]
    n_way, k_shot, n_query, batch, _ = row
    if batch * n_way * (k_shot + n_query) <= HEAVY_IMAGES:
        return impls, []
    slow = {Impl("ours", "maml", "so", "loop"), Impl("ours", "maml", "so", "vmap")}
    slow.add(Impl("higher", "maml", "so"))
    return [i for i in impls if i not in slow], sorted(i.name for i in slow if i in impls)


def mode_impls(orders: tuple[str, ...], modes: bool = False) -> list[Impl]:
    """Ours (auto = fused on the CPU; with `modes` also loop and vmap) and the obvious loop,
    MAML only."""
    impls = []
    for order in orders:
        task_modes = ("auto", "loop", "vmap") if modes else ("auto",)
        impls += [Impl("ours", "maml", order, mode) for mode in task_modes]
        impls.append(Impl("obvious", "maml", order))
    return impls


@dataclass
class Result:
    threads: int
    row: tuple
    impl: Impl
    peak_mib: float | None = None
    times: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return measure.median(self.times)

    @property
    def it_per_s(self) -> float:
        return 1.0 / self.median_s


def run_row(threads, row, impls, budget_s, max_rounds, peak, matmul=False, min_rounds=1, log=print):
    """Warm-up (+ memory) round, then interleaved timed rounds (at least `min_rounds`, more
    while the budget lasts, at most `max_rounds`); returns (results, reference): with
    `matmul`, reference is the median (matmul, convolutions alone) GFLOP/s of the rounds."""
    n_way, k_shot, n_query, batch, steps = row
    episode = sampler_for(n_way, k_shot, n_query).sample(batch, torch.Generator().manual_seed(1))
    results = []
    start = time.perf_counter()
    for impl in impls:
        result, step = Result(threads, row, impl), make_step(impl, n_way, steps, episode).step
        _, result.peak_mib = measure.timed_with_peak(step, peak)
        results.append((result, step))
    log(f"  warm-up and memory {time.perf_counter() - start:.0f} s; {measure.load()}")
    matmul_gflops, conv_gflops = [], []
    rounds, round_start = 0, time.perf_counter()
    while rounds < max_rounds and (
        rounds < min_rounds or time.perf_counter() - round_start < budget_s
    ):
        if matmul:
            matmul_gflops.append(measure.matmul_gflops())
            conv_gflops.append(measure.conv_gflops())
        for result, step in results:
            result.times.append(measure.timed(step))
        rounds += 1
    log(f"  {rounds} timed round(s) in {time.perf_counter() - round_start:.0f} s; {measure.load()}")
    reference = (measure.median(matmul_gflops), measure.median(conv_gflops)) if matmul else None
    return [r for r, _ in results], reference


def ratio(results: list[Result], result: Result, kind: str) -> float | None:
    """iterations/s of `result` over those of the `kind` baseline (same row, threads, order)."""
    if result.impl.algo != "maml" or result.impl.kind != "ours":
        return None
    for other in results:
        same = (other.row, other.threads, other.impl.order) == (
            result.row, result.threads, result.impl.order)  # fmt: skip
        if same and other.impl.kind == kind:
            return other.median_s / result.median_s
    return None


def row_name(row) -> str:
    return "({},{},{},{},{})".format(*row)


TABLE_HEAD = [
    "| threads | N,K,Q,B,S | implementation | it/s | s/it | timed | peak MiB | x obvious "
    "| x higher |",
    "|---|---|---|---|---|---|---|---|---|",
]


def table_lines(results: list[Result]) -> list[str]:
    lines = list(TABLE_HEAD)
    for r in results:
        lines.append(
            f"| {r.threads} | {row_name(r.row)} | {r.impl.name} | {r.it_per_s:.3f} | "
            f"{r.median_s:.2f} | {len(r.times)} | {fmt(r.peak_mib, '.0f')} | "
            f"{fmt(ratio(results, r, 'obvious'))} | {fmt(ratio(results, r, 'higher'))} |"
        )
    return lines


def cross_check(log) -> float:
    """Largest relative difference of MAML meta-gradients (float64, tiny episode) between
    ours (auto, loop, vmap) and the obvious loop and higher, first and second order."""
    episode = sampler_for(5, 1, 2).sample(3, torch.Generator().manual_seed(2))
    worst = 0.0
    for order in ("fo", "so"):
        impls = mode_impls((order,), modes=True) + [Impl("higher", "maml", order)]
        for name, diff in gradient_differences(impls, episode).items():
            worst = max(worst, diff)
            log(f"  {name:24s} max |g - g_obvious| / max |g_obvious| = {diff:.1e}")
    return worst


def eval_throughput(n_tasks, threads, modes, log) -> list[tuple[str, float]]:
    """Tasks/s adapting (5 steps) and predicting on fixed 20w1s test tasks, no meta-graph."""
    torch.set_num_threads(threads)
    tasks = sampler_for(20, 1, 1).fixed_tasks(n_tasks, seed=3, batch=10)
    out = []
    impls = [Impl("ours", algo, order) for algo, order in PROFILE_ORDER.items()]
    if threads != 1:
        impls = impls[:1]  # MAML only (time budget)
    if modes:
        impls += [Impl("ours", "maml", "fo", "loop"), Impl("ours", "maml", "fo", "vmap")]
    for impl in impls:
        learner = build(impl.algo, 20, {"inner_steps": 5}, 0)
        engine = resolve_engine(impl.task_mode, impl.precision, torch.device("cpu"))

        def evaluate(episodes, learner=learner, engine=engine):
            with torch.no_grad():
                for episode in episodes:
                    fast = engine.adapt(learner, episode.support_x, episode.support_y)
                    engine.logits(learner, fast, episode.query_x).argmax(-1)

        evaluate(tasks[:1])  # warm-up
        seconds = measure.timed(lambda evaluate=evaluate: evaluate(tasks))
        out.append((impl.name, n_tasks / seconds))
        log(f"  {impl.name:22s} {n_tasks / seconds:7.2f} tasks/s ({n_tasks} tasks) -> "
            f"300 tasks in {300 * seconds / n_tasks:6.1f} s")  # fmt: skip
    return out


def cost_model(results: list[Result], log) -> list[str]:
    """Seconds per task-iteration vs images per task N*(K+Q), fitted per algorithm on the
    measured S=5, Q=K rows at 1 thread; the paper profile's time from it (B=16, S=5)."""
    per_algo = {}
    for r in results:
        n_way, k_shot, n_query, batch, steps = r.row
        ours_auto = r.impl.kind == "ours" and r.impl.task_mode == "auto"
        if r.threads != 1 or not ours_auto or steps != 5 or n_query != k_shot:
            continue
        per_algo.setdefault((r.impl.algo, r.impl.order), []).append(
            (n_way * (k_shot + n_query), r.median_s / batch)
        )
    lines = [
        "| algorithm | measured (images/task: s per task-iteration) | fit: s per task-iteration "
        "| paper profile, core-hours |",
        "|---|---|---|---|",
    ]
    hours = {}
    for (algo, order), points in sorted(per_algo.items()):
        xs, ys = [x for x, _ in points], [y for _, y in points]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        intercept = mean_y - slope * mean_x
        seconds = sum(
            16 * (intercept + slope * n * 2 * k) * PAPER_ITERATIONS for n, k in PAPER_SETTINGS
        )
        hours[(algo, order)] = seconds / 3600
        name = f"{algo} {order.upper()}" if order != "-" else algo
        measured = ", ".join(f"{x}: {y:.3f}" for x, y in sorted(points))
        lines.append(
            f"| {name} | {measured} | {intercept:.4f} + {slope * 1e3:.4f}e-3 x images | "
            f"{seconds / 3600:,.0f} |"
        )
    profile = sum(h for (algo, order), h in hours.items() if PROFILE_ORDER[algo] == order)
    second = sum(h for (algo, order), h in hours.items() if order in ("so", "-"))
    lines += [
        "",
        f"Paper profile (5 algorithms x 10 settings x {PAPER_ITERATIONS:,} meta-iterations, "
        f"B=16, S=5, Q=K), first order as in params.yaml: {profile:,.0f} core-hours = "
        f"{profile / 24:,.1f} days on one core, {profile / 48:,.1f} days on this machine as 2 "
        "parallel 1-thread jobs (if they do not slow each other down).",
        f"With exact second-order MAML/MetaSGD/TAML: {second:,.0f} core-hours "
        f"({second / 48:,.1f} days as 2 parallel jobs).",
    ]
    for line in lines:
        log(line)
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one row, one timed round")
    parser.add_argument("--name", default=None, help="output file stem (default: full/quick)")
    parser.add_argument("--threads", default=None, help="thread counts (default 1,2; quick: 1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per row budget")
    parser.add_argument("--modes", action="store_true", help="also MAML in loop and vmap mode")
    parser.add_argument(
        "--results", action="store_true", help="also write benchmarks/results/cpu.{md,csv}"
    )
    args = parser.parse_args(argv)
    name = args.name or ("quick" if args.quick else "full")
    rows = [ROWS[3]] if args.quick else ROWS
    budget = args.budget if args.budget is not None else (1.0 if args.quick else 60.0)
    max_rounds = 1 if args.quick else 3
    threads = args.threads or ("1" if args.quick else "1,2")
    threads_list = [int(t) for t in threads.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    report = []

    def log(line=""):
        print(line, flush=True)
        report.append(line)

    started = time.perf_counter()
    peak = measure.peak_memory_supported()
    kept = keep_freed_memory()  # as the `metastress` command does, for every column alike
    log(f"# metastress benchmarks ({name})")
    log()
    log(f"- CPU: {measure.cpu_model()}, {platform.machine()}; torch {torch.__version__}, "
        f"Python {platform.python_version()}; command: {' '.join(sys.argv)}")  # fmt: skip
    log(f"- start: {time.strftime('%Y-%m-%d %H:%M:%S')}, {measure.load()}")
    log(f"- peak memory: {'VmHWM growth per iteration' if peak else 'NOT measured'}")
    log(f"- glibc keeps freed memory (metastress.malloc): {'yes' if kept else 'NO'}")
    log()
    log("## Cross-check: the implementations compute the same meta-gradient (float64)")
    log()
    worst = cross_check(log)
    log(f"  worst {worst:.1e}")
    results: list[Result] = []
    matmul = {}
    for threads in threads_list:
        torch.set_num_threads(threads)
        for row in rows:
            if threads == 1:
                impls, left_out = main_impls(row, args.modes)
            else:  # ours against the obvious loop (time budget), MAML only
                impls, left_out = mode_impls(("fo", "so"), args.modes), []
            log()
            log(f"## {threads} thread(s), (N,K,Q,B,S) = {row_name(row)}: {len(impls)} columns")
            if left_out:
                log(f"  not run on this row (time budget): {', '.join(left_out)}")
            is_target = row == GFLOP_ROW and threads > 1  # the GFLOP target: a median of 3
            row_results, gflops = run_row(
                threads,
                row,
                impls,
                budget,
                max_rounds,
                peak,
                matmul=row == GFLOP_ROW,
                min_rounds=max_rounds if is_target else 1,
                log=log,
            )
            if gflops is not None:
                matmul[threads] = gflops
            results += row_results
            for line in table_lines(row_results):
                log(line)
    if not args.quick and 1 in threads_list:
        log()
        log(f"## Cost-model row {row_name(COST_ROW)} (ours, 1 thread)")
        torch.set_num_threads(1)
        impls = [Impl("ours", algo, order) for algo, order in OURS]
        row_results, _ = run_row(1, COST_ROW, impls, budget, max_rounds, peak, log=log)
        results += row_results
        for line in table_lines(row_results):
            log(line)
    log()
    log("## Evaluation throughput (20w1s test tasks, 5 steps, query 1 image per class)")
    evals = []
    for threads in threads_list:
        log(f"- {threads} thread(s)")
        n_tasks = 10 if args.quick else (60 if threads == 1 else 30)
        evals += [(threads, *e) for e in eval_throughput(n_tasks, threads, args.modes, log)]
    flops_lines = gflops_report(results, matmul, log) if matmul else []
    cost_lines = cost_model(results, log) if not args.quick else []
    elapsed = time.perf_counter() - started
    log()
    end = time.strftime("%Y-%m-%d %H:%M:%S")
    log(f"- end: {end}, {measure.load()}; took {elapsed / 60:.1f} min")
    write_outputs(name, results, evals, report, flops_lines, cost_lines, args.results)


def gflops_report(results, matmul, log) -> list[str]:
    """Achieved GFLOP/s of the MAML columns on GFLOP_ROW from FlopCounterMode counts."""
    lines = []
    n_way, k_shot, n_query, _, _ = GFLOP_ROW
    episode = sampler_for(n_way, k_shot, n_query).sample(1, torch.Generator().manual_seed(1))
    flops = {order: meta_iteration_flops(GFLOP_ROW, order) for order in ("fo", "so")}
    forward = measure.count_flops(lambda: build("maml", n_way, {}, 0).net(episode.support_x[0][:1]))
    log()
    log(f"## GFLOP/s on {row_name(GFLOP_ROW)}")
    lines.append(
        f"Conv-4 forward: {forward / 1e6:.1f} MFLOP per 28x28 image (FlopCounterMode); one "
        f"meta-iteration: {flops['fo'] / 1e9:.0f} GFLOP first order, {flops['so'] / 1e9:.0f} "
        f"GFLOP second order (the obvious loop's count, used for every column)."
    )
    lines += [
        "",
        "| threads | implementation | GFLOP/s | matmul GFLOP/s | % of matmul "
        "| convolutions alone, GFLOP/s (% of matmul) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.row != GFLOP_ROW or r.impl.algo != "maml" or r.threads not in matmul:
            continue
        achieved = flops[r.impl.order] / r.median_s / 1e9
        reference, conv = matmul[r.threads]
        lines.append(
            f"| {r.threads} | {r.impl.name} | {achieved:.1f} | {reference:.1f} | "
            f"{100 * achieved / reference:.0f}% | {conv:.1f} ({100 * conv / reference:.0f}%) |"
        )
    for line in lines:
        log(line)
    return lines


def write_outputs(name, results, evals, report, flops_lines, cost_lines, write_results):
    with open(OUT / f"{name}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["threads", "n_way", "k_shot", "n_query", "meta_batch", "inner_steps", "implementation",
             "kind", "algo", "order", "task_mode", "it_per_s", "median_s", "timed_rounds",
             "peak_mib", "x_obvious", "x_higher"])  # fmt: skip
        for r in results:
            writer.writerow(
                [r.threads, *r.row, r.impl.name, r.impl.kind, r.impl.algo, r.impl.order,
                 r.impl.task_mode, f"{r.it_per_s:.4f}", f"{r.median_s:.3f}", len(r.times),
                 fmt(r.peak_mib, ".0f", ""),
                 fmt(ratio(results, r, "obvious"), ".3f", ""),
                 fmt(ratio(results, r, "higher"), ".3f", "")])  # fmt: skip
        for threads, impl_name, tasks_per_s in evals:
            writer.writerow([threads, 20, 1, 1, 10, 5, impl_name, "eval", "", "", "",
                             f"{tasks_per_s:.4f}", "", "", "", "", ""])  # fmt: skip
    (OUT / f"{name}.md").write_text("\n".join(report) + "\n")
    print(f"wrote {OUT / name}.md and .csv")
    if write_results:
        results = Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        for suffix in (".md", ".csv"):
            shutil.copyfile(OUT / f"{name}{suffix}", results / f"cpu{suffix}")
        print(f"wrote {results}/cpu.md and .csv")


if __name__ == "__main__":
    main()
