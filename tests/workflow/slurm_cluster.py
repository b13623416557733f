"""A real single-node SLURM cluster for workflow tests, brought up by ``.ci/slurm/up.sh``.

Use the session-scoped ``slurm_cluster`` fixture from a test module in this directory::

    if TYPE_CHECKING:  # import only for annotations: the plugin import must come first
        from slurm_cluster import SlurmCluster

    pytest_plugins = ["slurm_cluster"]  # registers the fixture once for the whole session

    def test_something(slurm_cluster: SlurmCluster): ...

``cluster.env`` (SLURM_CONF, PATH with this venv first) is what snakemake/sbatch/squeue need;
``cluster.snakemake_args`` are the options to add to ``--workflow-profile cluster.profile``.
The fixture installs the Debian packages if needed, starts munged/slurmctld/slurmd, and stops
by PID the daemons that it started itself when the session ends, even after failures.

It skips, with the reason, only where SLURM cannot be installed (``up.sh`` exits with 3: no
apt-get, packages unavailable, not root). Set ``METASTRESS_REQUIRE_SLURM=1`` to turn that skip
into a failure (CI). ``METASTRESS_SLURM_STATE_DIR`` picks the state dir (default
``/tmp/metastress-slurm``): configs, PID files and daemon logs live there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UP_SCRIPT = REPO / ".ci" / "slurm" / "up.sh"
DOWN_SCRIPT = REPO / ".ci" / "slurm" / "down.sh"
SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm"
DAEMONS = ("munged", "slurmctld", "slurmd")
UNAVAILABLE_EXIT_CODE = 3  # up.sh: SLURM cannot be installed on this machine
DEFAULT_STATE_DIR = Path("/tmp/metastress-slurm")

# Command-line options added to `--workflow-profile workflow/profiles/slurm` for the CI cluster.
CI_SNAKEMAKE_ARGS = (
    # no accounts on this cluster (no slurmdbd); plugin 2.8.0 parses but ignores the flag and
    # proceeds without -A once it cannot guess an account from sacct
    "--slurm-no-account",
    # keep each job's SLURM log (.snakemake/slurm_logs/rule_*/.../<jobid>.log) as evidence
    "--slurm-keep-successful-logs",
    # poll squeue every second instead of the production 40 s / 10 s
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
)

# the main scheduler logs "sched: Allocate JobId=N ...", the backfill scheduler (which starts a
# job queued behind another, e.g. waiting for the one GPU) "sched/backfill: _start_job: Started
# JobId=N ..." (older releases: "backfill: Started JobId=N")
_ALLOCATED = re.compile(r"(?:sched: Allocate|backfill: (?:_start_job: )?Started) JobId=(\d+)")


@dataclass(frozen=True)
class SlurmJob:
    """One job as ``squeue --states=all`` reports it (slurmctld keeps it for MinJobAge)."""

    job_id: str
    state: str
    name: str
    comment: str

    @property
    def rule(self) -> str:
        """Snakemake rule from the plugin's job comment ``rule_<name>[_wildcards_<...>]``."""
        return self.comment.removeprefix("rule_").split("_wildcards_")[0]


@dataclass
class SlurmCluster:
    state_dir: Path
    env: dict[str, str]
    started: tuple[str, ...]
    up_seconds: float
    snakemake_args: tuple[str, ...] = field(default=CI_SNAKEMAKE_ARGS)

    @property
    def slurmctld_log(self) -> Path:
        return self.state_dir / "log" / "slurmctld.log"

    @property
    def profile(self) -> Path:
        return SLURM_PROFILE

    def run(self, *cmd: str) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        proc = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def jobs(self, name: str) -> list[SlurmJob]:
        """All jobs called ``name`` (the plugin names jobs by run ID), finished ones included."""
        out = self.run("squeue", "--states=all", "--noheader", "--name", name, "-o", "%i|%T|%j|%k")
        return [SlurmJob(*line.split("|", 3)) for line in out.splitlines() if line.strip()]

    def show_job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (keeps finished jobs for MinJobAge)."""
        out = self.run("scontrol", "--oneliner", "show", "job", job_id)
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def allocated_job_ids(self) -> set[str]:
        """Job IDs that slurmctld's scheduler allocated to a node, from its log file."""
        return set(_ALLOCATED.findall(self.slurmctld_log.read_text(errors="replace")))


def _running_daemons(state_dir: Path) -> set[str]:
    """Daemons whose PID file in state_dir names a live process of that name (as up.sh)."""
    running = set()
    for name in DAEMONS:
        try:
            pid = (state_dir / f"{name}.pid").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            continue
        if stat.startswith(f"{pid} ({name}) ") and not stat.startswith(f"{pid} ({name}) Z"):
            running.add(name)
    return running


def start_cluster(state_dir: Path) -> SlurmCluster:
    """Run up.sh; skip (or fail under METASTRESS_REQUIRE_SLURM) if SLURM is unavailable."""
    before = _running_daemons(state_dir)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(UP_SCRIPT), str(state_dir)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except FileNotFoundError as exc:  # no bash at all
        proc = subprocess.CompletedProcess([], UNAVAILABLE_EXIT_CODE, "", str(exc))
    except subprocess.TimeoutExpired as exc:
        _stop(state_dir, tuple(d for d in DAEMONS if d not in before))
        pytest.fail(f"{UP_SCRIPT} did not finish in {exc.timeout} s: {exc.stderr!r}")
    up_seconds = time.monotonic() - t0
    sys.stderr.write(proc.stderr)
    if proc.returncode == UNAVAILABLE_EXIT_CODE:
        reason = "SLURM cannot be installed here: " + (
            proc.stderr.strip().splitlines() or ["up.sh exited with 3"]
        )[-1].removeprefix("[slurm-up] ").removeprefix("ERROR: ")
        if os.environ.get("METASTRESS_REQUIRE_SLURM"):
            pytest.fail(f"{reason} (METASTRESS_REQUIRE_SLURM is set)")
        pytest.skip(reason)
    started = tuple(d for d in DAEMONS if d not in before)
    if proc.returncode != 0:
        # stop whatever came up before the failure, then fail loudly
        _stop(state_dir, started)
        pytest.fail(f"{UP_SCRIPT} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")

    env = dict(os.environ)
    for line in proc.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value
    # jobs inherit this environment (sbatch --export=ALL): python/snakemake from this venv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return SlurmCluster(state_dir=state_dir, env=env, started=started, up_seconds=up_seconds)


def _stop(state_dir: Path, daemons: tuple[str, ...]) -> None:
    if not daemons:
        return
    proc = subprocess.run(
        ["bash", str(DOWN_SCRIPT), str(state_dir), *daemons],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{DOWN_SCRIPT} failed ({proc.returncode}):\n{proc.stderr}")


def stop_cluster(cluster: SlurmCluster) -> None:
    """Stop, by PID, the daemons this cluster object started (not pre-existing ones)."""
    if not cluster.started:
        sys.stderr.write(
            f"[slurm-cluster] daemons in {cluster.state_dir} were already running before the "
            "session; leaving them up\n"
        )
    _stop(cluster.state_dir, cluster.started)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    state_dir = Path(os.environ.get("METASTRESS_SLURM_STATE_DIR") or DEFAULT_STATE_DIR)
    cluster = start_cluster(state_dir)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
