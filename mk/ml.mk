# autonet-ml: libtorch provisioning and ML targets. Included by the root Makefile
# (`include mk/ml.mk`); also usable alone: `make -f mk/ml.mk test-ml`.
#
# libtorch comes from the PyPI torch==2.13.0 wheel installed once per user by
# script/setup-libtorch.sh (CPU-trimmed by default, AUTONET_TORCH=cuda for the full CUDA build).
# The variables below are exported so every cargo command run by make finds it; `make setup` also
# writes them to the git-ignored .cargo/config.toml for plain cargo (script/write-cargo-config.sh).

ML_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
AUTONET_TORCH ?= cpu
export AUTONET_TORCH

ifeq ($(origin LIBTORCH),undefined)
LIBTORCH := $(shell AUTONET_TORCH=$(AUTONET_TORCH) $(ML_ROOT)/script/setup-libtorch.sh --print-path)
endif
export LIBTORCH
export LIBTORCH_CXX11_ABI := 1
export LD_LIBRARY_PATH := $(LIBTORCH)/lib$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))

ML_CARGO ?= cargo
# Release for tests, example and bench alike: one build of torch-sys/tch serves all of them.
ML_PROFILE ?= --release

.PHONY: libtorch build-ml test-ml lint-ml experiment-learning experiment-attacks bench-ml bench-pytorch bench-generate

## libtorch: install torch==2.13.0 into ~/.cache/autonet once (idempotent), and write the
## git-ignored .cargo/config.toml through which plain cargo finds it too
libtorch:
	@$(ML_ROOT)/script/setup-libtorch.sh >/dev/null
	@$(ML_ROOT)/script/write-cargo-config.sh "$(LIBTORCH)"

build-ml: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) build $(ML_PROFILE) -p autonet-ml --all-targets

## test-ml: unit tests of autonet-ml (tiny preset, CPU only)
test-ml: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) test $(ML_PROFILE) -p autonet-ml

lint-ml: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) fmt -p autonet-ml --check
	cd $(ML_ROOT) && $(ML_CARGO) clippy $(ML_PROFILE) -p autonet-ml --all-targets -- -D warnings

## experiment-learning: centralized vs federated vs poisoned eval-loss curves (docs/learning.md)
LEARNING_ARGS ?= --preset small --rounds 4 --local-steps 25 --batch 16
experiment-learning: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) run --release -p autonet-ml --example learning -- $(LEARNING_ARGS)

## experiment-attacks: final eval loss per attack × aggregator vs honest-only (docs/learning.md)
ATTACKS_ARGS ?= --preset small --rounds 2 --local-steps 10 --threads 1
experiment-attacks: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) run --release -p autonet-ml --example attacks -- $(ATTACKS_ARGS)

## bench-ml: training tokens/s of the small preset with tch
bench-ml: libtorch
	cd $(ML_ROOT) && $(ML_CARGO) bench -p autonet-ml --bench train_throughput

## bench-pytorch: the same model in PyTorch eager, in the same run, and the tch/pytorch ratio
bench-pytorch: libtorch
	@AUTONET_TORCH=cuda $(ML_ROOT)/script/setup-libtorch.sh >/dev/null
	cd $(ML_ROOT) && $(ML_CARGO) bench -p autonet-ml --bench train_throughput --no-run
	@cd $(ML_ROOT) && PYTORCH_PY="$$(AUTONET_TORCH=cuda script/setup-libtorch.sh --print-python)" bench/compare-ml.sh

## bench-generate: greedy generation bytes/s of the small preset: KV cache, full re-run, 8 streams (a model copy each, and batched), and PyTorch eager with a KV cache (1 stream, and 8 batched) in the same run
bench-generate: libtorch
	@AUTONET_TORCH=cuda $(ML_ROOT)/script/setup-libtorch.sh >/dev/null
	cd $(ML_ROOT) && $(ML_CARGO) bench -p autonet-ml --bench generate_throughput --no-run
	@cd $(ML_ROOT) && PYTORCH_PY="$$(AUTONET_TORCH=cuda script/setup-libtorch.sh --print-python)" bench/compare-generate.sh
