"""Figure 1: the path of the learned initialization through weight space during meta-training.

Each trajectory file (`metastress.snapshots`, written by Figure 1's own training job) holds the
flattened initialization before the first meta-update and after every one (MetaLSTM: one per
task, B per meta-iteration; MetaLSTM++: one per meta-iteration), the meta-iteration of each
snapshot, and the path length and displacement from the start, summed in float64 in the full
weight space as training ran. All algorithms' snapshots are pooled and centred, and each path
is drawn on the pool's first two principal components, so the paths share one plane; markers
show where meta-iterations end. The lengths come from the file, never from the projection,
which shortens both; they go into the legend, the per-snapshot CSV and a summary CSV.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from metastress.atomic import write_text
from metastress.report.data import ALGO_NAMES, ReportInputError, rebuild_hint
from metastress.report.style import ALGO_STYLE, CSV_FLOAT, new_figure, save_figure, sibling

START = {"marker": "o", "markersize": 10, "markerfacecolor": "white", "markeredgecolor": "k"}
END = {"marker": "*", "markersize": 14, "markerfacecolor": "k", "markeredgecolor": "k"}
TRAJECTORY_KEYS = ("snapshots", "iteration", "path_length", "displacement")
MARKED_ITERATIONS = 10  # at most this many meta-iterations get a marker and a number


def load_trajectory(path: Path) -> dict[str, torch.Tensor]:
    """Read one trajectory file, failing clearly on anything but `metastress.snapshots.save`'s
    form: snapshots float (U+1, P), iteration int (U+1,) from 0, path_length and displacement
    float (U+1,). Snapshots come back as float64."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ReportInputError(f"{path} does not exist; {rebuild_hint(path)}") from e
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise ReportInputError(
            f"{path} is not a readable torch file ({e}); {rebuild_hint(path)}"
        ) from e
    problem = _trajectory_problem(saved)
    if problem:
        raise ReportInputError(
            f"{path} {problem}; expected metastress.snapshots' record (snapshots (U+1, P), "
            f"iteration, path_length and displacement (U+1,)); {rebuild_hint(path)}"
        )
    return {**saved, "snapshots": saved["snapshots"].double()}


def _trajectory_problem(saved) -> str:
    """What is wrong with a loaded trajectory record, or "" if nothing."""
    if not isinstance(saved, dict) or set(saved) != set(TRAJECTORY_KEYS):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        return f"holds {found}"
    snapshots = saved["snapshots"]
    if not (snapshots.is_floating_point() and snapshots.ndim == 2 and len(snapshots) > 0):
        return f"holds snapshots of dtype {snapshots.dtype} and shape {tuple(snapshots.shape)}"
    for key in TRAJECTORY_KEYS[1:]:
        if saved[key].shape != (len(snapshots),):
            return f"holds {key} of shape {tuple(saved[key].shape)} for {len(snapshots)} snapshots"
    if saved["iteration"][0] != 0 or (saved["iteration"].diff() < 0).any():
        return "holds iterations that do not start at 0 and rise"
    return ""


def per_update(trajectory: Mapping[str, torch.Tensor]) -> tuple[int, float]:
    """(meta-updates, mean step length in the full weight space) of one trajectory."""
    updates = len(trajectory["snapshots"]) - 1
    return updates, trajectory["path_length"][-1].item() / max(updates, 1)


