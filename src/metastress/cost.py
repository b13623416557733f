"""What each job of a profile costs, before anything runs: meta-iterations, and seconds on
this project's CPU and on one H200 from measured coefficients (cost_model.json). The jobs
themselves come from Snakemake's own dry run (metastress.cost_report); their meta-iterations
and seconds from params.yaml through the functions the rules use (`metastress.experiments`,
`metastress.halving`):

- a search rung job trains its trials from the previous rung's budget to its own; in rung 0
  the trials are known (trial i's draw depends only on (space, seed, i)), later rungs' survivors
  are not, so they cost the mean of all the trials' draws;
- a final training runs its setting's final iterations (early stopping ignored: an upper
  bound) at the mean cost of the search's draws (the pick is one of them, unknown in advance);
- validation and test evaluation adapt each task (`eval_fraction` of a meta-iteration's cost
  per task, measured);
- every job pays a process start-up (measured here; on a GPU machine CUDA's start is not
  included) and the data phase its measured seconds.

Seconds per meta-iteration of an algorithm at conv-4 width w, for N-way K-shot tasks with Q
queries per class, meta-batch B and S inner steps:

    overhead = l0 + l1 S + B (l2 + l3 S)            launches, Python, per-task updates
    work     = B (cq N (K + Q) + cs S N K)          proportional to the images processed
    seconds  = overhead + work on a CPU (one thread does both);
               max(overhead, work) on a GPU (the launches of one step overlap the kernels of
               the last: a small meta-batch costs its launches, a large one its arithmetic)

fitted per algorithm (and per width on the CPU) by benchmarks/fit_cost.py to
benchmarks/results/. Torch-free.
"""

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from metastress import registry
from metastress.experiments import (
    apply_choice,
    fig1_run_config,
    final_run_config,
    profile,
    run_config,
    sample,
    search_plan,
    search_space,
    setting_fields,
)

MODEL_FILE = Path(__file__).with_name("cost_model.json")
DEVICES = ("cpu", "gpu")
PHASES = ("data", "search", "training", "evaluation", "report")


@dataclass(frozen=True)
class Shape:
    """What one meta-iteration (or `batch` evaluated tasks) processes."""

    n_way: int
    k_shot: int
    n_query: int
    batch: int
    steps: float


def iteration_seconds(coefficients: dict, combine: str, shape: Shape) -> float:
    """Seconds of one meta-iteration by the model above."""
    c, s = coefficients, shape
    overhead = c["l0"] + c["l1"] * s.steps + s.batch * (c["l2"] + c["l3"] * s.steps)
    images = s.n_way * (s.k_shot + s.n_query)
    work = s.batch * (c["cq"] * images + c["cs"] * s.steps * s.n_way * s.k_shot)
    return max(overhead, work) if combine == "max" else overhead + work


@dataclass(frozen=True)
class DeviceModel:
    """One device's measured coefficients: per algorithm, per measured conv-4 width."""

    name: str
    combine: str
    coefficients: dict  # algo -> width (str) -> {l0, l1, l2, l3, cq, cs, eval_fraction}
    startup_s: dict  # "torch" (a job that trains or evaluates), "light" (the rest)
    data_s: dict  # rule -> seconds (the data phase)
    parallel: int  # jobs at a time after the data phase (one thread or one GPU each)
    measured: str  # where and when the coefficients were measured
    fit: dict  # algo -> width -> the fit's relative errors
    aliases: dict = field(default_factory=dict)  # algo -> the measured algo standing for it
    notes: list = field(default_factory=list)

    def _at(self, algo: str, width: int) -> list[tuple[float, dict]]:
        """(weight, coefficients) to combine for `width`: the measured width, or the two
        around it linearly; beyond the measured ones, the nearest."""
        algo = self.aliases.get(algo, algo)
        if algo not in self.coefficients:
            raise ValueError(
                f"{self.name}: no measured cost for algorithm {algo!r} (measured: "
                f"{sorted(self.coefficients)}); measure it (benchmarks/cost_cpu.py, "
                "benchmarks/gpu.py) or name a stand-in in cost_model.json's aliases"
            )
        by_width = {int(w): c for w, c in self.coefficients[algo].items()}
        widths = sorted(by_width)
        if width <= widths[0] or width >= widths[-1]:
            return [(1.0, by_width[widths[0] if width <= widths[0] else widths[-1]])]
        upper = next(w for w in widths if w >= width)
        lower = widths[widths.index(upper) - 1]
        share = (width - lower) / (upper - lower) if upper != lower else 1.0
        return [(1 - share, by_width[lower]), (share, by_width[upper])]

    def iteration(self, algo: str, width: int, shape: Shape) -> float:
        return sum(w * iteration_seconds(c, self.combine, shape) for w, c in self._at(algo, width))

    def task(self, algo: str, width: int, shape: Shape) -> float:
        """Seconds to adapt and score one of `shape.batch` tasks evaluated together."""
        return sum(
            w * c["eval_fraction"] * iteration_seconds(c, self.combine, shape) / shape.batch
            for w, c in self._at(algo, width)
        )

    def measured_widths(self, algo: str) -> list[int]:
        return sorted(int(w) for w in self.coefficients[self.aliases.get(algo, algo)])


