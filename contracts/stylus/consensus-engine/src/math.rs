//! The Yuma consensus of one task, bit for bit as `contracts/libraries/YumaConsensus.sol` computes it.
//!
//! This module has no Stylus SDK dependency (only `alloc` and `alloy_primitives::U256`), so native
//! tests and other Rust code can call [`compute`] directly. `docs/consensus.md` is the normative
//! description; the shared vectors `test/vectors/consensus/*.json` are checked for exact equality.
//!
//! Every value is a `uint256` formed by the same operations in the same order as the Solidity,
//! with floor division and checked arithmetic: where the Solidity reverts with `Panic(0x11)`, this
//! returns [`ConsensusError::Overflow`] (and the contract reverts with that same `Panic(0x11)`).
//!
//! # Input checks
//!
//! The Solidity library is only reached through `Rewards.settleTask`, which first rejects malformed
//! settlements (`_checkSettlement`) and whose κ, α always satisfy `Rewards.setConsensusParams`. A
//! Stylus contract can be called by anyone, so [`compute`] applies those checks itself, in this
//! order: at least one and at most [`MAX_COORDINATORS_PER_TASK`] coordinators, one score row per
//! stake, at least one and at most [`MAX_SOLVERS_PER_TASK`] solvers (the first row's length), every
//! score row of that length, previous bonds exactly `n × m`, and `κ ≤ 1e18`, `0 < α ≤ 1e18`.

use alloc::vec;
use alloc::vec::Vec;

use alloy_primitives::U256;

/// 1.0 in 1e18 fixed point (`YumaConsensus.WAD`).
pub const WAD: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// `Rewards.MAX_COORDINATORS_PER_TASK`: most coordinator rows in one computation.
pub const MAX_COORDINATORS_PER_TASK: usize = 16;
/// `Rewards.MAX_SOLVERS_PER_TASK`: most solver columns in one computation.
pub const MAX_SOLVERS_PER_TASK: usize = 16;

/// Input the chain never runs the consensus on, or an arithmetic overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsensusError {
    /// `stakes` is empty (n = 0).
    NoCoordinators,
    /// The first score row is empty (m = 0).
    NoSolvers,
    /// More than [`MAX_COORDINATORS_PER_TASK`] stakes.
    TooManyCoordinators {
        /// Stakes given (n).
        got: usize,
        /// The cap.
        max: usize,
    },
    /// More than [`MAX_SOLVERS_PER_TASK`] entries in the first score row.
    TooManySolvers {
        /// Columns given (m).
        got: usize,
        /// The cap.
        max: usize,
    },
    /// The number of score rows differs from the number of stakes.
    ScoreRowCount {
        /// Stakes given (n).
        stakes: usize,
        /// Score rows given.
        scores: usize,
    },
    /// A score row's length differs from the first row's (m).
    RaggedScores {
        /// Index of the offending row.
        row: usize,
        /// Its length.
        got: usize,
        /// The solver count m.
        expected: usize,
    },
    /// The number of previous-bond rows differs from the number of stakes.
    PrevBondsRowCount {
        /// Rows given.
        got: usize,
        /// The coordinator count n.
        expected: usize,
    },
    /// A previous-bond row's length differs from the solver count m.
    RaggedPrevBonds {
        /// Index of the offending row.
        row: usize,
        /// Its length.
        got: usize,
        /// The solver count m.
        expected: usize,
    },
    /// κ > 1e18, α = 0 or α > 1e18 (what `Rewards.setConsensusParams` rejects).
    InvalidParams {
        /// κ given.
        kappa: U256,
        /// α given.
        alpha: U256,
    },
    /// A checked addition or multiplication overflowed: the Solidity reverts with `Panic(0x11)` at
    /// the same step (only reachable with stakes or previous bonds near `2^256 / 1e18`).
    Overflow,
}

/// Outputs of one consensus run (`YumaConsensus.Result`), all in 1e18 fixed point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsensusOutput {
    /// `C[j]`: the κ-quantile of solver j's normalized scores.
    pub consensus: Vec<U256>,
    /// `I[j]`: solver j's share of the solver pool; `Σ I ≤ 1e18`.
    pub incentive: Vec<U256>,
    /// `D[i]`: coordinator i's share of the coordinator pool; `Σ D ≤ 1e18`.
    pub dividends: Vec<U256>,
    /// `B'[i][j]`: the new bond of coordinator i on solver j.
    pub bonds: Vec<Vec<U256>>,
}

