//! The Yuma consensus of one task and the payout split of its settlement, bit for bit as the chain
//! computes them: the one Rust home of the algorithm.
//!
//! This crate owns the Rust twin of `contracts/libraries/YumaConsensus.sol` ([`compute`]) and of
//! the arithmetic of `Rewards.settleTask` ([`top_score`], [`payouts`], [`settle`]). It has two
//! users: `autonet-protocol` re-exports it as `autonet_protocol::consensus`, so that agents can
//! predict exactly what a settlement will pay and what bonds it will store, and the Stylus
//! consensus engine (`contracts/stylus/consensus-engine`) runs [`compute`] on chain. It is
//! `no_std` with `alloc`, and depends on nothing but `alloy-primitives` (for `U256`, without
//! default features), so the same code builds natively and for the engine's wasm.
//!
//! `docs/consensus.md` is the normative description; where it and the Solidity differ, the
//! Solidity (the code that pays) wins. The shared vectors `test/vectors/consensus/*.json` are
//! checked for exact equality by `tests/vectors.rs` (and by the Stylus engine's own tests, through
//! its ABI).
//!
//! It must not do I/O, read the chain or take randomness, and it must not "improve" the
//! arithmetic: every value is a `uint256` (`U256`) formed by the same operations in the same
//! order as the Solidity, with floor division and checked overflow (a Solidity `Panic(0x11)` is
//! [`ConsensusError::Overflow`] here).
//!
//! # Input checks
//!
//! The library itself is only ever called by `Rewards.settleTask`, which first rejects
//! malformed settlements (`RewardsInvalidSettlement`), and its parameters always satisfy
//! `Rewards.setConsensusParams`. [`compute`] rejects the same inputs the chain can never run
//! ([`check_shape`], in this order): no coordinator, more than 16 coordinators, a number of score
//! rows other than the number of stakes, no solver or more than 16 (the first row's length), score
//! rows of another length than the first, previous bonds that are not `n × m`; and (through
//! [`ConsensusParams::new`]) `κ > 1e18`, `α = 0` or `α > 1e18`. A Stylus contract can be called by
//! anyone, so the engine applies these checks to its calldata: the shape first, then κ and α.

#![no_std]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// The `uint256` every stake, weight, bond and amount is (`alloy_primitives::U256`).
pub use alloy_primitives::U256;

/// 1.0 in 1e18 fixed point (`YumaConsensus.WAD`).
pub const WAD: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// Basis points in 100 % (the denominator of a [`RewardSplit`]).
pub const BPS: u64 = 10_000;
/// `Rewards.FULL_SCORE`: the score of a solver that reached the task's target improvement (honest
/// scores are absolute; the solver pool is paid in proportion to [`top_score`] / `FULL_SCORE`).
pub const FULL_SCORE: u16 = u16::MAX;
/// `Rewards.MAX_SOLVERS_PER_TASK`: most solver columns in one settlement.
pub const MAX_SOLVERS_PER_TASK: usize = 16;
/// `Rewards.MAX_COORDINATORS_PER_TASK`: most coordinator rows in one settlement.
pub const MAX_COORDINATORS_PER_TASK: usize = 16;
/// `Rewards._kappa` at deployment: κ = 0.5.
pub const DEFAULT_KAPPA: U256 = U256::from_limbs([500_000_000_000_000_000, 0, 0, 0]);
/// `Rewards._alpha` at deployment: α = 0.1.
pub const DEFAULT_ALPHA: U256 = U256::from_limbs([100_000_000_000_000_000, 0, 0, 0]);

