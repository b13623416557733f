"""The report phase: Table 1 and Figures 1-4 from result files, and nothing else.

Every function takes the exact input paths and an output prefix, and writes all its outputs
atomically beside that prefix:

- table1(eval_paths, Path("tables/table1")) -> table1.md, table1.csv, table1.tex
- fig1(trajectory_paths, Path("figures/fig1")) -> fig1.pdf/.png/.csv, fig1_summary.csv
- fig2 / fig3 / fig4a / fig4b(eval_paths, Path("figures/figN")) -> figN.pdf, .png, .csv

Inputs are evaluation JSON files (keys in `EVAL_KEYS`; a file lacking one is an error naming
the file, the key and the command that rebuilds it; the files of several training seeds of one
model count as one result) and, for Figure 1, trajectory records (`metastress.snapshots`).
Table 1 and Figure 2 mark, per setting, the best algorithm and those not significantly
different from it, from the files' paired per-task accuracies (`significance`).
`main` is the adapter the command line calls.
"""

from collections.abc import Sequence
from pathlib import Path

from metastress.report.data import ALGO_NAMES, EVAL_KEYS, ReportInputError
from metastress.report.figures import fig2, fig3, fig4a, fig4b
from metastress.report.tables import table1
from metastress.report.trajectory import fig1

EVAL_REPORTS = {"table1": table1, "fig2": fig2, "fig3": fig3, "fig4a": fig4a, "fig4b": fig4b}
KINDS = ("fig1", *EVAL_REPORTS)

__all__ = [
    "ALGO_NAMES",
    "EVAL_KEYS",
    "KINDS",
    "ReportInputError",
    "algo_from_path",
    "fig1",
    "fig2",
    "fig3",
    "fig4a",
    "fig4b",
    "main",
    "table1",
]


def main(kind: str, inputs: Sequence[Path], out_prefix: Path) -> None:
    """Build one report output: `kind` is one of KINDS.

    For fig1, `inputs` are trajectory files, each algorithm read from its path by
    `algo_from_path`. For the others, `inputs` are evaluation JSON files.
    """
    if kind == "fig1":
        by_algo: dict[str, Path] = {}
        for path in map(Path, inputs):
            algo = algo_from_path(path)
            if algo in by_algo:
                raise ReportInputError(
                    f"fig1: two trajectories for {algo}: {by_algo[algo]} and "
                    f"{path}; pass one per algorithm"
                )
            by_algo[algo] = path
        fig1(by_algo, out_prefix)
    elif kind in EVAL_REPORTS:
        EVAL_REPORTS[kind](inputs, out_prefix)
    else:
        raise ReportInputError(f"unknown report {kind!r}; expected one of {', '.join(KINDS)}")


def algo_from_path(path: Path) -> str:
    """The algorithm id a trajectory belongs to: its nearest enclosing folder named like one.

    results/fig1/metalstm/20w1s/trajectory.pt -> "metalstm"; x/metalstm_pp/trajectory.pt ->
    "metalstm_pp". The file itself holds only a tensor, so its folder is the one place that
    says whose it is.
    """
    for folder in Path(path).parent.parts[::-1]:
        if folder in ALGO_NAMES:
            return folder
    raise ReportInputError(
        f"{path}: no enclosing folder is named after an algorithm "
        f"({', '.join(ALGO_NAMES)}), so its algorithm is unknown; keep each "
        "trajectory under a folder named by its algo id"
    )
