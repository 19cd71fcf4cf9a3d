//! Properties of the consensus that hold exactly (not just approximately) under the 1e18 floor
//! arithmetic, on a few hand-checked inputs and on reproducible random inputs of every size up to
//! the 16 × 16 cap. Each compares two independent computations, so any arithmetic slip shows up.

mod common;

use alloy_primitives::U256;
use autonet_consensus_engine::math::{self, ConsensusOutput};
use common::{call_compute, Input, Rng, WAD};

const CASES: usize = 300;

fn sum(v: &[U256]) -> U256 {
    v.iter().fold(U256::ZERO, |a, &b| a + b)
}

fn u(x: u64) -> U256 {
    U256::from(x)
}

/// `W[i][j]` computed directly (score * 1e18 / row sum, floor), independently of the engine.
fn row_weights(scores: &[Vec<u16>]) -> Vec<Vec<U256>> {
    scores
        .iter()
        .map(|row| {
            let total = row.iter().fold(U256::ZERO, |a, &b| a + U256::from(b));
            row.iter()
                .map(|&x| {
                    if total.is_zero() {
                        U256::ZERO
                    } else {
                        U256::from(x) * WAD / total
                    }
                })
                .collect()
        })
        .collect()
}

fn check_bounds(input: &Input, out: &ConsensusOutput) {
    let n = input.stakes.len();
    let m = input.scores[0].len();
    assert_eq!(out.consensus.len(), m);
    assert_eq!(out.incentive.len(), m);
    assert_eq!(out.dividends.len(), n);
    assert_eq!(out.bonds.len(), n);
    assert!(out.bonds.iter().all(|r| r.len() == m));

    assert!(out.consensus.iter().all(|&c| c <= WAD), "C > 1: {input:?}");
    let si = sum(&out.incentive);
    let sd = sum(&out.dividends);
    assert!(si <= WAD, "Σ I = {si} > 1e18: {input:?}");
    assert!(sd <= WAD, "Σ D = {sd} > 1e18: {input:?}");
    // Normalization loses less than 1 wei per entry: a non-zero vector sums to more than 1e18 − len.
    if !si.is_zero() {
        assert!(si > WAD - u(m as u64), "Σ I = {si} too small: {input:?}");
    }
    if !sd.is_zero() {
        assert!(sd > WAD - u(n as u64), "Σ D = {sd} too small: {input:?}");
    }
    for j in 0..m {
        let col = out.bonds.iter().fold(U256::ZERO, |a, r| a + r[j]);
        assert!(col <= WAD, "bond column {j} sums to {col}: {input:?}");
    }
    // Zero stake everywhere: nothing is earned.
    if input.stakes.iter().all(|s| s.is_zero()) {
        assert!(out.consensus.iter().all(|c| c.is_zero()));
        assert!(out.incentive.iter().all(|c| c.is_zero()));
    }
}

#[test]
fn outputs_are_bounded_and_router_agrees_with_math() {
    let mut rng = Rng::new(0x5eed_0001);
    for _ in 0..CASES {
        let input = rng.input();
        let out = input.run().expect("valid input computes");
        check_bounds(&input, &out);
        assert_eq!(
            call_compute(&input).as_ref(),
            Ok(&out),
            "router differs: {input:?}"
        );
    }
}

#[test]
fn permuting_solvers_permutes_outputs() {
    let mut rng = Rng::new(0x5eed_0002);
    for _ in 0..CASES {
        let input = rng.input();
        let m = input.scores[0].len();
        // A random permutation of the columns (Fisher–Yates).
        let mut perm: Vec<usize> = (0..m).collect();
        for k in (1..m).rev() {
            perm.swap(k, rng.range(0, k as u64) as usize);
        }
        let permuted = Input {
            scores: input
                .scores
                .iter()
                .map(|r| perm.iter().map(|&p| r[p]).collect())
                .collect(),
            prev_bonds: input
                .prev_bonds
                .iter()
                .map(|r| perm.iter().map(|&p| r[p]).collect())
                .collect(),
            ..input.clone()
        };
        let a = input.run().unwrap();
        let b = permuted.run().unwrap();
        for (j, &p) in perm.iter().enumerate() {
            assert_eq!(b.consensus[j], a.consensus[p], "{input:?}");
            assert_eq!(b.incentive[j], a.incentive[p], "{input:?}");
            for i in 0..input.stakes.len() {
                assert_eq!(b.bonds[i][j], a.bonds[i][p], "{input:?}");
            }
        }
        assert_eq!(b.dividends, a.dividends, "{input:?}");
    }
}

