"""Figure 1: the path of the learned initialization through weight space during meta-training.

Each trajectory file holds a float tensor (snapshots, P): the flattened initial weights after
iterations every, 2*every, ... (as `metastress.train` records them). All algorithms' snapshots
are pooled and centred, and each path is drawn on the pool's first two principal components,
so the paths share one plane. Path length (sum of the step norms) and displacement (norm of
last minus first snapshot) are measured in the original P-dimensional space, because the
projection shortens both; they go into the legend and a summary CSV.
"""

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import seaborn as sns
import torch
from matplotlib.lines import Line2D

from metastress.atomic import write_text
from metastress.report.data import ALGO_NAMES, ReportInputError, rebuild_hint
from metastress.report.style import ALGO_STYLE, CSV_FLOAT, new_figure, save_figure, sibling

START = {"marker": "o", "markersize": 10, "markerfacecolor": "white", "markeredgecolor": "k"}
END = {"marker": "*", "markersize": 14, "markerfacecolor": "k", "markeredgecolor": "k"}


def load_trajectory(path: Path) -> torch.Tensor:
    """Read one trajectory file as float64 (snapshots, P), failing clearly on anything else."""
    try:
        snapshots = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ReportInputError(f"{path} does not exist; {rebuild_hint(path)}") from e
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise ReportInputError(
            f"{path} is not a readable torch file ({e}); {rebuild_hint(path)}"
        ) from e
    if not (
        isinstance(snapshots, torch.Tensor)
        and snapshots.is_floating_point()
        and snapshots.ndim == 2
        and len(snapshots) > 0
    ):
        found = (
            f"a {snapshots.dtype} tensor of shape {tuple(snapshots.shape)}"
            if isinstance(snapshots, torch.Tensor)
            else f"a {type(snapshots).__name__}"
        )
        raise ReportInputError(
            f"{path} holds {found}, expected a float tensor (snapshots, "
            f"parameters) with at least one snapshot; {rebuild_hint(path)}"
        )
    return snapshots.double()


def path_stats(snapshots: torch.Tensor) -> tuple[float, float]:
    """(path length, displacement) of a (snapshots, P) trajectory in its own space."""
    steps = snapshots.diff(dim=0)  # (snapshots - 1, P)
    return steps.norm(dim=1).sum().item(), (snapshots[-1] - snapshots[0]).norm().item()


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


def fig1(trajectory_paths: Mapping[str, str | Path], every: int, out_prefix: Path) -> None:
    """Write Figure 1 (<out_prefix>.pdf/.png/.csv) and <out_prefix>_summary.csv.

    Args:
        trajectory_paths: {algo id: trajectory file}, e.g. {"metalstm": ..., "metalstm_pp": ...}.
        every: iterations between snapshots; snapshot i was taken after iteration (i+1)*every.
        out_prefix: e.g. Path("figures/fig1").

    Writes:
        <out_prefix>.csv: algo, iteration, pc1, pc2 (one row per snapshot);
        <out_prefix>_summary.csv: algo, snapshots, path_length, displacement, pc1_explained,
        pc2_explained (path_length and displacement in the original weight space; the
        explained fractions are of the pooled snapshots' variance, the same on every row).
    """
    if every < 1:
        raise ReportInputError(
            f"fig1: every must be >= 1 iteration, got {every}; pass the profile's trajectory_every"
        )
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
    widths = {algo: t.shape[1] for algo, t in trajectories.items()}
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{paths[a]} has {w}" for a, w in widths.items())
        raise ReportInputError(
            f"fig1: trajectories must have the same number of parameters "
            f"to share a projection, but {listed}; rebuild them under one "
            "model configuration"
        )

    coordinates, explained = project(trajectories)
    points, summary = [], []
    for algo, xy in coordinates.items():
        length, displacement = path_stats(trajectories[algo])
        points.append(
            pd.DataFrame(
                {
                    "algo": algo,
                    "iteration": every * torch.arange(1, len(xy) + 1).numpy(),
                    "pc1": xy[:, 0].numpy(),
                    "pc2": xy[:, 1].numpy(),
                }
            )
        )
        summary.append(
            {
                "algo": algo,
                "snapshots": len(xy),
                "path_length": length,
                "displacement": displacement,
                "pc1_explained": explained[0].item(),
                "pc2_explained": explained[1].item(),
            }
        )
    points, summary = pd.concat(points, ignore_index=True), pd.DataFrame(summary)

    with new_figure((6.4, 5.2)) as (figure, (ax,)):
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
            markers={a: ALGO_STYLE[a].marker for a in paths},
            dashes={a: ALGO_STYLE[a].dashes for a in paths},
            markersize=4,
            linewidth=1.4,
            legend=False,
            ax=ax,
        )
        for _, rows in points.groupby("algo", sort=False):
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
                label=f"{ALGO_NAMES[row.algo]}: path length {row.path_length:.3g}, "
                f"displacement {row.displacement:.3g}",
            )
            for row in summary.itertuples()
        ] + [
            Line2D([], [], linestyle="none", label="start", **START),
            Line2D([], [], linestyle="none", label="end", **END),
        ]
        figure.legend(
            handles=handles, loc="outside lower center", ncols=2, frameon=False, handlelength=4
        )  # long enough to show each dash pattern
        ax.set(
            xlabel=f"PC 1 of the initialization (weight units; {explained[0]:.0%} of variance)",
            ylabel=f"PC 2 (weight units; {explained[1]:.0%} of variance)",
            title=f"Learned initialization, a snapshot every {every} iterations",
        )
        save_figure(figure, points, out_prefix)
    write_text(
        sibling(out_prefix, "_summary.csv"), summary.to_csv(index=False, float_format=CSV_FLOAT)
    )
