#!/usr/bin/env bash
# Runs the tch and PyTorch generation benchmarks back to back with the same settings and prints
# bytes/s of each and the ratios. Called by `make bench-generate` (which sets
# LIBTORCH/LD_LIBRARY_PATH and PYTORCH_PY). Env passed through: AUTONET_BENCH_THREADS (default 1),
# AUTONET_BENCH_TOKENS, AUTONET_BENCH_REPEATS, AUTONET_BENCH_PRESET.
set -euo pipefail
: "${PYTORCH_PY:?set PYTORCH_PY to the python of a full torch==2.13.0 venv}"
export AUTONET_BENCH_THREADS="${AUTONET_BENCH_THREADS:-1}"
tch_out="$(cargo bench -q -p autonet-ml --bench generate_throughput 2>/dev/null)"
echo "$tch_out"
py_out="$(cd bench && PYTHONWARNINGS=ignore "$PYTORCH_PY" pytorch_generate.py 2>/dev/null)"
echo "$py_out"
kv=$(awk '/^RESULT tch kv bytes_per_s/ {print $5}' <<<"$tch_out")
full=$(awk '/^RESULT tch full bytes_per_s/ {print $5}' <<<"$tch_out")
py=$(awk '/^RESULT pytorch kv bytes_per_s/ {print $5}' <<<"$py_out")
tb=$(awk '/^RESULT tch kv_8_batched bytes_per_s/ {print $5}' <<<"$tch_out")
pb=$(awk '/^RESULT pytorch kv_8_batched bytes_per_s/ {print $5}' <<<"$py_out")
awk -v a="$kv" -v b="$py" -v f="$full" -v tb="$tb" -v pb="$pb" 'BEGIN {
  printf "RATIO tch-kv/pytorch-kv bytes_per_s %.3f\n", a / b
  printf "RATIO tch-kv/tch-full bytes_per_s %.3f\n", a / f
  printf "RATIO tch-8-batched/pytorch-8-batched bytes_per_s %.3f\n", tb / pb
  printf "RATIO tch-8-batched/tch-full bytes_per_s %.3f\n", tb / f }'