/// Malformed consensus or payout input; each variant is one the chain rejects (or panics on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsensusError {
    /// No coordinator revealed (`RewardsInvalidSettlement`: `n == 0`).
    NoCoordinators,
    /// No solver column (`RewardsInvalidSettlement`: `m == 0`).
    NoSolvers,
    /// More coordinators than `MAX_COORDINATORS_PER_TASK`.
    TooManyCoordinators {
        /// Rows given.
        got: usize,
        /// The cap.
        max: usize,
    },
    /// More solvers than `MAX_SOLVERS_PER_TASK`.
    TooManySolvers {
        /// Columns given.
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
    /// A score row's length differs from the first row's (the solver count m).
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
    /// A previous-bond row's length differs from the solver count.
    RaggedPrevBonds {
        /// Index of the offending row.
        row: usize,
        /// Its length.
        got: usize,
        /// The solver count m.
        expected: usize,
    },
    /// Parameters `Rewards.setConsensusParams` rejects (`RewardsInvalidParams`).
    InvalidParams {
        /// κ given.
        kappa: U256,
        /// α given.
        alpha: U256,
    },
    /// A split whose basis points do not sum to 10 000 (`ProjectInvalidSplit`).
    InvalidSplit {
        /// The sum of the four shares.
        sum_bps: u32,
    },
    /// A reward above `type(uint128).max` (`RewardsInvalidSettlement`).
    RewardTooLarge {
        /// The reward given.
        reward: U256,
    },
    /// Payout inputs of different lengths (stakes vs. dividends of the consensus result).
    PayoutLengthMismatch {
        /// Stakes given.
        stakes: usize,
        /// Dividends in the consensus result.
        dividends: usize,
    },
    /// A checked operation overflowed or underflowed: the Solidity reverts with `Panic(0x11)` at
    /// the same step (only reachable with stakes or previous bonds near `2^256 / 1e18`).
    Overflow {
        /// Where it happened.
        step: &'static str,
    },
}

impl fmt::Display for ConsensusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCoordinators => f.write_str("no coordinators"),
            Self::NoSolvers => f.write_str("no solvers"),
            Self::TooManyCoordinators { got, max } => {
                write!(f, "{got} coordinators exceed the cap of {max}")
            }
            Self::TooManySolvers { got, max } => write!(f, "{got} solvers exceed the cap of {max}"),
            Self::ScoreRowCount { stakes, scores } => {
                write!(f, "{scores} score rows for {stakes} stakes")
            }
            Self::RaggedScores { row, got, expected } => {
                write!(f, "score row {row} has {got} entries, expected {expected}")
            }
            Self::PrevBondsRowCount { got, expected } => {
                write!(f, "{got} previous-bond rows, expected {expected}")
            }
            Self::RaggedPrevBonds { row, got, expected } => write!(
                f,
                "previous-bond row {row} has {got} entries, expected {expected}"
            ),
            Self::InvalidParams { kappa, alpha } => write!(
                f,
                "invalid consensus parameters: kappa {kappa}, alpha {alpha} (need kappa <= 1e18, 0 < alpha <= 1e18)"
            ),
            Self::InvalidSplit { sum_bps } => {
                write!(f, "reward split sums to {sum_bps} bps, expected 10000")
            }
            Self::RewardTooLarge { reward } => write!(f, "reward {reward} exceeds uint128"),
            Self::PayoutLengthMismatch { stakes, dividends } => {
                write!(f, "{stakes} stakes for {dividends} dividends")
            }
            Self::Overflow { step } => write!(f, "arithmetic overflow in {step}"),
        }
    }
}

impl core::error::Error for ConsensusError {}

/// κ and α as stored in `Rewards` (1e18 fixed point), valid by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusParams {
    kappa: U256,
    alpha: U256,
}

impl ConsensusParams {
    /// Checks the parameters the consensus accepts (`YumaConsensus.compute` and the Stylus engine):
    /// `κ ≤ 1e18`, `0 < α ≤ 1e18`. `Rewards.setConsensusParams` refuses κ = 1e18 as well: with the
    /// strict threshold nothing has more than all the stake behind it, so every consensus is zero.
    pub fn new(kappa: U256, alpha: U256) -> Result<Self, ConsensusError> {
        if kappa > WAD || alpha.is_zero() || alpha > WAD {
            return Err(ConsensusError::InvalidParams { kappa, alpha });
        }
        Ok(Self { kappa, alpha })
    }

