"""GPU benchmarks: ours (vmap; fp32, tf32, bf16) against the obvious loop and `higher`; memory of
the 200-way settings; precision; evaluation throughput; the paper profile's cost; and for the
CUDA-graph path (engine/graphs.py): graphs against eager iterations per convolution form on
the issue's rows, B and S scaling, and the search's one-trial-per-process baseline.

    python -m benchmarks.gpu --out DIR [--deadline SECONDS] [--sections a,b] [--smoke]

Built for prepared runs on a lent GPU machine (a time-limited lease; benchmarks/gpu_lease.sh
runs one process per section, each under its own `timeout`, so a hang loses one section):
every section checks the deadline before each measurement, and the report (DIR/gpu.md,
DIR/gpu.csv, appended to when they exist) is rewritten after each measurement or section, so
a run cut short still returns what it measured. `--smoke --device cpu` checks the script on a
CPU with tiny shapes (its numbers mean nothing; graphs then run uncaptured).

Timing: CUDA is asynchronous, so each meta-iteration is closed by `torch.cuda.synchronize()`;
after one warm-up iteration (kernels, cuDNN autotuning, allocator), iterations are timed one by
one until MIN_TIMED_S or MAX_TIMED of them; the median is reported. Peak memory is
`torch.cuda.max_memory_allocated()` during one iteration, minus what was allocated before it.
Training iterations (sections graphs, scaling, search) are timed as `metastress.train` runs
them, a fresh episode sampled each time: after warm-up (for graphs: the side-stream
iterations and the capture), a block of iterations back to back between two synchronizations,
sized to about MIN_TIMED_S; s/iteration is the block's time over its iterations.
"""

import argparse
import csv
import math
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.common import (
    FINAL_ITERATIONS,
    PAPER_ITERATIONS,
    PAPER_SETTINGS,
    PROFILE_ORDER,
    SEARCH_ITERATIONS,
    TRIALS,
    as_float64,
    fmt,
    gradient_differences,
    sampler_for,
)
from benchmarks.implementations import Impl, Training, make_step, make_training
from metastress import engine, experiments
from metastress.algorithms import build
from metastress.config import load_params
from metastress.data.tasks import Episode
from metastress.engine.graphs import WARMUP_ITERATIONS
from metastress.engine.malloc import keep_freed_memory

ROWS = [
    (5, 1, 15, 32, 1),
    (20, 1, 5, 16, 5),
    (20, 5, 5, 16, 5),
    (100, 1, 1, 4, 5),
    (200, 1, 1, 4, 5),
]
COST_SETTINGS = [(20, 1), (200, 1), (100, 1)]  # 40, 400, 200 images per task; the rest interpolated
COST_STEPS = (5, 20)  # inner steps measured at; time is fitted linear in the steps between them
SEARCH_STEPS = (4, 8, 16, 32, 64)  # the paper's search space (uniform choices)
SEARCH_BATCHES = (4, 8, 16, 32)
MIN_TIMED_S, MAX_TIMED = 1.0, 10
# The issue's rows (N, K, Q, B, S), strict fp32: 20w1s at the paper's B=16 S=5, a small
# meta-batch with more steps, and 200w1s
ISSUE_ROWS = [(20, 1, 1, 16, 5), (20, 1, 1, 4, 8), (200, 1, 1, 16, 5)]
GRAPH_ALGOS = (("maml", "fo"), ("metalstm_pp", "-"), ("metalstm", "-"))
# (task mode, graphs, cuDNN autotuning): eager as today, the graph path, each convolution form
FORMS = [
    ("vmap", False, False),
    ("vmap", True, False),
    ("fused", False, False),
    ("fused", True, False),
    ("vmap", True, True),
    ("fused", True, True),
]
SCALING_BATCHES, SCALING_STEPS = (4, 8, 16, 32), (1, 5, 10)  # at S=5, at B=16 (20w1s, Q=1)
TRAINING_MAX_ITERATIONS = 200  # per timed block


