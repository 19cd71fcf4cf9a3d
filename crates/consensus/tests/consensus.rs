//! Hand-computed consensus and payout cases (the same as `test/YumaConsensus.t.sol`), input
//! checks, and properties: bounded sums, coordinator-permutation invariance, stake-scale
//! invariance, payouts never above the reward, and agreement with an independent re-derivation
//! of `docs/consensus.md` (sorted weighted quantile instead of the contract's candidate loop).

use autonet_consensus::{
    self as consensus, ConsensusError, ConsensusParams, ConsensusResult, DEFAULT_ALPHA,
    DEFAULT_KAPPA, RewardSplit, U256, WAD,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn u(x: u128) -> U256 {
    U256::from(x)
}

fn us(v: &[u128]) -> Vec<U256> {
    v.iter().map(|&x| u(x)).collect()
}

fn zeros(n: usize, m: usize) -> Vec<Vec<U256>> {
    vec![vec![U256::ZERO; m]; n]
}

fn params(kappa: u128, alpha: u128) -> ConsensusParams {
    ConsensusParams::new(u(kappa), u(alpha)).expect("valid params")
}

fn run(
    stakes: &[u128],
    scores: &[Vec<u16>],
    prev: &[Vec<U256>],
    p: ConsensusParams,
) -> ConsensusResult {
    consensus::compute(&us(stakes), scores, prev, p).expect("valid input")
}

const E18: u128 = 1_000_000_000_000_000_000;

// ------------------------------------------------------------------ hand-computed cases

/// One coordinator, scores (3, 1): S = [1]; W = C = [.75, .25]; I = W; ΔBn = [1, 1], B = 0 ⇒
/// B' = α = [.1, .1]; D = [1].
#[test]
fn single_coordinator() {
    let r = run(
        &[100],
        &[vec![3, 1]],
        &zeros(1, 2),
        ConsensusParams::default(),
    );
    assert_eq!(
        r.consensus,
        us(&[750_000_000_000_000_000, 250_000_000_000_000_000])
    );
    assert_eq!(
        r.incentive,
        us(&[750_000_000_000_000_000, 250_000_000_000_000_000])
    );
    assert_eq!(r.bonds, vec![us(&[E18 / 10, E18 / 10])]);
    assert_eq!(r.dividends, us(&[E18]));
}

/// Two equal coordinators that disagree completely: exactly κ = half of the stake is not more
/// than κ, so neither sets a column (review finding L-1: with `≥ κ` each half set its own column
/// and a self-scoring coordinator's Sybil took half the pool): C = 0, I = 0, B' = 0, D = 0.
#[test]
fn split_disagreement_exact_kappa_sets_nothing() {
    let r = run(
        &[1, 1],
        &[vec![1, 0], vec![0, 1]],
        &zeros(2, 2),
        ConsensusParams::default(),
    );
    assert_eq!(r.consensus, us(&[0, 0]));
    assert_eq!(r.incentive, us(&[0, 0]));
    assert_eq!(r.dividends, us(&[0, 0]));
    assert_eq!(r.bonds, vec![us(&[0, 0]), us(&[0, 0])]);
    // One unit more of stake behind a value sets it.
    let r = run(
        &[2, 1],
        &[vec![1, 0], vec![0, 1]],
        &zeros(2, 2),
        ConsensusParams::default(),
    );
    assert_eq!(r.consensus, us(&[E18, 0]));
}

/// Stakes (2, 1, 1), rows (1, 1), (1, 1), (0, 2): the deviator's 1 is clipped to C = .5;
/// I = [3/7, 4/7] floored; the deviator earns the smallest dividend, without slashing.
#[test]
fn majority_clips_deviator() {
    let r = run(
        &[2, 1, 1],
        &[vec![1, 1], vec![1, 1], vec![0, 2]],
        &zeros(3, 2),
        ConsensusParams::default(),
    );
    assert_eq!(r.consensus, us(&[E18 / 2, E18 / 2]));
    assert_eq!(
        r.incentive,
        us(&[428_571_428_571_428_571, 571_428_571_428_571_428])
    );
    assert_eq!(
        r.bonds,
        vec![
            us(&[66_666_666_666_666_666, 50_000_000_000_000_000]),
            us(&[33_333_333_333_333_333, 25_000_000_000_000_000]),
            us(&[0, 25_000_000_000_000_000]),
        ]
    );
    assert_eq!(
        r.dividends,
        us(&[
            571_428_571_428_571_431,
            285_714_285_714_285_715,
            142_857_142_857_142_852
        ])
    );
}

/// Previous bonds column (.3, .1) normalizes to (.75, .25); fresh ΔBn = (.5, .5):
/// B' = .1·.5 + .9·.75 = .725 and .1·.5 + .9·.25 = .275.
#[test]
fn previous_bonds_decay_towards_new_weights() {
    let mut prev = zeros(2, 2);
    prev[0][0] = u(3 * E18 / 10);
    prev[1][0] = u(E18 / 10);
    let r = run(
        &[1, 1],
        &[vec![1, 1], vec![1, 1]],
        &prev,
        ConsensusParams::default(),
    );
    assert_eq!(r.bonds[0][0], u(725_000_000_000_000_000));
    assert_eq!(r.bonds[1][0], u(275_000_000_000_000_000));
    assert!(r.dividends[0] > r.dividends[1]);
}

#[test]
fn all_zero_scores_give_nothing() {
    let r = run(
        &[5, 7],
        &[vec![0, 0], vec![0, 0]],
        &zeros(2, 2),
        ConsensusParams::default(),
    );
    assert_eq!(r.consensus, us(&[0, 0]));
    assert_eq!(r.incentive, us(&[0, 0]));
    assert_eq!(r.dividends, us(&[0, 0]));
}

#[test]
fn zero_total_stake_gives_nothing() {
    let r = run(
        &[0, 0],
        &[vec![1, 2], vec![2, 1]],
        &zeros(2, 2),
        ConsensusParams::default(),
    );
    assert_eq!(r.consensus, us(&[0, 0]));
    assert_eq!(r.incentive, us(&[0, 0]));
}

/// κ over all coordinator stake (`Rewards._effectiveKappa`): three honest voters of 1,000 and
/// thirteen coalition voters of 600 hold the seats, but 20,800 is staked in all (honest stake
/// spread over more accounts than seats). The coalition's 7,800 is the voters' majority but
/// not more than half of all stake, so its value for its own solver is not the consensus.
#[test]
fn kappa_over_all_coordinator_stake_stops_a_minority_that_holds_the_seats() {
    let e18 = u(E18);
    let mut stakes = vec![u(1000) * e18; 3];
    stakes.extend(vec![u(600) * e18; 13]);
    let mut scores = vec![vec![65535u16, 0]; 3];
    scores.extend(vec![vec![0u16, 65535]; 13]);
    let prev = zeros(16, 2);
    let plain = consensus::compute(&stakes, &scores, &prev, ConsensusParams::default()).unwrap();
    assert_eq!(
        plain.consensus[1],
        u(E18),
        "over the voters alone the coalition wins"
    );
    let params = ConsensusParams::default()
        .for_task(&stakes, u(20_800) * e18)
        .unwrap();
    // ⌈0.5 · 20,800 / 10,800⌉ in 1e18 units.
    assert_eq!(params.kappa(), u(962_962_962_962_962_963));
    let r = consensus::compute(&stakes, &scores, &prev, params).unwrap();
    assert_eq!(r.consensus, us(&[0, 0]));
    // Every coordinator staked and voting: κ is unchanged.
    let same = ConsensusParams::default()
        .for_task(&stakes, u(10_800) * e18)
        .unwrap();
    assert_eq!(same, ConsensusParams::default());
}

/// κ = 0.95 takes the column minimum here, κ = 1 nothing (no value has more than all the stake
/// behind it), κ = 0 the maximum.
#[test]
fn kappa_extremes() {
    let scores = [vec![3, 1], vec![1, 3]];
    let r = run(
        &[9, 1],
        &scores,
        &zeros(2, 2),
        params(E18 / 100 * 95, E18 / 10),
    );
    assert_eq!(r.consensus, us(&[E18 / 4, E18 / 4]));
    let r = run(&[9, 1], &scores, &zeros(2, 2), params(E18, E18 / 10));
    assert_eq!(r.consensus, us(&[0, 0]));
    let r = run(&[9, 1], &scores, &zeros(2, 2), params(0, E18 / 10));
    assert_eq!(r.consensus, us(&[3 * E18 / 4, 3 * E18 / 4]));
}

// ------------------------------------------------------------------ payouts by hand

fn split(s: u16, c: u16, p: u16, a: u16) -> RewardSplit {
    RewardSplit {
        solver_bps: s,
        coordinator_bps: c,
        proposer_bps: p,
        aggregator_bps: a,
    }
}

const FULL: u16 = consensus::FULL_SCORE;

/// The majority case with reward 1,000,000 and split 60/30/5/5 (rows weighted as the hand case
/// [1, 1], [1, 1], [0, 2]; the majority scores both solvers at the target, so the whole pool is
/// earned): pools 600000 / 300000 / 50000 / 50000; solvers ⌊600000·3/7⌋ = 257142,
/// ⌊600000·4/7⌋ = 342857; coordinators ⌊300000·D⌋ = 171428, 85714, 42857;
/// spent = 599999 + 299999 + 50000 = 949998; released = 1000000 − 949998 − 50000 = 2 (dust back to
/// the project).
#[test]
fn payouts_majority_case() {
    let stakes = us(&[2, 1, 1]);
    let scores = [vec![FULL, FULL], vec![FULL, FULL], vec![0, FULL]];
    let r = consensus::compute(&stakes, &scores, &zeros(3, 2), ConsensusParams::default()).unwrap();
    let p = consensus::payouts(
        u(1_000_000),
        split(6000, 3000, 500, 500),
        &stakes,
        &scores,
        ConsensusParams::default(),
        &r,
    )
    .unwrap();
    assert_eq!(p.top_score, FULL);
    assert_eq!(p.solver_pool, u(600_000));
    assert_eq!(p.solver_pool_earned, u(600_000));
    assert_eq!(p.coordinator_pool, u(300_000));
    assert_eq!(p.proposer_fee, u(50_000));
    assert_eq!(p.aggregator_fee, u(50_000));
    assert_eq!(p.solver_amounts, us(&[257_142, 342_857]));
    assert_eq!(p.coordinator_weights, r.dividends);
    assert_eq!(p.coordinator_amounts, us(&[171_428, 85_714, 42_857]));
    assert_eq!(p.solvers_paid, u(599_999));
    assert_eq!(p.coordinators_paid, u(299_999));
    assert_eq!(p.spent, u(949_998));
    assert_eq!(p.released, u(2));
}

/// Every score zero: no incentive, no dividends, so coordinators are paid by stake
/// (5/12 and 7/12 of 300000, floored through 1e18 weights: 124999 and 174999); the unearned
/// solver pool goes back: released = 1000000 − (299998 + 50000) − 50000 = 600002.
#[test]
fn payouts_all_zero_scores_pay_coordinators_by_stake() {
    let stakes = us(&[5, 7]);
    let r = consensus::compute(
        &stakes,
        &[vec![0u16, 0], vec![0, 0]],
        &zeros(2, 2),
        ConsensusParams::default(),
    )
    .unwrap();
    let scores = [vec![0u16, 0], vec![0, 0]];
    let p = consensus::payouts(
        u(1_000_000),
        split(6000, 3000, 500, 500),
        &stakes,
        &scores,
        ConsensusParams::default(),
        &r,
    )
    .unwrap();
    assert_eq!(p.top_score, 0);
    assert_eq!(p.solver_pool_earned, U256::ZERO);
    assert_eq!(p.solver_amounts, us(&[0, 0]));
    assert_eq!(
        p.coordinator_weights,
        us(&[416_666_666_666_666_666, 583_333_333_333_333_333])
    );
    assert_eq!(p.coordinator_amounts, us(&[124_999, 174_999]));
    assert_eq!(p.spent, u(349_998));
    assert_eq!(p.released, u(600_002));
}

/// Two coordinators that back nothing in common (exactly half each): no consensus, no dividend, and
/// neither scored all zero, so nobody is paid for scores nobody backed; everything but the fees is
/// released.
#[test]
fn payouts_unbacked_scores_earn_nothing() {
    let stakes = us(&[5, 5]);
    let scores = [vec![1u16, 0], vec![0, 1]];
    let r = consensus::compute(&stakes, &scores, &zeros(2, 2), ConsensusParams::default()).unwrap();
    let p = consensus::payouts(
        u(1_000_000),
        split(6000, 3000, 500, 500),
        &stakes,
        &scores,
        ConsensusParams::default(),
        &r,
    )
    .unwrap();
    assert_eq!(p.top_score, 0, "exactly half is not more than κ");
    assert_eq!(p.coordinator_amounts, us(&[0, 0]));
    assert_eq!(p.solver_amounts, us(&[0, 0]));
    assert_eq!(p.released, u(900_000));
}

/// No stake at all: nobody is paid but the proposer; everything else is released.
#[test]
fn payouts_zero_stake_release_all_but_fees() {
    let stakes = us(&[0, 0]);
    let r = consensus::compute(
        &stakes,
        &[vec![1u16, 2], vec![2, 1]],
        &zeros(2, 2),
        ConsensusParams::default(),
    )
    .unwrap();
    let scores = [vec![1u16, 2], vec![2, 1]];
    let p = consensus::payouts(
        u(10_000),
        split(7000, 2000, 600, 400),
        &stakes,
        &scores,
        ConsensusParams::default(),
        &r,
    )
    .unwrap();
    assert_eq!(p.top_score, 0);
    assert_eq!(p.coordinator_amounts, us(&[0, 0]));
    assert_eq!(p.spent, u(600));
    assert_eq!(p.aggregator_fee, u(400));
    assert_eq!(p.released, u(9_000));
}

#[test]
fn settle_runs_both() {
    let s = consensus::settle(
        u(1_000_000),
        split(6000, 3000, 500, 500),
        &us(&[2, 1, 1]),
        &[vec![FULL, FULL], vec![FULL, FULL], vec![0, FULL]],
        &zeros(3, 2),
        ConsensusParams::default(),
    )
    .unwrap();
    assert_eq!(s.payouts.released, u(2));
    assert_eq!(s.result.consensus, us(&[E18 / 2, E18 / 2]));
}

// ------------------------------------------------------------------ S-1: absolute improvement

/// `test_S1_smallImprovementPaysAFractionOfThePoolAndReleasesTheRest` of test/Rewards.t.sol:
/// three equal coordinators score solver 0 at 10% of the target (6554) and solver 1 at 5%; reward
/// 1000 ATN, split 70/15/5/10: ⌊700e18 · 6554 / 65535⌋ = 70005340657663843747 is earned, split
/// 2:1, and the rest of the solver pool is released.
#[test]
fn payouts_small_improvement_earn_a_fraction_of_the_pool() {
    let e18 = u(E18);
    let stakes = vec![u(1000) * e18; 3];
    let scores = vec![vec![6554u16, 3277, 0]; 3];
    let s = consensus::settle(
        u(1000) * e18,
        split(7000, 1500, 500, 1000),
        &stakes,
        &scores,
        &zeros(3, 3),
        ConsensusParams::default(),
    )
    .unwrap();
    let p = &s.payouts;
    assert_eq!(p.top_score, 6554);
    assert_eq!(p.solver_pool, u(700) * e18);
    assert_eq!(p.solver_pool_earned, u(70_005_340_657_663_843_747));
    assert!(p.solvers_paid <= p.solver_pool_earned);
    assert!(p.solver_pool_earned - p.solvers_paid < u(1000));
    assert_eq!(
        p.released,
        u(1000) * e18 - p.solvers_paid - p.coordinators_paid - p.proposer_fee - p.aggregator_fee
    );
    assert!(p.released >= p.solver_pool - p.solver_pool_earned);
}

/// The top score is the highest value with more than κ of the voting stake behind it on one
/// solver: a minority's generous score does not count, a majority's does, ties at exactly κ do
/// not, zero-stake rows never propose a value, and κ over all coordinator stake
/// ([`ConsensusParams::for_task`]) can leave nothing backed.
#[test]
fn top_score_is_the_best_backed_score() {
    let p = ConsensusParams::default();
    let top = |stakes: &[u128], scores: &[Vec<u16>]| {
        consensus::top_score(&us(stakes), scores, p).expect("valid input")
    };
    // Majority 6554 on solver 0, minority 65535 on solver 2.
    let rows = [vec![6554u16, 0, 0], vec![6554, 0, 0], vec![0, 0, FULL]];
    assert_eq!(top(&[1, 1, 1], &rows), 6554);
    // The same minority with more than half of the stake sets it.
    assert_eq!(top(&[1, 1, 3], &rows), FULL);
    // Exactly half is not more than κ = 0.5: with the stake split evenly, neither side is backed.
    assert_eq!(top(&[1, 1, 2], &rows), 0);
    assert_eq!(top(&[1, 1], &[vec![100u16], vec![0]]), 0);
    // Different values on one solver: the κ-quantile (300 has 2 of 3 behind it; 500 only 1).
    assert_eq!(top(&[1, 1, 1], &[vec![500u16], vec![300], vec![100]]), 300);
    // A zero-stake row counts for nothing and proposes nothing.
    assert_eq!(top(&[0, 1], &[vec![FULL], vec![10]]), 10);
    assert_eq!(top(&[0, 0], &[vec![FULL], vec![FULL]]), 0);
    // Voters holding a third of all coordinator stake back nothing under κ over all of it.
    let stakes = us(&[1, 1]);
    let wide = p.for_task(&stakes, u(6)).unwrap();
    assert_eq!(
        consensus::top_score(&stakes, &[vec![FULL], vec![FULL]], wide).unwrap(),
        0
    );
}

// ------------------------------------------------------------------ input checks

#[test]
fn rejects_malformed_input() {
    let p = ConsensusParams::default();
    let one = us(&[1]);
    let empty: [Vec<u16>; 0] = [];
    assert_eq!(
        consensus::compute(&[], &empty, &zeros(0, 0), p),
        Err(ConsensusError::NoCoordinators)
    );
    assert_eq!(
        consensus::compute(&one, &[Vec::<u16>::new()], &zeros(1, 0), p),
        Err(ConsensusError::NoSolvers)
    );
    assert_eq!(
        consensus::compute(&us(&[1; 17]), &vec![vec![1u16]; 17], &zeros(17, 1), p),
        Err(ConsensusError::TooManyCoordinators { got: 17, max: 16 })
    );
    assert_eq!(
        consensus::compute(&one, &[vec![1u16; 17]], &zeros(1, 17), p),
        Err(ConsensusError::TooManySolvers { got: 17, max: 16 })
    );
    assert_eq!(
        consensus::compute(&us(&[1, 1]), &[vec![1u16, 1]], &zeros(2, 2), p),
        Err(ConsensusError::ScoreRowCount {
            stakes: 2,
            scores: 1
        })
    );
    // Ragged both ways: a longer row (the bare library would ignore the extra entry) and a
    // shorter one (it would panic out of bounds); Rewards rejects both.
    assert_eq!(
        consensus::compute(
            &us(&[1, 1]),
            &[vec![1u16, 1], vec![1, 1, 1]],
            &zeros(2, 2),
            p
        ),
        Err(ConsensusError::RaggedScores {
            row: 1,
            got: 3,
            expected: 2
        })
    );
    assert_eq!(
        consensus::compute(&us(&[1, 1]), &[vec![1u16, 1], vec![1]], &zeros(2, 2), p),
        Err(ConsensusError::RaggedScores {
            row: 1,
            got: 1,
            expected: 2
        })
    );
    assert_eq!(
        consensus::compute(&us(&[1, 1]), &[vec![1u16, 1], vec![1, 1]], &zeros(1, 2), p),
        Err(ConsensusError::PrevBondsRowCount {
            got: 1,
            expected: 2
        })
    );
    assert_eq!(
        consensus::compute(
            &us(&[1, 1]),
            &[vec![1u16, 1], vec![1, 1]],
            &[us(&[0, 0]), us(&[0])],
            p
        ),
        Err(ConsensusError::RaggedPrevBonds {
            row: 1,
            got: 1,
            expected: 2
        })
    );
}

#[test]
fn rejects_invalid_params_like_set_consensus_params() {
    assert!(ConsensusParams::new(WAD + u(1), DEFAULT_ALPHA).is_err());
    assert!(ConsensusParams::new(DEFAULT_KAPPA, U256::ZERO).is_err());
    assert!(ConsensusParams::new(DEFAULT_KAPPA, WAD + u(1)).is_err());
    assert!(ConsensusParams::new(WAD, WAD).is_ok());
    assert!(ConsensusParams::new(U256::ZERO, u(1)).is_ok());
    assert_eq!(ConsensusParams::default(), params(E18 / 2, E18 / 10));
}

#[test]
fn overflow_is_an_error_like_the_solidity_panic() {
    // Σ stake overflows uint256.
    let r = consensus::compute(
        &[U256::MAX, u(1)],
        &[vec![1u16], vec![1]],
        &zeros(2, 1),
        ConsensusParams::default(),
    );
    assert!(matches!(r, Err(ConsensusError::Overflow { .. })), "{r:?}");
    // stake * 1e18 overflows (the documented bound Σ stake < 2^256 / 1e18).
    let r = consensus::compute(
        &[U256::MAX / u(10)],
        &[vec![1u16]],
        &zeros(1, 1),
        ConsensusParams::default(),
    );
    assert!(matches!(r, Err(ConsensusError::Overflow { .. })), "{r:?}");
}

#[test]
fn payouts_reject_what_the_chain_rejects() {
    let stakes = us(&[1]);
    let r = consensus::compute(
        &stakes,
        &[vec![1u16]],
        &zeros(1, 1),
        ConsensusParams::default(),
    )
    .unwrap();
    let p = ConsensusParams::default();
    assert_eq!(
        consensus::payouts(u(1), split(5000, 5000, 0, 1), &stakes, &[[1u16]], p, &r),
        Err(ConsensusError::InvalidSplit { sum_bps: 10_001 })
    );
    let big = U256::from(u128::MAX) + u(1);
    assert_eq!(
        consensus::payouts(big, split(5000, 5000, 0, 0), &stakes, &[[1u16]], p, &r),
        Err(ConsensusError::RewardTooLarge { reward: big })
    );
    assert_eq!(
        consensus::payouts(
            u(1),
            split(5000, 5000, 0, 0),
            &us(&[1, 2]),
            &[[1u16]],
            p,
            &r
        ),
        Err(ConsensusError::PayoutLengthMismatch {
            stakes: 2,
            dividends: 1
        })
    );
}

// ------------------------------------------------------------------ independent reference

/// `docs/consensus.md` re-derived: the κ-quantile by sorting the staked rows' weights in
/// descending order and taking the first (largest) value whose support (stake of all rows at or
/// above it, in raw stake) exceeds κ·T (T the total raw stake). Plain (unchecked)
/// arithmetic: callers keep inputs in range.
fn reference(
    stakes: &[U256],
    scores: &[Vec<u16>],
    prev: &[Vec<U256>],
    kappa: U256,
    alpha: U256,
) -> ConsensusResult {
    let n = stakes.len();
    let m = scores[0].len();
    let normalize = |v: &[U256]| -> Vec<U256> {
        let t: U256 = v.iter().copied().sum();
        v.iter()
            .map(|&x| if t.is_zero() { U256::ZERO } else { x * WAD / t })
            .collect()
    };
    let s = normalize(stakes);
    let w: Vec<Vec<U256>> = scores
        .iter()
        .map(|row| {
            let rs: u64 = row.iter().map(|&x| u64::from(x)).sum();
            row.iter()
                .map(|&x| {
                    if rs == 0 {
                        U256::ZERO
                    } else {
                        U256::from(x) * WAD / U256::from(rs)
                    }
                })
                .collect()
        })
        .collect();
    // Support and total in raw stake (a zero-stake row adds nothing to either).
    let total: U256 = stakes.iter().copied().sum();
    let c: Vec<U256> = (0..m)
        .map(|j| {
            let mut col: Vec<(U256, U256)> = (0..n)
                .filter(|&i| !stakes[i].is_zero())
                .map(|i| (w[i][j], stakes[i]))
                .collect();
            col.sort_by_key(|e| std::cmp::Reverse(e.0));
            let mut support = U256::ZERO;
            let mut idx = 0;
            while idx < col.len() {
                let v = col[idx].0;
                while idx < col.len() && col[idx].0 == v {
                    support += col[idx].1;
                    idx += 1;
                }
                if support * WAD > kappa * total {
                    return v;
                }
            }
            U256::ZERO
        })
        .collect();
    let wc: Vec<Vec<U256>> = w
        .iter()
        .map(|r| r.iter().zip(&c).map(|(&x, &cj)| x.min(cj)).collect())
        .collect();
    let rank: Vec<U256> = (0..m)
        .map(|j| (0..n).map(|i| s[i] * wc[i][j]).sum::<U256>() / WAD)
        .collect();
    let inc = normalize(&rank);
    let mut b = zeros(n, m);
    for j in 0..m {
        let db: Vec<U256> = (0..n).map(|i| s[i] * wc[i][j] / WAD).collect();
        let ds: U256 = db.iter().copied().sum();
        let ps: U256 = (0..n).map(|i| prev[i][j]).sum();
        for i in 0..n {
            let dn = if ds.is_zero() {
                U256::ZERO
            } else {
                db[i] * WAD / ds
            };
            let pn = if ps.is_zero() {
                U256::ZERO
            } else {
                prev[i][j] * WAD / ps
            };
            b[i][j] = (alpha * dn + (WAD - alpha) * pn) / WAD;
        }
    }
    let raw: Vec<U256> = (0..n)
        .map(|i| (0..m).map(|j| b[i][j] * inc[j]).sum::<U256>() / WAD)
        .collect();
    ConsensusResult {
        consensus: c,
        incentive: inc,
        dividends: normalize(&raw),
        bonds: b,
    }
}

// ------------------------------------------------------------------ properties

#[derive(Clone, Debug)]
struct Case {
    stakes: Vec<U256>,
    scores: Vec<Vec<u16>>,
    prev: Vec<Vec<U256>>,
    kappa: U256,
    alpha: U256,
    /// A permutation of the rows.
    perm: Vec<usize>,
}

fn stake() -> impl Strategy<Value = U256> {
    prop_oneof![1 => Just(U256::ZERO), 6 => (1u128..=10u128.pow(24)).prop_map(U256::from)]
}

fn score() -> impl Strategy<Value = u16> {
    prop_oneof![1 => Just(0u16), 3 => any::<u16>(), 1 => 0u16..4]
}

fn prev_bond() -> impl Strategy<Value = U256> {
    prop_oneof![1 => Just(U256::ZERO), 2 => (0..=E18).prop_map(U256::from)]
}

fn wad_fraction() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        Just(WAD / u(2)),
        Just(WAD),
        (0..=E18).prop_map(U256::from),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=16, 1usize..=16).prop_flat_map(|(n, m)| {
        (
            proptest::collection::vec(stake(), n),
            proptest::collection::vec(proptest::collection::vec(score(), m), n),
            proptest::collection::vec(proptest::collection::vec(prev_bond(), m), n),
            wad_fraction(),
            wad_fraction().prop_map(|a| a.max(u(1))),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(stakes, scores, prev, kappa, alpha, perm)| Case {
                stakes,
                scores,
                prev,
                kappa,
                alpha,
                perm,
            })
    })
}

