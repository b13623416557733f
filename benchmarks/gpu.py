"""GPU benchmarks: ours (vmap; fp32, tf32, bf16) against the obvious loop and `higher`; memory of
the 200-way settings; precision; evaluation throughput; the paper profile's cost.

    python -m benchmarks.gpu --out DIR [--deadline SECONDS] [--smoke]

Built for one prepared run on a lent GPU machine (a time-limited lease): every section checks
the deadline first, and the report (DIR/gpu.md, DIR/gpu.csv) is rewritten after each section,
so a run cut short still returns what it measured. `--smoke --device cpu` checks the script on
a CPU with tiny shapes (its numbers mean nothing).

Timing: CUDA is asynchronous, so each meta-iteration is closed by `torch.cuda.synchronize()`;
after one warm-up iteration (kernels, cuDNN autotuning, allocator), iterations are timed one by
one until MIN_TIMED_S or MAX_TIMED of them; the median is reported. Peak memory is
`torch.cuda.max_memory_allocated()` during one iteration, minus what was allocated before it.
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
from benchmarks.implementations import Impl, make_step
from metastress import engine
from metastress.algorithms import build
from metastress.data.tasks import Episode
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
        self.out, self.lines, self.rows = out, [], []
        out.mkdir(parents=True, exist_ok=True)

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
    """ours (vmap), the obvious loop and higher agree on the meta-gradient in float64."""
    report.log()
    report.log("## Cross-check: same meta-gradient in float64 on this device")
    generator = torch.Generator(device=device).manual_seed(2)
    episode = sampler_for(5, 1, 2, device).sample(3, generator)
    for order in ("fo", "so"):
        impls = [Impl(kind, "maml", order) for kind in ("ours", "obvious", "higher")]
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


SECTIONS = ("cross", "precision", "rows", "memory", "eval", "cost")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds for everything")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes: checks the script")
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    start = time.monotonic()
    keep_freed_memory()  # as the `metastress` command does
    report = Report(args.out)
    header(report, torch.device(args.device), args)
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = False  # the baselines as ours at precision fp32
    report.log("- every timing below: TF32 off (strict fp32, `precision: fp32`) unless named")
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
    report.log()
    report.log(
        f"- end: {time.strftime('%Y-%m-%d %H:%M:%S')}; took {time.monotonic() - start:.0f} s"
    )
    report.flush()


if __name__ == "__main__":
    main()
