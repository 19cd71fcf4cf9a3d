#!/usr/bin/env bash
# Runs the tch and PyTorch training-throughput benchmarks back to back with the same settings and
# prints tokens/s of each and the tch/pytorch ratio. Called by `make bench-pytorch` (which sets
# LIBTORCH/LD_LIBRARY_PATH and PYTORCH_PY). Env passed through: AUTONET_BENCH_THREADS,
# AUTONET_BENCH_STEPS, AUTONET_BENCH_BATCH, AUTONET_BENCH_PRESET.
set -euo pipefail
: "${PYTORCH_PY:?set PYTORCH_PY to the python of a full torch==2.13.0 venv}"
# One thread by default: on a shared 2-core machine multi-threaded timings swing by 5x with
# other load; set AUTONET_BENCH_THREADS=$(nproc) on a quiet machine.
export AUTONET_BENCH_THREADS="${AUTONET_BENCH_THREADS:-1}"
tch_out="$(cargo bench -q -p autonet-ml --bench train_throughput 2>/dev/null)"
echo "$tch_out"
py_out="$(PYTHONWARNINGS=ignore "$PYTORCH_PY" bench/pytorch_small.py 2>/dev/null)"
echo "$py_out"
tch=$(awk '/^RESULT tch tokens_per_s/ {print $4}' <<<"$tch_out")
py=$(awk '/^RESULT pytorch tokens_per_s/ {print $4}' <<<"$py_out")
awk -v a="$tch" -v b="$py" 'BEGIN { printf "RATIO tch/pytorch tokens_per_s %.3f\n", a / b }'