#[test]
fn permuting_coordinators_permutes_outputs() {
    let mut rng = Rng::new(0x5eed_0003);
    for _ in 0..CASES {
        let input = rng.input();
        let n = input.stakes.len();
        let mut perm: Vec<usize> = (0..n).collect();
        for k in (1..n).rev() {
            perm.swap(k, rng.range(0, k as u64) as usize);
        }
        let permuted = Input {
            stakes: perm.iter().map(|&p| input.stakes[p]).collect(),
            scores: perm.iter().map(|&p| input.scores[p].clone()).collect(),
            prev_bonds: perm.iter().map(|&p| input.prev_bonds[p].clone()).collect(),
            ..input.clone()
        };
        let a = input.run().unwrap();
        let b = permuted.run().unwrap();
        assert_eq!(b.consensus, a.consensus, "{input:?}");
        assert_eq!(b.incentive, a.incentive, "{input:?}");
        for (i, &p) in perm.iter().enumerate() {
            assert_eq!(b.dividends[i], a.dividends[p], "{input:?}");
            assert_eq!(b.bonds[i], a.bonds[p], "{input:?}");
        }
    }
}

#[test]
fn scaling_stakes_or_a_score_row_changes_nothing() {
    let mut rng = Rng::new(0x5eed_0004);
    for _ in 0..CASES {
        let input = rng.input();
        let base = input.run().unwrap();

        // x * k * 1e18 / (Σ * k) has the same floor as x * 1e18 / Σ.
        let k = u(rng.range(2, 1000));
        let scaled = Input {
            stakes: input.stakes.iter().map(|&s| s * k).collect(),
            ..input.clone()
        };
        assert_eq!(scaled.run().unwrap(), base, "stakes × {k}: {input:?}");

        // The same for one coordinator's score row, when it stays within uint16.
        let i = rng.range(0, input.stakes.len() as u64 - 1) as usize;
        let max = *input.scores[i].iter().max().unwrap() as u64;
        let f = rng.range(2, 7);
        if max * f <= u16::MAX as u64 {
            let mut scores = input.scores.clone();
            scores[i] = scores[i].iter().map(|&x| x * f as u16).collect();
            let scaled = Input {
                scores,
                ..input.clone()
            };
            assert_eq!(scaled.run().unwrap(), base, "row {i} × {f}: {input:?}");
        }
    }
}

#[test]
fn kappa_extremes_give_column_min_and_max_of_staked_rows() {
    let mut rng = Rng::new(0x5eed_0005);
    for _ in 0..CASES {
        let mut input = rng.input();
        let w = row_weights(&input.scores);
        // Rows whose normalized stake is positive (a tiny raw stake can floor to 0 and not count).
        let total = sum(&input.stakes);
        let staked: Vec<usize> = (0..input.stakes.len())
            .filter(|&i| !total.is_zero() && !(input.stakes[i] * WAD / total).is_zero())
            .collect();
        let m = input.scores[0].len();

        // κ = 1 − 1 wei: only the column minimum has more than κ of the staked rows behind it.
        input.kappa = WAD - U256::from(1);
        let c_min = input.run().unwrap().consensus;
        input.kappa = U256::ZERO;
        let c_max = input.run().unwrap().consensus;
        // κ = 1: nothing has more than all the stake behind it.
        input.kappa = WAD;
        let c_none = input.run().unwrap().consensus;
        assert!(c_none.iter().all(|c| c.is_zero()), "κ = 1: {input:?}");
        for j in 0..m {
            let col = staked.iter().map(|&i| w[i][j]);
            assert_eq!(
                c_min[j],
                col.clone().min().unwrap_or(U256::ZERO),
                "κ = 1 − 1 wei, column {j}: {input:?}"
            );
            assert_eq!(
                c_max[j],
                col.max().unwrap_or(U256::ZERO),
                "κ = 0, column {j}: {input:?}"
            );
        }
    }
}

#[test]
fn alpha_one_forgets_previous_bonds() {
    let mut rng = Rng::new(0x5eed_0006);
    for _ in 0..CASES {
        let mut input = rng.input();
        input.alpha = WAD;
        let a = input.run().unwrap();
        let zero_prev = Input {
            prev_bonds: input
                .prev_bonds
                .iter()
                .map(|r| vec![U256::ZERO; r.len()])
                .collect(),
            ..input.clone()
        };
        assert_eq!(zero_prev.run().unwrap(), a, "{input:?}");
    }
}

