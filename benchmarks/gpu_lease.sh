#!/usr/bin/env bash
# The prepared script of a GPU lease (issue 16; what it measures: benchmarks/RESULTS.md). Run
# from the repository root on the lent machine, with the image's python3 (torch + CUDA), the
# `higher` wheel in .whl/ and .gpu/ filled by `python -m benchmarks.prepare_lease`:
#
#   bash benchmarks/gpu_lease.sh speed     # ~6 min: CUDA tests, float64 cross-check, graphs
#                                          # vs eager per convolution form, B/S scaling, search
#   bash benchmarks/gpu_lease.sh accuracy [PRECISION...]  # ~3 min with graphs (~9 if they
#                                          # fall back to eager: then name fewer precisions per
#                                          # call): MAML 20w1s in fp32, tf32, bf16, 2,000
#                                          # iterations each, scored on the same 300 test tasks
#   bash benchmarks/gpu_lease.sh all       # both in one call (fits 10 min only if graphs work)
#
# Every section is its own process under its own `timeout` (seconds, overridable below), so a
# hang loses that section only; results land in $OUT: gpu.md, gpu.csv, accuracy.md,
# accuracy_<precision>.json and lease.log (7 files). Dry run on a CPU, tiny shapes:
#   LEASE_DEVICE=cpu LEASE_SMOKE=1 OUT=/tmp/lease bash benchmarks/gpu_lease.sh all
set -uo pipefail
part=${1:-speed}
precisions=("${@:2}")
[ ${#precisions[@]} -eq 0 ] && precisions=(fp32 tf32 bf16)
: "${OUT:?set OUT to the folder for the results}"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
device=${LEASE_DEVICE:-cuda}
smoke=${LEASE_SMOKE:+--smoke}
runs=/tmp/metastress-accuracy

section() {  # name, limit in seconds, command...
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "== $name (limit $limit s)"
    timeout -k 10 "$limit" "$@"
    echo "== $name: exit $? after $((SECONDS - start)) s"
}

speed() {
    local per_test=()  # pytest-timeout is in the lease's image, not necessarily elsewhere
    "$python" -c "import pytest_timeout" 2> /dev/null && per_test=(--timeout 90)
    section "CUDA tests" "${T_TESTS:-120}" "$python" -m pytest -m cuda -q -rA -p no:cacheprovider \
        "${per_test[@]}" tests/engine/test_graphs_cuda.py
    # name:limit:deadline (the deadline stops starting new measurements; the limit kills)
    for spec in cross:45:30 graphs:170:140 scaling:75:50 search:75:50; do
        IFS=: read -r name limit deadline <<< "$spec"
        section "benchmarks.gpu $name" "$limit" "$python" -m benchmarks.gpu --out "$OUT" \
            --device "$device" $smoke --sections "$name" --deadline "$deadline"
    done
}

smoke_run() {  # a run config cut to a few iterations of a narrow Conv-4, for the dry run
    "$python" -c 'import json, sys
run = json.load(open(sys.argv[1]))
run.update(iterations=4, validate_every=2, checkpoint_every=2, validation_tasks=2, meta_batch=2)
run["algorithm"]["hidden"] = 8
print(json.dumps(run))' "$1"
}

accuracy() {
    local evaluation
    evaluation=$(cat .gpu/eval.json)
    [ -n "$smoke" ] && evaluation=${evaluation/\"test_tasks\": 300/\"test_tasks\": 10}
    for precision in "${precisions[@]}"; do
        local run
        run=$(cat ".gpu/run_accuracy_$precision.json")
        [ -n "$smoke" ] && run=$(smoke_run ".gpu/run_accuracy_$precision.json")
        rm -rf "${runs:?}/$precision" "$OUT/accuracy_$precision.json"
        section "train $precision" "${T_TRAIN:-160}" "$python" -m metastress train \
            --processed .gpu/omniglot28.npz --split .gpu/paper.json --run "$run" \
            --out "$runs/$precision"
        section "evaluate $precision" "${T_EVAL:-30}" "$python" -m metastress evaluate \
            --processed .gpu/omniglot28.npz --split .gpu/paper.json \
            --model "$runs/$precision/model.pt" --evaluation "$evaluation" \
            --out "$OUT/accuracy_$precision.json"
    done
    "$python" -m benchmarks.accuracy "$OUT" "$runs"
}

main() {
    if compgen -G ".whl/*.whl" > /dev/null; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
            || exit 1
    fi
    export PYTHONPATH=/tmp/site:$PWD/src:$PWD
    git rev-parse HEAD 2> /dev/null || echo "(no git here: name the commit you sent)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null
    "$python" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
    case $part in
        speed) speed ;;
        accuracy) accuracy ;;
        all) speed && accuracy ;;
        *) echo "unknown part '$part': speed, accuracy or all" >&2; exit 2 ;;
    esac
}

mkdir -p "$OUT"
main 2>&1 | tr '\r' '\n' | tee "$OUT/lease.log"