fn split_strategy() -> impl Strategy<Value = RewardSplit> {
    (0u16..=10_000, 0u16..=10_000, 0u16..=10_000).prop_map(|(a, b, c)| {
        let mut cuts = [a, b, c];
        cuts.sort_unstable();
        split(
            cuts[0],
            cuts[1] - cuts[0],
            cuts[2] - cuts[1],
            10_000 - cuts[2],
        )
    })
}

fn compute(c: &Case) -> ConsensusResult {
    consensus::compute(
        &c.stakes,
        &c.scores,
        &c.prev,
        ConsensusParams::new(c.kappa, c.alpha).unwrap(),
    )
    .expect("generated input is valid")
}

fn sum(v: &[U256]) -> U256 {
    v.iter().copied().sum()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sums_are_bounded(c in case()) {
        let r = compute(&c);
        let (n, m) = (c.stakes.len(), c.scores[0].len());
        let si = sum(&r.incentive);
        let sd = sum(&r.dividends);
        prop_assert!(si <= WAD);
        prop_assert!(sd <= WAD);
        // Floors lose at most one unit per term when anything is positive.
        if !si.is_zero() { prop_assert!(si >= WAD - u(m as u128)); }
        if !sd.is_zero() { prop_assert!(sd >= WAD - u(n as u128)); }
        for j in 0..m {
            prop_assert!(r.consensus[j] <= WAD);
            let col: U256 = (0..n).map(|i| r.bonds[i][j]).sum();
            prop_assert!(col <= WAD);
        }
    }

    #[test]
    fn coordinator_order_does_not_matter(c in case()) {
        let r1 = compute(&c);
        let permuted = Case {
            stakes: c.perm.iter().map(|&k| c.stakes[k]).collect(),
            scores: c.perm.iter().map(|&k| c.scores[k].clone()).collect(),
            prev: c.perm.iter().map(|&k| c.prev[k].clone()).collect(),
            ..c.clone()
        };
        let r2 = compute(&permuted);
        prop_assert_eq!(&r1.consensus, &r2.consensus);
        prop_assert_eq!(&r1.incentive, &r2.incentive);
        for (new, &old) in c.perm.iter().enumerate() {
            prop_assert_eq!(r2.dividends[new], r1.dividends[old]);
            prop_assert_eq!(&r2.bonds[new], &r1.bonds[old]);
        }
    }

    #[test]
    fn stake_scale_does_not_change_shares(c in case(), k in 1u64..=1_000_000_000) {
        let r1 = compute(&c);
        let scaled = Case { stakes: c.stakes.iter().map(|&s| s * U256::from(k)).collect(), ..c.clone() };
        let r2 = compute(&scaled);
        prop_assert_eq!(r1.incentive, r2.incentive);
        prop_assert_eq!(r1.dividends, r2.dividends);
    }

    /// S-1: the top score equals a per-column re-derivation of `docs/consensus.md` (the κ-quantile
    /// of each solver's raw scores, then the maximum), and the solvers get the earned pool less at
    /// most the flooring of the m incentive shares.
    #[test]
    fn top_score_matches_reference_and_bounds_what_solvers_get(c in case(), reward in any::<u128>()) {
        let params = ConsensusParams::new(c.kappa, c.alpha).unwrap();
        let top = consensus::top_score(&c.stakes, &c.scores, params).unwrap();
        let total: U256 = c.stakes.iter().copied().sum();
        let m = c.scores[0].len();
        let mut want = 0u16;
        for j in 0..m {
            for (i, row) in c.scores.iter().enumerate() {
                let v = row[j];
                if c.stakes[i].is_zero() { continue; }
                let support: U256 = c.scores.iter().zip(&c.stakes)
                    .filter(|(r, _)| r[j] >= v).map(|(_, &s)| s).sum();
                if support * WAD > c.kappa * total { want = want.max(v); }
            }
        }
        prop_assert_eq!(top, want);
        let r = compute(&c);
        let p = consensus::payouts(U256::from(reward), split(7000, 1500, 500, 1000), &c.stakes, &c.scores, params, &r)
            .expect("valid payout input");
        prop_assert_eq!(p.top_score, top);
        let slack = p.solver_pool_earned * u(m as u128) / WAD + u(m as u128);
        // Σ I ≥ 1e18 − m whenever it is not zero, and each of the m payouts floors once.
        if !sum(&r.incentive).is_zero() {
            prop_assert!(p.solver_pool_earned - p.solvers_paid <= slack);
        }
    }

    #[test]
    fn matches_independent_reference(c in case()) {
        let r = compute(&c);
        prop_assert_eq!(r, reference(&c.stakes, &c.scores, &c.prev, c.kappa, c.alpha));
    }

    #[test]
    fn payouts_never_exceed_the_reward(c in case(), reward in any::<u128>(), sp in split_strategy()) {
        let r = compute(&c);
        let reward = U256::from(reward);
        let params = ConsensusParams::new(c.kappa, c.alpha).unwrap();
        let p = consensus::payouts(reward, sp, &c.stakes, &c.scores, params, &r)
            .expect("valid payout input");
        prop_assert!(p.spent + p.aggregator_fee <= reward);
        prop_assert_eq!(p.spent + p.aggregator_fee + p.released, reward);
        prop_assert!(p.solver_pool_earned <= p.solver_pool);
        prop_assert!(p.solvers_paid <= p.solver_pool_earned);
        prop_assert!(p.coordinators_paid <= p.coordinator_pool);
        prop_assert_eq!(p.solvers_paid, sum(&p.solver_amounts));
        prop_assert_eq!(p.coordinators_paid, sum(&p.coordinator_amounts));
        // Four floors of reward · bps / 10000 lose at most 3 units together.
        prop_assert!(p.solver_pool + p.coordinator_pool + p.proposer_fee + p.aggregator_fee + u(3) >= reward);
    }
}
