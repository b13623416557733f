"""Meta-training: Adam on the meta-parameters, validation on fixed tasks, early stopping,
checkpoint/resume, and per-iteration metrics that `dvc plots` reads.

Meta-iterations run eagerly (`Engine.meta_step`: a fresh episode each, metrics and divergence
checks at once) or, with `graphs` "auto" on CUDA, as static iterations (engine/graphs.py:
episodes sampled into fixed tensors, each iteration one replayed CUDA graph, metrics and
divergence read from the device once per validation or checkpoint).

Outputs in `out_dir`: `model.pt` (the best on validation), `metrics.tsv` (one row per
iteration; validation columns on validation rows), `summary.json` and, when asked for,
`trajectory.pt` (the learned initialization before the first and after every meta-update:
Figure 1, `metastress.snapshots`; such a run calls back after every optimizer step, so it runs
eagerly). Work files (`last.pt`, the resume point, and `best.pt`) live in a separate work
folder, which a workflow manager must not delete when it reruns an interrupted job. A run
killed at any point and started again with the same config ends with the same weights as an
uninterrupted one: the sampler's generator state, the optimizer, the metrics and the
trajectory so far are all in `last.pt`, written atomically.
"""

import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from metastress import checkpoint, snapshots
from metastress.algorithms import MetaLearner, build
from metastress.atomic import atomic_path, write_json, write_text
from metastress.data.tasks import TaskSampler
from metastress.dataset import load_part
from metastress.engine import DivergenceError, Engine, resolve_device, resolve_engine
from metastress.engine.graphs import MetaIteration, Period, use_graphs
from metastress.engine.optim import Adam