def load_models(path: Path = MODEL_FILE) -> dict[str, DeviceModel]:
    raw = json.loads(Path(path).read_text())
    return {
        device: DeviceModel(
            name=raw[device]["name"],
            combine=raw[device]["combine"],
            coefficients=raw[device]["coefficients"],
            startup_s=raw[device]["startup_s"],
            data_s=raw[device]["data_s"],
            parallel=raw[device]["parallel"],
            measured=raw[device]["measured"],
            fit=raw[device]["fit"],
            aliases=raw.get("aliases", {}),
            notes=raw[device]["notes"],
        )
        for device in DEVICES
    }


# --- what each job costs --------------------------------------------------------------------


@dataclass
class JobCost:
    phase: str
    algo: str | None = None
    iterations: int = 0
    seconds: float = 0.0
    modelled: bool = True


def trial_runs(params: dict, algo: str, setting: str) -> list[dict]:
    """The run config of every search trial of `algo` on `setting`, in trial order."""
    run, space = run_config(params, algo, setting, "search"), search_space(params, algo)
    trials = search_plan(params).trials
    return [apply_choice(run, sample(space, run["seed"], i)) for i in range(trials)]


def shape_of(run: dict, batch: int | None = None, steps: float | None = None) -> Shape:
    return Shape(
        run["n_way"],
        run["k_shot"],
        run["n_query"],
        run["meta_batch"] if batch is None else batch,
        run["algorithm"]["inner_steps"] if steps is None else steps,
    )


class Estimator:
    """Seconds and meta-iterations of each job of one params.yaml, on one device model."""

    def __init__(self, params: dict, model: DeviceModel):
        self.params, self.model, self.profile = params, model, profile(params)
        self.plan = search_plan(params)
        self._trials: dict[tuple[str, str], list[dict]] = {}

    def trials(self, algo: str, setting: str) -> list[dict]:
        key = (algo, setting)
        if key not in self._trials:
            self._trials[key] = trial_runs(self.params, algo, setting)
        return self._trials[key]

    def width(self) -> int:
        return self.profile["hidden"]

    def training_seconds(self, runs: list[dict], iterations: int, validate_every: int) -> float:
        """Mean over `runs` of `iterations` meta-iterations with their validations."""
        algo, width, tasks = runs[0]["algo"], self.width(), self.profile["validation_tasks"]
        per_run = [
            iterations * self.model.iteration(algo, width, shape_of(run))
            + iterations // validate_every * tasks * self.model.task(algo, width, shape_of(run))
            for run in runs
        ]
        return statistics.mean(per_run)

    def cost(self, rule: str, w: dict) -> JobCost:
        if rule in self.model.data_s:
            return JobCost("data", seconds=self.model.data_s[rule])
        modelled = getattr(self, "_" + rule, None)
        if modelled is not None:
            cost = modelled(w)
            cost.seconds += self.model.startup_s["torch"]
            return cost
        if rule == "all":  # names the targets; runs nothing
            return JobCost("report")
        if rule in LIGHT_RULES:
            return JobCost(phase_of(rule), seconds=self.model.startup_s["light"])
        # a rule this model does not know (added since): counted as one torch job's start-up
        return JobCost(phase_of(rule), seconds=self.model.startup_s["torch"], modelled=False)

    def _search_rung(self, w: dict) -> JobCost:
        rung, part = int(w["rung"]), int(w["part"])
        budgets = [0, *self.plan.budgets()]
        extra = budgets[rung + 1] - budgets[rung]
        runs = self.trials(w["algo"], w["setting"])
        count = self.plan.part_size(rung, part)
        if rung == 0:
            start = part * self.plan.trials_per_job
            known = runs[start : start + count]
            seconds = sum(self.training_seconds([r], extra, r["validate_every"]) for r in known)
        else:
            seconds = count * self.training_seconds(runs, extra, runs[0]["validate_every"])
        return JobCost("search", w["algo"], count * extra, seconds)

    def _train_final(self, w: dict) -> JobCost:
        final = final_run_config(self.params, w["algo"], w["setting"], int(w["seed"]))
        runs = self.trials(w["algo"], w["setting"])
        seconds = self.training_seconds(runs, final["iterations"], final["validate_every"])
        return JobCost("training", w["algo"], final["iterations"], seconds)

    def _train_fig1(self, w: dict) -> JobCost:
        run = fig1_run_config(self.params, w["algo"])  # one config, no search
        seconds = self.training_seconds([run], run["iterations"], run["validate_every"])
        return JobCost("training", w["algo"], run["iterations"], seconds)

    def _evaluation(self, algo: str, train: str, test: str, steps: float | None) -> JobCost:
        runs = self.trials(algo, train)
        if steps is None:
            steps = statistics.mean(run["algorithm"]["inner_steps"] for run in runs)
        fields = setting_fields(self.params, test)
        shape = Shape(fields["n_way"], fields["k_shot"], fields["n_query"],
                      self.profile["eval_batch"], steps)  # fmt: skip
        seconds = self.profile["test_tasks"] * self.model.task(algo, self.width(), shape)
        return JobCost("evaluation", algo, 0, seconds)

    def _evaluate(self, w: dict) -> JobCost:
        return self._evaluation(w["algo"], w["train"], w["test"], None)

    def _evaluate_steps(self, w: dict) -> JobCost:
        return self._evaluation(w["algo"], w["train"], w["test"], int(w["steps"]))

    def _evaluate_hand_swap(self, w: dict) -> JobCost:
        """Every grid point on the validation tasks, then the choice on the test tasks; a hand
        optimizer's step costs about what a first-order MAML step does."""
        grid = self.params["experiments"]["fig4b"]["grid"]
        fields = setting_fields(self.params, w["test"])

        def per_task(steps: float) -> float:
            shape = Shape(fields["n_way"], fields["k_shot"], fields["n_query"],
                          self.profile["eval_batch"], steps)  # fmt: skip
            return self.model.task("maml", self.width(), shape)

        tuning = sum(len(grid["lr"]) * per_task(steps) for steps in grid["steps"])
        seconds = self.profile["validation_tasks"] * tuning + self.profile["test_tasks"] * per_task(
            statistics.mean(grid["steps"])
        )
        return JobCost("evaluation", w["init_of"], 0, seconds)

    def _evaluate_swap(self, w: dict) -> JobCost:
        trained = w["optimizer_of"] in registry.meta_trained()  # else a hand optimizer (Adam)
        adapter = w["optimizer_of"] if trained else w["init_of"]
        return self._evaluation(adapter, w["test"], w["test"], None)


