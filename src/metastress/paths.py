"""Where the workflow's files live, relative to the repository root: one place for the rules
(workflow/rules/*.smk, which call these functions with wildcards such as "{algo}") and for the
commands people type (`metastress train maml 20w1s --seed 1`), so both read and write the same
files. Torch-free: Snakemake imports it.

Every file of a final model carries its training seed (`protocol.seed` + k, k < protocol.seeds)
in a `seed<N>` folder; the search and Figure 1's pair are run once, with `protocol.seed`.
"""

import re
from pathlib import Path

PARAMS = "params.yaml"
PROCESSED = "data/processed/omniglot28.npz"

RUN_DIR = "models/{algo}/{setting}/seed{seed}"
EVALUATION = "results/eval/{algo}/{train}/seed{seed}/{test}.json"
STEPS = "results/ablation/steps/{algo}/{train}/seed{seed}/{test}/steps{steps}.json"
SWAP = "results/ablation/swap/{setting}/seed{seed}/{optimizer_of}_adapts_{init_of}.json"
SWAP_CHOICE = SWAP.removesuffix(".json") + ".choice.json"
TRAJECTORY_DIR = "results/fig1/{algo}/{setting}"


def split_file(split: str) -> str:
    """The class split named `split` (params.yaml `data.split`)."""
    return f"data/splits/{split}.json"


def search_part(algo: str, setting: str, rung: int | str, part: int | str) -> str:
    """The records of one search job: part `part` of rung `rung`'s trials."""
    return f"results/search/{algo}/{setting}/rung{rung}/part{part}.json"


def search_work_root(algo: str, setting: str) -> str:
    """Checkpoints of the search trials: trial<i>/<config hash>/ below it."""
    return f"checkpoints/search/{algo}/{setting}"


def search_best(algo: str, setting: str) -> str:
    """The search's chosen config for `algo` on `setting`."""
    return f"results/search/{algo}/{setting}/best.json"


def run_dir(algo: str, setting: str, seed: int | str) -> str:
    """The final training's folder for one seed: model.pt, metrics.tsv, summary.json."""
    return RUN_DIR.format(algo=algo, setting=setting, seed=seed)


def model_file(algo: str, setting: str, seed: int | str) -> str:
    return f"{run_dir(algo, setting, seed)}/model.pt"


def train_work_root(algo: str, setting: str) -> str:
    """Checkpoints of the final trainings, one subfolder per config hash (which holds the
    seed, so each seed has its own)."""
    return f"checkpoints/train/{algo}/{setting}"


def evaluation_file(algo: str, train: str, test: str, seed: int | str) -> str:
    """The score of `algo` trained on `train` with `seed`, tested on `test`."""
    return EVALUATION.format(algo=algo, train=train, test=test, seed=seed)


def steps_file(algo: str, train: str, test: str, steps: int | str, seed: int | str) -> str:
    """Figure 4a: the same model tested with `steps` adaptation steps."""
    return STEPS.format(algo=algo, train=train, test=test, steps=steps, seed=seed)


def swap_file(setting: str, optimizer_of: str, init_of: str, seed: int | str) -> str:
    """Figure 4b: the `init_of` model's initialization adapted by `optimizer_of`'s optimizer."""
    return SWAP.format(setting=setting, optimizer_of=optimizer_of, init_of=init_of, seed=seed)


def swap_choice_file(setting: str, optimizer_of: str, init_of: str, seed: int | str) -> str:
    """Figure 4b: a hand optimizer's learning rate and steps, chosen on the validation tasks,
    beside the swap result it was used for."""
    return SWAP_CHOICE.format(
        setting=setting, optimizer_of=optimizer_of, init_of=init_of, seed=seed
    )


def trajectory_dir(algo: str, setting: str) -> str:
    """Figure 1's training of `algo`: trajectory.pt (every meta-update), and its model.pt,
    metrics.tsv and summary.json."""
    return TRAJECTORY_DIR.format(algo=algo, setting=setting)


def trajectory_file(algo: str, setting: str) -> str:
    return f"{trajectory_dir(algo, setting)}/trajectory.pt"


def trajectory_work_root(algo: str, setting: str) -> str:
    return f"checkpoints/fig1/{algo}/{setting}"


def parse_run_dir(path: str | Path) -> dict[str, str | int]:
    """{algo, setting, seed} of a final model's folder (the path may have any prefix)."""
    return _parse(RUN_DIR, path)


def parse_evaluation_file(path: str | Path) -> dict[str, str | int]:
    """{algo, train, test, seed} of an evaluation result (the path may have any prefix)."""
    return _parse(EVALUATION, path)


def _parse(template: str, path: str | Path) -> dict[str, str | int]:
    """The template's fields from the last components of `path`; `seed` as an int."""
    parts = template.split("/")
    tail = Path(path).parts[-len(parts) :]
    pattern = re.escape("/".join(parts))
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: rf"(?P<{m[1]}>[^/]+?)", pattern)
    pattern = pattern.replace("(?P<seed>[^/]+?)", r"(?P<seed>\d+)")
    found = re.fullmatch(pattern, "/".join(tail))
    if found is None:
        raise ValueError(f"{path} is not laid out as {template}")
    fields: dict[str, str | int] = dict(found.groupdict())
    fields["seed"] = int(fields["seed"])
    return fields