#[test]
fn a_zero_stake_row_without_bonds_changes_nothing_else() {
    let mut rng = Rng::new(0x5eed_0007);
    let mut exercised = 0;
    for _ in 0..CASES {
        let input = rng.input();
        let n = input.stakes.len();
        if n == math::MAX_COORDINATORS_PER_TASK || input.stakes.iter().all(|s| s.is_zero()) {
            continue;
        }
        let m = input.scores[0].len();
        let at = rng.range(0, n as u64) as usize;
        let mut with = input.clone();
        with.stakes.insert(at, U256::ZERO);
        with.scores
            .insert(at, (0..m).map(|_| rng.range(0, 65535) as u16).collect());
        with.prev_bonds.insert(at, vec![U256::ZERO; m]);

        let a = input.run().unwrap();
        let mut b = with.run().unwrap();
        assert_eq!(b.dividends.remove(at), U256::ZERO, "{with:?}");
        assert_eq!(b.bonds.remove(at), vec![U256::ZERO; m], "{with:?}");
        assert_eq!(b, a, "{with:?}");
        exercised += 1;
    }
    assert!(exercised > CASES / 2);
}

/// Hand-computed: two equal coordinators, one deviating on solver 1.
///
/// stakes [1, 1] → S = [5e17, 5e17]; scores [[1, 1], [1, 0]] → W = [[5e17, 5e17], [1e18, 0]].
/// κ = 0.5, Σ S = 1e18 → need = 5e35.
/// C0: candidate 5e17 has support 1e18 (both ≥ 5e17) → 1e36 > 5e35 ok; 1e18 has support 5e17 →
///     5e35 > 5e35 fails (exactly κ sets nothing): C0 = 5e17. C1: 5e17 has support 5e17 → fails,
///     C1 = 0.
/// W̄ = [[5e17, 0], [5e17, 0]]. R = [5e17, 0] → I = [1, 0].
/// ΔB = [[2.5e17, 0], [2.5e17, 0]] → ΔBn = [[5e17, 0], [5e17, 0]]; no prev bonds, α = 0.5 →
/// B' = [[2.5e17, 0], [2.5e17, 0]]. Draw = [2.5e17, 2.5e17] → D = [5e17, 5e17].
#[test]
fn hand_checked_deviator() {
    let input = Input {
        stakes: vec![u(1), u(1)],
        scores: vec![vec![1, 1], vec![1, 0]],
        prev_bonds: vec![vec![U256::ZERO; 2]; 2],
        kappa: WAD / u(2),
        alpha: WAD / u(2),
    };
    let out = input.run().unwrap();
    let e18 = 1_000_000_000_000_000_000u64;
    assert_eq!(out.consensus, vec![u(e18 / 2), U256::ZERO]);
    assert_eq!(out.incentive, vec![u(e18), U256::ZERO]);
    assert_eq!(
        out.bonds,
        vec![
            vec![u(250_000_000_000_000_000), U256::ZERO],
            vec![u(250_000_000_000_000_000), U256::ZERO],
        ]
    );
    assert_eq!(out.dividends, vec![u(e18 / 2), u(e18 / 2)]);
    assert_eq!(call_compute(&input), Ok(out));
}

/// Hand-computed: the largest stakes the docs allow (< 1e40 token units in total) stay exact in
/// uint256: stakes [3e39, 1e39] → S = [7.5e17, 2.5e17] exactly; one solver gets everything.
#[test]
fn hand_checked_wide_stakes() {
    let e39 = U256::from(10u64).pow(u(39));
    let input = Input {
        stakes: vec![u(3) * e39, e39],
        scores: vec![vec![7], vec![9]],
        prev_bonds: vec![vec![U256::ZERO], vec![U256::ZERO]],
        kappa: WAD / u(2),
        alpha: WAD,
    };
    let out = input.run().unwrap();
    assert_eq!(out.consensus, vec![WAD]);
    assert_eq!(out.incentive, vec![WAD]);
    assert_eq!(
        out.bonds,
        vec![
            vec![u(750_000_000_000_000_000)],
            vec![u(250_000_000_000_000_000)]
        ]
    );
    assert_eq!(
        out.dividends,
        vec![u(750_000_000_000_000_000), u(250_000_000_000_000_000)]
    );
}
