#!/usr/bin/env bash
# Provision libtorch for tch 0.26 (torch-sys) from the PyPI torch wheel, once per user.
#
# Installs torch==$TORCH_VERSION into a venv under a per-user cache keyed by version and flavor:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/autonet/libtorch-<version>-<cpu|cuda>/
# Default (AUTONET_TORCH=cpu): a trimmed CPU-only install (~700 MB): `--no-deps` torch plus the two
# small CUDA runtime wheels its CPU libraries still link against, with the big CUDA libraries moved
# out of site-packages/torch/lib so torch-sys links CPU only.
# AUTONET_TORCH=cuda: the full install (~4.7 GB) with CUDA.
#
# Idempotent: a `.complete` marker is written last; an install directory without it (interrupted
# run) is wiped and redone. A `flock` on `.lock` serialises concurrent runs.
#
# Usage: script/setup-libtorch.sh [--print-path | --print-python]
#   Last line of stdout is the LIBTORCH path (the torch package directory).
#   --print-path only prints that path (no install, no network).
#   --print-python only prints the venv's python (importable only for the cuda flavor: the
#   trimmed CPU install lacks the CUDA libraries that torch's Python extension links).
set -euo pipefail

TORCH_VERSION="${AUTONET_TORCH_VERSION:-2.13.0}"
FLAVOR="${AUTONET_TORCH:-cpu}"
case "$FLAVOR" in
  cpu|cuda) ;;
  *) echo "AUTONET_TORCH must be 'cpu' or 'cuda' (got '$FLAVOR')" >&2; exit 2 ;;
esac
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/autonet"
PREFIX="$CACHE_ROOT/libtorch-$TORCH_VERSION-$FLAVOR"
VENV="$PREFIX/venv"
PYTHON="${PYTHON:-python3}"

# Python minor version of the venv decides the site-packages path; resolve it from the venv when
# it exists, otherwise from the interpreter that would create it.
site_packages() {
  local py="$VENV/bin/python"
  [ -x "$py" ] || py="$PYTHON"
  local ver
  ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  echo "$VENV/lib/python$ver/site-packages"
}

LIBTORCH_PATH="$(site_packages)/torch"

case "${1:-}" in
  --print-path) echo "$LIBTORCH_PATH"; exit 0 ;;
  --print-python) echo "$VENV/bin/python"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path | --print-python]" >&2; exit 2 ;;
esac

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.libtorch-$TORCH_VERSION-$FLAVOR.lock"
flock 9

if [ -f "$PREFIX/.complete" ] && [ -f "$LIBTORCH_PATH/lib/libtorch_cpu.so" ]; then
  echo "libtorch $TORCH_VERSION ($FLAVOR) already installed" >&2
  echo "$LIBTORCH_PATH"
  exit 0
fi

if [ -d "$PREFIX" ]; then
  echo "removing incomplete install at $PREFIX" >&2
  rm -rf "$PREFIX"
fi
mkdir -p "$PREFIX"
echo "installing torch==$TORCH_VERSION ($FLAVOR) into $PREFIX (one-time download)" >&2
"$PYTHON" -m venv "$VENV"
# Quiet, and no resolver warnings: the CPU install leaves torch's CUDA dependencies out on
# purpose, which pip would otherwise report as an alarming (and harmless) ERROR block.
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --progress-bar off --no-warn-conflicts)

if [ "$FLAVOR" = "cpu" ]; then
  # numpy is not needed by libtorch; the benchmark's python side imports torch only.
  "${PIP[@]}" --no-deps "torch==$TORCH_VERSION" \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 >&2
  # Pure-python deps torch needs at import time (bench/pytorch_small.py); tiny.
  echo "installing torch's pure-python dependencies" >&2
  "${PIP[@]}" filelock typing-extensions sympy networkx jinja2 fsspec >&2
  LIB="$(site_packages)/torch/lib"
  mkdir -p "$PREFIX/cuda-libs-removed"
  for so in libtorch_cuda.so libtorch_cuda_linalg.so libc10_cuda.so libtorch_nvshmem.so libcaffe2_nvrtc.so; do
    if [ -e "$LIB/$so" ]; then mv "$LIB/$so" "$PREFIX/cuda-libs-removed/"; fi
  done
else
  "${PIP[@]}" "torch==$TORCH_VERSION" >&2
fi

LIBTORCH_PATH="$(site_packages)/torch"
if [ ! -f "$LIBTORCH_PATH/lib/libtorch_cpu.so" ]; then
  echo "install finished but $LIBTORCH_PATH/lib/libtorch_cpu.so is missing" >&2
  exit 1
fi
date -u +%Y-%m-%dT%H:%M:%SZ > "$PREFIX/.complete"
echo "libtorch ready at $LIBTORCH_PATH" >&2
echo "$LIBTORCH_PATH"
