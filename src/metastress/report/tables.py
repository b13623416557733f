"""Table 1: few-shot accuracy of every algorithm, as Markdown, CSV and LaTeX.

Rows are the paper's algorithms, and any other registered one whose files are given, in the
registry's order, and columns the k-shot values the files hold, so a missing run of the
paper's shows as an em dash instead of silently shrinking the table. In each column the best
algorithm and those not significantly worse than it are bold
(`metastress.report.significance`). With several training seeds a cell is the mean over seeds
± the 95% task interval, followed by the standard deviation over seeds.
"""

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from metastress import registry
from metastress.atomic import write_text
from metastress.report.data import (
    ALGO_NAMES,
    ReportInputError,
    in_algo_order,
    in_setting,
    load_evals,
    over_seeds,
    own_results,
    require_rows,
    require_unique,
)
from metastress.report.significance import SIGNIFICANCE_NOTE, mark_best
from metastress.report.style import CSV_FLOAT, sibling

MISSING = "—"


def table1(eval_paths: Iterable[str | Path], out_prefix: Path) -> None:
    """Write <out_prefix>.md, .csv and .tex: accuracy ± 95% CI (percent) per algorithm and shot.

    Uses the files whose model was tested on the setting it was trained on, with its own
    initialization and optimizer; all of them must share one n_way. The files of one model's
    training seeds count as one result (`metastress.report.data.over_seeds`), and significance
    is tested on its per-task accuracies averaged over seeds.

    Args:
        eval_paths: evaluation JSON files (see `metastress.report.data.EVAL_KEYS`).
        out_prefix: e.g. Path("tables/table1") for tables/table1.md, .csv and .tex.

    Writes:
        .csv with columns algo, k_shot, accuracy, ci95 (percent), seeds, seed_std (percent;
        empty for one seed), best, p_holm (against the column's best; empty for the best) and
        tied_with_best, one row per model used;
        .md and .tex with cells like "91.93 ± 0.72" (one seed) or "91.93 ± 0.72 (s.d. 0.40)"
        (several), bold where tied_with_best, and an em dash for a missing run.
    """
    paths = list(eval_paths)
    frame = in_setting(own_results(load_evals(paths)))
    require_rows(frame, "table1 (in-setting results of each model's own method)", paths)
    ways = sorted(frame["n_way"].unique())
    if len(ways) > 1:
        listed = ", ".join(map(str, paths))
        raise ReportInputError(
            f"table1: the files mix {', '.join(map(str, ways))}-way "
            f"results; pass the files of one n_way ({listed})"
        )
    frame = over_seeds(frame, "table1")
    require_unique(frame, ["algo", "k_shot"], "table1")
    frame = mark_best(in_algo_order(frame, "k_shot"), "k_shot", "table1")

    columns = [f"{k}-shot" for k in sorted(frame["k_shot"].unique())]
    rows = [n for a, n in ALGO_NAMES.items() if a in registry.in_paper() or a in set(frame.algo)]
    cells = pd.DataFrame(MISSING, index=rows, columns=columns)
    bold = pd.DataFrame(False, index=cells.index, columns=columns)
    for row in frame.itertuples():
        cell = f"{row.accuracy:.2f} ± {row.ci95:.2f}"
        if row.seeds > 1:
            cell += f" (s.d. {row.seed_std:.2f})"
        cells.loc[row.name, f"{row.k_shot}-shot"] = cell
        bold.loc[row.name, f"{row.k_shot}-shot"] = row.tied_with_best
    caption = (
        f"Test accuracy (%) on {ways[0]}-way tasks; {_interval_note(frame)}. Bold: the best "
        "mean of each column and the algorithms not significantly different from it "
        f"({SIGNIFICANCE_NOTE})."
    )

    columns = ["algo", "k_shot", "accuracy", "ci95", "seeds", "seed_std"]
    csv = frame[[*columns, "best", "p_holm", "tied_with_best"]]
    write_text(sibling(out_prefix, ".csv"), csv.to_csv(index=False, float_format=CSV_FLOAT))
    write_text(sibling(out_prefix, ".md"), _markdown(cells, bold, caption))
    write_text(sibling(out_prefix, ".tex"), _latex(cells, bold, caption, Path(out_prefix).name))


def _interval_note(frame: pd.DataFrame) -> str:
    """What ± (and s.d.) mean in the table's cells."""
    tasks = "/".join(map(str, sorted(frame["n_tasks"].unique())))
    seeds = sorted(frame["seeds"].unique())
    if seeds == [1]:
        return f"± is the 95% confidence interval over {tasks} tasks"
    return (
        f"the mean over {'/'.join(map(str, seeds))} training seeds, ± the 95% confidence "
        f"interval over {tasks} tasks of the per-task accuracies averaged over seeds, and "
        "s.d. the standard deviation over seeds"
    )


def _markdown(cells: pd.DataFrame, bold: pd.DataFrame, caption: str) -> str:
    # By hand: DataFrame.to_markdown needs `tabulate`, which metastress does not declare.
    marked = cells.where(~bold, "**" + cells + "**")
    lines = [
        "| Model | " + " | ".join(cells.columns) + " |",
        "|:---|" + ":---:|" * len(cells.columns),
        *(
            f"| {name} | " + " | ".join(row) + " |"
            for name, row in zip(marked.index, marked.values.tolist(), strict=True)
        ),
    ]
    return "\n".join([*lines, "", caption]) + "\n"


def _latex(cells: pd.DataFrame, bold: pd.DataFrame, caption: str, label: str) -> str:
    # pandas renders LaTeX through jinja2, which comes with snakemake, a declared dependency.
    body = cells.map(lambda cell: cell.replace("±", r"$\pm$").replace(MISSING, "---"))
    body = body.where(~bold, r"\textbf{" + body + "}")
    body = body.rename_axis("Model").reset_index()
    return body.to_latex(
        index=False,
        escape=False,
        column_format="l" + "c" * len(cells.columns),
        caption=caption.replace("%", r"\%").replace("±", r"$\pm$").replace("α", r"$\alpha$"),
        label=f"tab:{label}",
    )
