"""One look for every figure, and one way to save it.

Each algorithm keeps its colour, marker, dash pattern and hatch in every figure, so the
figures stay readable in black and white. Figures are built on `matplotlib.figure.Figure`
directly, never through pyplot, so no GUI backend is ever chosen (PNG goes through Agg) and
no figure outlives its function. Each figure is written as PDF, PNG and the CSV it was drawn
from, all atomically, so a half-written figure never looks up to date.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metastress.atomic import write_text, write_with
from metastress.report.data import ALGO_NAMES

PNG_DPI = 200
CSV_FLOAT = "%.10g"  # percent = fraction * 100 leaves float noise (97.78999999999999)
EDGE = "0.15"  # bar edges and hatch lines: near black, so hatches survive greyscale


@dataclass(frozen=True)
class AlgoStyle:
    colour: str
    marker: str
    dashes: tuple[float, ...]  # seaborn's dash spec: (on, off, ...) in points; () is solid
    hatch: str

    @property
    def linestyle(self) -> str | tuple:
        """The same dash pattern in matplotlib's form."""
        return (0, self.dashes) if self.dashes else "-"


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
DASHES = ((), (5, 2), (1.5, 1.5), (6, 2, 1.5, 2), (3, 1.5, 1.5, 1.5, 1.5, 1.5), (8, 2, 2, 2, 2, 2))
HATCHES = ("", "///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||")


def styles(algos: Sequence[str]) -> dict[str, AlgoStyle]:
    """A distinct look per algorithm, for any number of them: seaborn's colour-blind palette
    (10 colours, then repeated) and marker, dash and hatch cycles of lengths 10, 6 and 9, so
    that no two of the first 90 algorithms share marker, dashes and hatch."""
    colours = sns.color_palette("colorblind", len(algos)).as_hex()
    return {
        algo: AlgoStyle(
            colours[i],
            MARKERS[i % len(MARKERS)],
            DASHES[i % len(DASHES)],
            HATCHES[i % len(HATCHES)],
        )
        for i, algo in enumerate(algos)
    }


ALGO_STYLE: dict[str, AlgoStyle] = styles(list(ALGO_NAMES))


def by_name(attribute: str, algos: Iterable[str]) -> dict:
    """{display name: style attribute} for seaborn's palette/markers/dashes arguments."""
    return {ALGO_NAMES[a]: getattr(ALGO_STYLE[a], attribute) for a in algos}


@contextmanager
def new_figure(
    size: tuple[float, float], ncols: int = 1, sharey: bool = False
) -> Iterator[tuple[Figure, list[Axes]]]:
    """A figure in the report's theme; draw and save it inside the `with` block."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.15):
        figure = Figure(figsize=size, layout="constrained")
        axes = figure.subplots(1, ncols, squeeze=False, sharey=sharey)[0]
        yield figure, list(axes)


def sibling(out_prefix: Path, suffix: str) -> Path:
    """out_prefix plus a suffix: figures/fig2 -> figures/fig2.pdf (keeps dots in the stem)."""
    out_prefix = Path(out_prefix)
    return out_prefix.with_name(out_prefix.name + suffix)


def save_figure(figure: Figure, data: pd.DataFrame, out_prefix: Path) -> None:
    """Write <out_prefix>.pdf, .png and .csv (the plotted numbers)."""
    write_text(sibling(out_prefix, ".csv"), data.to_csv(index=False, float_format=CSV_FLOAT))
    # No creation date, so an unchanged figure is byte-identical and DVC sees no change.
    write_with(
        sibling(out_prefix, ".pdf"),
        lambda f: figure.savefig(f, format="pdf", metadata={"CreationDate": None}),
    )
    write_with(sibling(out_prefix, ".png"), lambda f: figure.savefig(f, format="png", dpi=PNG_DPI))