@dataclass
class Timing:
    seconds: float | None  # median s per meta-iteration; None: failed
    peak_mib: float | None
    note: str = ""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_reset(device: torch.device) -> float:
    if device.type != "cuda":
        return 0.0
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def peak_mib(device: torch.device, before: float) -> float | None:
    if device.type != "cuda":
        return None
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def time_step(step, device: torch.device, max_timed: int = MAX_TIMED) -> Timing:
    """Warm-up (with peak memory), then timed iterations; OOM is a result, not a crash.
    max_timed=0 times the warm-up iteration alone (first-call costs included)."""
    try:
        before = peak_reset(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        warm_up = time.perf_counter() - t0
        peak = peak_mib(device, before)
        times, start = [], time.perf_counter()
        while len(times) < max_timed and (not times or time.perf_counter() - start < MIN_TIMED_S):
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t0)
        if not times:
            return Timing(warm_up, peak, "warm-up only")
        return Timing(statistics.median(times), peak, f"{len(times)} timed")
    except torch.OutOfMemoryError:
        return Timing(None, None, "out of memory")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def episode_for(row, device: torch.device) -> Episode:
    n_way, k_shot, n_query, batch, _ = row
    generator = torch.Generator(device=device).manual_seed(1)
    return sampler_for(n_way, k_shot, n_query, device).sample(batch, generator)


