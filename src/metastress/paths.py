"""Where the workflow's files live, relative to the repository root: one place for the rules
(workflow/rules/common.smk) and for the commands people type (`metastress train maml 20w1s`),
so both read and write the same files. Torch-free: Snakemake imports it."""

PARAMS = "params.yaml"
PROCESSED = "data/processed/omniglot28.npz"


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


def run_dir(algo: str, setting: str) -> str:
    """The final training's folder: model.pt, metrics.tsv, summary.json, trajectory.pt."""
    return f"models/{algo}/{setting}"


def model_file(algo: str, setting: str) -> str:
    return f"{run_dir(algo, setting)}/model.pt"


def train_work_root(algo: str, setting: str) -> str:
    """Checkpoints of the final training, one subfolder per config hash."""
    return f"checkpoints/train/{algo}/{setting}"


def evaluation_file(algo: str, train: str, test: str) -> str:
    """The score of `algo` trained on `train`, tested on `test`."""
    return f"results/eval/{algo}/{train}/{test}.json"