def project(
    trajectories: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Coordinates (snapshots, 2) of each trajectory on the pooled snapshots' first two PCs.

    Returns:
        ({algo: coordinates}, explained variance fraction of PC1 and PC2, shape (2,)).
    """
    pooled = torch.cat(list(trajectories.values()))  # (all snapshots, P)
    mean = pooled.mean(dim=0)
    _, singular, vh = torch.linalg.svd(pooled - mean, full_matrices=False)
    if len(vh) < 2:
        raise ReportInputError(
            f"fig1 needs two principal components, but the trajectories "
            f"hold {pooled.shape[0]} snapshot(s) of {pooled.shape[1]} "
            "parameter(s) in all"
        )
    components = vh[:2]  # (2, P)
    # SVD signs are arbitrary; make each component's largest loading positive so reruns agree.
    largest = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
    components = components * largest.sign()
    power = singular**2
    explained = power[:2] / power.sum().clamp_min(torch.finfo(power.dtype).tiny)
    return {algo: (s - mean) @ components.T for algo, s in trajectories.items()}, explained


def fig1(trajectory_paths: Mapping[str, str | Path], out_prefix: Path) -> None:
    """Write Figure 1 (<out_prefix>.pdf/.png/.csv) and <out_prefix>_summary.csv.

    Args:
        trajectory_paths: {algo id: trajectory file}, e.g. {"metalstm": ..., "metalstm_pp": ...}.
        out_prefix: e.g. Path("figures/fig1").

    Writes:
        <out_prefix>.csv: algo, update (0 = before the first), iteration, pc1, pc2,
        path_length and displacement (full weight space, so far), one row per snapshot;
        <out_prefix>_summary.csv: algo, updates, iterations, path_length, displacement,
        path_length_per_update, pc1_explained, pc2_explained (the explained fractions are of
        the pooled snapshots' variance, the same on every row).
    """
    unknown = sorted(set(trajectory_paths) - set(ALGO_NAMES))
    if unknown:
        raise ReportInputError(
            f"fig1: unknown algorithm id(s) {', '.join(unknown)}; expected "
            f"some of {', '.join(ALGO_NAMES)}"
        )
    paths = {a: Path(trajectory_paths[a]) for a in ALGO_NAMES if a in trajectory_paths}
    if not paths:
        raise ReportInputError("fig1: no trajectory files were given")
    trajectories = {algo: load_trajectory(path) for algo, path in paths.items()}
    widths = {algo: t["snapshots"].shape[1] for algo, t in trajectories.items()}
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{paths[a]} has {w}" for a, w in widths.items())
        raise ReportInputError(
            f"fig1: trajectories must have the same number of parameters "
            f"to share a projection, but {listed}; rebuild them under one "
            "model configuration"
        )

    coordinates, explained = project({a: t["snapshots"] for a, t in trajectories.items()})
    points, summary = [], []
    for algo, xy in coordinates.items():
        trajectory = trajectories[algo]
        updates, step = per_update(trajectory)
        points.append(
            pd.DataFrame(
                {
                    "algo": algo,
                    "update": range(len(xy)),
                    "iteration": trajectory["iteration"].numpy(),
                    "pc1": xy[:, 0].numpy(),
                    "pc2": xy[:, 1].numpy(),
                    "path_length": trajectory["path_length"].numpy(),
                    "displacement": trajectory["displacement"].numpy(),
                }
            )
        )
        summary.append(
            {
                "algo": algo,
                "updates": updates,
                "iterations": int(trajectory["iteration"][-1]),
                "path_length": trajectory["path_length"][-1].item(),
                "displacement": trajectory["displacement"][-1].item(),
                "path_length_per_update": step,
                "pc1_explained": explained[0].item(),
                "pc2_explained": explained[1].item(),
            }
        )
    points, summary = pd.concat(points, ignore_index=True), pd.DataFrame(summary)
    every = _marker_spacing(int(summary["iterations"].max()))

    with new_figure((6.8, 5.8)) as (figure, (ax,)):
        sns.lineplot(
            data=points,
            x="pc1",
            y="pc2",
            hue="algo",
            style="algo",
            sort=False,
            estimator=None,
            hue_order=list(paths),
            style_order=list(paths),
            palette={a: ALGO_STYLE[a].colour for a in paths},
            dashes={a: ALGO_STYLE[a].dashes for a in paths},
            linewidth=1.0,
            legend=False,
            ax=ax,
        )
        for algo, rows in points.groupby("algo", sort=False):
            _iteration_markers(ax, algo, rows, every)
            xy = rows[["pc1", "pc2"]].to_numpy()
            ax.plot(*xy[0], linestyle="none", zorder=3, **START)
            ax.plot(*xy[-1], linestyle="none", zorder=3, **END)
        handles = [
            Line2D(
                [],
                [],
                color=ALGO_STYLE[row.algo].colour,
                marker=ALGO_STYLE[row.algo].marker,
                linestyle=ALGO_STYLE[row.algo].linestyle,
                label=f"{ALGO_NAMES[row.algo]}: {row.updates} updates, path length "
                f"{row.path_length:.3g} ({row.path_length_per_update:.2g} per update), "
                f"displacement {row.displacement:.3g}",
            )
            for row in summary.itertuples()
        ] + [
            Line2D([], [], linestyle="none", label="start (iteration 0)", **START),
            Line2D([], [], linestyle="none", label="end", **END),
        ]
        figure.legend(
            handles=handles,
            title="lengths in the full weight space",
            loc="outside lower center",
            ncols=1,
            frameon=False,
            handlelength=4,  # long enough to show each dash pattern
        )
        ax.set(
            xlabel=f"PC 1 of the initialization (weight units; {explained[0]:.0%} of variance)",
            ylabel=f"PC 2 (weight units; {explained[1]:.0%} of variance)",
            title=f"Learned initialization after every meta-update\n(markers: {_every(every)})",
        )
        save_figure(figure, points, out_prefix)
    write_text(
        sibling(out_prefix, "_summary.csv"), summary.to_csv(index=False, float_format=CSV_FLOAT)
    )


def _marker_spacing(iterations: int) -> int:
    """Iterations between markers: 1, 2 or 5 times a power of ten, at most MARKED_ITERATIONS
    markers."""
    wanted = max(1, math.ceil(iterations / MARKED_ITERATIONS))
    power = 10 ** math.floor(math.log10(wanted))
    return next(n * power for n in (1, 2, 5, 10) if n * power >= wanted)


def _every(every: int) -> str:
    """Where the markers are, for the title."""
    if every == 1:
        return "the end of each meta-iteration"
    return f"the end of every {every}th meta-iteration, numbered"


def _iteration_markers(ax: Axes, algo: str, rows: pd.DataFrame, every: int) -> None:
    """The algorithm's marker, and the iteration number, where every `every`-th meta-iteration
    ends (its last snapshot)."""
    ends = rows.drop_duplicates("iteration", keep="last")
    ends = ends[(ends["iteration"] > 0) & (ends["iteration"] % every == 0)]
    style = ALGO_STYLE[algo]
    ax.plot(
        ends["pc1"],
        ends["pc2"],
        linestyle="none",
        marker=style.marker,
        markersize=5,
        color=style.colour,
        zorder=2.5,
    )
    for row in ends.itertuples():
        ax.annotate(
            str(row.iteration),
            (row.pc1, row.pc2),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize="x-small",
            color=style.colour,
        )