    /// The consensus quantile κ.
    pub fn kappa(&self) -> U256 {
        self.kappa
    }

    /// The bond EMA rate α.
    pub fn alpha(&self) -> U256 {
        self.alpha
    }

    /// The parameters `Rewards` hands the consensus of one task (`Rewards._effectiveKappa`): a
    /// value needs more than κ of **all** coordinator stake behind it, so κ over all
    /// `coordinator_stake` is expressed over the voters' `stakes` as
    /// `⌈κ · max(coordinator_stake, Σ stakes) / Σ stakes⌉`, at most 1e18; α unchanged.
    /// `coordinator_stake` is the total the task's vote commits saw, as `TaskManager` passes it
    /// (whole tokens rounded up, times 1e18). With no voting stake the parameters are unchanged.
    pub fn for_task(
        &self,
        stakes: &[U256],
        coordinator_stake: U256,
    ) -> Result<Self, ConsensusError> {
        let voting = sum(stakes, "voting stake")?;
        if voting.is_zero() {
            return Ok(*self);
        }
        let all = coordinator_stake.max(voting);
        let product = mul(self.kappa, all, "effective kappa")?;
        let kappa = add(product, voting - U256::from(1u64), "effective kappa")? / voting;
        Ok(Self {
            kappa: kappa.min(WAD),
            alpha: self.alpha,
        })
    }
}

impl Default for ConsensusParams {
    /// The deployment values: κ = 0.5, α = 0.1.
    fn default() -> Self {
        Self {
            kappa: DEFAULT_KAPPA,
            alpha: DEFAULT_ALPHA,
        }
    }
}

/// Outputs of one consensus run (`YumaConsensus.Result`), all in 1e18 fixed point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsensusResult {
    /// `C[j]`: the κ-quantile of solver j's normalized scores.
    pub consensus: Vec<U256>,
    /// `I[j]`: solver j's share of the solver pool; `Σ I ≤ 1e18`.
    pub incentive: Vec<U256>,
    /// `D[i]`: coordinator i's share of the coordinator pool; `Σ D ≤ 1e18`.
    pub dividends: Vec<U256>,
    /// `B'[i][j]`: the new bond of coordinator i on solver j (stored for the project).
    pub bonds: Vec<Vec<U256>>,
}

fn add(a: U256, b: U256, step: &'static str) -> Result<U256, ConsensusError> {
    a.checked_add(b).ok_or(ConsensusError::Overflow { step })
}

fn sub(a: U256, b: U256, step: &'static str) -> Result<U256, ConsensusError> {
    a.checked_sub(b).ok_or(ConsensusError::Overflow { step })
}

fn mul(a: U256, b: U256, step: &'static str) -> Result<U256, ConsensusError> {
    a.checked_mul(b).ok_or(ConsensusError::Overflow { step })
}

/// `a * b / d` (floor), the product checked; `d` must be non-zero.
fn mul_div(a: U256, b: U256, d: U256, step: &'static str) -> Result<U256, ConsensusError> {
    Ok(mul(a, b, step)? / d)
}

fn sum(v: &[U256], step: &'static str) -> Result<U256, ConsensusError> {
    let mut total = U256::ZERO;
    for &x in v {
        total = add(total, x, step)?;
    }
    Ok(total)
}

