"""The search as rungs: random search is one rung, successive halving several.

Successive halving (Jamieson & Talwalkar 2016; the inner loop of Li et al.'s 2017 Hyperband):
rung r trains its trials to `budgets[r]` meta-iterations, extending each from its checkpoint,
and the best ceil(n_r / eta) by their validation accuracy at that budget go on to rung r + 1,
until the survivors reach the full budget. How many trials each rung holds is fixed in
advance; only which trials survive depends on the records, and only on them (failed trials
rank last, ties go to the lower trial index). So the rungs are a static DAG: one job per
(rung, part), a part being up to `trials_per_job` of the rung's trials, trained one after
another in one process.

Hand-written rather than Optuna's SuccessiveHalvingPruner or Ray Tune's ASHA: both are the
asynchronous variant, whose promotions depend on the order in which trials report, and both
drive the training loop from inside their own process and storage, where this workflow's
jobs are Snakemake's (and SLURM's) to schedule and resume. Torch-free: Snakemake imports it.
"""

import math
from dataclasses import dataclass

METHODS = ("random", "halving")


@dataclass(frozen=True)
class SearchPlan:
    """How a profile searches each algorithm and setting.

    Args:
        method (str): "random" (the paper: every trial to the full budget) or "halving".
        trials (int): configurations drawn; trial i's draw depends only on (space, seed, i).
        iterations (int): the full budget R, in meta-iterations, of the trials that reach it.
        eta (int): halving keeps the best ceil(n / eta) of a rung's n trials.
        rungs (int): halving's rungs; rung r trains to R / eta^(rungs - 1 - r) iterations.
        trials_per_job (int): trials one job (one GPU) trains, one after another.
    """

    method: str
    trials: int
    iterations: int
    eta: int
    rungs: int
    trials_per_job: int

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"search_method {self.method!r} is not one of {list(METHODS)}")
        step = self.eta ** (self.rung_count - 1)
        if self.iterations % step:
            raise ValueError(
                f"search_iterations {self.iterations} is not a multiple of "
                f"search_eta^(search_rungs - 1) = {step}, so halving's rung budgets would not be "
                f"whole iterations; make it a multiple of {step} (e.g. "
                f"{max(step, self.iterations // step * step)}) or lower search_rungs"
            )

    @property
    def rung_count(self) -> int:
        return self.rungs if self.method == "halving" else 1

    def budgets(self) -> list[int]:
        """Meta-iterations each rung trains its trials to, the last one the full budget."""
        last = self.rung_count - 1
        return [self.iterations // self.eta ** (last - r) for r in range(self.rung_count)]

    def sizes(self) -> list[int]:
        """Trials in each rung: all of them, then ceil(n / eta) of the previous rung's n."""
        sizes = [self.trials]
        for _ in range(self.rung_count - 1):
            sizes.append(math.ceil(sizes[-1] / self.eta))
        return sizes

    def parts(self, rung: int) -> int:
        """Jobs of `rung`: its trials in groups of trials_per_job."""
        return math.ceil(self.sizes()[rung] / self.trials_per_job)

    def part_size(self, rung: int, part: int) -> int:
        size = self.sizes()[rung]
        return min(self.trials_per_job, size - part * self.trials_per_job)

    def spent(self) -> int:
        """Meta-iterations the search trains in all, per algorithm and setting."""
        budgets, sizes = self.budgets(), self.sizes()
        return sum(n * (b - a) for n, b, a in zip(sizes, budgets, [0, *budgets], strict=False))

    def validate_every(self) -> int:
        """Validation spacing of a search trial: the first rung's budget, of which every
        rung's budget is a multiple, so a trial's record at any rung is a validation that its
        checkpoint keeps, however far it was extended since."""
        return self.budgets()[0]


def plan_from_profile(profile: dict) -> SearchPlan:
    """The search plan of a params.yaml profile (its `search_*` keys)."""
    return SearchPlan(
        method=profile["search_method"],
        trials=profile["search_trials"],
        iterations=profile["search_iterations"],
        eta=profile["search_eta"],
        rungs=profile["search_rungs"],
        trials_per_job=profile["search_trials_per_job"],
    )


def rank(record: dict) -> tuple:
    """Sort key, best first: succeeded before failed, higher validation accuracy, lower index."""
    failed = record["status"] != "ok"
    return (failed, 0.0 if failed else -record["val_accuracy"], record["trial"])


def survivors(records: list[dict], keep: int) -> list[dict]:
    """The `keep` best records, in trial order."""
    return sorted(sorted(records, key=rank)[:keep], key=lambda r: r["trial"])


def part_trials(plan: SearchPlan, rung: int, part: int, previous: list[dict]) -> list[dict]:
    """What part `part` of `rung` trains: {"trial": i, "before": its record of the previous
    rung, or None in rung 0}, in trial order. `previous` holds every record of rung - 1."""
    if not 0 <= rung < plan.rung_count or not 0 <= part < plan.parts(rung):
        raise ValueError(
            f"rung {rung}, part {part} is not in the search plan ({plan.rung_count} rung(s) of "
            f"{plan.sizes()} trials, {plan.trials_per_job} per job); the rule and the plan "
            "disagree: rerun snakemake, which plans from params.yaml"
        )
    if rung == 0:
        chosen = [{"trial": i, "before": None} for i in range(plan.trials)]
    else:
        trials = sorted(r["trial"] for r in previous)
        expected = plan.sizes()[rung - 1]
        if len(trials) != expected or len(set(trials)) != expected:
            raise ValueError(
                f"rung {rung - 1} holds the records of trials {trials}, expected {expected} "
                "distinct trials; delete that rung's part files so that the workflow reruns it"
            )
        kept = survivors(previous, plan.sizes()[rung])
        chosen = [{"trial": r["trial"], "before": r} for r in kept]
    start = part * plan.trials_per_job
    return chosen[start : start + plan.trials_per_job]
