"""A training or evaluation job named by algorithm and setting, run as the workflow runs it.

`metastress train maml 20w1s` and `metastress evaluate maml 20w1s --test 40w5s` take the
validated params.yaml, build the job's config with the functions the rules use
(metastress.experiments), take the search's choice when the search has made one, and read
and write the rules' files (metastress.paths): a job typed by hand and the one Snakemake runs
are the same job, with the same outputs and checkpoints. `--seed` names one of the run's
training seeds (protocol.seed, the default, up to protocol.seed + protocol.seeds - 1).
"""

import sys
from collections.abc import Callable
from pathlib import Path

from metastress import paths
from metastress.evaluate import evaluate
from metastress.experiments import (
    apply_choice,
    evaluation_config,
    final_run_config,
    search_space,
    seeds,
)
from metastress.selection import read_choice
from metastress.train import train, train_config, work_dir_for


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def train_by_name(
    params: dict,
    algo: str,
    setting: str,
    seed: int | None = None,
    say: Callable[[str], None] = _stderr,
) -> dict:
    """Train `algo` on `setting` with training seed `seed` (default protocol.seed) into
    paths.run_dir (resuming from its checkpoint folder), with the search's choice from
    results/search/<algo>/<setting>/best.json (said on `say`); without one only an algorithm
    that searches nothing trains. Returns the training summary."""
    _check_settings(params, setting)
    seed = _check_seed(params, seed)
    processed, split = _data_files(params)
    run = final_run_config(params, algo, setting, seed)
    best = Path(paths.search_best(algo, setting))
    if best.is_file():
        choice = read_choice(best)
        say(f"using the search's choice in {best}: {_listed(choice)}")
        run = apply_choice(run, choice)
    else:
        searched = sorted(search_space(params, algo))
        if searched:
            raise ValueError(
                f"no search result at {best}: {algo} searches {searched}, so its training "
                f"needs the search's choice; run the search first: snakemake --cores 2 {best}"
            )
        say(f"no search result at {best}; {algo} searches nothing: training with params.yaml")
    config = train_config(run)
    work_dir = work_dir_for(config, Path(paths.train_work_root(algo, setting)))
    return train(config, processed, split, Path(paths.run_dir(algo, setting, seed)), work_dir)


def evaluate_by_name(
    params: dict, algo: str, train_setting: str, test_setting: str, seed: int | None = None
) -> dict:
    """Score the model of `algo` trained on `train_setting` with `seed` (default
    protocol.seed) on `test_setting`'s fixed test tasks into paths.evaluation_file; returns the
    result written there."""
    _check_settings(params, train_setting, test_setting)
    seed = _check_seed(params, seed)
    model = Path(paths.model_file(algo, train_setting, seed))
    if not model.is_file():
        raise FileNotFoundError(
            f"{model} does not exist; train it first: metastress train {algo} {train_setting} "
            f"--seed {seed}"
        )
    processed, split = _data_files(params)
    out = Path(paths.evaluation_file(algo, train_setting, test_setting, seed))
    return evaluate(model, evaluation_config(params, test_setting), processed, split, out)


def _check_seed(params: dict, seed: int | None) -> int:
    """`seed`, or protocol.seed when None; one the run does not train is an error."""
    run_seeds = seeds(params)
    if seed is None:
        return run_seeds[0]
    if seed not in run_seeds:
        raise ValueError(
            f"--seed {seed} is not one of this run's training seeds {run_seeds} (protocol.seed "
            f"{run_seeds[0]}, protocol.seeds {len(run_seeds)}); name one of them, or change "
            "protocol.seed or protocol.seeds (--set protocol.seeds=N)"
        )
    return seed


def _check_settings(params: dict, *settings: str) -> None:
    for setting in settings:
        if setting not in params["settings"]:
            raise ValueError(
                f"setting {setting!r} is not in params.yaml's settings "
                f"({', '.join(params['settings'])}); add it there or name one of those"
            )


def _data_files(params: dict) -> tuple[Path, Path]:
    """The prepared images and the class split, which the workflow's data phase builds."""
    processed, split = Path(paths.PROCESSED), Path(paths.split_file(params["data"]["split"]))
    for path in (processed, split):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; build the data first: snakemake --cores 2 {split}"
            )
    return processed, split


def _listed(values: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items()))
