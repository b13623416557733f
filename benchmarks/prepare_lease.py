"""Fill .gpu/ for benchmarks/gpu_lease.sh: the processed data, the split, the run configs of
the precision experiment (the paper profile's MAML 20w1s, 2,000 iterations, in each precision,
graphs on) and its evaluation (300 test tasks).

    .venv/bin/python -m benchmarks.prepare_lease [--processed NPZ] [--split JSON]
    .venv/bin/python -m pip download --no-deps higher==0.2.1 -d .whl

NPZ and JSON default to the workflow's data/processed/omniglot28.npz and
data/splits/paper.json (`snakemake data/splits/paper.json`, or `metastress data download`,
`prepare` and `split --name paper --seed 0`). Both folders must be ignored by git (add them to
`git rev-parse --git-path info/exclude`) and travel with the lease (`carry`).
"""

import argparse
import json
import shutil
from pathlib import Path

from metastress import experiments
from metastress.config import load_params
from metastress.engine import PRECISIONS

LEASE = Path(".gpu")
ACCURACY_RUN = {"iterations": 2000, "validate_every": 500, "validation_tasks": 100, "patience": 0,
                "checkpoint_every": 500, "graphs": "auto"}  # fmt: skip
# the values the leases ran with, in place of the search's choice (for the keys an algo searches)
CHOICE = {"inner_steps": 5, "inner_lr": 0.4, "meta_lr": 0.001, "meta_batch": 16}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=Path("data/processed/omniglot28.npz"))
    parser.add_argument("--split", type=Path, default=Path("data/splits/paper.json"))
    args = parser.parse_args(argv)
    params = dict(load_params(), profile="paper")
    LEASE.mkdir(exist_ok=True)
    shutil.copyfile(args.processed, LEASE / "omniglot28.npz")
    shutil.copyfile(args.split, LEASE / "paper.json")
    run = dict(experiments.run_config(params, "maml", "20w1s", "final"), **ACCURACY_RUN)
    searched = experiments.search_space(params, "maml")
    run = experiments.apply_choice(run, {k: v for k, v in CHOICE.items() if k in searched})
    for precision in PRECISIONS:
        (LEASE / f"run_accuracy_{precision}.json").write_text(
            json.dumps(dict(run, precision=precision))
        )
    evaluation = dict(experiments.evaluation_config(params, "20w1s"), test_tasks=300, eval_batch=50)
    (LEASE / "eval.json").write_text(json.dumps(evaluation))
    print(f"wrote {sorted(p.name for p in LEASE.iterdir())}")


if __name__ == "__main__":
    main()
