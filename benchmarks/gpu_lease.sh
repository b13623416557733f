#!/usr/bin/env bash
# The prepared script of one GPU lease (see benchmarks/RESULTS.md): the real CLI's CUDA path
# (train 300 iterations of MAML and MetaLSTM++ on 20w1s at width 64, evaluate on 300 test
# tasks), then `python -m benchmarks.gpu`. Expects the image's python3 with torch, the
# `higher` wheel in .whl/, and .gpu/ holding omniglot28.npz, paper.json, run_*.json and
# eval.json (`python -m benchmarks.prepare_lease`). Writes into $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
for algo in maml metalstm_pp; do
    start=$SECONDS
    timeout 150 python3 -m metastress train --processed .gpu/omniglot28.npz --split .gpu/paper.json \
        --run "$(cat .gpu/run_$algo.json)" --out /tmp/models/$algo 2>&1 | tr '\r' '\n' | tail -n 3
    timeout 90 python3 -m metastress evaluate --processed .gpu/omniglot28.npz --split .gpu/paper.json \
        --model /tmp/models/$algo/model.pt --evaluation "$(cat .gpu/eval.json)" \
        --out "$OUT/eval_$algo.json" 2>&1 | tr '\r' '\n' | tail -n 2
    cp /tmp/models/$algo/summary.json "$OUT/summary_$algo.json"
    echo "$algo: train + evaluate took $((SECONDS - start)) s"
done
timeout "${BENCH_TIMEOUT:-420}" python3 -m benchmarks.gpu --out "$OUT" --deadline "${BENCH_DEADLINE:-300}" \
    --sections "${BENCH_SECTIONS:-cross,precision,rows,memory,eval,cost}"
