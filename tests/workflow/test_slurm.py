"""End-to-end: workflows through a real single-node SLURM cluster.

1. A toy fan-out Snakefile runs once locally and once with ``--workflow-profile
   workflow/profiles/slurm``; the outputs must be byte-identical, and every job of the SLURM run
   must have been submitted with sbatch, allocated by slurmctld and executed inside its
   allocation.
2. The real workflow on the tiny profile: search trials and the final training of one
   algorithm x setting run locally in one repository copy and through SLURM in another; the
   trial records must be identical and the models' tensors equal, and the search/training jobs
   (and only those) must have gone through sbatch with the profile's GPU resources.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from workflow_helpers import tiny_params

from metastress import paths

if TYPE_CHECKING:
    from slurm_cluster import SlurmCluster, SlurmJob

# registers the session-scoped `slurm_cluster` fixture (one cluster for all modules using it)
pytest_plugins = ["slurm_cluster"]
pytestmark = pytest.mark.slow

SEEDS = (1, 2, 3)

# {gpu_rule} is named after a GPU rule of the profile's set-resources, so that the profile's
# GPU settings are exercised too; the rule also asks for a GPU itself.
SNAKEFILE = """\
SEEDS = {seeds}

localrules: all

rule all:
    input: "results/summary.txt"

rule fan_out:
    output: "results/part_{{seed}}.txt"
    log: "logs/fan_out_{{seed}}.log"
    shell:
        "python -c 'import sys; s = int(sys.argv[1]); print(s, sum(i * s for i in range(1000)))' "
        "{{wildcards.seed}} > {{output}} && "
        "echo job=${{{{SLURM_JOB_ID:-local}}}} gpus=${{{{CUDA_VISIBLE_DEVICES:-none}}}} > {{log}}"

rule {gpu_rule}:
    output: "results/gpu.txt"
    log: "logs/gpu.log"
    resources: gpu=1
    shell:
        "python -c 'print(\\"gpu\\", 6 * 7)' > {{output}} && "
        "echo job=${{{{SLURM_JOB_ID:-local}}}} gpus=${{{{CUDA_VISIBLE_DEVICES:-none}}}} > {{log}}"

rule aggregate:
    input: expand("results/part_{{seed}}.txt", seed=SEEDS), "results/gpu.txt"
    output: "results/summary.txt"
    log: "logs/aggregate.log"
    shell:
        "cat {{input}} > {{output}} && echo job=${{{{SLURM_JOB_ID:-local}}}} > {{log}}"
"""


def _profile_gpu_rule(profile: Path) -> tuple[str, dict]:
    """First rule in the profile's set-resources that gets a GPU, with its resources."""
    config = yaml.safe_load((profile / "config.yaml").read_text()) or {}
    for rule, resources in (config.get("set-resources") or {}).items():
        resources = resources or {}
        if resources.get("gpu") or "gpu" in str(resources.get("gres", "")):
            return rule, resources
    return "gpu_job", {}


def _snakemake(workdir: Path, env: dict[str, str], *args: str) -> tuple[str, float]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", "Snakefile", *args]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    seconds = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed in {workdir}:\n{log[-8000:]}"
    return log, seconds


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _log_job_ids(logs: Path) -> dict[str, str]:
    """Rule log file -> the SLURM_JOB_ID (or 'local') the rule's shell command ran under."""
    return {p.name: re.search(r"job=(\S+)", p.read_text()).group(1) for p in logs.glob("*.log")}


def _assert_submitted_with_sbatch(
    cluster: SlurmCluster, log: str, workdir: Path, expected_rules: Counter
) -> list[SlurmJob]:
    """Check, from a `snakemake --workflow-profile ...` run's output, that exactly one SLURM
    job per expected Snakemake job was submitted with sbatch, is known to slurmctld under the
    run's job name with the right rule, completed, and was allocated a node; return them."""
    n_jobs = sum(expected_rules.values())
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == n_jobs == len(set(submitted)), log[-8000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)

    # known to slurmctld under this run's job name, completed, one per Snakemake job ...
    jobs = cluster.jobs(run_id)
    assert sorted(j.job_id for j in jobs) == sorted(submitted)
    assert {j.state for j in jobs} == {"COMPLETED"}, jobs
    assert Counter(j.rule for j in jobs) == expected_rules

    # ... allocated a node by the scheduler ...
    assert set(submitted) <= cluster.allocated_job_ids()

    # ... and logged by the plugin (kept by --slurm-keep-successful-logs)
    for job_id in submitted:
        assert list((workdir / ".snakemake" / "slurm_logs").rglob(f"{job_id}.log")), job_id
    return jobs


