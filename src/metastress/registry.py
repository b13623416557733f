"""The one list of algorithms and report outputs; everything else derives from it.

params.yaml's schema (its algorithm sections and algorithm enums, `metastress.config`), the
report's names and styles, and the command line's choices come from here; the workflow's
lists are tested against it. Torch-free, so that Snakemake can read it: learner classes are
named by import path and loaded on first use.

Adding an algorithm: its module under `metastress/algorithms/`, an entry below, and its
section in params.yaml (it joins the experiments when it is added to `experiments.algorithms`).
"""

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from metastress.hyperparameters import (
    BASE_LEARNER_KEYS,
    HandConfig,
    MAMLConfig,
    MetaLSTMConfig,
    MetaSGDConfig,
    TAMLConfig,
    from_dict,
)


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm.

    Args:
        id (str): the `algo` string of params.yaml, wildcards, file names and the CLI.
        name (str): display name in tables and figures.
        summary (str): one line for params.yaml's schema (what it is, the reference).
        learner (str): "module:Class" of its MetaLearner, imported on first use.
        config (type): its hyperparameter dataclass (metastress.hyperparameters).
        meta_trained (bool, default=True): False for hand-designed optimizers, which only
            adapt another model's initialization (Figure 4b) and have no params.yaml section.
        in_paper (bool, default=True): one of the paper's algorithms (the default
            `experiments.algorithms`).
        preset (Mapping, default={}): config values its id fixes (not keys of its own).
    """

    id: str
    name: str
    summary: str
    learner: str
    config: type
    meta_trained: bool = True
    in_paper: bool = True
    preset: Mapping = field(default_factory=lambda: MappingProxyType({}))


ALGORITHMS: tuple[Algorithm, ...] = (  # the paper's order first
    Algorithm(
        "maml",
        "MAML",
        "MAML (Finn et al. 2017).",
        "metastress.algorithms.maml:MAML",
        MAMLConfig,
    ),
    Algorithm(
        "metasgd",
        "MetaSGD",
        "MetaSGD (Li et al. 2017); inner_lr initialises the learned per-parameter rates.",
        "metastress.algorithms.metasgd:MetaSGD",
        MetaSGDConfig,
    ),
    Algorithm(
        "taml",
        "TAML (Theil)",
        "TAML (Jamal & Qi 2019) with an inequality measure of the tasks' losses.",
        "metastress.algorithms.taml:TAML",
        TAMLConfig,
    ),
    Algorithm(
        "metalstm",
        "MetaLSTM",
        "MetaLSTM (Ravi & Larochelle 2017), one meta-update per task.",
        "metastress.algorithms.metalstm:MetaLSTM",
        MetaLSTMConfig,
    ),
    Algorithm(
        "metalstm_pp",
        "MetaLSTM++",
        "MetaLSTM++, one meta-update on the mean query loss of a meta-batch.",
        "metastress.algorithms.metalstm:MetaLSTMPlusPlus",
        MetaLSTMConfig,
    ),
    Algorithm(
        "anil",
        "ANIL",
        "ANIL (Raghu et al. 2020): MAML whose inner loop adapts only the head.",
        "metastress.algorithms.anil:ANIL",
        MAMLConfig,
        in_paper=False,
    ),
    Algorithm(
        "adam",
        "Adam",
        "Plain Adam adapting another model's initialization (Figure 4b).",
        "metastress.algorithms.hand:HandOptimizer",
        HandConfig,
        meta_trained=False,
        preset=MappingProxyType({"optimizer": "adam"}),
    ),
    Algorithm(
        "sgd",
        "SGD",
        "Plain SGD adapting another model's initialization.",
        "metastress.algorithms.hand:HandOptimizer",
        HandConfig,
        meta_trained=False,
        preset=MappingProxyType({"optimizer": "sgd"}),
    ),
)


@dataclass(frozen=True)
class Report:
    """One report output: `metastress report <id>`, written to <folder>/<id>.*

    Args:
        id (str): e.g. "table1", "fig2".
        kind (str): "table" (tables/) or "figure" (figures/).
        reads (str): "evaluations" (evaluation JSON files) or "trajectories" (trajectory.pt).
    """

    id: str
    kind: str
    reads: str = "evaluations"


REPORTS: tuple[Report, ...] = (
    Report("table1", "table"),
    Report("fig1", "figure", reads="trajectories"),
    Report("fig2", "figure"),
    Report("fig3", "figure"),
    Report("fig4a", "figure"),
    Report("fig4b", "figure"),
)


def algorithm(algo: str) -> Algorithm:
    """The registered algorithm `algo`; an unknown id is an error naming the known ones."""
    for entry in ALGORITHMS:
        if entry.id == algo:
            return entry
    known = [entry.id for entry in ALGORITHMS]
    raise ValueError(f"unknown algo {algo!r}; known algorithms: {known}")


def meta_trained() -> list[str]:
    """Ids of the algorithms that are meta-trained (each has a params.yaml section)."""
    return [entry.id for entry in ALGORITHMS if entry.meta_trained]


def in_paper() -> list[str]:
    """Ids of the paper's algorithms, in the paper's order."""
    return [entry.id for entry in ALGORITHMS if entry.in_paper and entry.meta_trained]


def hand_optimizers() -> list[str]:
    """Ids of the hand-designed inner optimizers (not meta-trained)."""
    return [entry.id for entry in ALGORITHMS if not entry.meta_trained]


def names(ids: list[str]) -> dict[str, str]:
    """{id: display name} of the given algorithm ids, in their order."""
    return {algo: algorithm(algo).name for algo in ids}


def config_keys(algo: str) -> set[str]:
    """The config keys `algorithms.build(algo, ...)` accepts."""
    entry = algorithm(algo)
    return {f.name for f in dataclasses.fields(entry.config)} - set(entry.preset)


def section_keys(algo: str) -> list[str]:
    """The config keys of `algo` that its params.yaml section sets, in declaration order."""
    entry = algorithm(algo)
    excluded = set(entry.preset) | set(BASE_LEARNER_KEYS)
    return [f.name for f in dataclasses.fields(entry.config) if f.name not in excluded]


def make_config(algo: str, values: dict) -> object:
    """The algorithm's config dataclass from a dict of (a subset of) its keys.

    Raises:
        ValueError: unknown algo, unknown key, wrong type or invalid value, naming the culprit.
    """
    entry = algorithm(algo)
    for key in values:
        if key in entry.preset:
            raise ValueError(f"{algo}: config key {key!r} is fixed by the algo id itself")
    return from_dict(entry.config, {**values, **entry.preset}, owner=algo)


def learner_class(algo: str) -> type:
    """The MetaLearner class of `algo` (imports its module, and with it torch)."""
    module, _, name = algorithm(algo).learner.partition(":")
    return getattr(importlib.import_module(module), name)


def report_ids() -> list[str]:
    return [report.id for report in REPORTS]


def figure_ids() -> list[str]:
    return [report.id for report in REPORTS if report.kind == "figure"]
