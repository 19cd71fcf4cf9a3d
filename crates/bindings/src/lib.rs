//! Rust bindings for the Autonet contracts.
//!
//! This crate owns four things: the `alloy::sol!` bindings generated from the committed
//! `abis/*.json` (exported by `make abis`, never hand-written), the `deployments/<chainId>.json`
//! format written by `script/Deploy.s.sol`, the decoding of revert data into custom error
//! names, and one Rust enum per on-chain enum (`enums`, checked against the Solidity sources). It must not open connections, hold keys or carry protocol logic: providers, retries and
//! transaction helpers live in `autonet-chain`.

#![warn(missing_docs)]

pub mod contracts;
pub mod deployment;
pub mod enums;
pub mod revert;

pub use contracts::*;
pub use deployment::{Contracts, Deployment, DeploymentError};
pub use revert::{DecodedRevert, decode_revert};