def test_fan_out_through_sbatch_matches_local_run(slurm_cluster: SlurmCluster, tmp_path: Path):
    cluster = slurm_cluster
    gpu_rule, gpu_resources = _profile_gpu_rule(cluster.profile)
    snakefile = SNAKEFILE.format(seeds=list(SEEDS), gpu_rule=gpu_rule)
    env = {k: v for k, v in cluster.env.items() if not k.startswith("SNAKEMAKE_PROFILE")}

    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    for d in (local_dir, slurm_dir):
        d.mkdir()
        (d / "Snakefile").write_text(snakefile)

    _, local_s = _snakemake(local_dir, env, "--cores", "2")
    log, slurm_s = _snakemake(
        slurm_dir, env, "--workflow-profile", str(cluster.profile), *cluster.snakemake_args
    )
    print(
        f"\n[test_slurm] cluster up {cluster.up_seconds:.1f} s (started: "
        f"{', '.join(cluster.started) or 'none'}), local run {local_s:.1f} s, "
        f"SLURM run {slurm_s:.1f} s"
    )

    # 1. same results, byte for byte
    local_results, slurm_results = _tree(local_dir / "results"), _tree(slurm_dir / "results")
    assert sorted(local_results) == sorted(
        ["gpu.txt", "summary.txt"] + [f"part_{s}.txt" for s in SEEDS]
    )
    assert slurm_results == local_results

    # 2. every job was submitted with sbatch, completed and was allocated a node ...
    expected_rules = Counter({"fan_out": len(SEEDS), gpu_rule: 1, "aggregate": 1})
    jobs = _assert_submitted_with_sbatch(cluster, log, slurm_dir, expected_rules)
    submitted = [j.job_id for j in jobs]

    # ... and ran its shell command inside that allocation (the local run did not).
    assert set(_log_job_ids(local_dir / "logs").values()) == {"local"}
    slurm_log_ids = _log_job_ids(slurm_dir / "logs")
    assert sorted(slurm_log_ids.values()) == sorted(submitted)

    # 3. the GPU job got the GRES (gpu on /dev/null) and the profile's GPU resources
    gpu_job = next(j for j in jobs if j.rule == gpu_rule)
    details = cluster.show_job(gpu_job.job_id)
    assert "gpu:1" in details.get("TresPerJob", "") + details.get("TresPerNode", ""), details
    assert "gpus=none" not in (slurm_dir / "logs" / "gpu.log").read_text()
    if "cpus_per_gpu" in gpu_resources:
        assert details.get("CpusPerTres") == f"gres:gpu:{gpu_resources['cpus_per_gpu']}", details
    if "mem_mb" in gpu_resources:
        assert details.get("MinMemoryNode") == f"{gpu_resources['mem_mb']}M", details


# --- the real workflow -------------------------------------------------------------------------

# One algorithm x setting: its search trials (the fan-out: one rung job per trial on the tiny
# profile), then its final training. The data stages are built locally beforehand and
# search_select is a localrule, so only search_rung and train_final jobs go to SLURM (both GPU
# rules, serialized on the CI node's single "GPU").
WORKFLOW_ALGO, WORKFLOW_SETTING = "maml", "20w1s"
WORKFLOW_TARGETS = (paths.model_file(WORKFLOW_ALGO, WORKFLOW_SETTING, 0),)
SEARCH_TRIALS = 2  # a fan-out of two trials (the tiny profile itself may have one)


