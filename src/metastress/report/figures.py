"""Figures 2-4 of the paper, drawn from evaluation JSON files only.

Each function takes the files the workflow lists, keeps the rows its figure needs (said in
its docstring), refuses two files for one plotted point, and writes PDF, PNG and the CSV of
the plotted numbers (accuracies and intervals in percent) under one prefix. The files of one
model's training seeds are one point (`metastress.report.data.over_seeds`): the mean over
seeds with the task interval of the seed-averaged per-task accuracies, and, where there are
several seeds, their standard deviation drawn beside it (grey bars) and in the CSV's `seeds`
and `seed_std` columns.
"""

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from metastress.report.data import (
    ALGO_NAMES,
    HAND_OPTIMIZER_NAMES,
    MODEL_KEYS,
    ReportInputError,
    in_algo_order,
    in_setting,
    load_evals,
    over_seeds,
    own_results,
    require_rows,
    require_unique,
)
from metastress.report.significance import ALPHA, mark_best
from metastress.report.style import ALGO_STYLE, EDGE, by_name, new_figure, save_figure

# Figure 3's three bars per algorithm, left to right: (CSV name, legend label, fill, hatch).
FIG3_BARS = (
    ("train in-setting", "trained and tested on the train setting", "0.85", ""),
    ("transfer", "trained on the train setting, tested on the test setting", "0.35", "///"),
    ("test in-setting", "trained and tested on the test setting", "white", "..."),
)
TIED_LABEL = f"best, or not\nsignificantly different\n(Wilcoxon, Holm,\nα = {ALPHA})"
TIED_RING = {"marker": "o", "markersize": 13, "markerfacecolor": "none", "markeredgecolor": "k"}
# The s.d. over seeds: a thick bar beside the point or bar it belongs to (offset in points, so
# that it never hides the CI's thin bar); dark red on the grey bars, the algorithm's own colour
# on the lines.
SEED_SPREAD = {"ecolor": "#b2182b", "elinewidth": 3, "alpha": 0.8, "capsize": 0, "zorder": 2.5}
SEED_OFFSET = 4.0  # points between a CI bar and its s.d. bar, and between algorithms' s.d. bars
SEED_COLUMNS = ["seeds", "seed_std"]
# Figure 4b: a hand optimizer's rate and steps are chosen per seed; its bar is the optimizer.
SWAP_KEYS = [key for key in MODEL_KEYS if key != "steps"]


def fig2(eval_paths: Iterable[str | Path], out_prefix: Path) -> None:
    """Figure 2: 1-shot test accuracy against the number of ways, with 99.9% CI bands.

    Uses the 1-shot files tested on their training setting with the model's own method. At
    each n_way a black ring marks the best algorithm and those not significantly different
    from it (`metastress.report.significance`).
    CSV columns: algo, n_way, accuracy, ci999, seeds, seed_std, best, p_holm (against that
    n_way's best; empty for the best), tied_with_best (one row per algorithm and n_way).
    """
    paths = list(eval_paths)
    frame = in_setting(own_results(load_evals(paths)))
    frame = frame[frame["k_shot"] == 1]
    require_rows(frame, "fig2 (1-shot in-setting results)", paths)
    frame = over_seeds(frame, "fig2")
    require_unique(frame, ["algo", "n_way"], "fig2")
    frame = mark_best(in_algo_order(frame, "n_way"), "n_way", "fig2")
    with new_figure((7.0, 4.0)) as (figure, (ax,)):
        _lines_with_bands(ax, frame, "n_way", "ci999")
        tied = frame[frame["tied_with_best"]]
        ax.plot(tied["n_way"], tied["accuracy"], linestyle="none", zorder=3, **TIED_RING)
        ring = Line2D([], [], linestyle="none", **TIED_RING)
        _extend_legend(ax, [(ring, TIED_LABEL), *_seed_spread(ax, frame, "n_way")])
        ax.set_xticks(sorted(frame["n_way"].unique()))
        ax.set(
            xlabel="ways (N)",
            ylabel="test accuracy (%)",
            title="1-shot accuracy as tasks grow (bands: 99.9% CI)",
        )
        columns = ["algo", "n_way", "accuracy", "ci999", *SEED_COLUMNS, "best", "p_holm"]
        save_figure(figure, frame[[*columns, "tied_with_best"]], out_prefix)