/// Runs the consensus of one task: `YumaConsensus.compute(stakes, scores, prevBonds, κ, α)`.
///
/// `stakes[i]` is coordinator i's raw stake, `scores[i]` its revealed row over the solvers (all
/// rows of the same length m), `prev_bonds[i][j]` the stored bond of coordinator i on solver j
/// (0 when none). Rows are in the coordinators' vote-commit order, columns in the solvers'
/// reveal order; the result does not depend on the row order (up to permuting `dividends` and
/// `bonds` alike). Malformed input is rejected first ([`check_shape`]); an overflow is
/// [`ConsensusError::Overflow`], at the step where the Solidity panics.
pub fn compute<S, P>(
    stakes: &[U256],
    scores: &[S],
    prev_bonds: &[P],
    params: ConsensusParams,
) -> Result<ConsensusResult, ConsensusError>
where
    S: AsRef<[u16]>,
    P: AsRef<[U256]>,
{
    let (n, m) = check_shape(stakes, scores, prev_bonds)?;
    let s = normalize(stakes, "stake normalization")?;
    let mut w = row_normalize(scores, m);

    let consensus = consensus(stakes, &w, m, params.kappa)?;
    // Clip in place: w becomes W̄ = min(W, C).
    for row in w.iter_mut() {
        for (x, &c) in row.iter_mut().zip(&consensus) {
            if *x > c {
                *x = c;
            }
        }
    }
    let incentive = incentive(&s, &w, m)?;
    let bonds = bonds(&s, &w, prev_bonds, n, m, params.alpha)?;
    let dividends = dividends(&bonds, &incentive)?;
    Ok(ConsensusResult {
        consensus,
        incentive,
        dividends,
        bonds,
    })
}

/// The checks `Rewards._checkSettlement` applies to the rows (plus the n × m shape of the
/// previous bonds, which the chain loads from storage), in the order listed in the crate
/// documentation. Returns `(n, m)`. [`compute`] and [`settle`] run it first; it is public for
/// callers that must report a malformed shape before anything else (the Stylus engine checks its
/// raw κ and α only after it).
pub fn check_shape<S, P>(
    stakes: &[U256],
    scores: &[S],
    prev_bonds: &[P],
) -> Result<(usize, usize), ConsensusError>
where
    S: AsRef<[u16]>,
    P: AsRef<[U256]>,
{
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
    let m = scores[0].as_ref().len();
    if m == 0 {
        return Err(ConsensusError::NoSolvers);
    }
    if m > MAX_SOLVERS_PER_TASK {
        return Err(ConsensusError::TooManySolvers {
            got: m,
            max: MAX_SOLVERS_PER_TASK,
        });
    }
    if let Some((row, r)) = scores
        .iter()
        .enumerate()
        .find(|(_, r)| r.as_ref().len() != m)
    {
        return Err(ConsensusError::RaggedScores {
            row,
            got: r.as_ref().len(),
            expected: m,
        });
    }
    if prev_bonds.len() != n {
        return Err(ConsensusError::PrevBondsRowCount {
            got: prev_bonds.len(),
            expected: n,
        });
    }
    if let Some((row, r)) = prev_bonds
        .iter()
        .enumerate()
        .find(|(_, r)| r.as_ref().len() != m)
    {
        return Err(ConsensusError::RaggedPrevBonds {
            row,
            got: r.as_ref().len(),
            expected: m,
        });
    }
    Ok((n, m))
}

/// `_normalize`: `v[k] * 1e18 / Σ v` (floor), all zero when `Σ v = 0`.
fn normalize(v: &[U256], step: &'static str) -> Result<Vec<U256>, ConsensusError> {
    let total = sum(v, step)?;
    let mut out = vec![U256::ZERO; v.len()];
    if total.is_zero() {
        return Ok(out);
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = mul_div(x, WAD, total, step)?;
    }
    Ok(out)
}

/// `_rowNormalize`: `W[i][j] = score[i][j] * 1e18 / Σ_j score[i][j]` (floor); a zero row stays
/// zero. Exact in `u128` (`65535 * 1e18 < 2^77`, `Σ ≤ 16 * 65535`), hence the same floor as the
/// Solidity's `uint256` arithmetic, and cannot overflow.
fn row_normalize<S: AsRef<[u16]>>(scores: &[S], m: usize) -> Vec<Vec<U256>> {
    const WAD_U128: u128 = 1_000_000_000_000_000_000;
    scores
        .iter()
        .map(|row| {
            let row = row.as_ref();
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

/// `_consensus`: for each column, the largest `W[i][j]` among rows with `S[i] > 0` whose
/// supporting stake (rows with `S > 0` and `W ≥` it) satisfies `stake * 1e18 > κ * Σ S` (strict:
/// exactly κ sets nothing); 0 if there is none. Same candidate order and tie rule as the Solidity
/// loop.
fn consensus(
    stakes: &[U256],
    w: &[Vec<U256>],
    m: usize,
    kappa: U256,
) -> Result<Vec<U256>, ConsensusError> {
    // Support is counted in raw stake, not in the floored S: rounding must not shift the threshold.
    let total = sum(stakes, "consensus stake total")?;
    let need = mul(kappa, total, "consensus threshold")?;
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
                    at_least = add(at_least, raw, "consensus support")?;
                }
            }
            if mul(at_least, WAD, "consensus support")? > need {
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
            acc = add(acc, mul(si, row[j], "rank")?, "rank")?;
        }
        *rj = acc / WAD;
    }
    normalize(&rank, "incentive normalization")
}