#[inline]
fn add(a: U256, b: U256) -> Result<U256, ConsensusError> {
    a.checked_add(b).ok_or(ConsensusError::Overflow)
}

#[inline]
fn mul(a: U256, b: U256) -> Result<U256, ConsensusError> {
    a.checked_mul(b).ok_or(ConsensusError::Overflow)
}

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
    let (n, m) = check_inputs(stakes, scores, prev_bonds, kappa, alpha)?;
    let s = normalize(stakes)?;
    let mut w = row_normalize(scores, m);

    let consensus = consensus(stakes, &w, m, kappa)?;
    // Clip in place: w becomes W̄ = min(W, C).
    for row in w.iter_mut() {
        for (x, &c) in row.iter_mut().zip(consensus.iter()) {
            if *x > c {
                *x = c;
            }
        }
    }
    let incentive = incentive(&s, &w, m)?;
    let bonds = bonds(&s, &w, prev_bonds, n, m, alpha)?;
    let dividends = dividends(&bonds, &incentive)?;
    Ok(ConsensusOutput {
        consensus,
        incentive,
        dividends,
        bonds,
    })
}

/// The shape checks of `Rewards._checkSettlement` (plus the `n × m` shape of the previous bonds,
/// which the chain loads from storage) and the parameter checks of `Rewards.setConsensusParams`.
/// Returns `(n, m)`.
pub fn check_inputs(
    stakes: &[U256],
    scores: &[Vec<u16>],
    prev_bonds: &[Vec<U256>],
    kappa: U256,
    alpha: U256,
) -> Result<(usize, usize), ConsensusError> {
    let n = stakes.len();
    if n == 0 {
        return Err(ConsensusError::NoCoordinators);
    }
    if n > MAX_COORDINATORS_PER_TASK {
        return Err(ConsensusError::TooManyCoordinators {
            got: n,
            max: MAX_COORDINATORS_PER_TASK,
        });
    }
    if scores.len() != n {
        return Err(ConsensusError::ScoreRowCount {
            stakes: n,
            scores: scores.len(),
        });
    }
    let m = scores[0].len();
    if m == 0 {
        return Err(ConsensusError::NoSolvers);
    }
    if m > MAX_SOLVERS_PER_TASK {
        return Err(ConsensusError::TooManySolvers {
            got: m,
            max: MAX_SOLVERS_PER_TASK,
        });
    }
    for (row, r) in scores.iter().enumerate() {
        if r.len() != m {
            return Err(ConsensusError::RaggedScores {
                row,
                got: r.len(),
                expected: m,
            });
        }
    }
    if prev_bonds.len() != n {
        return Err(ConsensusError::PrevBondsRowCount {
            got: prev_bonds.len(),
            expected: n,
        });
    }
    for (row, r) in prev_bonds.iter().enumerate() {
        if r.len() != m {
            return Err(ConsensusError::RaggedPrevBonds {
                row,
                got: r.len(),
                expected: m,
            });
        }
    }
    if kappa > WAD || alpha.is_zero() || alpha > WAD {
        return Err(ConsensusError::InvalidParams { kappa, alpha });
    }
    Ok((n, m))
}

/// `_normalize`: `v[k] * 1e18 / Σ v` (floor), all zero when `Σ v = 0`.
fn normalize(v: &[U256]) -> Result<Vec<U256>, ConsensusError> {
    let mut total = U256::ZERO;
    for &x in v {
        total = add(total, x)?;
    }
    let mut out = vec![U256::ZERO; v.len()];
    if total.is_zero() {
        return Ok(out);
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = mul(x, WAD)? / total;
    }
    Ok(out)
}

/// `_rowNormalize`: `W[i][j] = score[i][j] * 1e18 / Σ_j score[i][j]` (floor); a zero row stays
/// zero. Exact in `u128` (`65535 * 1e18 < 2^77`, `Σ ≤ 16 * 65535`), hence the same floor as the
/// Solidity's `uint256` arithmetic.
fn row_normalize(scores: &[Vec<u16>], m: usize) -> Vec<Vec<U256>> {
    const WAD_U128: u128 = 1_000_000_000_000_000_000;
    scores
        .iter()
        .map(|row| {
            let total: u128 = row.iter().map(|&x| u128::from(x)).sum();
            if total == 0 {
                return vec![U256::ZERO; m];
            }
            row.iter()
                .map(|&x| U256::from(u128::from(x) * WAD_U128 / total))
                .collect()
        })
        .collect()
}

