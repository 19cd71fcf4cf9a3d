//! The consensus arithmetic as the contract calls it: [`autonet_consensus`] (`crates/consensus`,
//! the one Rust home of `YumaConsensus.compute`, also behind `autonet_protocol::consensus`) with κ
//! and α taken as the raw calldata words.
//!
//! `autonet-consensus` is `no_std` + `alloc` with no SDK dependency, so native tests and other Rust code can
//! call [`compute`] directly; it is bit-identical to `contracts/libraries/YumaConsensus.sol` on the
//! shared vectors `test/vectors/consensus/*.json`. Where the Solidity reverts with `Panic(0x11)`,
//! it returns [`ConsensusError::Overflow`] (and the contract reverts with that same `Panic(0x11)`).
//!
//! # Input checks
//!
//! The Solidity library is only reached through `Rewards.settleTask`, which first rejects malformed
//! settlements (`_checkSettlement`) and whose κ, α always satisfy `Rewards.setConsensusParams`. A
//! Stylus contract can be called by anyone, so [`compute`] applies those checks itself, in this
//! order: at least one and at most [`MAX_COORDINATORS_PER_TASK`] coordinators, one score row per
//! stake, at least one and at most [`MAX_SOLVERS_PER_TASK`] solvers (the first row's length), every
//! score row of that length, previous bonds exactly `n × m` ([`autonet_consensus::check_shape`]),
//! and then `κ ≤ 1e18`, `0 < α ≤ 1e18` ([`ConsensusParams::new`]).

use alloc::vec::Vec;

use alloy_primitives::U256;
use autonet_consensus::{check_shape, ConsensusParams};

/// Outputs of one consensus run ([`autonet_consensus::ConsensusResult`]; the contract's ABI struct
/// is the `ConsensusResult` of the crate root).
pub use autonet_consensus::ConsensusResult as ConsensusOutput;
pub use autonet_consensus::{ConsensusError, MAX_COORDINATORS_PER_TASK, MAX_SOLVERS_PER_TASK, WAD};

/// `YumaConsensus.compute(stakes, scores, prevBonds, kappa, alpha)` after the input checks listed in
/// the module documentation.
///
/// `stakes[i]` is coordinator i's raw stake, `scores[i]` its score row over the m solvers,
/// `prev_bonds[i][j]` its previous bond on solver j (1e18 = 1.0, 0 when none).
pub fn compute(
    stakes: &[U256],
    scores: &[Vec<u16>],
    prev_bonds: &[Vec<U256>],
    kappa: U256,
    alpha: U256,
) -> Result<ConsensusOutput, ConsensusError> {
    check_shape(stakes, scores, prev_bonds)?;
    let params = ConsensusParams::new(kappa, alpha)?;
    autonet_consensus::compute(stakes, scores, prev_bonds, params)
}