METRIC_COLUMNS = ("iteration", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; its hash guards resumption.

    Args:
        algo (str): a meta-trained algorithm id of metastress.registry.
        n_way, k_shot, n_query (int): the training setting.
        algorithm (dict): config keys of the algorithm (see registry.config_keys).
        meta_lr (float): Adam learning rate of the meta-parameters.
        meta_batch (int): tasks per meta-iteration.
        iterations (int): maximum meta-iterations.
        patience (int): stop when validation accuracy has not improved for this many
            iterations (0 disables early stopping).
        validate_every (int): iterations between validations (and checkpoints).
        validation_tasks (int): fixed meta-validation tasks per validation.
        seed (int): weight initialization and episode sampling.
        rotate (bool): class augmentation by rotation.
        device (str): "auto", "cpu" or "cuda".
        task_mode (str): how a meta-batch's tasks run: "auto" or one of the engines
            (engine.TASK_MODES); rounding differs between them, so it is hashed.
        precision (str): "fp32", "tf32" or "bf16" (engine.PRECISIONS).
        graphs (str): "auto" (captured meta-iterations on CUDA, eager elsewhere) or "off"
            (engine.graphs.GRAPH_MODES); a graph replays the eager path's operations, so
            like `device` it is not hashed.
        trajectory (bool): record the learned initialization before the first and after
            every meta-update into trajectory.pt (Figure 1); such a run is eager.
        checkpoint_every (int): also checkpoint every this many iterations between
            validations (0: at validations only), so long search trials resume mid-way.
        extendable (bool): leave `iterations` out of the hash, so that a run to a larger
            budget resumes this one's checkpoint and extends it (successive halving's rungs);
            validation does not change the training, so the weights are those of a run
            straight to that budget.
    """

    algo: str
    n_way: int
    k_shot: int
    n_query: int
    meta_lr: float
    meta_batch: int
    iterations: int
    patience: int
    validate_every: int
    validation_tasks: int
    seed: int = 0
    rotate: bool = True
    device: str = "auto"
    task_mode: str = "auto"
    precision: str = "fp32"
    graphs: str = "auto"
    trajectory: bool = False
    checkpoint_every: int = 0
    extendable: bool = False
    algorithm: dict = field(default_factory=dict)

    def hashed(self) -> dict:
        """The config minus keys that do not change the result (device, graphs, checkpoint
        spacing) and, for an extendable run, the budget."""
        config = asdict(self)
        config.pop("device")
        config.pop("graphs")
        config.pop("checkpoint_every")
        if config.pop("extendable"):
            config.pop("iterations")
        return config


def train_config(run: dict) -> TrainConfig:
    """A TrainConfig from a run dict; unknown or missing keys name themselves."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(run) - fields)
    if unknown:
        raise ValueError(f"run config: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    try:
        return TrainConfig(**run)
    except TypeError as e:
        raise ValueError(f"run config: {e}") from e


def work_dir_for(config: TrainConfig, root: Path) -> Path:
    """root/<config hash>: a changed config gets a fresh folder, a rerun finds its own."""
    return Path(root) / checkpoint.config_hash(config.hashed())


def train(
    config: TrainConfig,
    processed_path: Path,
    split_path: Path,
    out_dir: Path,
    work_dir: Path | None = None,
) -> dict:
    """Meta-train (or resume from work_dir) and return the summary written to out_dir.

    `work_dir` (default out_dir/checkpoints) holds last.pt and best.pt; keep it when rerunning
    an interrupted run so that it resumes.
    """
    out_dir = Path(out_dir)
    work_dir = Path(work_dir) if work_dir is not None else out_dir / "checkpoints"
    device = resolve_device(config.device)
    engine = resolve_engine(config.task_mode, config.precision, device)
    sampler = TaskSampler(
        load_part(processed_path, split_path, "train", device),
        config.n_way,
        config.k_shot,
        config.n_query,
        config.rotate,
    )
    validation = TaskSampler(
        load_part(processed_path, split_path, "validation", device),
        config.n_way,
        config.k_shot,
        config.n_query,
        config.rotate,
    )
    validation_tasks = validation.fixed_tasks(
        config.validation_tasks, config.seed, batch=config.meta_batch
    )

    learner = build(config.algo, config.n_way, config.algorithm, config.seed).to(device)
    optimizer = Adam(learner.parameters(), lr=config.meta_lr)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    state = {
        "iteration": 0,
        "best_accuracy": -math.inf,
        "best_iteration": 0,
        "rows": [],
        "trajectory": snapshots.start(learner) if config.trajectory else None,
    }
    hashed = config.hashed()
    last, best = work_dir / "last.pt", work_dir / "best.pt"
    afresh = f"delete {work_dir} to train afresh"
    if last.exists():
        saved = checkpoint.load(last, regenerate=afresh)
        checkpoint.check_same_config(last, saved, hashed)
        _check_same_device(last, saved.get("device", device.type), device, afresh)
        learner.load_state_dict(saved["learner"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"].to(generator.get_state().device))
        state = saved["state"]
        _check_best(best, hashed, state, afresh)

    def save(path: Path, trajectory: bool = True) -> None:
        checkpoint.save(
            path,
            {
                "config": hashed,
                "config_hash": checkpoint.config_hash(hashed),
                "learner": learner.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "device": device.type,
                "state": state if trajectory else {**state, "trajectory": None},
            },
        )

    def after_update() -> None:
        snapshots.record(state["trajectory"], learner, state["iteration"] + 1)

    iterations = _Iterations(
        config,
        engine,
        learner,
        optimizer,
        sampler,
        generator,
        after_update if config.trajectory else None,
    )
    bar = tqdm(
        total=config.iterations,
        initial=state["iteration"],
        disable=None,
        desc=f"{config.algo} {config.n_way}w{config.k_shot}s",
        file=sys.stderr,
    )
    while state["iteration"] < config.iterations and not _patience_exhausted(config, state):
        learner.train()
        try:
            metrics = iterations.step()
        except DivergenceError as e:
            raise DivergenceError(
                f"{config.algo} diverged at iteration {state['iteration'] + 1}: {e}. "
                f"Config: {hashed}. The last good checkpoint is {last}; lower meta_lr or "
                f"inner_lr and delete {work_dir} to restart"
            ) from e
        state["iteration"] += 1
        validating = (
            state["iteration"] % config.validate_every == 0
            or state["iteration"] == config.iterations
        )
        if validating or (
            config.checkpoint_every and state["iteration"] % config.checkpoint_every == 0
        ):
            period = iterations.read()
            first = state["iteration"] - len(period.rows) + 1
            if period.divergence is not None:
                _raise_deferred(config, period, first, state["iteration"], last, work_dir)
            state["rows"].extend(
                {"iteration": first + i, **row} for i, row in enumerate(period.rows)
            )
            _check_finite(learner, config, state, afresh)
            if validating:
                learner.eval()
                scores = engine.evaluate(learner, validation_tasks)
                state["rows"][-1].update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
                if scores["accuracy"] > state["best_accuracy"]:
                    state["best_accuracy"], state["best_iteration"] = (
                        scores["accuracy"],
                        state["iteration"],
                    )
                    save(best, trajectory=False)  # model.pt needs no copy of the trajectory
            save(last)
            _write_metrics(out_dir / "metrics.tsv", state["rows"])
            metrics = metrics or state["rows"][-1]
        bar.update(1)
        if metrics is not None:
            bar.set_postfix(
                loss=f"{metrics['loss']:.3f}",
                acc=f"{metrics['accuracy']:.3f}",
                best_val=f"{state['best_accuracy']:.3f}",
            )
    bar.close()
    return _finish(config, state, best, out_dir, afresh)


class _Iterations:
    """The run's meta-iterations, eager or static (module docstring), and the metrics rows
    (with "seconds") they leave until `read`: per iteration when eager, the period's mean
    time per iteration when static. A run with `after_update` (Figure 1's recording) is eager:
    a replayed graph cannot call back to the host."""

    def __init__(
        self,
        config: TrainConfig,
        engine: Engine,
        learner: MetaLearner,
        optimizer: Adam,
        sampler: TaskSampler,
        generator: torch.Generator,
        after_update: Callable[[], None] | None = None,
    ):
        self.engine, self.learner, self.optimizer = engine, learner, optimizer
        self.after_update = after_update
        self.sampler, self.generator, self.batch = sampler, generator, config.meta_batch
        self.rows: list[dict] = []
        self.static, self.started = None, 0.0
        if after_update is None and use_graphs(config.graphs, engine.device):
            self.buffers = sampler.episode_buffers(config.meta_batch)
            between_reads = min(config.validate_every, config.checkpoint_every or math.inf)
            capture = engine.device.type == "cuda"
            self.static = MetaIteration(
                engine, learner, optimizer, self.buffers, int(between_reads), capture
            )

    def step(self) -> dict[str, float] | None:
        """One meta-iteration; its metrics if eager (whose divergence raises at once)."""
        start = time.perf_counter()
        if self.static is None:
            episode = self.sampler.sample(self.batch, self.generator)
            metrics = self.engine.meta_step(
                self.learner, self.optimizer, episode, self.after_update
            )
            self.rows.append({**metrics, "seconds": time.perf_counter() - start})
            return metrics
        if not self.static.pending:
            self.started = start
        self.sampler.sample_into(self.buffers, self.generator)
        self.static()
        return None

    def read(self) -> Period:
        """The rows since the last read, and a static run's first divergence (a host sync)."""
        if self.static is None:
            rows, self.rows = self.rows, []
            return Period(rows, None)
        period = self.static.read()
        seconds = (time.perf_counter() - self.started) / max(1, len(period.rows))
        return Period([{**row, "seconds": seconds} for row in period.rows], period.divergence)


def _raise_deferred(
    config: TrainConfig, period: Period, first: int, now: int, last: Path, work_dir: Path
) -> None:
    """A divergence that a static run recorded on the device and read after iteration `now`."""
    diverged = first + period.divergence.index
    raise DivergenceError(
        f"{config.algo} diverged at iteration {diverged}: {period.divergence.message}. "
        f"Iterations {first}-{now} ran on the device before their record was read "
        f"(protocol.graphs), so the weights after iteration {diverged - 1} are spoiled. "
        f"Config: {config.hashed()}. The last good checkpoint is {last}; lower meta_lr or "
        f"inner_lr and delete {work_dir} to restart"
    )


def _patience_exhausted(config: TrainConfig, state: dict) -> bool:
    return bool(config.patience) and state["iteration"] - state["best_iteration"] >= config.patience


def _check_finite(learner: MetaLearner, config: TrainConfig, state: dict, afresh: str) -> None:
    """Refuse to validate or checkpoint non-finite meta-parameters (a finite loss and gradient
    can still overflow them, e.g. with an absurd meta_lr)."""
    bad = [name for name, p in learner.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise DivergenceError(
            f"{config.algo} diverged at iteration {state['iteration']}: meta-parameters {bad} "
            f"are not finite. Config: {config.hashed()}. Lower meta_lr and {afresh}"
        )


def _write_metrics(path: Path, rows: list[dict]) -> None:
    lines = ["\t".join(METRIC_COLUMNS)]
    for row in rows:
        lines.append("\t".join(_cell(row.get(column)) for column in METRIC_COLUMNS))
    write_text(path, "\n".join(lines) + "\n")


def _cell(value) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _check_same_device(last: Path, saved: str, device: torch.device, afresh: str) -> None:
    """The episode sampler's state belongs to the device it ran on (CPU and CUDA generators
    differ), so a run resumes only where it started."""
    if saved != device.type:
        raise RuntimeError(
            f"{last} was written by a run on {saved} and this run is on {device.type}: resume "
            f"it on {saved} (protocol.device: {saved}), or {afresh}"
        )


def _check_best(best: Path, hashed: dict, state: dict, afresh: str) -> None:
    """Raise unless best.pt is intact, of this config, and the iteration last.pt names (or,
    after a kill between saving best.pt and last.pt, a later one that resuming redoes)."""
    saved = checkpoint.load(best, regenerate=afresh)
    checkpoint.check_same_config(best, saved, hashed)
    iteration = saved["state"]["iteration"]
    if iteration != state["best_iteration"] and iteration <= state["iteration"]:
        raise checkpoint.CheckpointError(
            f"{best} holds iteration {iteration}, not the best one ({state['best_iteration']}) "
            f"that {best.parent / 'last.pt'} names; {afresh}"
        )


def _finish(config: TrainConfig, state: dict, best: Path, out_dir: Path, afresh: str) -> dict:
    _check_best(best, config.hashed(), state, afresh)  # model.pt is a copy of best.pt
    _write_metrics(out_dir / "metrics.tsv", state["rows"])
    seconds = [row["seconds"] for row in state["rows"]]
    summary = {
        "algo": config.algo,
        "iterations": state["iteration"],
        "best_iteration": state["best_iteration"],
        "best_val_accuracy": state["best_accuracy"],
        "validations": [  # [iteration, accuracy]: a longer extendable run's earlier scores
            [row["iteration"], row["val_accuracy"]]
            for row in state["rows"]
            if "val_accuracy" in row
        ],
        "stopped_early": state["iteration"] < config.iterations,
        "seconds_per_iteration": sorted(seconds)[len(seconds) // 2] if seconds else None,
    }
    with atomic_path(out_dir / "model.pt") as tmp:
        shutil.copyfile(best, tmp)
    if config.trajectory:
        snapshots.save(state["trajectory"], out_dir / "trajectory.pt")
    write_json(out_dir / "summary.json", summary)
    return summary