/// `_consensus`: for each column, the largest `W[i][j]` among rows with `S[i] > 0` whose supporting
/// stake (rows with `S > 0` and `W ≥` it) satisfies `stake * 1e18 > κ * Σ S` (strict: exactly κ
/// sets nothing); 0 if there is none. Same candidate order and tie rule as the Solidity loop.
fn consensus(
    stakes: &[U256],
    w: &[Vec<U256>],
    m: usize,
    kappa: U256,
) -> Result<Vec<U256>, ConsensusError> {
    // Support is counted in raw stake, not in the floored S: rounding must not shift the threshold.
    let mut total = U256::ZERO;
    for &raw in stakes {
        total = add(total, raw)?;
    }
    let need = mul(kappa, total)?;
    let mut c = vec![U256::ZERO; m];
    for (j, cj) in c.iter_mut().enumerate() {
        let mut best = U256::ZERO;
        for (&raw, wi) in stakes.iter().zip(w) {
            if raw.is_zero() {
                continue;
            }
            let v = wi[j];
            // Cannot improve (best starts at 0: the value when no score has more than κ behind it).
            if v <= best {
                continue;
            }
            let mut at_least = U256::ZERO;
            for (&raw, wk) in stakes.iter().zip(w) {
                if wk[j] >= v {
                    at_least = add(at_least, raw)?;
                }
            }
            if mul(at_least, WAD)? > need {
                best = v;
            }
        }
        *cj = best;
    }
    Ok(c)
}

/// `_incentive`: `R[j] = (Σ_i S[i] * W̄[i][j]) / 1e18` (one floor), `I = normalize(R)`.
fn incentive(s: &[U256], wc: &[Vec<U256>], m: usize) -> Result<Vec<U256>, ConsensusError> {
    let mut rank = vec![U256::ZERO; m];
    for (j, rj) in rank.iter_mut().enumerate() {
        let mut acc = U256::ZERO;
        for (&si, row) in s.iter().zip(wc) {
            acc = add(acc, mul(si, row[j])?)?;
        }
        *rj = acc / WAD;
    }
    normalize(&rank)
}

/// `_bonds`: per column, `ΔB[i] = S[i] * W̄[i][j] / 1e18` (floor per entry), `ΔB` and the previous
/// bonds column-normalized, `B' = (α * ΔBn + (1e18 − α) * Bn) / 1e18`.
fn bonds(
    s: &[U256],
    wc: &[Vec<U256>],
    prev: &[Vec<U256>],
    n: usize,
    m: usize,
    alpha: U256,
) -> Result<Vec<Vec<U256>>, ConsensusError> {
    let mut b = vec![vec![U256::ZERO; m]; n];
    // α ≤ 1e18 was checked, so this cannot underflow (the Solidity's `WAD - alpha` would panic).
    let keep = WAD - alpha;
    for j in 0..m {
        let mut d_sum = U256::ZERO;
        let mut p_sum = U256::ZERO;
        for i in 0..n {
            b[i][j] = mul(s[i], wc[i][j])? / WAD; // ΔB, temporarily
            d_sum = add(d_sum, b[i][j])?;
            p_sum = add(p_sum, prev[i][j])?;
        }
        for i in 0..n {
            let dn = if d_sum.is_zero() {
                U256::ZERO
            } else {
                mul(b[i][j], WAD)? / d_sum
            };
            let pn = if p_sum.is_zero() {
                U256::ZERO
            } else {
                mul(prev[i][j], WAD)? / p_sum
            };
            b[i][j] = add(mul(alpha, dn)?, mul(keep, pn)?)? / WAD;
        }
    }
    Ok(b)
}

/// `_dividends`: `Draw[i] = (Σ_j B'[i][j] * I[j]) / 1e18` (one floor), `D = normalize(Draw)`.
fn dividends(b: &[Vec<U256>], inc: &[U256]) -> Result<Vec<U256>, ConsensusError> {
    let mut raw = vec![U256::ZERO; b.len()];
    for (r, row) in raw.iter_mut().zip(b) {
        let mut acc = U256::ZERO;
        for (&bij, &ij) in row.iter().zip(inc) {
            acc = add(acc, mul(bij, ij)?)?;
        }
        *r = acc / WAD;
    }
    normalize(&raw)
}
