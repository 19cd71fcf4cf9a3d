//! Protocol rules shared by every Autonet role and crate: the pure, I/O-free definitions that
//! must agree bit for bit with the contracts. Nothing here touches the network, the disk, the
//! chain or a random number generator; callers bring salts, stakes and stored bonds as inputs.
//!
//! - [`merkle`]: the single Merkle rule (keccak256 leaves with index, sorted pairs).
//! - [`commitments`]: the commit-reveal hashes `TaskManager` checks (ground truth, solution,
//!   vote).
//! - [`consensus`]: the Yuma consensus of one task and the payout split of its settlement, as
//!   `YumaConsensus.sol` and `Rewards.settleTask` compute them: the `autonet-consensus` crate
//!   (`crates/consensus`, shared with the Stylus consensus engine), re-exported.
//! - [`task`]: a task's `specHash` and the seeds of its training and evaluation windows.
//! - [`scores`]: a coordinator's scores of a task's solvers from its evaluation losses.
//! - [`units`]: ATN amounts as exact decimal strings.
#![warn(missing_docs)]

pub mod commitments;
pub mod merkle;
pub mod scores;
pub mod task;
pub mod units;

pub use autonet_consensus as consensus;

pub use alloy_primitives::{Address, B256, U256};