/// `_bonds`: per column, `ΔB[i] = S[i] * W̄[i][j] / 1e18` (floor per entry), `ΔB` and the
/// previous bonds column-normalized, `B' = (α * ΔBn + (1e18 − α) * Bn) / 1e18`.
fn bonds<P: AsRef<[U256]>>(
    s: &[U256],
    wc: &[Vec<U256>],
    prev: &[P],
    n: usize,
    m: usize,
    alpha: U256,
) -> Result<Vec<Vec<U256>>, ConsensusError> {
    let mut b = vec![vec![U256::ZERO; m]; n];
    let keep = sub(WAD, alpha, "bond EMA")?;
    for j in 0..m {
        let mut d_sum = U256::ZERO;
        let mut p_sum = U256::ZERO;
        for i in 0..n {
            b[i][j] = mul_div(s[i], wc[i][j], WAD, "bond delta")?; // ΔB, temporarily
            d_sum = add(d_sum, b[i][j], "bond delta sum")?;
            p_sum = add(p_sum, prev[i].as_ref()[j], "previous bond sum")?;
        }
        for i in 0..n {
            let dn = if d_sum.is_zero() {
                U256::ZERO
            } else {
                mul_div(b[i][j], WAD, d_sum, "bond delta normalization")?
            };
            let pn = if p_sum.is_zero() {
                U256::ZERO
            } else {
                mul_div(
                    prev[i].as_ref()[j],
                    WAD,
                    p_sum,
                    "previous bond normalization",
                )?
            };
            let ema = add(
                mul(alpha, dn, "bond EMA")?,
                mul(keep, pn, "bond EMA")?,
                "bond EMA",
            )?;
            b[i][j] = ema / WAD;
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
            acc = add(acc, mul(bij, ij, "dividends")?, "dividends")?;
        }
        *r = acc / WAD;
    }
    normalize(&raw, "dividend normalization")
}

/// A project's reward split in basis points (`IProject.RewardSplit`); the four shares sum to
/// 10 000 on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewardSplit {
    /// Share of the solver pool (paid by incentive).
    pub solver_bps: u16,
    /// Share of the coordinator pool (paid by dividends).
    pub coordinator_bps: u16,
    /// The proposer's fee.
    pub proposer_bps: u16,
    /// The aggregator's fee (reserved until publication).
    pub aggregator_bps: u16,
}

impl RewardSplit {
    /// The sum of the four shares (10 000 for a valid split).
    pub fn sum_bps(&self) -> u32 {
        u32::from(self.solver_bps)
            + u32::from(self.coordinator_bps)
            + u32::from(self.proposer_bps)
            + u32::from(self.aggregator_bps)
    }
}

