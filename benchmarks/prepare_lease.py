"""Fill .gpu/ for benchmarks/gpu_lease.sh: the processed data, the split, and the paper
profile's 20w1s run configs (MAML, MetaLSTM++) cut to 300 iterations, plus its evaluation.

    .venv/bin/python -m benchmarks.prepare_lease   # after `snakemake data/splits/paper.json`
    .venv/bin/python -m pip download --no-deps higher==0.2.1 -d .whl

Both folders are ignored by git (add them to .git/info/exclude) and travel with the lease.
"""

import json
import shutil
from pathlib import Path

from metastress import experiments
from metastress.config import load_params

LEASE = Path(".gpu")
ALGOS = ("maml", "metalstm_pp")
SHORT_RUN = {"iterations": 300, "validate_every": 100, "validation_tasks": 100, "patience": 0,
             "checkpoint_every": 100}  # fmt: skip
# the values the leases ran with, in place of the search's choice (for the keys an algo searches)
CHOICE = {"inner_steps": 5, "inner_lr": 0.4, "meta_lr": 0.001, "meta_batch": 16}


def main() -> None:
    params = dict(load_params(), profile="paper")
    LEASE.mkdir(exist_ok=True)
    shutil.copyfile("data/processed/omniglot28.npz", LEASE / "omniglot28.npz")
    shutil.copyfile(f"data/splits/{params['data']['split']}.json", LEASE / "paper.json")
    for algo in ALGOS:
        run = dict(experiments.run_config(params, algo, "20w1s", "final"), **SHORT_RUN)
        searched = experiments.search_space(params, algo)
        run = experiments.apply_choice(run, {k: v for k, v in CHOICE.items() if k in searched})
        (LEASE / f"run_{algo}.json").write_text(json.dumps(run))
    evaluation = dict(experiments.evaluation_config(params, "20w1s"), test_tasks=300, eval_batch=50)
    (LEASE / "eval.json").write_text(json.dumps(evaluation))
    print(f"wrote {sorted(p.name for p in LEASE.iterdir())}")


if __name__ == "__main__":
    main()
