# Autonet — the single entry point.
#   make devnet        run the local network end to end
#   make test          run every test (installs what it needs)
# Everything else: `make help`.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN      := $(CURDIR)/node_modules/.bin
# The native binaries where npm installed them (looked up when used, after `setup`): the npm
# launchers in $(BIN) do not pass a tool's exit status on, so a failing `forge test` would pass.
native    = $(or $(firstword $(wildcard $(CURDIR)/node_modules/@foundry-rs/$(1)-*/bin/$(1))),$(BIN)/$(1))
FORGE     = $(call native,forge)
ANVIL     = $(call native,anvil)
CAST      = $(call native,cast)
# CI runs the heavier fuzz/invariant profile (see foundry.toml).
export FOUNDRY_PROFILE ?= $(if $(CI),ci,default)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export GIT_COMMIT

# ML toolchain (libtorch from the PyPI torch wheel, cached per user) and its targets.
-include mk/ml.mk
# Stylus contracts (their own cargo workspace under contracts/stylus) and their targets.
-include mk/stylus.mk

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort | column -t -s $$'\t'

## ---------------------------------------------------------------- setup

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: setup setup-node setup-browser
setup-node: node_modules/.installed

setup-browser: ## Debian's Chromium for the status-page browser tests
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

setup: setup-node libtorch ## install the toolchain (idempotent): Foundry, solc, OpenZeppelin, forge-std, libtorch
	@echo "setup: toolchain ready (forge $$($(FORGE) --version | head -1 | awk '{print $$3}'))"

## ---------------------------------------------------------------- contracts

.PHONY: build build-contracts
build-contracts: setup-node ## compile the contracts
	$(FORGE) build

build: build-contracts build-rust ## build contracts and Rust crates

.PHONY: abis check-abis
abis: build-contracts ## export abis/<Contract>.json from the compiled contracts
	node script/export-abis.mjs out abis

check-abis: build-contracts ## fail if the committed abis/ differ from the sources
	@tmp=$$(mktemp -d); node script/export-abis.mjs out $$tmp >/dev/null; \
	if ! diff -r -q abis $$tmp >/dev/null; then \
	  diff -r abis $$tmp | head -40; rm -rf $$tmp; \
	  echo "check-abis: abis/ is out of date with contracts/: run 'make abis' and commit" >&2; exit 1; fi; \
	rm -rf $$tmp; echo "check-abis: abis/ up to date"

.PHONY: sizes check-sizes
sizes: build-contracts ## rewrite the runtime-size table of every contract in docs/contracts.md
	node script/check-sizes.mjs --write

check-sizes: build-contracts ## fail if the size table in docs/contracts.md is stale or a contract is within 1 KiB of 24,576 bytes
	node script/check-sizes.mjs

.PHONY: test-contracts gas-snapshot
test-contracts: build-contracts ## forge tests (unit, fuzz, invariants, full rounds) with gas snapshots checked
	FORGE_SNAPSHOT_CHECK=true $(FORGE) test

gas-snapshot: build-contracts ## rewrite the committed gas snapshots (snapshots/*.json)
	rm -rf snapshots && $(FORGE) test --match-path 'test/integration/*' >/dev/null && ls snapshots

## ---------------------------------------------------------------- rust

.PHONY: build-rust test-rust lint-rust
# Release builds everywhere: one build of tch/torch-sys serves tests, examples and benches.
build-rust: libtorch ## build the Rust workspace
	cargo build --release --workspace --all-targets

PREFIX ?= $(HOME)/.local
.PHONY: install check-install
install: libtorch ## build `autonet` and install it as $(PREFIX)/bin/autonet (finds libtorch by its rpath: runs from any directory, no environment needed)
	cargo build --release -p autonet-node --bin autonet
	install -D -m 0755 target/release/autonet $(PREFIX)/bin/autonet
	@echo "installed $(PREFIX)/bin/autonet (add $(PREFIX)/bin to PATH)"

