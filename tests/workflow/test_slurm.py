"""End-to-end: a fan-out workflow through a real single-node SLURM cluster.

The same tiny Snakefile runs once locally and once with ``--workflow-profile
workflow/profiles/slurm``; the outputs must be byte-identical, and every job of the SLURM run
must have been submitted with sbatch, allocated by slurmctld and executed inside its allocation.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from slurm_cluster import SlurmCluster

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

    # 2. every job was submitted with sbatch ...
    expected_rules = Counter({"fan_out": len(SEEDS), gpu_rule: 1, "aggregate": 1})
    n_jobs = sum(expected_rules.values())
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == n_jobs == len(set(submitted)), log[-8000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)

    # ... is known to slurmctld under this run's job name, completed, one per Snakemake job ...
    jobs = cluster.jobs(run_id)
    assert sorted(j.job_id for j in jobs) == sorted(submitted)
    assert {j.state for j in jobs} == {"COMPLETED"}, jobs
    assert Counter(j.rule for j in jobs) == expected_rules

    # ... was allocated a node by the scheduler ...
    assert set(submitted) <= cluster.allocated_job_ids()

    # ... and ran its shell command inside that allocation (the local run did not).
    assert set(_log_job_ids(local_dir / "logs").values()) == {"local"}
    slurm_log_ids = _log_job_ids(slurm_dir / "logs")
    assert sorted(slurm_log_ids.values()) == sorted(submitted)
    for job_id in submitted:  # the plugin's per-job SLURM log, kept by --slurm-keep-successful-logs
        assert list((slurm_dir / ".snakemake" / "slurm_logs").rglob(f"{job_id}.log")), job_id

    # 3. the GPU job got the GRES (gpu on /dev/null) and the profile's GPU resources
    gpu_job = next(j for j in jobs if j.rule == gpu_rule)
    details = cluster.show_job(gpu_job.job_id)
    assert "gpu:1" in details.get("TresPerJob", "") + details.get("TresPerNode", ""), details
    assert "gpus=none" not in (slurm_dir / "logs" / "gpu.log").read_text()
    if "cpus_per_gpu" in gpu_resources:
        assert details.get("CpusPerTres") == f"gres:gpu:{gpu_resources['cpus_per_gpu']}", details
    if "mem_mb" in gpu_resources:
        assert details.get("MinMemoryNode") == f"{gpu_resources['mem_mb']}M", details
