"""`metastress cost`: the jobs of a profile from Snakemake's own dry run, costed by
metastress.cost, as a table per phase with the model's assumptions. Torch-free."""

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from metastress.atomic import write_text
from metastress.cost import PHASES, DeviceModel, Estimate, estimate, load_models
from metastress.experiments import profile, search_plan

# Run by `snakemake_jobs` in a child process: Snakemake's dry run logs every job it would run
# as a JOB_INFO record with its rule and wildcards (the records its logger plugins receive).
_DRY_RUN = """
import json, logging, sys
from snakemake.cli import main
jobs = []
class Jobs(logging.Handler):
    def emit(self, record):
        if getattr(record, "event", None) == "job_info":
            jobs.append([record.rule_name, dict(record.wildcards)])
logging.getLogger().addHandler(Jobs())
try:
    main(sys.argv[2:])
except SystemExit as e:
    if e.code:
        raise
with open(sys.argv[1], "w") as f:
    json.dump(jobs, f)
"""


def snakemake_jobs(params: dict, workdir: Path) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a run from scratch of `params` would run: Snakemake's
    own dry run (`snakemake -n --forceall`) in `workdir`, the repository root."""
    if not (Path(workdir) / "Snakefile").is_file():
        raise FileNotFoundError(f"no Snakefile in {workdir}; run from the repository root")
    with tempfile.TemporaryDirectory() as folder:
        configfile, listing = Path(folder) / "params.yaml", Path(folder) / "jobs.json"
        write_text(configfile, yaml.safe_dump(params))
        command = [sys.executable, "-c", _DRY_RUN, str(listing), "-n", "--forceall",
                   "--configfile", str(configfile)]  # fmt: skip
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        if done.returncode != 0 or not listing.is_file():
            raise RuntimeError(f"snakemake's dry run failed:\n{done.stderr[-4000:]}")
        return [(rule, wildcards) for rule, wildcards in json.loads(listing.read_text())]


def profile_report(params: dict, workdir: Path) -> str:
    """The cost report of params.yaml's active profile (Snakemake runs in `workdir`)."""
    models = load_models()
    return report(params, estimate(params, snakemake_jobs(params, workdir), models), models)


# --- the report -----------------------------------------------------------------------------


def describe(params: dict) -> str:
    """One paragraph: what the active profile runs."""
    prof, plan = profile(params), search_plan(params)
    budgets = "/".join(str(b) for b in plan.budgets())
    sizes = ", ".join(str(n) for n in plan.sizes())
    overrides = prof.get("final_iterations_by_setting", {})
    by_setting = "".join(f", {n} on {name}" for name, n in overrides.items())
    search = (
        f"random search, {plan.trials} trials x {plan.iterations} iterations"
        if plan.method == "random"
        else f"successive halving, {plan.trials} trials in rungs of {budgets} iterations "
        f"({sizes} trials, eta {plan.eta})"
    )
    return (
        f"Profile {params['profile']}: conv-4 width {prof['hidden']}; {search}, "
        f"{plan.trials_per_job} trial(s) per job; final training up to "
        f"{prof['final_iterations']} iterations{by_setting} (patience {prof['patience']}); "
        f"{prof['test_tasks']} test tasks; {len(params['experiments']['algorithms'])} algorithms."
    )


def report(params: dict, result: Estimate, models: dict[str, DeviceModel]) -> str:
    cpu, gpu = models["cpu"], models["gpu"]
    lines = [
        describe(params),
        "",
        f"| phase | jobs | meta-iterations | this CPU, {cpu.parallel} jobs at a time | one H200 |",
        "|---|---:|---:|---:|---:|",
    ]
    for phase in PHASES:
        parallel = 1 if phase == "data" else cpu.parallel  # the data phase runs alone
        lines.append(
            f"| {phase} | {result.jobs[phase]:,} | {result.iterations[phase]:,} | "
            f"{_hours(result.seconds['cpu'][phase] / parallel)} | "
            f"{_hours(result.seconds['gpu'][phase])} |"
        )
    lines.append(
        f"| **total** | **{sum(result.jobs.values()):,}** | "
        f"**{sum(result.iterations.values()):,}** | "
        f"**{_hours(3600 * result.wall_hours('cpu', cpu.parallel))}** | "
        f"**{_hours(3600 * result.wall_hours('gpu', gpu.parallel))}** |"
    )
    by_algo = ", ".join(
        f"{algo} {_hours(seconds)}" for algo, seconds in sorted(result.by_algo["gpu"].items())
    )
    lines += ["", f"One H200 by algorithm (search, training, evaluation): {by_algo}.", ""]
    lines += ["Assumptions:", *(f"- {line}" for line in assumptions(params, result, models))]
    return "\n".join(lines)


def assumptions(params: dict, result: Estimate, models: dict[str, DeviceModel]) -> list[str]:
    width = profile(params)["hidden"]
    lines = []
    for device, model in models.items():
        errors = [q for widths in model.fit.values() for q in widths.values()]
        median = statistics.median(q["median_abs_error"] for q in errors)
        worst = max(q["max_abs_error"] for q in errors)
        lines.append(
            f"{device.upper()} ({model.name}): seconds per meta-iteration from {model.measured}, "
            f"fitted within {median:.0%} (median) and {worst:.0%} (worst point) of the "
            f"measurements; " + "; ".join(model.notes)
        )
        widths = {w for a in params["experiments"]["algorithms"] for w in model.measured_widths(a)}
        if len(widths) > 1 and not min(widths) <= width <= max(widths):  # one: said in notes
            lines.append(
                f"{device.upper()}: width {width} lies outside the measured widths "
                f"{sorted(widths)}; the nearest measured width stands in"
            )
    lines += [
        "final trainings run every iteration (early stopping ignored): an upper bound",
        "rung 0 costs each drawn trial's own inner steps and meta-batch; later rungs and the "
        "final training cost the mean over the drawn trials (which survive is not known yet)",
        "one job at a time on the GPU (snakemake --resources gpu=1); a cluster divides the "
        "search's time by its GPUs",
    ]
    second = [f"{a}.first_order" for a in params["experiments"]["algorithms"]
              if params[a].get("first_order") is False]  # fmt: skip
    if second:
        lines.append(f"{', '.join(second)} false: second order is not in the model (measured "
                     "first order only), so those algorithms cost more than shown")  # fmt: skip
    if result.unmodelled:
        lines.append(f"rules without a cost model, counted at a torch job's start-up: "
                     f"{', '.join(result.unmodelled)}")  # fmt: skip
    return lines


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours:,.0f} h ({hours / 24:,.0f} days)"
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.1f} min"