def _assert_same(a, b, where: str = "") -> None:
    """Checkpoint contents equal: tensors torch.equal, numbers exact; wall-clock 'seconds'
    entries (the training log's timing column) are skipped."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"tensors differ at {where}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            if key != "seconds":
                _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_search_and_training_through_sbatch_match_local_run(
    slurm_cluster: SlurmCluster, repo_copy: Path, mirror: Path, tmp_path: Path
):
    import torch

    cluster = slurm_cluster
    env = {k: v for k, v in cluster.env.items() if not k.startswith("SNAKEMAKE_PROFILE")}
    env.update(OMNIGLOT_MIRROR=str(mirror), DVC_NO_ANALYTICS="1")
    # on the CPU, so that both runs compute the same numbers whatever devices they see
    tiny_params(repo_copy, search_trials=SEARCH_TRIALS, device="cpu")
    n_trials = SEARCH_TRIALS

    # the data stages once, locally; then a second copy of the repository, data included
    _, data_s = _snakemake(repo_copy, env, "--cores", "2", "data/splits/paper.json")
    local_dir, slurm_dir = repo_copy, tmp_path / "repo-slurm"
    shutil.copytree(local_dir, slurm_dir, symlinks=True)

    # The local run goes alongside the SLURM run (whose GPU jobs run one at a time here).
    t0 = time.monotonic()
    local_log = tmp_path / "local-run.log"
    local_cmd = [sys.executable, "-m", "snakemake", "--cores", "1", *WORKFLOW_TARGETS]
    with local_log.open("w") as out:
        local = subprocess.Popen(local_cmd, cwd=local_dir, env=env, stdout=out, stderr=out)
    try:
        log, slurm_s = _snakemake(
            slurm_dir,
            env,
            "--workflow-profile",
            str(slurm_dir / "workflow" / "profiles" / "slurm"),
            *cluster.snakemake_args,
            *WORKFLOW_TARGETS,
        )
        local_rc = local.wait(timeout=600)
    finally:
        if local.poll() is None:
            local.kill()
            local.wait()
    local_s = time.monotonic() - t0
    assert local_rc == 0, f"{' '.join(local_cmd)} failed:\n{local_log.read_text()[-8000:]}"
    print(
        f"\n[test_slurm] data stages {data_s:.1f} s, then local and SLURM runs side by side: "
        f"SLURM {slurm_s:.1f} s, both done after {local_s:.1f} s"
    )

    # 1. only the search trials and the final training went through sbatch, with the profile's
    #    GPU resources (the set-resources entries name the real rules)
    expected_rules = Counter({"search_rung": n_trials, "train_final": 1})
    jobs = _assert_submitted_with_sbatch(cluster, log, slurm_dir, expected_rules)
    profile = yaml.safe_load((slurm_dir / "workflow/profiles/slurm/config.yaml").read_text())
    for job in jobs:
        details = cluster.show_job(job.job_id)
        assert "gpu:1" in details.get("TresPerJob", "") + details.get("TresPerNode", ""), details
        wanted = profile["set-resources"][job.rule]
        assert details.get("MinMemoryNode") == f"{wanted['mem_mb']}M", details
        assert details.get("CpusPerTres") == f"gres:gpu:{wanted['cpus_per_gpu']}", details
    assert "submitted with SLURM jobid" not in local_log.read_text()

    # 2. the same trial records, byte for byte, and the same choice
    search = Path("results/search") / WORKFLOW_ALGO / WORKFLOW_SETTING
    trials = sorted(p.relative_to(local_dir / search).as_posix()
                    for p in (local_dir / search).glob("rung0/part*.json"))  # fmt: skip
    assert trials == [f"rung0/part{i}.json" for i in range(n_trials)]
    for name in [*trials, "best.json"]:
        local_record = (local_dir / search / name).read_bytes()
        assert (slurm_dir / search / name).read_bytes() == local_record, name

    # 3. the same model: equal weights, optimizer and RNG state, and training log
    model_dir = Path(paths.run_dir(WORKFLOW_ALGO, WORKFLOW_SETTING, 0))
    saved = [
        torch.load(d / model_dir / "model.pt", map_location="cpu", weights_only=False)
        for d in (local_dir, slurm_dir)
    ]
    for key, tensor in saved[0]["learner"].items():
        assert torch.equal(tensor, saved[1]["learner"][key]), key
    _assert_same(saved[0], saved[1], "model.pt")