check-install: ## install into a scratch prefix, then run `autonet --help` from / with an empty environment (part of make test)
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory install PREFIX="$$tmp" >/dev/null; \
	(cd / && env -i "$$tmp/bin/autonet" --help >/dev/null); \
	echo "check-install: $$tmp/bin/autonet --help runs from / with no LD_LIBRARY_PATH"

test-rust: libtorch setup-node setup-browser wasm32-target ## run the Rust tests (CPU only; the x402 interop and status-page tests use node and Chromium, the cartridge tests build a wasm32 cartridge)
	cargo test --release --workspace

.PHONY: wasm32-target cartridge
wasm32-target: ## add rustup's wasm32-unknown-unknown target if missing (cartridges)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

cartridge: wasm32-target ## build the cartridge SDK's example cartridges for wasm32 (target/cartridges/wasm32-unknown-unknown/release/examples/*.wasm; a spec commits to a module's keccak256)
	CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true cargo build --release -p autonet-cartridge-sdk --examples --target wasm32-unknown-unknown --target-dir target/cartridges
	@ls -l target/cartridges/wasm32-unknown-unknown/release/examples/*.wasm

lint-rust: libtorch ## rustfmt check + clippy -D warnings
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

## ---------------------------------------------------------------- deploy

ROUNDS ?= 3
PRESET ?= small
DRAFT_ROUNDS ?= 3
KIND_ROUNDS ?= 2
AUTONET := $(or $(CARGO_TARGET_DIR),target)/release/autonet

# Built with cargo's progress visible: the first build compiles a few hundred crates.
.PHONY: build-autonet
build-autonet: libtorch
	@test -x $(AUTONET) || echo "build-autonet: compiling autonet (release); a first build takes 10-15 minutes on 2 cores"
	cargo build --release -p autonet-node --bin autonet

.PHONY: devnet
devnet: setup build-contracts build-autonet cartridge ## local network doing real training rounds with agent processes, then a tiny draft project for speculative decoding, then the world-model substrate task kind as a WASM cartridge (ROUNDS=3 PRESET=small DRAFT_ROUNDS=3 KIND_ROUNDS=2, 0 for none; KEEP_RUNNING=1 MAX_STALENESS=1 for pipelined rounds)
	$(AUTONET) devnet --rounds $(ROUNDS) --preset $(PRESET) --draft-rounds $(DRAFT_ROUNDS) $(if $(filter-out 0,$(KIND_ROUNDS)),--task-kind substrate --kind-rounds $(KIND_ROUNDS)) $(if $(filter 1,$(KEEP_RUNNING)),--keep-running) $(if $(MAX_STALENESS),--max-staleness $(MAX_STALENESS))

.PHONY: check-devnet
check-devnet: setup setup-browser build-contracts build-autonet cartridge ## two rounds of the tiny model through `autonet devnet` (the first survives an anvil_reorg of its ground-truth reveal; rounds pipelined), then one round of a tiny draft project and speculative decoding on the inference node, then two rounds of the world-model substrate as a WASM cartridge task kind, then paid inference: the official x402 client, refused payments, the status page in Chromium (part of make test)
	$(AUTONET) devnet --rounds 2 --preset tiny --chain-id 31990 --dir .devnet/check --max-staleness 1 --check-payments --check-status-page --check-no-leaks --check-reorg --draft-rounds 1 --task-kind substrate --kind-rounds 2

.PHONY: check-devnet-attack
check-devnet-attack: setup build-contracts build-autonet ## two rounds of the tiny model with one of three solvers a copier (`--attack copier:1`) and DiLoCo's outer Nesterov step (`--outer nesterov`, its momentum buffer published and verified inside every model): the loss must fall and the copier earn at most 10% of an honest solver (part of make test)
	$(AUTONET) devnet --rounds 2 --preset tiny --chain-id 31992 --dir .devnet/attack --attack copier:1 --outer nesterov

.PHONY: check-devnet-netns
check-devnet-netns: setup build-contracts build-autonet ## two rounds of the tiny model with every agent in its own network namespace and address (needs root; says so and does nothing otherwise; part of make test)
	@if $(AUTONET) devnet --help >/dev/null && [ "$$(id -u)" = 0 ] && ip netns add autonet-make-probe 2>/dev/null; then \
	  ip netns del autonet-make-probe; \
	  $(AUTONET) devnet --rounds 2 --preset tiny --chain-id 31991 --dir .devnet/netns --netns; \
	else \
	  echo "check-devnet-netns: NOT RUN: network namespaces need root and iproute2 (ip netns) on this machine"; \
	fi

.PHONY: bench-inference
bench-inference: setup build-contracts build-autonet ## one round of the small model, then requests/s and latency of paid / unpaid, cached / uncached inference
	$(AUTONET) devnet --rounds 1 --preset small --chain-id 31991 --dir .devnet/bench --bench-inference $(or $(N),30)

.PHONY: bench-concurrent
bench-concurrent: libtorch ## the inference node's generation layer: 1 and 8 concurrent greedy streams of the small model, one model copy per core against batched decoding (--batch-slots)
	cargo bench -p autonet-inference --bench concurrent_generate

.PHONY: rehearse-testnet
rehearse-testnet: setup build-contracts ## the testnet runbook (make deploy, verify, first governance proposal, integrity) on an anvil with chain id 421614 (part of make test)
	cargo build --release --quiet -p autonet-node --bin autonet
	script/rehearse-testnet.sh

.PHONY: devnet-forge
devnet-forge: build-contracts ## protocol rounds driven by forge scripts with fixed artefacts (gas per phase; no agents)
	script/devnet.sh

.PHONY: deploy-local stop-local check-deploy-local deploy
deploy-local: build-contracts ## start anvil on a free loopback port and deploy everything (leaves anvil running)
	script/deploy-local.sh

check-deploy-local: build-contracts ## deploy to a throwaway anvil and check every address answers cast call
	script/deploy-local.sh --check

stop-local: ## stop the anvil started by deploy-local
	script/deploy-local.sh --stop

deploy: build-contracts ## deploy to RPC_URL with PRIVATE_KEY (or KEYSTORE/ACCOUNT); writes deployments/<chainId>.json
	@test -n "$${RPC_URL:-}" || { echo "deploy: set RPC_URL (and PRIVATE_KEY, or ACCOUNT for a cast keystore)" >&2; exit 1; }
	$(FORGE) script script/Deploy.s.sol:Deploy --rpc-url "$$RPC_URL" --broadcast \
	  $$( [ -n "$${ACCOUNT:-}" ] && echo --account "$$ACCOUNT" || echo --private-key "$${PRIVATE_KEY:?set PRIVATE_KEY or ACCOUNT}" ) \
	  $${FORGE_DEPLOY_FLAGS:-}

## ---------------------------------------------------------------- analysis

SLITHER_VENV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/autonet/slither-0.11.6
.PHONY: slither
slither: setup-node ## static analysis of the contracts (slither 0.11.6 in a cached venv)
	@test -x $(SLITHER_VENV)/bin/slither || { python3 -m venv $(SLITHER_VENV) && $(SLITHER_VENV)/bin/pip install -q slither-analyzer==0.11.6; }
	PATH=$(BIN):$$PATH $(SLITHER_VENV)/bin/slither . --config-file slither.config.json

## ---------------------------------------------------------------- all

.PHONY: test
.PHONY: test-stylus
test-stylus: stylus-test check-stylus-abi stylus-wasm ## the Stylus consensus engine: native tests, exported ABI up to date, wasm builds and passes the activation checks

test: setup check-abis check-sizes test-contracts check-deploy-local check-devnet check-devnet-attack check-devnet-netns rehearse-testnet lint-rust test-rust check-install test-stylus ## run every test
	@echo "make test: all suites passed"
