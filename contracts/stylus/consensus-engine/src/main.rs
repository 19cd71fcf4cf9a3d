//! The export binary: `cargo run -p autonet-consensus-engine --features export-abi` prints the
//! contract's Solidity interface with this project's license and pragma (`make stylus-abi` writes it
//! to `IConsensusEngine.sol`). `cargo stylus export-abi` runs it the same way with the argument
//! `abi`, and with `constructor` to ask for the constructor signature (there is none: it prints
//! nothing).

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]

#[cfg(feature = "export-abi")]
fn main() {
    use stylus_sdk::abi::export::{print_from_args, print_license_and_pragma};
    if std::env::args().nth(1).as_deref() != Some("constructor") {
        print_license_and_pragma("Apache-2.0", "pragma solidity ^0.8.24;");
    }
    print_from_args::<autonet_consensus_engine::ConsensusEngine>();
}
