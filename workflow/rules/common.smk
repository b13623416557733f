# Shared imports, validation and the accessors every rule uses. Everything imported here is
# torch-free: parsing the workflow never imports torch.
import dataclasses
import json
from pathlib import Path

from metastress import paths, registry
from metastress.config import load_schema, validate_params
from metastress.cost import Estimator, load_models, time_limit_minutes
from metastress.experiments import (
    evaluation_config,
    fig1_run_config,
    final_run_config,
    profile,
    run_config,
    search_plan,
    search_space,
    seeds,
)

# The same checks and wording as the CLI's, before any job (or `dvc repro`) touches a file.
validate_params(
    config, load_schema(Path(workflow.main_snakefile).parent / paths.PARAMS), source=paths.PARAMS
)

PROFILE = profile(config)
PLAN = search_plan(config)  # the search's rungs: their budgets, sizes and parts (jobs)
EXPERIMENTS = config["experiments"]
ALGORITHMS = EXPERIMENTS["algorithms"]
HAND_OPTIMIZERS = registry.hand_optimizers()
SEEDS = seeds(config)  # the final models' training seeds
SPLIT_FILE = paths.split_file(config["data"]["split"])
FIGURES = registry.figure_ids()


def param(*keys):
    """The value at params.yaml keys[0].keys[1]..., for a rule's `params:`."""
    value = config
    for key in keys:
        value = value[key]
    return value


def as_json(value):
    return json.dumps(value, sort_keys=True)


def search_run(w):
    return as_json(run_config(config, w.algo, w.setting, "search"))


def search_parts(algo, setting, rungs=None):
    """The part files of the search's rungs (all by default) for one algorithm and setting."""
    rungs = range(PLAN.rung_count) if rungs is None else rungs
    return [
        paths.search_part(algo, setting, r, p) for r in rungs for p in range(PLAN.parts(r))
    ]


def previous_rung(w):
    """A rung job reads the previous rung's records to know which trials go on."""
    rung = int(w.rung)
    return search_parts(w.algo, w.setting, [rung - 1]) if rung else []


SEARCH_ON_GPU = Estimator(config, load_models()["gpu"])  # the cost model, for time limits


def search_minutes(wildcards, attempt):
    """A rung job's time limit on a cluster (`runtime`): from the cost model's H200 estimate
    for its trials (metastress.cost.time_limit_minutes)."""
    job = {key: getattr(wildcards, key) for key in ("algo", "setting", "rung", "part")}
    return time_limit_minutes(SEARCH_ON_GPU, "search_rung", job, attempt)


def final_run(w):
    return as_json(final_run_config(config, w.algo, w.setting, int(w.seed)))


def fig1_run(w):
    return as_json(fig1_run_config(config, w.algo))


def evaluation(w):
    return as_json(evaluation_config(config, w.test))


model = paths.model_file
evaluation_file = paths.evaluation_file


def in_setting(settings):
    """Every seed's in-setting score of every algorithm on `settings`."""
    return [evaluation_file(a, s, s, seed) for a in ALGORITHMS for s in settings for seed in SEEDS]


def transfers():
    """Figure 3's transfer scores: each algorithm trained on one setting, tested on another."""
    return [
        evaluation_file(a, p["train"], p["test"], seed)
        for a in ALGORITHMS
        for p in EXPERIMENTS["fig3"]
        for seed in SEEDS
    ]


def swaps(path_of):
    """Figure 4b's files `path_of(setting, optimizer_of, init_of, seed)`, every swap and seed;
    `path_of` is paths.swap_file, or paths.swap_choice_file for the hand optimizers' choices."""
    fig4b = EXPERIMENTS["fig4b"]
    wanted = fig4b["swaps"]
    if path_of is paths.swap_choice_file:
        wanted = [s for s in wanted if s["optimizer_of"] in HAND_OPTIMIZERS]
    return [
        path_of(fig4b["setting"], s["optimizer_of"], s["init_of"], seed)
        for s in wanted
        for seed in SEEDS
    ]


def trained_settings():
    """Every setting some table or figure needs a model of, in params order."""
    used = set(EXPERIMENTS["table1"]) | set(EXPERIMENTS["fig2"])
    used |= {p[k] for p in EXPERIMENTS["fig3"] for k in ("train", "test")}
    used |= {EXPERIMENTS["fig4a"]["train"], EXPERIMENTS["fig4b"]["setting"]}
    return [s for s in config["settings"] if s in used]