/// What `Rewards.settleTask` credits, reserves and releases for one task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payouts {
    /// `reward * solverBps / 10000`: the most the solvers can earn.
    pub solver_pool: U256,
    /// The highest score backed on one solver ([`top_score`]); `FULL_SCORE` means the task's
    /// target improvement was reached.
    pub top_score: u16,
    /// `solver_pool * top_score / FULL_SCORE`: the part of the pool absolute improvement earned
    /// (review finding S-1); the rest is released.
    pub solver_pool_earned: U256,
    /// `reward * coordinatorBps / 10000`.
    pub coordinator_pool: U256,
    /// `reward * proposerBps / 10000`, credited to the proposer.
    pub proposer_fee: U256,
    /// `reward * aggregatorBps / 10000`, kept reserved in the project until publication (paid to
    /// the aggregator, or released after the publish window).
    pub aggregator_fee: U256,
    /// Per solver (reveal order): `solver_pool_earned * I[j] / 1e18` (`SolverRewarded.amount`,
    /// also recorded as contributor shares in the InferenceMarket).
    pub solver_amounts: Vec<U256>,
    /// Per coordinator: the weight its pay was computed from (`CoordinatorRewarded.dividend`):
    /// `D[i]`, or `stake[i] * 1e18 / Σ stake` when every dividend is zero.
    pub coordinator_weights: Vec<U256>,
    /// Per coordinator: `coordinatorPool * weight / 1e18`.
    pub coordinator_amounts: Vec<U256>,
    /// `Σ solver_amounts`.
    pub solvers_paid: U256,
    /// `Σ coordinator_amounts`.
    pub coordinators_paid: U256,
    /// `solvers_paid + coordinators_paid + proposer_fee`: pulled from the project into Rewards.
    pub spent: U256,
    /// `reward − spent − aggregator_fee`: the unearned part of the solver pool, rounding dust and
    /// unearned shares, released back to the project budget.
    pub released: U256,
}

/// `Rewards._topScore`: the highest score any solver is backed at — the maximum over solvers j of
/// the largest raw `scores[i][j]` of a coordinator with stake such that the coordinators scoring j
/// at least that much hold more than κ of the voting stake (`support > ⌊κ · Σ stake / 1e18⌋`,
/// which for integers is `support · 1e18 > κ · Σ stake`: the consensus rule of [`compute`]
/// applied to raw scores instead of row-normalized weights). 0 when nothing is backed or no
/// coordinator has stake. `params` are the task's ([`ConsensusParams::for_task`]), as for
/// [`compute`].
pub fn top_score<S: AsRef<[u16]>>(
    stakes: &[U256],
    scores: &[S],
    params: ConsensusParams,
) -> Result<u16, ConsensusError> {
    let voting = sum(stakes, "voting stake")?;
    if voting.is_zero() {
        return Ok(0);
    }
    let bar = mul(params.kappa, voting, "top score threshold")? / WAD;
    let mut top = 0u16;
    for (&stake, row) in stakes.iter().zip(scores) {
        if stake.is_zero() {
            continue;
        }
        for (j, &v) in row.as_ref().iter().enumerate() {
            if v <= top {
                continue;
            }
            let mut support = U256::ZERO;
            for (&s, other) in stakes.iter().zip(scores) {
                if other.as_ref().get(j).is_some_and(|&x| x >= v) {
                    support = add(support, s, "top score support")?;
                }
            }
            if support > bar {
                top = v;
            }
        }
    }
    Ok(top)
}