def fig3(eval_paths: Iterable[str | Path], out_prefix: Path) -> None:
    """Figure 3: transfer across complexity, one panel per (train, test) transfer pair.

    A transfer result is a file whose train_setting differs from its test_setting. Its panel
    shows, per algorithm, three bars: the model's in-setting result on its train setting, the
    transfer result, and the in-setting result on the test setting (each model's own method;
    every algorithm with a transfer result needs both). The paper discusses the first
    difference, the transfer result against the model's own result on the setting it was
    trained on: a drop from 40w5s to 40w1s (A), an increase from 40w1s to 40w5s (B); each
    panel's title says which. Panels are ordered by test setting (n_way, k_shot), then train
    setting. Error bars are 95% CIs, cut at 0% and 100%.
    CSV columns: panel, algo, bar (train in-setting | transfer | test in-setting),
    train_setting, test_setting, accuracy, ci95, ci95_low, ci95_high (the drawn bar's ends),
    seeds, seed_std.
    """
    paths = list(eval_paths)
    frame = own_results(load_evals(paths))
    frame = over_seeds(frame, "fig3")
    transfer = frame[frame["train_setting"] != frame["test_setting"]]
    require_rows(transfer, "fig3 (results with train_setting != test_setting)", paths)
    home = in_setting(frame)
    pairs = transfer.sort_values(["n_way", "k_shot", "train_setting"], kind="stable")
    pairs = pairs.drop_duplicates(["train_setting", "test_setting"])
    panels = []
    for i, pair in enumerate(pairs.itertuples()):
        away = transfer[
            (transfer["train_setting"] == pair.train_setting)
            & (transfer["test_setting"] == pair.test_setting)
        ]
        bars = {
            "train in-setting": home[home["test_setting"] == pair.train_setting],
            "transfer": away,
            "test in-setting": home[home["test_setting"] == pair.test_setting],
        }
        bars = {bar: rows[rows["algo"].isin(away["algo"])] for bar, rows in bars.items()}
        _require_every_bar(bars, pair.train_setting, pair.test_setting)
        panels += [rows.assign(bar=bar, panel=chr(ord("A") + i)) for bar, rows in bars.items()]
    data = pd.concat(panels)
    require_unique(data, ["panel", "algo", "bar"], "fig3")
    low, high = clipped_interval(data["accuracy"], data["ci95"])
    data = data.assign(ci95_low=low, ci95_high=high)
    bar_rank = data["bar"].map([name for name, *_ in FIG3_BARS].index).rename("bar_rank")
    data = in_algo_order(data.assign(bar_rank=bar_rank), "bar_rank").sort_values(
        "panel", kind="stable"
    )

    with new_figure((5.0 * len(pairs), 4.6), ncols=len(pairs), sharey=True) as (figure, axes):
        for ax, (letter, panel) in zip(axes, data.groupby("panel"), strict=True):
            _three_bars(ax, panel)
            train = panel.loc[panel["bar"] == "train in-setting"].iloc[0]
            test = panel.loc[panel["bar"] == "test in-setting"].iloc[0]
            ax.set_title(
                f"({letter}) trained on {train['test_setting']}, tested on "
                f"{test['test_setting']}\npaper: {paper_comparison(train, test)}",
                fontsize="medium",
            )
            ax.set(xlabel="")
        top = min(axes[0].get_ylim()[1], 101)  # near-chance runs stay readable; 101: a cap at 100
        axes[0].set(ylabel="test accuracy (%)", ylim=(0, top))  # the panels share y
        handles = [
            Patch(facecolor=fill, hatch=hatch, edgecolor=EDGE, label=label)
            for _, label, fill, hatch in FIG3_BARS
        ] + [Line2D([], [], color="k", marker="|", markersize=12, linestyle="none", label="95% CI")]
        if (data["seeds"] > 1).any():
            handles.append(_seed_handle(data))
        figure.legend(handles=handles, loc="outside upper center", ncols=2, frameon=False)
        columns = ["panel", "algo", "bar", "train_setting", "test_setting", "accuracy", "ci95"]
        save_figure(figure, data[[*columns, "ci95_low", "ci95_high", *SEED_COLUMNS]], out_prefix)


