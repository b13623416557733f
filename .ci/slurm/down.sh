#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/up.sh started, by the PIDs it recorded, and wait for them.
#
#   .ci/slurm/down.sh [STATE_DIR [DAEMON...]]   (default: /tmp/metastress-slurm, all daemons)
#
# Only the processes named in STATE_DIR/<daemon>.pid are signalled (SIGTERM, then SIGKILL after
# a grace period); DAEMON is any of slurmd, slurmctld, munged (e.g. to stop only those that a
# caller started itself). Jobs still queued or running are cancelled first, so slurmd leaves no
# slurmstepd behind. The state dir and /etc/slurm links are kept (up.sh reuses them).
set -uo pipefail

STATE_DIR=${1:-/tmp/metastress-slurm}
shift || true
GRACE=${METASTRESS_SLURM_DOWN_GRACE:-15}
if [[ $# -gt 0 ]]; then
    WANTED=" $* "
else
    WANTED=" slurmd slurmctld munged "
fi

log() { echo "[slurm-down] $*" >&2; }

if [[ ! -d $STATE_DIR ]]; then
    log "no state dir $STATE_DIR; nothing to stop"
    exit 0
fi

running() {  # running PID NAME -> 0 if PID is a live (non-zombie) process called NAME
    local stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # /proc/PID/stat: "PID (comm) STATE ..."; a reaped-later zombie counts as exited
    [[ $stat == "$1 ($2) "* && $stat != "$1 ($2) Z"* ]]
}

pid_of() {  # pid_of NAME -> prints the recorded PID if that daemon is still running
    local pid
    [[ -s $STATE_DIR/$1.pid ]] || return 1
    pid=$(<"$STATE_DIR/$1.pid")
    running "$pid" "$1" && echo "$pid"
}

# cancel leftover jobs while slurmctld still runs, and let them finish (best effort)
if [[ $WANTED == *" slurmd "* ]] && pid_of slurmctld >/dev/null; then
    export SLURM_CONF=$STATE_DIR/slurm.conf
    if [[ -n $(squeue -h -t pending,running,suspended,completing -o %i 2>/dev/null) ]]; then
        log "cancelling leftover jobs"
        scancel --full --quiet 2>/dev/null || true
        deadline=$((SECONDS + GRACE))
        while ((SECONDS < deadline)) \
            && [[ -n $(squeue -h -t pending,running,suspended,completing -o %i 2>/dev/null) ]]; do
            sleep 0.2
        done
    fi
fi

status=0
stopped=()
# reverse start order: slurmd, slurmctld, then munged (the others authenticate through it)
for name in slurmd slurmctld munged; do
    [[ $WANTED == *" $name "* ]] || continue
    if ! pid=$(pid_of "$name"); then
        rm -f "$STATE_DIR/$name.pid"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + GRACE))
    while running "$pid" "$name" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if running "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for ${GRACE}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            running "$pid" "$name" || break
            sleep 0.1
        done
    fi
    if running "$pid" "$name"; then
        log "ERROR: $name (pid $pid) is still alive"
        status=1
    else
        log "stopped $name (pid $pid)"
        rm -f "$STATE_DIR/$name.pid"
        stopped+=("$pid")
    fi
done

# The daemons were orphaned when up.sh exited, so their parent is init (or a subreaper), which
# reaps them on its own schedule. Give it a moment, so that no <defunct> entries linger; they
# have exited either way.
deadline=$((SECONDS + 5))
for pid in "${stopped[@]}"; do
    while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do
        sleep 0.1
    done
done
exit $status