class Report:
    """The markdown report and CSV rows, rewritten to disk after every section."""

    def __init__(self, out: Path):
        """Continues DIR/gpu.md and DIR/gpu.csv where earlier sections' processes left them."""
        self.out, self.lines, self.rows = out, [], []
        out.mkdir(parents=True, exist_ok=True)
        if (out / "gpu.md").exists():
            self.lines = (out / "gpu.md").read_text().splitlines()
        if (out / "gpu.csv").exists():
            with open(out / "gpu.csv", newline="") as f:
                self.rows = list(csv.DictReader(f))

    def log(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def row(self, **values) -> None:
        self.rows.append(values)

    def flush(self) -> None:
        (self.out / "gpu.md").write_text("\n".join(self.lines) + "\n")
        keys = sorted({k for r in self.rows for k in r})
        with open(self.out / "gpu.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(self.rows)


def matmul_tflops(device: torch.device, dtype, n: int) -> float:
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    a @ b
    sync(device)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


def header(report: Report, device: torch.device, args) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    report.log("# metastress GPU benchmarks")
    report.log()
    report.log(f"- device: {name}; torch {torch.__version__}, Python {platform.python_version()}")
    report.log(f"- start: {time.strftime('%Y-%m-%d %H:%M:%S')}; deadline {args.deadline:.0f} s")
    n = 512 if args.smoke else 8192
    for label, dtype in (("fp32 (TF32 off)", torch.float32), ("bf16", torch.bfloat16)):
        report.log(f"- matmul {n}^3 {label}: {matmul_tflops(device, dtype, n):.1f} TFLOP/s")
    report.log(
        f"- cuDNN TF32 for convolutions: {torch.backends.cudnn.allow_tf32} (PyTorch's default); "
        f"matmul TF32: {torch.backends.cuda.matmul.allow_tf32}"
    )


def cross_check(report: Report, device: torch.device) -> None:
    """ours (vmap), ours as a (captured) static iteration, the obvious loop and higher agree
    on the meta-gradient in float64."""
    report.log()
    report.log("## Cross-check: same meta-gradient in float64 on this device")
    generator = torch.Generator(device=device).manual_seed(2)
    episode = sampler_for(5, 1, 2, device).sample(3, generator)
    for order in ("fo", "so"):
        impls = [Impl(kind, "maml", order) for kind in ("ours", "graph", "obvious", "higher")]
        for name, diff in gradient_differences(impls, episode).items():
            report.log(f"- {name}: max |g - g_obvious| / max |g_obvious| = {diff:.1e}")


def precision_check(report: Report, device: torch.device) -> None:
    """Cosine of the meta-gradient to float64's at each `precision` (tf32: TF32 convolutions,
    PyTorch's default on GPUs); 20w1s at initialization, B=4, inner_lr 0.4, 1 and 5 steps."""
    report.log()
    report.log("## Precision: meta-gradient cosine to float64 (MAML FO, 20w1s, B=4)")
    for steps in (1, 5):
        episode = episode_for((20, 1, 1, 4, steps), device)
        reference = _meta_gradient(as_float64(episode), steps, torch.float64, "fp32")
        for precision in engine.PRECISIONS:
            g = _meta_gradient(episode, steps, torch.float32, precision)
            cosine = torch.nn.functional.cosine_similarity(g, reference, dim=0).item()
            report.log(f"- S={steps}, {precision}: cosine {cosine:.6f}")
            report.row(
                section="precision", implementation=precision, steps=steps, cosine=f"{cosine:.6f}"
            )


def _meta_gradient(episode: Episode, steps: int, dtype, precision: str) -> torch.Tensor:
    built = make_step(Impl("ours", "maml", "fo", precision=precision), 20, steps, episode, dtype)
    built.step()
    return torch.cat([p.grad.flatten().double() for p in built.init])


def row_impls() -> list[Impl]:
    impls = []
    for order in ("fo", "so"):
        impls += [Impl("ours", "maml", order, precision=p) for p in engine.PRECISIONS]
        impls += [Impl("obvious", "maml", order), Impl("higher", "maml", order)]
    impls += [Impl("ours", algo, order) for algo, order in PROFILE_ORDER.items() if algo != "maml"]
    return impls


def rows_section(report: Report, device: torch.device, rows, deadline: float) -> None:
    report.log()
    report.log("## Meta-iterations per second (N-way, K-shot, Q, meta-batch B, inner steps S)")
    report.log()
    report.log(
        "| N,K,Q,B,S | implementation | it/s | s/it | peak MiB | x obvious | x higher | timed |"
    )
    report.log("|---|---|---|---|---|---|---|---|")
    for row in rows:
        episode = episode_for(row, device)
        timings = {}
        for impl in row_impls():
            if time.monotonic() > deadline:
                report.log(f"| {row} | {impl.name} | not run: deadline | | | | | |")
                continue
            built = make_step(impl, row[0], row[4], episode)
            timings[impl] = time_step(built.step, device)
            del built
        for impl, t in timings.items():
            base = {k: timings.get(Impl(k, "maml", impl.order)) for k in ("obvious", "higher")}
            ratios = {
                k: (
                    b.seconds / t.seconds
                    if b and b.seconds and t.seconds and impl.algo == "maml" and impl.kind == "ours"
                    else None
                )
                for k, b in base.items()
            }
            its = 1 / t.seconds if t.seconds else None
            report.log(
                f"| ({','.join(map(str, row))}) | {impl.name} | {fmt(its, '.2f')} | "
                f"{fmt(t.seconds, '.4f')} | {fmt(t.peak_mib, '.0f')} | {fmt(ratios['obvious'])} | "
                f"{fmt(ratios['higher'])} | {t.note} |"
            )
            report.row(
                section="rows",
                row=str(row),
                implementation=impl.name,
                s_per_it=fmt(t.seconds, ".5f", ""),
                peak_mib=fmt(t.peak_mib, ".0f", ""),
                x_obvious=fmt(ratios["obvious"], ".3f", ""),
                note=t.note,
            )
        report.flush()


def memory_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """Does 200-way second order fit? One (warm-up) iteration each, ours (vmap), MAML; the
    meta-gradient is taken in chunks of tasks (`MetaLearner.tasks_per_chunk`)."""
    report.log()
    report.log("## Memory of 200-way 1-shot (Q=1), ours (vmap, fp32), MAML: one iteration")
    report.log(f"(meta-gradient chunks of {engine.VMAP_CHUNK_IMAGE_STEPS} images x kept steps)")
    report.log()
    report.log("| B | S | order | peak MiB | s/it (warm-up iteration) |")
    report.log("|---|---|---|---|---|")
    cases = [
        (4, 5, "so"),
        (16, 5, "so"),
        (32, 5, "so"),
        (32, 10, "so"),
        (32, 64, "fo"),
        (32, 64, "so"),
    ]
    if smoke:
        cases = cases[:2]
    for batch, steps, order in cases:
        if time.monotonic() > deadline:
            report.log(f"| {batch} | {steps} | {order} | not run: deadline | |")
            continue
        n_way = 20 if smoke else 200
        episode = episode_for((n_way, 1, 1, batch, steps), device)
        built = make_step(Impl("ours", "maml", order), n_way, steps, episode)
        t = time_step(built.step, device, max_timed=0)
        del built
        report.log(
            f"| {batch} | {steps} | {order.upper()} | "
            f"{fmt(t.peak_mib, '.0f', '-' if t.seconds else t.note)} | "
            f"{fmt(t.seconds, '.3f', '-')} |"
        )
        report.row(
            section="memory",
            batch=batch,
            steps=steps,
            order=order,
            peak_mib=fmt(t.peak_mib, ".0f", ""),
            s_per_it=fmt(t.seconds, ".4f", ""),
            note=t.note,
        )
    report.flush()


def eval_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """Tasks/s of `Engine.evaluate` (what `metastress evaluate` runs) on 300 test tasks."""
    report.log()
    report.log("## Evaluation throughput: 300 fixed test tasks, 5 adaptation steps, Q=K")
    n_tasks = 20 if smoke else 300
    settings = [(5, 1, 10)] if smoke else [(20, 1, 50), (20, 5, 50), (200, 1, 10)]
    for n_way, k_shot, batch in settings:
        tasks = sampler_for(n_way, k_shot, k_shot, device).fixed_tasks(n_tasks, seed=3, batch=batch)
        for algo in PROFILE_ORDER:
            if time.monotonic() > deadline:
                continue
            learner = build(algo, n_way, {"inner_steps": 5}, 0).to(device)
            chosen = engine.resolve_engine("auto", "fp32", device)
            chosen.evaluate(learner, tasks[:1])
            sync(device)
            t0 = time.perf_counter()
            chosen.evaluate(learner, tasks)
            sync(device)
            seconds = time.perf_counter() - t0
            report.log(
                f"- {n_way}w{k_shot}s {algo}: {n_tasks / seconds:.1f} tasks/s "
                f"({n_tasks} tasks in {seconds:.2f} s, {batch} per batch)"
            )
            report.row(
                section="eval",
                setting=f"{n_way}w{k_shot}s",
                implementation=algo,
                tasks_per_s=f"{n_tasks / seconds:.2f}",
            )
    report.flush()


def cost_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """s/it of each algorithm (as params.yaml runs it) at B=16 on the measured settings and two
    step counts; the paper profile's time from the search space's expected steps and batch."""
    report.log()
    report.log("## Cost model: the paper profile on this device")
    report.log()
    settings = [(5, 1)] if smoke else COST_SETTINGS
    measured: dict[tuple, dict[tuple, float]] = {}
    for n_way, k_shot in settings:  # the two ends first: a deadline leaves the middle out
        for algo, order in PROFILE_ORDER.items():
            for steps in COST_STEPS:
                if time.monotonic() > deadline:
                    continue
                episode = episode_for((n_way, k_shot, k_shot, 16, steps), device)
                built = make_step(Impl("ours", algo, order), n_way, steps, episode)
                t = time_step(built.step, device, max_timed=3)
                del built
                if t.seconds is not None:
                    measured.setdefault(algo, {})[(n_way * 2 * k_shot, steps)] = t.seconds
                report.row(
                    section="cost",
                    implementation=algo,
                    setting=f"{n_way}w{k_shot}s",
                    steps=steps,
                    s_per_it=fmt(t.seconds, ".5f", ""),
                    note=t.note,
                )
    mean_steps = statistics.mean(SEARCH_STEPS)
    batch_factor = statistics.mean(SEARCH_BATCHES) / 16
    report.log(
        "| algorithm | s/it at B=16 (images per task, S: seconds) | paper profile, GPU-hours |"
    )
    report.log("|---|---|---|")
    total, missing = 0.0, [a for a in PROFILE_ORDER if a not in measured]
    for algo, points in measured.items():
        hours = 0.0
        for n_way, k_shot in PAPER_SETTINGS:
            per_it = _interpolate(points, n_way * 2 * k_shot, mean_steps)
            if per_it is None:
                hours = math.nan
                break
            hours += per_it * batch_factor * PAPER_ITERATIONS / 3600
        if math.isnan(hours):
            missing.append(algo)
        else:
            total += hours
        shown = ", ".join(f"{x}/{s}: {v:.3f}" for (x, s), v in sorted(points.items()))
        report.log(f"| {algo} | {shown} | {hours:,.0f} |")
    report.log()
    report.log(
        f"Paper profile: 5 algorithms x 10 settings x ({TRIALS} x {SEARCH_ITERATIONS} + "
        f"{FINAL_ITERATIONS}) meta-iterations at the search space's mean inner steps "
        f"({mean_steps:.1f}) and meta-batch ({statistics.mean(SEARCH_BATCHES):.0f}; time taken as "
        f"proportional to B): {total:,.0f} GPU-hours = {total / 24:,.1f} days on one such GPU"
        + (f", NOT counting {', '.join(missing)} (not measured in time)." if missing else ".")
    )
    report.flush()


def _interpolate(points: dict[tuple, float], images: int, steps: float) -> float | None:
    """s/it at (images per task, steps): linear in steps at each measured size (both
    COST_STEPS measured), then linear in images between the two nearest measured sizes
    (extrapolated past the ends; proportional to images if only one size was measured)."""
    low, high = COST_STEPS
    lines = {
        x: t + (points[(x, high)] - t) * (steps - low) / (high - low)
        for (x, s), t in points.items()
        if s == low and (x, high) in points
    }
    if not lines:
        return None
    xs = sorted(lines)
    if len(xs) == 1:
        return lines[xs[0]] * images / xs[0]
    upper = next((x for x in xs[1:] if x >= images), xs[-1])
    lower = xs[xs.index(upper) - 1]
    return lines[lower] + (lines[upper] - lines[lower]) * (images - lower) / (upper - lower)


def time_training(training: Training, device: torch.device, warmup: int) -> Timing:
    """s/iteration of a training loop: `warmup` untimed iterations (peak memory measured over
    them), then one block of iterations between two synchronizations (module docstring)."""
    try:
        before = peak_reset(device)
        for _ in range(warmup):
            training.step()
        sync(device)
        peak = peak_mib(device, before)
        t0 = time.perf_counter()
        training.step()
        sync(device)
        once = time.perf_counter() - t0
        count = max(1, min(TRAINING_MAX_ITERATIONS, int(MIN_TIMED_S / max(once, 1e-6))))
        t0 = time.perf_counter()
        for _ in range(count):
            training.step()
        sync(device)
        seconds = (time.perf_counter() - t0) / count
        static = training.static
        if static is None:
            note = "eager"
        elif device.type != "cuda":
            note = "static, uncaptured (CPU)"
        else:
            note = "graph" if static.graph is not None else "capture failed: eager"
        return Timing(seconds, peak, f"{note}, {count} in a block")
    except torch.OutOfMemoryError:
        return Timing(None, None, "out of memory")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def training_timing(impl: Impl, row: tuple, device: torch.device, graphs: bool, **hyper) -> Timing:
    """`time_training` of `impl` on row (N, K, Q, B, S) with fresh episodes each iteration."""
    n_way, k_shot, n_query, batch, steps = row
    sampler = sampler_for(n_way, k_shot, n_query, device)
    training = make_training(impl, sampler, batch, steps, graphs, **hyper)
    return time_training(training, device, WARMUP_ITERATIONS + 1 if graphs else 1)


def form_name(task_mode: str, graphs: bool, autotune: bool) -> str:
    return f"{task_mode} {'graph' if graphs else 'eager'}" + (
        " +cudnn.benchmark" if autotune else ""
    )


def graphs_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """Graph against eager training iterations, vmap against the fused form (grouped
    convolutions on channels-last memory, first layer as one batched matmul), with and without
    cuDNN's autotuning, on the issue's rows; strict fp32."""
    report.log()
    report.log("## CUDA graphs: s per training meta-iteration (sampling included), strict fp32")
    report.log()
    report.log("| N,K,Q,B,S | algorithm | " + " | ".join(form_name(*f) for f in FORMS) + " |")
    report.log("|---|---|" + "---|" * len(FORMS))
    rows = [(5, 1, 1, 2, 1)] if smoke else ISSUE_ROWS
    for row in rows:
        for algo, order in GRAPH_ALGOS:
            cells = []
            for task_mode, graphs, autotune in FORMS:
                if time.monotonic() > deadline:
                    cells.append("deadline")
                    continue
                torch.backends.cudnn.benchmark = autotune
                try:
                    t = training_timing(Impl("ours", algo, order, task_mode), row, device, graphs)
                finally:
                    torch.backends.cudnn.benchmark = False
                cells.append(f"{fmt(t.seconds, '.4f')} ({t.note.split(',')[0]})")
                report.row(
                    section="graphs",
                    row=str(row),
                    implementation=f"{algo} {form_name(task_mode, graphs, autotune)}",
                    s_per_it=fmt(t.seconds, ".5f", ""),
                    peak_mib=fmt(t.peak_mib, ".0f", ""),
                    note=t.note,
                )
            report.log(f"| ({','.join(map(str, row))}) | {Impl('ours', algo, order).name} | "
                       + " | ".join(cells) + " |")  # fmt: skip
            report.flush()


def scaling_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """How a training meta-iteration's time grows with B (at S=5) and S (at B=16) on 20w1s,
    eager and graphs (vmap), for the cost model: measured, not assumed proportional."""
    report.log()
    report.log("## Scaling: s per training meta-iteration on 20w1s (Q=1), strict fp32, vmap")
    report.log()
    report.log("| algorithm | B | S | eager s/it | graph s/it | graph, s per task-iteration |")
    report.log("|---|---|---|---|---|---|")
    n_way = 5 if smoke else 20
    points = [(b, 5) for b in SCALING_BATCHES] + [(16, s) for s in SCALING_STEPS if s != 5]
    if smoke:
        points = [(2, 1), (4, 1)]
    for algo, order in GRAPH_ALGOS[:2]:
        impl = Impl("ours", algo, order, "vmap")
        for batch, steps in points:
            if time.monotonic() > deadline:
                report.log(f"| {impl.name} | {batch} | {steps} | deadline | | |")
                continue
            row = (n_way, 1, 1, batch, steps)
            eager = training_timing(impl, row, device, graphs=False)
            graph = training_timing(impl, row, device, graphs=True)
            per_task = graph.seconds / batch if graph.seconds else None
            report.log(
                f"| {impl.name} | {batch} | {steps} | {fmt(eager.seconds, '.4f')} | "
                f"{fmt(graph.seconds, '.4f')} ({graph.note.split(',')[0]}) | "
                f"{fmt(per_task, '.5f')} |"
            )
            for timing, graphs in ((eager, False), (graph, True)):
                report.row(
                    section="scaling",
                    implementation=f"{algo} {form_name('vmap', graphs, False)}",
                    batch=batch,
                    steps=steps,
                    s_per_it=fmt(timing.seconds, ".5f", ""),
                    note=timing.note,
                )
            report.flush()


def search_section(report: Report, device: torch.device, smoke: bool, deadline: float) -> None:
    """Item 3's baseline: the paper profile's MAML search on 20w1s, one trial at a time in one
    process (as each search job runs today), trial-iterations per second over the trials
    measured; eager (today) and with graphs."""
    params = dict(load_params(), profile="paper")
    space = experiments.search_space(params, "maml")
    fixed = experiments.run_config(params, "maml", "20w1s", "search")
    seed, trials = params["protocol"]["seed"], params["profiles"]["paper"]["search_trials"]
    report.log()
    report.log(
        f"## Search baseline: MAML 20w1s, the paper's space ({trials} trials), one trial per "
        "process, strict fp32, vmap"
    )
    report.log()
    report.log("| trial | inner_steps | meta_batch | eager s/it | graph s/it |")
    report.log("|---|---|---|---|---|")
    totals = {False: [], True: []}
    n_way = 5 if smoke else 20
    for trial in range(2 if smoke else trials):
        if time.monotonic() > deadline:
            break
        run = experiments.apply_choice(fixed, experiments.sample(space, seed, trial))
        algorithm = run["algorithm"]
        steps, batch = algorithm["inner_steps"], run["meta_batch"]
        if smoke:
            steps, batch = 1, 2
        impl = Impl("ours", "maml", "fo" if algorithm["first_order"] else "so", "vmap")
        hyper = {"inner_lr": algorithm["inner_lr"], "meta_lr": run["meta_lr"]}
        timings = {
            graphs: training_timing(impl, (n_way, 1, 1, batch, steps), device, graphs, **hyper)
            for graphs in (False, True)
        }
        for graphs, t in timings.items():
            if t.seconds is not None:
                totals[graphs].append(t.seconds)
        report.log(
            f"| {trial} | {steps} | {batch} | {fmt(timings[False].seconds, '.4f')} | "
            f"{fmt(timings[True].seconds, '.4f')} ({timings[True].note.split(',')[0]}) |"
        )
        report.row(section="search", trial=trial, steps=steps, batch=batch,
                   eager_s_per_it=fmt(timings[False].seconds, ".5f", ""),
                   graph_s_per_it=fmt(timings[True].seconds, ".5f", ""))  # fmt: skip
        report.flush()
    report.log()
    for graphs, seconds in totals.items():
        if seconds:
            report.log(
                f"- {'graphs' if graphs else 'eager (today)'}: {len(seconds) / sum(seconds):.2f} "
                f"trial-iterations/s over {len(seconds)} of {trials} trials (each trial's "
                "iterations in turn; trials equally long)"
            )
    report.flush()


SECTIONS = ("cross", "precision", "rows", "memory", "eval", "cost", "graphs", "scaling", "search")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds for everything")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", default=",".join(SECTIONS[:6]), help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes: checks the script")
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    start = time.monotonic()
    keep_freed_memory()  # as the `metastress` command does
    report = Report(args.out)
    device = torch.device(args.device)
    if not report.lines:
        header(report, device, args)
        report.log("- every timing below: TF32 off (strict fp32, `precision: fp32`) unless named")
    report.log()
    report.log(f"<!-- sections {args.sections}: start {time.strftime('%H:%M:%S')} -->")
    torch.backends.cudnn.allow_tf32 = False  # the baselines as ours at precision fp32
    report.flush()
    if "cross" in sections:
        cross_check(report, device)
    if "precision" in sections:
        precision_check(report, device)
    report.flush()
    rows = [(5, 1, 2, 4, 2)] if args.smoke else ROWS
    if "rows" in sections:
        rows_section(report, device, rows, start + 0.40 * args.deadline)
    if "memory" in sections:
        memory_section(report, device, args.smoke, start + 0.55 * args.deadline)
    if "eval" in sections:
        eval_section(report, device, args.smoke, start + 0.65 * args.deadline)
    if "cost" in sections:
        cost_section(report, device, args.smoke, start + 0.97 * args.deadline)
    if "graphs" in sections:
        graphs_section(report, device, args.smoke, start + args.deadline)
    if "scaling" in sections:
        scaling_section(report, device, args.smoke, start + args.deadline)
    if "search" in sections:
        search_section(report, device, args.smoke, start + args.deadline)
    report.log()
    report.log(
        f"- end of {args.sections}: {time.strftime('%Y-%m-%d %H:%M:%S')}; took "
        f"{time.monotonic() - start:.0f} s"
    )
    report.flush()


if __name__ == "__main__":
    main()