/// The payout arithmetic of `Rewards.settleTask` for a task with the given `reward`, project
/// `split`, coordinator `stakes` and `scores` (as given to the consensus), the task's consensus
/// `params` ([`ConsensusParams::for_task`], as given to [`compute`]) and consensus `result`.
///
/// Checks what the chain guarantees: `reward ≤ type(uint128).max`, a split summing to 10 000 and
/// one stake per dividend. `spent + aggregator_fee + released == reward` always holds. The solver
/// pool is scaled by [`top_score`] / `FULL_SCORE` (scores are absolute, `FULL_SCORE` = the task's
/// target reached) and split by incentive; the rest is released. When no coordinator earned a
/// dividend, the coordinator pool goes by stake to the coordinators whose scores are all zero
/// (they agreed that nothing improved); coordinators that scored something nobody backed are paid
/// nothing.
pub fn payouts<S: AsRef<[u16]>>(
    reward: U256,
    split: RewardSplit,
    stakes: &[U256],
    scores: &[S],
    params: ConsensusParams,
    result: &ConsensusResult,
) -> Result<Payouts, ConsensusError> {
    if reward > U256::from(u128::MAX) {
        return Err(ConsensusError::RewardTooLarge { reward });
    }
    let sum_bps = split.sum_bps();
    if sum_bps != BPS as u32 {
        return Err(ConsensusError::InvalidSplit { sum_bps });
    }
    if stakes.len() != result.dividends.len() {
        return Err(ConsensusError::PayoutLengthMismatch {
            stakes: stakes.len(),
            dividends: result.dividends.len(),
        });
    }
    let bps = U256::from(BPS);
    let share = |b: u16| mul_div(reward, U256::from(b), bps, "pool");
    let mut p = Payouts {
        solver_pool: share(split.solver_bps)?,
        coordinator_pool: share(split.coordinator_bps)?,
        proposer_fee: share(split.proposer_bps)?,
        aggregator_fee: share(split.aggregator_bps)?,
        top_score: top_score(stakes, scores, params)?,
        ..Payouts::default()
    };
    p.solver_pool_earned = mul_div(
        p.solver_pool,
        U256::from(p.top_score),
        U256::from(FULL_SCORE),
        "earned solver pool",
    )?;

    // _creditSolvers
    for &inc in &result.incentive {
        let amount = mul_div(p.solver_pool_earned, inc, WAD, "solver payout")?;
        p.solvers_paid = add(p.solvers_paid, amount, "solver payout")?;
        p.solver_amounts.push(amount);
    }

    // _creditCoordinators
    let d_sum = sum(&result.dividends, "dividend total")?;
    let silent = |i: usize| {
        scores
            .get(i)
            .is_none_or(|row| row.as_ref().iter().all(|&x| x == 0))
    };
    let mut stake_sum = U256::ZERO;
    if d_sum.is_zero() {
        for (i, &stake) in stakes.iter().enumerate() {
            if silent(i) {
                stake_sum = add(stake_sum, stake, "coordinator stake total")?;
            }
        }
    }
    for (i, (&d, &stake)) in result.dividends.iter().zip(stakes).enumerate() {
        let weight = if !d_sum.is_zero() {
            d
        } else if stake_sum.is_zero() || !silent(i) {
            U256::ZERO
        } else {
            mul_div(stake, WAD, stake_sum, "coordinator stake weight")?
        };
        let amount = mul_div(p.coordinator_pool, weight, WAD, "coordinator payout")?;
        p.coordinators_paid = add(p.coordinators_paid, amount, "coordinator payout")?;
        p.coordinator_weights.push(weight);
        p.coordinator_amounts.push(amount);
    }

    p.spent = add(
        add(p.solvers_paid, p.coordinators_paid, "spent")?,
        p.proposer_fee,
        "spent",
    )?;
    p.released = sub(
        sub(reward, p.spent, "released")?,
        p.aggregator_fee,
        "released",
    )?;
    Ok(p)
}

/// A whole settlement's prediction: the consensus and what it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The consensus outputs (including the bonds the chain stores).
    pub result: ConsensusResult,
    /// The payouts computed from them.
    pub payouts: Payouts,
}

/// [`compute`] then [`payouts`], with the input checks of `Rewards.settleTask` done first (so a
/// settlement the chain rejects is rejected here before any arithmetic).
pub fn settle<S, P>(
    reward: U256,
    split: RewardSplit,
    stakes: &[U256],
    scores: &[S],
    prev_bonds: &[P],
    params: ConsensusParams,
) -> Result<Settled, ConsensusError>
where
    S: AsRef<[u16]>,
    P: AsRef<[U256]>,
{
    check_shape(stakes, scores, prev_bonds)?;
    if reward > U256::from(u128::MAX) {
        return Err(ConsensusError::RewardTooLarge { reward });
    }
    let result = compute(stakes, scores, prev_bonds, params)?;
    let payouts = payouts(reward, split, stakes, scores, params, &result)?;
    Ok(Settled { result, payouts })
}
