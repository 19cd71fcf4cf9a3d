# Stylus (Arbitrum, Rust → wasm) contracts: contracts/stylus/, a cargo workspace of its own with its own
# Cargo.lock, target/ and pinned toolchain (contracts/stylus/rust-toolchain.toml, honoured because every
# command runs from that directory). Included by the root Makefile (`-include mk/stylus.mk`); also usable
# alone: `make -f mk/stylus.mk stylus-test`.

STYLUS_DIR    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../contracts/stylus)
STYLUS_CARGO  ?= cargo
STYLUS_TARGET := wasm32-unknown-unknown
STYLUS_WASM   := $(STYLUS_DIR)/target/$(STYLUS_TARGET)/release/autonet_consensus_engine.wasm
STYLUS_ABI    := $(STYLUS_DIR)/consensus-engine/IConsensusEngine.sol

.PHONY: stylus-test stylus-wasm stylus-abi check-stylus-abi

stylus-test: ## Stylus consensus engine: native tests (shared vectors, properties, reverts) on the SDK TestVM
	cd $(STYLUS_DIR) && $(STYLUS_CARGO) test --locked

stylus-wasm: ## Stylus consensus engine: release wasm build (adds the wasm32 target if missing), checks it, prints its size
	cd $(STYLUS_DIR) && { rustup target list --installed | grep -qx '$(STYLUS_TARGET)' || rustup target add $(STYLUS_TARGET); }
	cd $(STYLUS_DIR) && $(STYLUS_CARGO) build --locked --release --target $(STYLUS_TARGET) --lib -p autonet-consensus-engine
	@echo "stylus-wasm: $(STYLUS_WASM): $$(wc -c < $(STYLUS_WASM)) bytes raw, $$(gzip -9 -c $(STYLUS_WASM) | wc -c) gzip -9"
	cd $(STYLUS_DIR) && $(STYLUS_CARGO) run --locked -q --release -p autonet-stylus-wasm-check -- $(STYLUS_WASM)

stylus-abi: ## Stylus consensus engine: regenerate the exported Solidity interface IConsensusEngine.sol
	cd $(STYLUS_DIR) && $(STYLUS_CARGO) run --locked -q -p autonet-consensus-engine --features export-abi --bin autonet-consensus-engine > $(STYLUS_ABI).tmp
	mv $(STYLUS_ABI).tmp $(STYLUS_ABI)
	@echo "stylus-abi: wrote $(STYLUS_ABI)"

check-stylus-abi: ## Stylus consensus engine: fail if the committed IConsensusEngine.sol differs from a fresh export
	@tmp=$$(mktemp); \
	(cd $(STYLUS_DIR) && $(STYLUS_CARGO) run --locked -q -p autonet-consensus-engine --features export-abi --bin autonet-consensus-engine) > $$tmp || { rm -f $$tmp; exit 1; }; \
	if ! diff -u $(STYLUS_ABI) $$tmp; then rm -f $$tmp; \
	  echo "check-stylus-abi: $(STYLUS_ABI) is out of date: run 'make stylus-abi' and commit" >&2; exit 1; fi; \
	rm -f $$tmp; echo "check-stylus-abi: IConsensusEngine.sol up to date"
