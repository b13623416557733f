"""From params.yaml to the exact config each job runs with.

Snakemake rules and the CLI both call these functions, so a rule's `params:` holds exactly
what its command reads: changing `maml.*` changes only MAML's job configs, and so reruns only
MAML's jobs. A run config holds the keys fixed in params.yaml; the keys an algorithm searches
are absent until the search's choice fills them in (`apply_choice`), once.
"""

import math
import random
from typing import Any

from metastress.config import FIG1_KEYS, META_KEYS, n_query, space_entries
from metastress.halving import SearchPlan, plan_from_profile
from metastress.registry import config_keys


def profile(params: dict) -> dict:
    name = params["profile"]
    if name not in params["profiles"]:
        raise KeyError(f"params.yaml: profile {name!r} is not one of {sorted(params['profiles'])}")
    return params["profiles"][name]


def search_plan(params: dict) -> SearchPlan:
    """The active profile's search: method, trials, budgets, rungs and trials per job."""
    return plan_from_profile(profile(params))


def algorithm_config(params: dict, algo: str) -> dict:
    """The learner keys fixed in the algo's section, and the profile's width."""
    section = params[algo]
    keys = config_keys(algo)
    config = {k: v for k, v in section.items() if k in keys}
    config["hidden"] = profile(params)["hidden"]
    return config


def search_space(params: dict, algo: str) -> dict:
    """The algo's space with the profile's overrides for the keys the algo has."""
    return {key: _at(params, path) for key, path in space_entries(params, algo).items()}


def _at(params: dict, path: tuple[str, ...]):
    for key in path:
        params = params[key]
    return params


def setting_fields(params: dict, setting: str) -> dict:
    s = params["settings"][setting]
    return {"n_way": s["n_way"], "k_shot": s["k_shot"], "n_query": n_query(params, setting)}


def final_iterations(params: dict, setting: str) -> int:
    prof = profile(params)
    return prof.get("final_iterations_by_setting", {}).get(setting, prof["final_iterations"])


def run_config(params: dict, algo: str, setting: str, stage: str) -> dict:
    """TrainConfig fields (as a dict) of the search trials ('search') or the final run ('final').

    A search trial's `iterations` is the full budget (a rung trains to its own), it is
    extendable, and it validates at every multiple of the first rung's budget."""
    prof, section = profile(params), params[algo]
    final = stage == "final"
    search = {} if final else {"extendable": True}
    return {
        "algo": algo,
        **setting_fields(params, setting),
        "algorithm": algorithm_config(params, algo),
        **{key: section[key] for key in META_KEYS if key in section},
        "iterations": final_iterations(params, setting) if final else prof["search_iterations"],
        "patience": prof["patience"] if final else 0,
        "validate_every": prof["validate_every"] if final else search_plan(params).validate_every(),
        "validation_tasks": prof["validation_tasks"],
        "seed": params["protocol"]["seed"],
        "rotate": params["protocol"]["rotate"],
        "device": params["protocol"]["device"],
        "task_mode": params["protocol"]["task_mode"],
        "precision": params["protocol"]["precision"],
        "graphs": params["protocol"]["graphs"],
        "trajectory": False,
        "checkpoint_every": prof["validate_every"],
        **search,
    }


def seeds(params: dict) -> list[int]:
    """The final models' training seeds: protocol.seed, protocol.seed + 1, ... (protocol.seeds
    of them). The search and the validation and test tasks keep protocol.seed alone."""
    first = params["protocol"]["seed"]
    return list(range(first, first + params["protocol"]["seeds"]))


def final_run_config(params: dict, algo: str, setting: str, seed: int) -> dict:
    """The final training with training seed `seed` (its initialization, episodes and
    validation tasks): `run_config(..., "final")` with that seed, so that protocol.seed's
    model is the one-seed run's."""
    return {**run_config(params, algo, setting, "final"), "seed": seed}


def fig1_run_config(params: dict, algo: str) -> dict:
    """Figure 1's training of `algo`, a job of its own: every algorithm of experiments.fig1
    runs with the same FIG1_KEYS (from experiments.fig1, whatever the search would choose), the
    same seed (protocol.seed: one initialization, one sequence of episodes) and the profile's
    fig1_iterations, and records the learned initialization after every meta-update. It
    validates once, at the end: its model is not used."""
    fig1 = params["experiments"]["fig1"]
    iterations = profile(params)["fig1_iterations"]
    run = run_config(params, algo, fig1["setting"], "final")
    run.update(iterations=iterations, patience=0, validate_every=iterations, trajectory=True)
    run["algorithm"] = dict(run["algorithm"])
    for key in FIG1_KEYS:
        (run if key in META_KEYS else run["algorithm"])[key] = fig1[key]
    return run


def sample(space: dict, seed: int, trial: int) -> dict[str, Any]:
    """Trial `trial`'s draw from the space; depends only on (space, seed, trial)."""
    rng = random.Random(f"{seed}/{trial}")
    drawn = {}
    for key in sorted(space):
        spec = space[key]
        if isinstance(spec, list):
            drawn[key] = rng.choice(spec)
        else:
            low, high = spec["log_uniform"]
            drawn[key] = math.exp(rng.uniform(math.log(low), math.log(high)))
    return drawn


def apply_choice(run: dict, choice: dict) -> dict:
    """A run config with the searched values filled in (meta keys top level, the rest in
    `algorithm`). A key the run config already fixes is refused: it has one meaning."""
    fixed = sorted(key for key in choice if key in run or key in run["algorithm"])
    if fixed:
        raise ValueError(
            f"the search chose {fixed}, which the run config also fixes; a key is either set in "
            "its algorithm's section of params.yaml or searched in its space, never both"
        )
    run = {**run, "algorithm": dict(run["algorithm"])}
    for key, value in choice.items():
        if key in META_KEYS:
            run[key] = value
        else:
            run["algorithm"][key] = value
    return run


def evaluation_config(params: dict, test_setting: str) -> dict:
    prof = profile(params)
    return {
        **setting_fields(params, test_setting),
        "setting": test_setting,
        "test_tasks": prof["test_tasks"],
        "eval_batch": prof["eval_batch"],
        "seed": params["protocol"]["seed"],
        "rotate": params["protocol"]["rotate"],
        "device": params["protocol"]["device"],
    }
