"""Precision by accuracy (issue 16, item 4): MAML 20w1s trained in fp32, tf32 and bf16, each
evaluated on the same 300 test tasks; is tf32 within fp32's 95% confidence interval?

    python -m benchmarks.accuracy OUT RUNS

reads OUT/accuracy_<precision>.json (`metastress evaluate` of each model) and
RUNS/<precision>/summary.json (its training), and writes OUT/accuracy.md. Besides each mean
and its 95% interval it gives the paired difference to fp32 task by task (the tasks are the
same, so the pairing removes the tasks' own spread). One training seed per precision: a
difference within the intervals says tf32 costs no accuracy that this experiment can see,
not that it costs none. benchmarks/gpu_lease.sh runs the trainings (graphs on) and this.
"""

import json
import statistics
import sys
from pathlib import Path

from metastress.evaluate import confidence_half_width

PRECISIONS = ("fp32", "tf32", "bf16")


def paired(per_task: list[float], reference: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width of the task-by-task differences."""
    differences = [a - b for a, b in zip(per_task, reference, strict=True)]
    spread = statistics.stdev(differences)  # unbiased, as metastress.evaluate
    return statistics.mean(differences), confidence_half_width(spread, len(differences), 0.95)


def main(argv: list[str] | None = None) -> None:
    out, runs = (Path(a) for a in (argv or sys.argv[1:]))
    results, summaries = {}, {}
    for precision in PRECISIONS:
        path = out / f"accuracy_{precision}.json"
        if path.exists():
            results[precision] = json.loads(path.read_text())
            summary = runs / precision / "summary.json"
            summaries[precision] = json.loads(summary.read_text()) if summary.exists() else {}
    tasks = {result["n_tasks"] for result in results.values()}
    lines = [
        f"# Precision by accuracy: MAML 20w1s, {'/'.join(map(str, sorted(tasks)))} test tasks",
        "",
    ]
    lines.append(
        "| precision | test accuracy (95% CI) | paired difference to fp32 (95% CI) | "
        "iterations | best iteration | s/iteration (median) |"
    )
    lines.append("|---|---|---|---|---|---|")
    reference = results.get("fp32")
    for precision, result in results.items():
        summary = summaries[precision]
        seconds = summary.get("seconds_per_iteration")
        seconds = "?" if seconds is None else f"{seconds:.4f}"
        difference = "-"
        if reference is not None and precision != "fp32":
            mean, half = paired(result["per_task"], reference["per_task"])
            difference = f"{100 * mean:+.2f} ± {100 * half:.2f} points"
        lines.append(
            f"| {precision} | {100 * result['accuracy']:.2f} ± {100 * result['ci95']:.2f}% | "
            f"{difference} | {summary.get('iterations', '?')} | "
            f"{summary.get('best_iteration', '?')} | {seconds} |"
        )
    lines.append("")
    if reference is not None and "tf32" in results:
        low = reference["accuracy"] - reference["ci95"]
        high = reference["accuracy"] + reference["ci95"]
        inside = low <= results["tf32"]["accuracy"] <= high
        lines.append(
            f"tf32's {100 * results['tf32']['accuracy']:.2f}% is "
            f"{'within' if inside else 'outside'} fp32's 95% interval "
            f"[{100 * low:.2f}, {100 * high:.2f}]%: by the issue's rule, tf32 "
            f"{'may become' if inside else 'must not become'} the GPU default."
        )
    else:
        lines.append("fp32 or tf32 did not finish: no verdict.")
    (out / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