def time_limit_minutes(estimator: Estimator, rule: str, wildcards: dict, attempt: int) -> int:
    """A job's time limit on a cluster (SLURM's -t): three times the estimate, at least ten
    minutes, and `attempt` times that (a job killed at its limit resumes from its
    checkpoints, so a retry needs only the rest, and gets twice the time)."""
    seconds = estimator.cost(rule, wildcards).seconds
    return max(10, math.ceil(3 * seconds / 60)) * attempt


# Rules that run no training or evaluation: selection, collection, metrics, tables, figures.
LIGHT_RULES = ("search_select", "search_summary", "train_summary", "summary", "table1", "figure",
               "fig1")  # fmt: skip
PHASE_PREFIXES = {"search": "search", "train": "training", "evaluate": "evaluation"}


def phase_of(rule: str) -> str:
    """The phase of a rule that is not a data rule, from its name."""
    return next((p for prefix, p in PHASE_PREFIXES.items() if rule.startswith(prefix)), "report")


@dataclass
class Estimate:
    """Totals per phase and per algorithm, on each device."""

    jobs: dict  # phase -> count
    rules: dict  # rule -> count
    iterations: dict  # phase -> meta-iterations
    seconds: dict  # device -> phase -> seconds (one job at a time)
    by_algo: dict  # device -> algo -> seconds
    unmodelled: list  # rules counted at start-up cost only

    def wall_hours(self, device: str, parallel: int) -> float:
        """Hours from start to end: the data phase alone, then `parallel` jobs at a time."""
        seconds = self.seconds[device]
        rest = sum(v for phase, v in seconds.items() if phase != "data")
        return (seconds["data"] + rest / parallel) / 3600


def estimate(params: dict, jobs: list[tuple[str, dict]], models: dict[str, DeviceModel]):
    counts, rules, iterations = dict.fromkeys(PHASES, 0), {}, dict.fromkeys(PHASES, 0)
    seconds = {d: dict.fromkeys(PHASES, 0.0) for d in models}
    by_algo = {d: {} for d in models}
    unmodelled = set()
    estimators = {d: Estimator(params, m) for d, m in models.items()}
    for rule, wildcards in jobs:
        rules[rule] = rules.get(rule, 0) + 1
        for device, estimator in estimators.items():
            cost = estimator.cost(rule, wildcards)
            seconds[device][cost.phase] += cost.seconds
            if cost.algo is not None:
                by_algo[device][cost.algo] = by_algo[device].get(cost.algo, 0.0) + cost.seconds
            if not cost.modelled:
                unmodelled.add(rule)
        if rule != "all":
            counts[cost.phase] += 1
            iterations[cost.phase] += cost.iterations
    return Estimate(counts, rules, iterations, seconds, by_algo, sorted(unmodelled))