def clipped_interval(accuracy: pd.Series, ci: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Ends of accuracy ± ci (percent) cut at 0 and 100: an accuracy cannot leave [0, 100]."""
    return (accuracy - ci).clip(lower=0), (accuracy + ci).clip(upper=100)


def _require_every_bar(bars: dict[str, pd.DataFrame], train: str, test: str) -> None:
    """Every algorithm transferred train -> test also needs its two in-setting results."""
    algos = set(bars["transfer"]["algo"])
    for bar, rows in bars.items():
        missing = sorted(algos - set(rows["algo"]))
        if missing:
            setting = train if bar == "train in-setting" else test
            raise ReportInputError(
                f"fig3: panel {train} -> {test} lacks the {bar} result of "
                f"{', '.join(missing)}; pass results/eval/<algo>/{setting}/{setting}.json "
                "for each of them too"
            )


def paper_comparison(train: pd.Series, test: pd.Series) -> str:
    """The difference the paper discusses in a Figure 3 panel, for its title.

    It compares the transfer result with the model's own result on the setting it was
    trained on (the left pair of bars), expecting a drop on harder test tasks (more ways or
    fewer shots) and an increase on easier ones. `train` and `test` are in-setting rows of
    the two settings.
    """
    harder = test["n_way"] >= train["n_way"] and test["k_shot"] <= train["k_shot"]
    easier = test["n_way"] <= train["n_way"] and test["k_shot"] >= train["k_shot"]
    change = "drop" if harder else "increase" if easier else "change"
    return f"the {change} from its own {train['test_setting']} result (left pair)"


def fig4a(eval_paths: Iterable[str | Path], out_prefix: Path) -> None:
    """Figure 4(a): test accuracy against adaptation steps (log2 axis), with 95% CI bands.

    Uses the files of each model's own method; they must share one (train, test) setting
    pair, e.g. trained 40w1s, tested 40w5s.
    CSV columns: algo, steps, accuracy, ci95, seeds, seed_std (one row per algorithm and step
    count).
    """
    paths = list(eval_paths)
    frame = own_results(load_evals(paths))
    require_rows(frame, "fig4a (results of each model's own method)", paths)
    pairs = sorted(set(zip(frame["train_setting"], frame["test_setting"], strict=True)))
    if len(pairs) > 1:
        listed = ", ".join(f"{train}->{test}" for train, test in pairs)
        raise ReportInputError(
            f"fig4a: the files mix train->test settings {listed}; pass "
            "the step-ablation files of one setting pair"
        )
    frame = over_seeds(frame, "fig4a")
    require_unique(frame, ["algo", "steps"], "fig4a")
    if (frame["steps"] < 1).any():
        bad = ", ".join(frame.loc[frame["steps"] < 1, "path"])
        raise ReportInputError(f"fig4a: steps must be >= 1 for the log2 axis; {bad} has fewer")
    frame = in_algo_order(frame, "steps")
    with new_figure((7.0, 4.0)) as (figure, (ax,)):
        _lines_with_bands(ax, frame, "steps", "ci95")
        _extend_legend(ax, _seed_spread(ax, frame, "steps"))
        steps = sorted(frame["steps"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, labels=[str(s) for s in steps])
        ax.minorticks_off()
        train, test = pairs[0]
        ax.set(
            xlabel="adaptation steps",
            ylabel="test accuracy (%)",
            title=f"Trained on {train}, tested on {test} (bands: 95% CI)",
        )
        save_figure(figure, frame[["algo", "steps", "accuracy", "ci95", *SEED_COLUMNS]], out_prefix)


def fig4b(eval_paths: Iterable[str | Path], out_prefix: Path) -> None:
    """Figure 4(b): initialization / inner-optimizer swap, one horizontal bar per file.

    The paper draws a radial plot (radius = test accuracy); horizontal bars with 95% CI
    error bars and printed values show the same numbers and are easier to compare.
    Labels: the model's own result is its name ("MetaLSTM"); optimizer "adam" on algo
    metalstm, with the rate and steps chosen on the validation tasks, is "MetaLSTM init +
    Adam (lr 0.01, 20 steps)" (several seeds that chose differently: "lr 0.01/0.1");
    init_from "maml" on algo metalstm is "MAML init + MetaLSTM optimizer". Bars are grouped,
    coloured and hatched by the initialization's owner. All files must share one test setting.
    CSV columns: algo, init_from, optimizer, optimizer_lr, steps, label, accuracy, ci95, seeds,
    seed_std (empty = the model's own).
    """
    paths = list(eval_paths)
    frame = load_evals(paths)
    settings = sorted(frame["test_setting"].unique())
    if len(settings) > 1:
        raise ReportInputError(
            f"fig4b: the files mix test settings {', '.join(settings)}; "
            "pass the swap files of one setting"
        )
    frame = over_seeds(frame, "fig4b", SWAP_KEYS)
    frame = frame.assign(
        init_owner=frame["init_from"].fillna(frame["algo"]),
        label=frame.apply(_swap_label, axis=1),
        own=frame["init_from"].isna() & frame["optimizer"].isna(),
    )
    require_unique(frame, ["label"], "fig4b")
    rank = frame["init_owner"].map(list(ALGO_NAMES).index)
    frame = frame.assign(rank=rank).sort_values(
        ["rank", "own", "label"], ascending=[True, False, True]
    )
    frame = frame.reset_index(drop=True)
    with new_figure((8.5, 1.2 + 0.45 * len(frame))) as (figure, (ax,)):
        for y, row in frame.iterrows():
            style = ALGO_STYLE[row["init_owner"]]
            ax.barh(y, row["accuracy"], color=style.colour, hatch=style.hatch, edgecolor=EDGE)
            spread = f" (s.d. {row['seed_std']:.2f})" if row["seeds"] > 1 else ""
            ax.text(
                row["accuracy"] + row["ci95"] + 1.5,
                y,
                f"{row['accuracy']:.2f} ± {row['ci95']:.2f}{spread}",
                va="center",
                fontsize="small",
            )
        ax.errorbar(
            frame["accuracy"], frame.index, xerr=frame["ci95"], fmt="none", ecolor="k", capsize=3
        )
        spread = frame[frame["seeds"] > 1]
        ax.errorbar(
            spread["accuracy"],
            spread.index,
            xerr=spread["seed_std"],
            fmt="none",
            transform=_shifted(ax, dy=-SEED_OFFSET),  # just below the CI's bar
            **SEED_SPREAD,
        )
        ax.set_yticks(frame.index, labels=frame["label"])
        ax.invert_yaxis()  # first label on top
        ax.set_xlim(0, 130 if (frame["seeds"] > 1).any() else 118)  # room for the values
        ax.set_xticks(range(0, 101, 20))  # accuracies stop at 100%
        ax.grid(axis="y", visible=False)
        ax.set(
            xlabel="test accuracy (%)",
            ylabel="initialization + inner optimizer",
            title=f"Initialization swap on {settings[0]} (error bars: 95% CI)",
        )
        columns = ["algo", "init_from", "optimizer", "optimizer_lr", "steps", "label"]
        save_figure(figure, frame[[*columns, "accuracy", "ci95", *SEED_COLUMNS]], out_prefix)


def _swap_label(row: pd.Series) -> str:
    if pd.isna(row["init_from"]) and pd.isna(row["optimizer"]):
        return ALGO_NAMES[row["algo"]]
    init = ALGO_NAMES[row["init_from"] if pd.notna(row["init_from"]) else row["algo"]]
    if pd.notna(row["optimizer"]):
        lr, steps = _each(row["optimizer_lr"], "{:g}"), _each(row["steps"], "{}")
        return f"{init} init + {HAND_OPTIMIZER_NAMES[row['optimizer']]} (lr {lr}, {steps} steps)"
    return f"{init} init + {ALGO_NAMES[row['algo']]} optimizer"


def _each(value, form: str) -> str:
    """A value, or the values the seeds chose (a tuple), joined by "/"."""
    values = value if isinstance(value, tuple) else (value,)
    return "/".join(form.format(v) for v in values)


def _seed_spread(ax: Axes, frame: pd.DataFrame, x: str) -> list[tuple[Line2D, str]]:
    """Bars of ± the standard deviation over seeds at each point that has several seeds, in
    the algorithm's colour, side by side (a few points apart) so that each algorithm's shows;
    the legend entry for them (none without such points)."""
    spread = frame[frame["seeds"] > 1]
    if spread.empty:
        return []
    algos = list(dict.fromkeys(spread["algo"]))
    for i, (algo, rows) in enumerate(spread.groupby("algo", sort=False)):
        ax.errorbar(
            rows[x],
            rows["accuracy"],
            yerr=rows["seed_std"],
            fmt="none",
            transform=_shifted(ax, dx=SEED_OFFSET * (i - (len(algos) - 1) / 2)),
            **{**SEED_SPREAD, "ecolor": ALGO_STYLE[algo].colour},
        )
    handle = _seed_handle(spread, colour="0.4")
    return [(handle, handle.get_label())]


def _seed_handle(frame: pd.DataFrame, colour: str = SEED_SPREAD["ecolor"]) -> Line2D:
    seeds = "/".join(map(str, sorted(frame.loc[frame["seeds"] > 1, "seeds"].unique())))
    return Line2D(
        [],
        [],
        color=colour,
        linewidth=SEED_SPREAD["elinewidth"],
        alpha=SEED_SPREAD["alpha"],
        label=f"± s.d. over {seeds} seeds",
    )


def _shifted(ax: Axes, dx: float = 0.0, dy: float = 0.0):
    """Data coordinates moved by (dx, dy) points, whatever the axes' scales."""
    return offset_copy(ax.transData, fig=ax.figure, x=dx, y=dy, units="points")


def _extend_legend(ax: Axes, extra: list[tuple[Line2D, str]]) -> None:
    """Seaborn's legend (one entry per algorithm) with `extra` (handle, label) entries."""
    legend = ax.get_legend()
    ax.legend(
        handles=[*legend.legend_handles, *(handle for handle, _ in extra)],
        labels=[*(t.get_text() for t in legend.get_texts()), *(label for _, label in extra)],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        frameon=False,
        handlelength=4,  # long enough to show each dash pattern
    )


def _lines_with_bands(ax: Axes, frame: pd.DataFrame, x: str, ci: str) -> None:
    """One line per algorithm (colour, marker and dashes its own) and a band of ± `ci`.

    The band is a light fill with thin edges in the line's dash pattern, so it still reads
    where colours turn to similar greys.
    """
    algos = list(dict.fromkeys(frame["algo"]))
    names = [ALGO_NAMES[a] for a in algos]
    for algo, rows in frame.groupby("algo", sort=False):
        style = ALGO_STYLE[algo]
        low, high = clipped_interval(rows["accuracy"], rows[ci])
        ax.fill_between(rows[x], low, high, color=style.colour, alpha=0.12, linewidth=0)
        for edge in (low, high):
            ax.plot(
                rows[x],
                edge,
                color=style.colour,
                linestyle=style.linestyle,
                linewidth=0.6,
                alpha=0.7,
            )
    sns.lineplot(
        data=frame,
        x=x,
        y="accuracy",
        hue="name",
        style="name",
        hue_order=names,
        style_order=names,
        palette=by_name("colour", algos),
        markers=by_name("marker", algos),
        dashes=by_name("dashes", algos),
        markersize=7,
        linewidth=1.6,
        ax=ax,
    )
    sns.move_legend(
        ax, "upper left", bbox_to_anchor=(1.01, 1), title="", frameon=False, handlelength=4
    )  # long enough to show each dash pattern


def _three_bars(ax: Axes, panel: pd.DataFrame) -> None:
    """Figure 3's bars per algorithm, in FIG3_BARS order, with clipped 95% CI error bars (and
    the seeds' standard deviation where there are several)."""
    algos = list(dict.fromkeys(panel["algo"]))
    width = 0.27
    for offset, (bar, _, fill, hatch) in zip((-width, 0, width), FIG3_BARS, strict=True):
        rows = panel[panel["bar"] == bar]
        x = [algos.index(a) + offset for a in rows["algo"]]
        ax.bar(x, rows["accuracy"], width, color=fill, hatch=hatch, edgecolor=EDGE)
        below = rows["accuracy"] - rows["ci95_low"]
        above = rows["ci95_high"] - rows["accuracy"]
        ax.errorbar(x, rows["accuracy"], yerr=[below, above], fmt="none", ecolor="k", capsize=3)
        several = (rows["seeds"] > 1).to_numpy()
        if several.any():
            ax.errorbar(
                [position for position, many in zip(x, several, strict=True) if many],
                rows.loc[several, "accuracy"],
                yerr=rows.loc[several, "seed_std"],
                fmt="none",
                transform=_shifted(ax, dx=SEED_OFFSET),  # just right of the CI's bar
                **SEED_SPREAD,
            )
    ax.set_xticks(
        range(len(algos)),
        labels=[ALGO_NAMES[a] for a in algos],
        rotation=30,
        ha="right",
        rotation_mode="anchor",
    )
    ax.grid(axis="x", visible=False)
