//! `autonet_protocol::consensus` is the `autonet-consensus` crate (`crates/consensus`, where the
//! algorithm and its tests live): the public paths callers use keep working, with the same `U256`.

use autonet_protocol::U256;
use autonet_protocol::consensus::{self, ConsensusParams, ConsensusResult, RewardSplit};

/// One coordinator that scores solver 0 at the target and solver 1 at zero, settled through the
/// re-exported paths: solver 0 is the consensus, the coordinator takes every dividend.
#[test]
fn reexported_paths_settle() {
    let e18 = 1_000_000_000_000_000_000u128;
    let settled = consensus::settle(
        U256::from(10_000u64),
        RewardSplit {
            solver_bps: 6000,
            coordinator_bps: 3000,
            proposer_bps: 500,
            aggregator_bps: 500,
        },
        &[U256::from(100u64)],
        &[[consensus::FULL_SCORE, 0]],
        &[[U256::ZERO; 2]],
        ConsensusParams::default(),
    )
    .expect("valid settlement");
    let result: &ConsensusResult = &settled.result;
    assert_eq!(result.consensus, vec![consensus::WAD, U256::ZERO]);
    assert_eq!(result.dividends, vec![U256::from(e18)]);
    assert_eq!(
        settled.payouts.spent + settled.payouts.aggregator_fee + settled.payouts.released,
        U256::from(10_000u64)
    );
}
