//! Deterministic robust aggregation of weight deltas, in pure Rust (no tch, no threads, no
//! fused multiply-add), so every coordinator computes the same bytes and hence the same root.
//!
//! # Inputs
//! Each [`Contribution`] is a delta (over the same names and shapes) and a positive integer
//! weight, the solver's consensus incentive in the contract's fixed-point units. All deltas must
//! be finite; zero weights are rejected (a solver with no incentive does not contribute).
//!
//! # Canonical order
//! Before combining, contributions are sorted by (`content_hash(delta)`, weight) —
//! [`crate::codec::content_hash`], keccak256 of the canonical safetensors bytes. Every loop below
//! runs in that order, so the output bytes do not depend on the order the caller collected the
//! deltas in (tested for all permutations).
//!
//! # Arithmetic
//! Per coordinate, values are widened to f64, accumulated in canonical order, divided once, and
//! rounded to f32 once. A weighted mean of values `x_i` with weights `w_i` (u64) is
//! `(Σ_i (w_i as f64) · (x_i as f64)) / (Σ_i w_i as f64)`, the weight sum computed in u128
//! then converted.
//!
//! # Rules
//! - [`Rule::FedAvg`]: weighted mean of all values.
//! - [`Rule::TrimmedMean`] (default, β = 200‰): per coordinate sort the n values (ties broken by
//!   canonical position), drop `k` from each end, weighted mean of the rest.
//!   `k = ⌊n·β⌋` but at least 1 when n ≥ 3 and β > 0, and at most `⌊(n−1)/2⌋` so something
//!   remains; with n ≤ 2 nothing can be trimmed and it falls back to the weighted mean (FedAvg).
//!   With n = 3 it is therefore the coordinate-wise median.
//! - [`Rule::Median`]: unweighted coordinate-wise median (mean of the two middle values for even
//!   n), like `np.median`. Incentive weights are not used.
//! - [`Rule::MultiKrum`] `{ f, m }`: squared L2 distances between all pairs (f64, canonical
//!   order); score_i = sum of the `max(1, n − f − 2)` smallest distances to the others; the `m`
//!   lowest scores (ties by canonical position) are combined by weighted mean. `m = 1` is Krum.
//! - [`Rule::CenteredClip`] `{ tau_permille, iters }` (Karimireddy, He, Jaggi 2021; defaults
//!   [`Rule::centered_clip_default`]: τ factor 1000‰, 3 iterations). All in f64 on the
//!   concatenation of all tensors (canonical value order), `x_i` the inputs widened to f64:
//!   1. `v` = the coordinate-wise median of [`Rule::Median`] (f32, widened).
//!   2. `r_i = √(Σ_j (x_ij − v_j)²)`, summed in value order; `τ = (tau_permille / 1000) ·
//!      median(r)` (mean of the two middle radii for even n). The radius thus scales with the
//!      deltas: with the default an input as far from the median as the median input is not
//!      clipped at all, one ten times as far pulls with a tenth of its length.
//!   3. `iters` times: `d_i = √(Σ_j (x_ij − v_j)²)`, `c_i = τ / d_i` if `d_i > τ` else 1, then
//!      for every j from the same `v`: `v_j ← v_j + (Σ_i (w_i as f64) · (c_i · (x_ij − v_j))) /
//!      W`, the sum in canonical order, `W` the weight sum as for the weighted mean.
//!   4. Each `v_j` rounded to f32 once.
//!
//!   τ = 0 (at least half the radii 0) leaves the median. Parameters:
//!   `tau_permille > 0`, `1 ≤ iters ≤` [`MAX_CENTERED_CLIP_ITERS`].
//! - [`Rule::Bucketing`] `{ s, inner }` (Karimireddy, He, Jaggi 2022; default
//!   [`Rule::bucketing_default`]: s = 2, inner centered clipping with its defaults): the inputs
//!   in canonical order are cut into `⌈n/s⌉` buckets of `s` consecutive inputs (the last one
//!   smaller when `s` does not divide n; `s ≥ n` is one bucket, i.e. FedAvg); each bucket's
//!   weighted mean is taken per coordinate as above (rounded to f32), and the inner rule
//!   ([`BucketInner`]) combines the bucket means, in bucket order, with equal weights 1. Bucketing
//!   averages honest heterogeneity away before the robust rule; it does not add robustness
//!   where the inner rule has too few inputs (2 buckets: every inner rule is their mean). `s ≥
//!   1`; the inner rule's parameters are checked as for the rule itself.
//!
//!   The permutation is the canonical order, so it is deterministic: every coordinator buckets
//!   the same way, and nobody can re-draw it. The paper draws it at random each round; here an
//!   attacker can grind its own delta's content hash (perturb a low bit, rehash) to choose its
//!   position, hence its bucket and bucket-mates, though not the honest deltas' order. That is
//!   acceptable for the Byzantine bound, which is worst case over permutations (f attackers
//!   spoil at most f buckets whatever the order, so the inner rule sees at most a fraction `s·f/n`
//!   of bad bucket means): grinding only lets colluders spread over distinct buckets, which the
//!   bound already assumes, or choose which honest delta dilutes theirs. Removing it would need
//!   randomness revealed after the deltas are committed; not built.

use thiserror::Error;

use crate::codec::{CodecError, content_hash};
use crate::merkle::Hash32;
use crate::tensors::{Delta, NamedTensor, TensorError, TensorSet};

/// Default trim fraction in per-mille (β = 0.2).
pub const DEFAULT_TRIM_PERMILLE: u32 = 200;
/// Default clipping radius of [`Rule::CenteredClip`] in per-mille of the median distance to the
/// coordinate-wise median (factor 1.0).
pub const DEFAULT_CENTERED_CLIP_TAU_PERMILLE: u32 = 1000;
/// Default iterations of [`Rule::CenteredClip`].
pub const DEFAULT_CENTERED_CLIP_ITERS: u32 = 3;
/// Most iterations [`Rule::CenteredClip`] accepts (each is two passes over the inputs).
pub const MAX_CENTERED_CLIP_ITERS: u32 = 100;
/// Default bucket size of [`Rule::Bucketing`].
pub const DEFAULT_BUCKET_SIZE: usize = 2;

/// Errors of aggregation.
#[derive(Debug, Error)]
pub enum AggregateError {
    /// Nothing to aggregate.
    #[error("no contributions")]
    Empty,
    /// A delta does not have the layout of the first one.
    #[error("contribution {index}: {source}")]
    Layout {
        /// Index in the caller's list.
        index: usize,
        /// What differs.
        source: TensorError,
    },
    /// A contribution has weight 0.
    #[error("contribution {index} has zero weight")]
    ZeroWeight {
        /// Index in the caller's list.
        index: usize,
    },
    /// A delta holds NaN or infinity.
    #[error("contribution {index}: tensor `{name}` is not finite")]
    NonFinite {
        /// Index in the caller's list.
        index: usize,
        /// The first offending tensor.
        name: String,
    },
    /// Trim fraction out of `[0, 500)` per-mille.
    #[error("trim fraction {0}‰ must be below 500‰")]
    InvalidTrim(u32),
    /// Multi-Krum parameters out of range.
    #[error("multi-krum needs 1 <= m <= n, got m = {m}, n = {n}")]
    InvalidKrum {
        /// Inputs.
        n: usize,
        /// Requested selections.
        m: usize,
    },
    /// Centered-clipping parameters out of range.
    #[error(
        "centered clipping needs tau > 0 and 1 <= iters <= {MAX_CENTERED_CLIP_ITERS}, got \
         tau = {tau_permille}‰, iters = {iters}"
    )]
    InvalidCenteredClip {
        /// Radius factor in per-mille.
        tau_permille: u32,
        /// Iterations.
        iters: u32,
    },
    /// Bucket size 0.
    #[error("bucket size must be at least 1")]
    InvalidBucketSize,
    /// Not a rule's text form.
    #[error(
        "invalid aggregation rule `{0}`: expected fedavg, trimmed-mean[:β‰], median, krum:F[:M], \
         centered-clip[:τ‰:ITERS], or bucketing[:S[:trimmed-mean[:β‰]|median|centered-clip[:τ‰:ITERS]]]"
    )]
    Parse(String),
    /// Hashing a delta failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// An aggregation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Weighted mean.
    FedAvg,
    /// Coordinate-wise trimmed mean; trim fraction per end in per-mille.
    TrimmedMean {
        /// β in per-mille, `< 500`.
        trim_permille: u32,
    },
    /// Coordinate-wise median.
    Median,
    /// Multi-Krum.
    MultiKrum {
        /// Assumed number of Byzantine inputs.
        f: usize,
        /// Number of inputs averaged.
        m: usize,
    },
    /// Centered clipping around the coordinate-wise median.
    CenteredClip {
        /// Clipping radius in per-mille of the median input's distance to the median (> 0).
        tau_permille: u32,
        /// Clipping iterations (1 ..= [`MAX_CENTERED_CLIP_ITERS`]).
        iters: u32,
    },
    /// Bucketing: weighted means of `s` consecutive canonical inputs, then `inner` on the means.
    Bucketing {
        /// Inputs per bucket (≥ 1).
        s: usize,
        /// The robust rule applied to the bucket means.
        inner: BucketInner,
    },
}

/// The robust rule [`Rule::Bucketing`] applies to the bucket means (equal weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketInner {
    /// As [`Rule::TrimmedMean`].
    TrimmedMean {
        /// β in per-mille, `< 500`.
        trim_permille: u32,
    },
    /// As [`Rule::Median`].
    Median,
    /// As [`Rule::CenteredClip`].
    CenteredClip {
        /// Radius factor in per-mille (> 0).
        tau_permille: u32,
        /// Iterations.
        iters: u32,
    },
}

impl BucketInner {
    /// The same rule as a [`Rule`].
    pub fn rule(self) -> Rule {
        match self {
            BucketInner::TrimmedMean { trim_permille } => Rule::TrimmedMean { trim_permille },
            BucketInner::Median => Rule::Median,
            BucketInner::CenteredClip {
                tau_permille,
                iters,
            } => Rule::CenteredClip {
                tau_permille,
                iters,
            },
        }
    }
}

impl Rule {
    /// Centered clipping with the default radius factor (1000‰) and 3 iterations.
    pub const fn centered_clip_default() -> Rule {
        Rule::CenteredClip {
            tau_permille: DEFAULT_CENTERED_CLIP_TAU_PERMILLE,
            iters: DEFAULT_CENTERED_CLIP_ITERS,
        }
    }

    /// Bucketing with s = 2 and default centered clipping on the bucket means.
    pub const fn bucketing_default() -> Rule {
        Rule::Bucketing {
            s: DEFAULT_BUCKET_SIZE,
            inner: BucketInner::CenteredClip {
                tau_permille: DEFAULT_CENTERED_CLIP_TAU_PERMILLE,
                iters: DEFAULT_CENTERED_CLIP_ITERS,
            },
        }
    }

    /// Checks the parameters for `n` inputs.
    fn validate(self, n: usize) -> Result<(), AggregateError> {
        match self {
            Rule::FedAvg | Rule::Median => Ok(()),
            Rule::TrimmedMean { trim_permille } if trim_permille >= 500 => {
                Err(AggregateError::InvalidTrim(trim_permille))
            }
            Rule::TrimmedMean { .. } => Ok(()),
            Rule::MultiKrum { m, .. } if m == 0 || m > n => {
                Err(AggregateError::InvalidKrum { n, m })
            }
            Rule::MultiKrum { .. } => Ok(()),
            Rule::CenteredClip {
                tau_permille,
                iters,
            } if tau_permille == 0 || iters == 0 || iters > MAX_CENTERED_CLIP_ITERS => {
                Err(AggregateError::InvalidCenteredClip {
                    tau_permille,
                    iters,
                })
            }
            Rule::CenteredClip { .. } => Ok(()),
            Rule::Bucketing { s: 0, .. } => Err(AggregateError::InvalidBucketSize),
            Rule::Bucketing { s, inner } => inner.rule().validate(n.div_ceil(s)),
        }
    }
}

impl Rule {
    /// The rule as applied to `n` inputs: [`Rule::MultiKrum`] with `m = 0` averages the `n − f`
    /// best-scored inputs (at least one), the usual choice when `n` is not known in advance
    /// (text form `krum:F`); every other rule is itself.
    pub fn for_inputs(self, n: usize) -> Rule {
        match self {
            Rule::MultiKrum { f, m: 0 } => Rule::MultiKrum {
                f,
                m: n.saturating_sub(f).max(1),
            },
            other => other,
        }
    }

    /// Checks the parameters that do not depend on the number of inputs (what a project's spec
    /// can be checked for when it is created).
    pub fn check(self) -> Result<(), AggregateError> {
        match self {
            Rule::MultiKrum { .. } => Ok(()),
            Rule::Bucketing { s, inner } => {
                if s == 0 {
                    return Err(AggregateError::InvalidBucketSize);
                }
                inner.rule().check()
            }
            other => other.validate(usize::MAX),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rule::FedAvg => f.write_str("fedavg"),
            Rule::TrimmedMean { trim_permille } => write!(f, "trimmed-mean:{trim_permille}"),
            Rule::Median => f.write_str("median"),
            Rule::MultiKrum { f: byz, m: 0 } => write!(f, "krum:{byz}"),
            Rule::MultiKrum { f: byz, m } => write!(f, "krum:{byz}:{m}"),
            Rule::CenteredClip {
                tau_permille,
                iters,
            } => write!(f, "centered-clip:{tau_permille}:{iters}"),
            Rule::Bucketing { s, inner } => write!(f, "bucketing:{s}:{}", inner.rule()),
        }
    }
}

impl std::str::FromStr for Rule {
    type Err = AggregateError;

    /// The text form written by `Display`; the parameters after a rule's name may be left out
    /// for its defaults (`trimmed-mean` = `trimmed-mean:200`, `centered-clip` =
    /// `centered-clip:1000:3`, `bucketing` = `bucketing:2:centered-clip:1000:3`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || AggregateError::Parse(text.to_owned());
        let parts: Vec<&str> = text.trim().split(':').collect();
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
        let size = |s: &str| s.parse::<usize>().map_err(|_| bad());
        let rule = match parts.as_slice() {
            ["fedavg"] => Rule::FedAvg,
            ["trimmed-mean"] => Rule::default(),
            ["trimmed-mean", b] => Rule::TrimmedMean {
                trim_permille: num(b)?,
            },
            ["median"] => Rule::Median,
            ["krum", byz] => Rule::MultiKrum {
                f: size(byz)?,
                m: 0,
            },
            ["krum", byz, m] => Rule::MultiKrum {
                f: size(byz)?,
                m: size(m)?,
            },
            ["centered-clip"] => Rule::centered_clip_default(),
            ["centered-clip", t, i] => Rule::CenteredClip {
                tau_permille: num(t)?,
                iters: num(i)?,
            },
            ["bucketing"] => Rule::bucketing_default(),
            ["bucketing", s, rest @ ..] => {
                let inner = if rest.is_empty() {
                    Rule::bucketing_default().bucket_inner()
                } else {
                    match rest.join(":").parse::<Rule>().map_err(|_| bad())? {
                        Rule::TrimmedMean { trim_permille } => {
                            BucketInner::TrimmedMean { trim_permille }
                        }
                        Rule::Median => BucketInner::Median,
                        Rule::CenteredClip {
                            tau_permille,
                            iters,
                        } => BucketInner::CenteredClip {
                            tau_permille,
                            iters,
                        },
                        _ => return Err(bad()),
                    }
                };
                Rule::Bucketing { s: size(s)?, inner }
            }
            _ => return Err(bad()),
        };
        rule.check()?;
        Ok(rule)
    }
}

impl Rule {
    fn bucket_inner(self) -> BucketInner {
        match self {
            Rule::Bucketing { inner, .. } => inner,
            _ => unreachable!("only called on a bucketing rule"),
        }
    }
}

impl Default for Rule {
    fn default() -> Self {
        Rule::TrimmedMean {
            trim_permille: DEFAULT_TRIM_PERMILLE,
        }
    }
}

/// One solver's delta with its incentive weight.
#[derive(Clone, Copy, Debug)]
pub struct Contribution<'a> {
    /// The delta.
    pub delta: &'a Delta,
    /// Consensus incentive (> 0).
    pub weight: u64,
}

struct Canon<'a> {
    delta: &'a Delta,
    weight: u64,
}

fn canonicalize<'a>(inputs: &[Contribution<'a>]) -> Result<Vec<Canon<'a>>, AggregateError> {
    let first = inputs.first().ok_or(AggregateError::Empty)?;
    let mut keyed: Vec<(Hash32, Canon<'a>)> = Vec::with_capacity(inputs.len());
    for (index, c) in inputs.iter().enumerate() {
        first
            .delta
            .check_same_layout(c.delta)
            .map_err(|source| AggregateError::Layout { index, source })?;
        if c.weight == 0 {
            return Err(AggregateError::ZeroWeight { index });
        }
        if let Some(name) = c.delta.first_non_finite() {
            return Err(AggregateError::NonFinite {
                index,
                name: name.to_owned(),
            });
        }
        keyed.push((
            content_hash(c.delta)?,
            Canon {
                delta: c.delta,
                weight: c.weight,
            },
        ));
    }
    keyed.sort_by_key(|(hash, c)| (*hash, c.weight));
    Ok(keyed.into_iter().map(|(_, c)| c).collect())
}

/// Weighted mean of `(value, weight)` pairs, as specified in the module docs.
fn weighted_mean(pairs: impl Iterator<Item = (f32, u64)>) -> f32 {
    let mut acc = 0f64;
    let mut total: u128 = 0;
    for (x, w) in pairs {
        acc += w as f64 * f64::from(x);
        total += u128::from(w);
    }
    (acc / total as f64) as f32
}

/// How many values are trimmed from each end for `n` inputs.
pub fn trim_count(n: usize, trim_permille: u32) -> usize {
    if n <= 2 || trim_permille == 0 {
        return 0;
    }
    let k = (n * trim_permille as usize / 1000).max(1);
    k.min((n - 1) / 2)
}

/// Multi-Krum scores of the inputs in the given order (see module docs).
pub fn krum_scores(deltas: &[&Delta], f: usize) -> Vec<f64> {
    let n = deltas.len();
    let mut dist = vec![vec![0f64; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 = deltas[i]
                .values()
                .zip(deltas[j].values())
                .map(|(a, b)| {
                    let e = f64::from(a) - f64::from(b);
                    e * e
                })
                .sum();
            dist[i][j] = d;
            dist[j][i] = d;
        }
    }
    let closest = n.saturating_sub(f + 2).max(1).min(n.saturating_sub(1));
    (0..n)
        .map(|i| {
            let mut others: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| dist[i][j]).collect();
            others.sort_by(f64::total_cmp);
            others.iter().take(closest).sum()
        })
        .collect()
}

/// Aggregates the contributions with `rule`; see the module docs for the exact definition.
pub fn aggregate(rule: Rule, inputs: &[Contribution<'_>]) -> Result<Delta, AggregateError> {
    let rule = rule.for_inputs(inputs.len());
    rule.validate(inputs.len())?;
    let canon = canonicalize(inputs)?;
    Ok(combine(rule, &canon))
}

/// `rule` on inputs already in canonical order and validated.
fn combine(rule: Rule, canon: &[Canon<'_>]) -> Delta {
    let n = canon.len();
    match rule {
        Rule::FedAvg => coordinate_wise(canon, |vals, ws| {
            weighted_mean(vals.iter().copied().zip(ws.iter().copied()))
        }),
        Rule::TrimmedMean { trim_permille } => {
            let k = trim_count(n, trim_permille);
            let mut order: Vec<usize> = (0..n).collect();
            coordinate_wise(canon, |vals, ws| {
                order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]).then(a.cmp(&b)));
                weighted_mean(order[k..n - k].iter().map(|&i| (vals[i], ws[i])))
            })
        }
        Rule::Median => {
            let mut sorted = vec![0f32; n];
            coordinate_wise(canon, |vals, _| {
                sorted.copy_from_slice(vals);
                sorted.sort_by(f32::total_cmp);
                if n % 2 == 1 {
                    sorted[n / 2]
                } else {
                    ((f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0) as f32
                }
            })
        }
        Rule::MultiKrum { f, m } => {
            let deltas: Vec<&Delta> = canon.iter().map(|c| c.delta).collect();
            let scores = krum_scores(&deltas, f);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
            let mut chosen: Vec<usize> = order[..m].to_vec();
            chosen.sort_unstable();
            let selected: Vec<Canon<'_>> = chosen
                .iter()
                .map(|&i| Canon {
                    delta: canon[i].delta,
                    weight: canon[i].weight,
                })
                .collect();
            coordinate_wise(&selected, |vals, ws| {
                weighted_mean(vals.iter().copied().zip(ws.iter().copied()))
            })
        }
        Rule::CenteredClip {
            tau_permille,
            iters,
        } => centered_clip(canon, tau_permille, iters),
        Rule::Bucketing { s, inner } => {
            let means: Vec<Delta> = canon
                .chunks(s)
                .map(|bucket| combine(Rule::FedAvg, bucket))
                .collect();
            let buckets: Vec<Canon<'_>> = means
                .iter()
                .map(|delta| Canon { delta, weight: 1 })
                .collect();
            combine(inner.rule(), &buckets)
        }
    }
}

/// Median of f64 values (mean of the two middle ones for an even count); `xs` is sorted.
fn median_f64(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// `√(Σ_j (x_j − v_j)²)` over all values of `x` in canonical order.
fn distance(x: &Delta, v: &[f64]) -> f64 {
    x.values()
        .zip(v)
        .map(|(a, &b)| {
            let e = f64::from(a) - b;
            e * e
        })
        .sum::<f64>()
        .sqrt()
}

/// [`Rule::CenteredClip`] as specified in the module docs.
fn centered_clip(canon: &[Canon<'_>], tau_permille: u32, iters: u32) -> Delta {
    let median = combine(Rule::Median, canon);
    let mut v: Vec<f64> = median.values().map(f64::from).collect();
    let mut radii: Vec<f64> = canon.iter().map(|c| distance(c.delta, &v)).collect();
    let tau = f64::from(tau_permille) / 1000.0 * median_f64(&mut radii);
    let total = canon.iter().map(|c| u128::from(c.weight)).sum::<u128>() as f64;
    let mut acc = vec![0f64; v.len()];
    for _ in 0..iters {
        acc.fill(0.0);
        for c in canon {
            let d = distance(c.delta, &v);
            let clip = if d > tau { tau / d } else { 1.0 };
            let w = c.weight as f64;
            for ((a, x), &vj) in acc.iter_mut().zip(c.delta.values()).zip(&v) {
                *a += w * (clip * (f64::from(x) - vj));
            }
        }
        for (vj, a) in v.iter_mut().zip(&acc) {
            *vj += a / total;
        }
    }
    let mut values = v.into_iter();
    let tensors = median
        .tensors()
        .iter()
        .map(|t| {
            let data = values
                .by_ref()
                .take(t.data.len())
                .map(|x| x as f32)
                .collect();
            NamedTensor::new(t.name.clone(), t.shape.clone(), data)
        })
        .collect();
    TensorSet::new(tensors).expect("layout copied from a valid set")
}

/// Applies `combine(values_in_canonical_order, weights)` to every coordinate.
fn coordinate_wise(
    canon: &[Canon<'_>],
    mut combine: impl FnMut(&[f32], &[u64]) -> f32,
) -> TensorSet {
    let n = canon.len();
    let weights: Vec<u64> = canon.iter().map(|c| c.weight).collect();
    let mut vals = vec![0f32; n];
    let tensors = canon[0]
        .delta
        .tensors()
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            let data = (0..t.data.len())
                .map(|j| {
                    for (v, c) in vals.iter_mut().zip(canon) {
                        *v = c.delta.tensors()[ti].data[j];
                    }
                    combine(&vals, &weights)
                })
                .collect();
            NamedTensor::new(t.name.clone(), t.shape.clone(), data)
        })
        .collect();
    TensorSet::new(tensors).expect("layout copied from a valid set")
}

/// The next model of a pipelined round (a project's `maxStaleness` 1): `merged` was trained
/// from `base`, but `onto`, the model the round before built on `base`, is the project's model
/// now. The result is the midpoint of `onto` and `base + merged`: per value, `c = base + merged`
/// in f32, then `(onto + c) / 2` in f64 rounded once to f32. Every step is a correctly rounded
/// IEEE operation, so every machine gets the same bytes.
///
/// Why not `onto + merged`: the two rounds' deltas were both trained from `base` and point the
/// same way, so adding both overshoots (measured in `docs/learning.md`: the loss oscillates).
/// The midpoint averages the model the round before produced with the one this round's solvers
/// would have produced from the same base.
pub fn apply_stale(
    onto: &TensorSet,
    base: &TensorSet,
    merged: &Delta,
) -> Result<TensorSet, TensorError> {
    let candidate = base.add(merged)?;
    onto.zip_with(&candidate, |o, c| {
        ((f64::from(o) + f64::from(c)) * 0.5) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::to_safetensors;

    fn d(vals: &[f32]) -> Delta {
        TensorSet::new(vec![NamedTensor::new("w", vec![vals.len()], vals.to_vec())]).unwrap()
    }

    fn two(a: &[f32], b: &[f32]) -> Delta {
        TensorSet::new(vec![
            NamedTensor::new("a", vec![a.len()], a.to_vec()),
            NamedTensor::new("b", vec![b.len()], b.to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn rules_round_trip_through_their_text_and_bad_ones_are_named() {
        for text in [
            "fedavg",
            "trimmed-mean:200",
            "median",
            "krum:1",
            "krum:1:2",
            "centered-clip:1000:3",
            "bucketing:2:median",
            "bucketing:3:trimmed-mean:100",
            "bucketing:2:centered-clip:500:5",
        ] {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!("trimmed-mean".parse::<Rule>().unwrap(), Rule::default());
        assert_eq!(
            "bucketing".parse::<Rule>().unwrap(),
            Rule::bucketing_default()
        );
        for bad in [
            "trimmed-mean:500",
            "centered-clip:0:3",
            "bucketing:0",
            "bucketing:2:krum:1",
            "mean",
            "krum",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
        // krum:F averages n − F of n inputs.
        assert_eq!(
            Rule::MultiKrum { f: 1, m: 0 }.for_inputs(4),
            Rule::MultiKrum { f: 1, m: 3 }
        );
        let ds = [d(&[1.0]), d(&[1.1]), d(&[0.9]), d(&[50.0])];
        let krum = aggregate("krum:1".parse().unwrap(), &eq_weights(&ds)).unwrap();
        assert!(krum.values().all(|v| (v - 1.0).abs() < 0.2), "{krum:?}");
    }

    fn eq_weights(ds: &[Delta]) -> Vec<Contribution<'_>> {
        ds.iter()
            .map(|delta| Contribution { delta, weight: 1 })
            .collect()
    }

    fn data(set: &Delta) -> Vec<f32> {
        set.values().collect()
    }

    #[test]
    fn fedavg_is_weighted_by_incentive() {
        // Flower test_aggregate: identical layers with weights 1 and 2 give the same layers back.
        let x = two(&[1., 2., 3., 4., 5., 6.], &[7., 8., 9., 10.]);
        let out = aggregate(
            Rule::FedAvg,
            &[
                Contribution {
                    delta: &x,
                    weight: 1,
                },
                Contribution {
                    delta: &x,
                    weight: 2,
                },
            ],
        )
        .unwrap();
        assert_eq!(out, x);
        // (1·0 + 3·4) / 4 = 3 ; (1·2 + 3·(−2)) / 4 = −1
        let (a, b) = (d(&[0., 2.]), d(&[4., -2.]));
        let out = aggregate(
            Rule::FedAvg,
            &[
                Contribution {
                    delta: &a,
                    weight: 1,
                },
                Contribution {
                    delta: &b,
                    weight: 3,
                },
            ],
        )
        .unwrap();
        assert_eq!(data(&out), [3., -1.]);
    }

    #[test]
    fn trimmed_mean_hand_checked() {
        // n = 5, β = 0.2 → k = 1. Coordinate 0: sorted [1,2,3,4,100] → mean(2,3,4) = 3.
        // Coordinate 1: sorted [-50,0,1,2,3] → mean(0,1,2) = 1.
        let ds = [
            d(&[1., 0.]),
            d(&[2., 1.]),
            d(&[3., 2.]),
            d(&[4., 3.]),
            d(&[100., -50.]),
        ];
        let out = aggregate(Rule::default(), &eq_weights(&ds)).unwrap();
        assert_eq!(data(&out), [3., 1.]);
        // Weighted survivors: weights 1,1,1,5,1 → coord 0 kept {2,3,4} with weights {1,1,5}:
        // (2 + 3 + 20) / 7 = 25/7.
        let ws = [1, 1, 1, 5, 1];
        let c: Vec<_> = ds
            .iter()
            .zip(ws)
            .map(|(delta, weight)| Contribution { delta, weight })
            .collect();
        let out = aggregate(Rule::default(), &c).unwrap();
        assert_eq!(out.values().next().unwrap(), (25f64 / 7.0) as f32);
    }

    #[test]
    fn trim_count_rules() {
        assert_eq!(trim_count(1, 200), 0);
        assert_eq!(trim_count(2, 200), 0); // falls back to the weighted mean
        assert_eq!(trim_count(3, 200), 1); // = median
        assert_eq!(trim_count(4, 200), 1);
        assert_eq!(trim_count(10, 200), 2);
        assert_eq!(trim_count(10, 0), 0);
        assert_eq!(trim_count(10, 499), 4);
        assert!(matches!(
            aggregate(
                Rule::TrimmedMean { trim_permille: 500 },
                &eq_weights(&[d(&[1.])])
            ),
            Err(AggregateError::InvalidTrim(500))
        ));
        // n = 2: plain mean (1 + 2) / 2.
        let out = aggregate(Rule::default(), &eq_weights(&[d(&[1.]), d(&[2.])])).unwrap();
        assert_eq!(data(&out), [1.5]);
    }

    #[test]
    fn flower_trimmed_avg_case() {
        // scipy.stats.trim_mean([[1,2],[3,4],[5,6],[7,8],[9,100]], 0.2, axis=0):
        // cut 1 per end → coord 0: mean(3,5,7) = 5; coord 1: mean(4,6,8) = 6.
        let ds = [
            d(&[1., 2.]),
            d(&[3., 4.]),
            d(&[5., 6.]),
            d(&[7., 8.]),
            d(&[9., 100.]),
        ];
        assert_eq!(
            data(&aggregate(Rule::default(), &eq_weights(&ds)).unwrap()),
            [5., 6.]
        );
    }

    #[test]
    fn median_matches_flower_and_numpy() {
        // Flower fedmedian_test: [0.2]*4, [1.0]*4, [0.5]*4 → 0.5.
        let ds = [d(&[0.2; 4]), d(&[1.0; 4]), d(&[0.5; 4])];
        assert_eq!(
            data(&aggregate(Rule::Median, &eq_weights(&ds)).unwrap()),
            [0.5; 4]
        );
        // Even n: np.median([1, 2, 4, 10]) = (2 + 4) / 2 = 3.
        let ds = [d(&[10.]), d(&[1.]), d(&[4.]), d(&[2.])];
        assert_eq!(
            data(&aggregate(Rule::Median, &eq_weights(&ds)).unwrap()),
            [3.]
        );
    }

    #[test]
    fn krum_matches_flower() {
        // Flower krum_test: [0.2]*4, [0.7]*4, [1.0]*4 with f = 1 → n−f−2 = 0 → 1 closest.
        // Squared distances: d01 = 4·0.5² = 1.0, d02 = 4·0.8² = 2.56, d12 = 4·0.3² = 0.36.
        // Scores: s0 = 1.0, s1 = 0.36, s2 = 0.36 (0.7 and 1.0 tie; Flower returns 0.7 by
        // input position, we break the tie by canonical position).
        let ds = [d(&[0.2; 4]), d(&[0.7; 4]), d(&[1.0; 4])];
        let s = krum_scores(&ds.iter().collect::<Vec<_>>(), 1);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(
            close(s[0], 1.0) && close(s[1], 0.36) && close(s[2], 0.36),
            "{s:?}"
        );
        assert_eq!(s[1], s[2]);
        let krum = data(&aggregate(Rule::MultiKrum { f: 1, m: 1 }, &eq_weights(&ds)).unwrap());
        assert!(krum == [0.7; 4] || krum == [1.0; 4], "{krum:?}");
        // Multi-Krum m = 2 keeps both tied inputs: (0.7 + 1.0) / 2 = 0.85, tie-free.
        let mk = aggregate(Rule::MultiKrum { f: 1, m: 2 }, &eq_weights(&ds)).unwrap();
        assert_eq!(data(&mk), [((0.7f32 as f64 + 1.0) / 2.0) as f32; 4]);
        assert!(matches!(
            aggregate(Rule::MultiKrum { f: 1, m: 4 }, &eq_weights(&ds)),
            Err(AggregateError::InvalidKrum { n: 3, m: 4 })
        ));
    }

    #[test]
    fn validation_errors() {
        let a = d(&[1., 2.]);
        let b = d(&[1., 2., 3.]);
        assert!(matches!(
            aggregate(Rule::FedAvg, &[]),
            Err(AggregateError::Empty)
        ));
        assert!(matches!(
            aggregate(Rule::FedAvg, &eq_weights(&[a.clone(), b])),
            Err(AggregateError::Layout {
                index: 1,
                source: TensorError::ShapeMismatch { .. }
            })
        ));
        let other = TensorSet::new(vec![NamedTensor::new("v", vec![2], vec![0.; 2])]).unwrap();
        assert!(matches!(
            aggregate(Rule::Median, &eq_weights(&[a.clone(), other])),
            Err(AggregateError::Layout {
                index: 1,
                source: TensorError::NameMismatch { .. }
            })
        ));
        assert!(matches!(
            aggregate(
                Rule::FedAvg,
                &[Contribution {
                    delta: &a,
                    weight: 0
                }]
            ),
            Err(AggregateError::ZeroWeight { index: 0 })
        ));
        let nan = d(&[f32::NAN, 0.]);
        assert!(matches!(
            aggregate(Rule::default(), &eq_weights(&[a, nan])),
            Err(AggregateError::NonFinite { index: 1, .. })
        ));
    }

    /// Deltas with awkward magnitudes so that summation order matters in floating point.
    fn awkward(seed: u64, n: usize) -> Vec<Delta> {
        let mut r = crate::rng::SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let a: Vec<f32> = (0..257)
                    .map(|_| (r.next_f32() - 0.5) * 10f32.powi(r.below(8) as i32 - 4))
                    .collect();
                let b: Vec<f32> = (0..33).map(|_| r.next_f32() * 1e3 - 5e2).collect();
                two(&a, &b)
            })
            .collect()
    }

    fn all_rules() -> [Rule; 10] {
        [
            Rule::FedAvg,
            Rule::default(),
            Rule::Median,
            Rule::MultiKrum { f: 1, m: 3 },
            Rule::MultiKrum { f: 1, m: 1 },
            Rule::centered_clip_default(),
            Rule::CenteredClip {
                tau_permille: 300,
                iters: 5,
            },
            Rule::bucketing_default(),
            Rule::Bucketing {
                s: 2,
                inner: BucketInner::Median,
            },
            Rule::Bucketing {
                s: 3,
                inner: BucketInner::TrimmedMean { trim_permille: 200 },
            },
        ]
    }

    #[test]
    fn output_bytes_identical_across_runs_and_input_orders() {
        let ds = awkward(11, 5);
        let ws = [3u64, 1, 4, 1, 5];
        for rule in all_rules() {
            let run = |perm: &[usize], weighted: bool| {
                let c: Vec<Contribution<'_>> = perm
                    .iter()
                    .map(|&i| Contribution {
                        delta: &ds[i],
                        weight: if weighted { ws[i] } else { 7 },
                    })
                    .collect();
                to_safetensors(&aggregate(rule, &c).unwrap()).unwrap()
            };
            for weighted in [false, true] {
                let reference = run(&[0, 1, 2, 3, 4], weighted);
                assert_eq!(
                    reference,
                    run(&[0, 1, 2, 3, 4], weighted),
                    "{rule:?} run to run"
                );
                // All 120 permutations of 5 inputs (Heap's algorithm).
                let mut p = [0usize, 1, 2, 3, 4];
                let mut c = [0usize; 5];
                let mut i = 0;
                while i < 5 {
                    if c[i] < i {
                        p.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
                        assert_eq!(
                            reference,
                            run(&p, weighted),
                            "{rule:?} weighted={weighted} perm {p:?}"
                        );
                        c[i] += 1;
                        i = 0;
                    } else {
                        c[i] = 0;
                        i += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn robust_rules_resist_one_poisoned_delta_fedavg_does_not() {
        // Four honest solvers whose deltas cluster around +1, one attacker sending −10× an honest
        // delta (sign flip, scale 10).
        let honest: Vec<Delta> = (0..4).map(|i| d(&[1.0 + 0.01 * i as f32; 8])).collect();
        let mut all = honest.clone();
        all.push(honest[0].scale(-10.0));
        let truth = 1.015f32; // mean of 1.00, 1.01, 1.02, 1.03
        for rule in [
            Rule::default(),
            Rule::Median,
            Rule::MultiKrum { f: 1, m: 2 },
            Rule::centered_clip_default(),
            Rule::bucketing_default(),
            Rule::Bucketing {
                s: 2,
                inner: BucketInner::Median,
            },
            Rule::Bucketing {
                s: 2,
                inner: BucketInner::TrimmedMean { trim_permille: 200 },
            },
        ] {
            let out = aggregate(rule, &eq_weights(&all)).unwrap();
            for v in out.values() {
                assert!((v - truth).abs() < 0.05, "{rule:?}: {v}");
            }
        }
        // FedAvg: (1 + 1.01 + 1.02 + 1.03 − 10) / 5 = −1.188 — pulled to the wrong sign.
        let avg = aggregate(Rule::FedAvg, &eq_weights(&all)).unwrap();
        assert!(avg.values().all(|v| v < 0.0), "{:?}", data(&avg));
    }

    #[test]
    fn centered_clip_hand_checked() {
        // One coordinate, inputs 0, 1, 2, 10 (equal weights). Median v0 = 1.5; radii 1.5, 0.5,
        // 0.5, 8.5 → median radius 1.0 = τ. Iteration 1 from v = 1.5: u = −1.5 (clipped to −1),
        // −0.5, 0.5, 8.5 (clipped to 1) → v = 1.5 + (−1 − 0.5 + 0.5 + 1) / 4 = 1.5.
        let ds = [d(&[0.]), d(&[1.]), d(&[2.]), d(&[10.])];
        let out = aggregate(Rule::centered_clip_default(), &eq_weights(&ds)).unwrap();
        assert_eq!(data(&out), [1.5]);
        // Weights 1, 1, 1, 5 on the same inputs, τ factor 2 (τ = 2), one iteration:
        // u = −1.5, −0.5, 0.5, 8.5 → clipped −1.5, −0.5, 0.5, 2 → Σ w·u = −1.5 − 0.5 + 0.5 + 10
        // = 8.5, / 8 → v = 1.5 + 1.0625 = 2.5625.
        let c: Vec<_> = ds
            .iter()
            .zip([1u64, 1, 1, 5])
            .map(|(delta, weight)| Contribution { delta, weight })
            .collect();
        let rule = Rule::CenteredClip {
            tau_permille: 2000,
            iters: 1,
        };
        assert_eq!(data(&aggregate(rule, &c).unwrap()), [2.5625]);
        // Clipping is over the whole delta (both tensors): the attacker's pull is τ in total.
        let honest = two(&[1., 1.], &[1.]);
        let far = two(&[101., 1.], &[1.]);
        let out = aggregate(
            Rule::centered_clip_default(),
            &eq_weights(&[honest.clone(), honest.clone(), far]),
        )
        .unwrap();
        // Median = honest, radii 0, 0, 100 → τ = 0: stays at the median.
        assert_eq!(out, honest);
    }

    #[test]
    fn bucketing_averages_consecutive_canonical_inputs() {
        // s ≥ n: one bucket, the weighted mean.
        let ds = [d(&[1.]), d(&[2.]), d(&[6.])];
        let one = Rule::Bucketing {
            s: 3,
            inner: BucketInner::Median,
        };
        assert_eq!(data(&aggregate(one, &eq_weights(&ds)).unwrap()), [3.]);
        // s = 1: the inner rule itself.
        for inner in [
            BucketInner::Median,
            BucketInner::TrimmedMean { trim_permille: 200 },
            BucketInner::CenteredClip {
                tau_permille: 1000,
                iters: 3,
            },
        ] {
            let ds = awkward(3, 5);
            assert_eq!(
                aggregate(Rule::Bucketing { s: 1, inner }, &eq_weights(&ds)).unwrap(),
                aggregate(inner.rule(), &eq_weights(&ds)).unwrap(),
                "{inner:?}"
            );
        }
        // Four inputs, s = 2: the median of two bucket means is their mean, i.e. FedAvg.
        let ds = [d(&[1.]), d(&[2.]), d(&[3.]), d(&[10.])];
        let two_buckets = Rule::Bucketing {
            s: 2,
            inner: BucketInner::Median,
        };
        assert_eq!(
            data(&aggregate(two_buckets, &eq_weights(&ds)).unwrap()),
            [4.]
        );
    }

    #[test]
    fn new_rules_reject_bad_parameters() {
        let ds = [d(&[1.]), d(&[2.])];
        for (tau_permille, iters) in [(0, 3), (1000, 0), (1000, MAX_CENTERED_CLIP_ITERS + 1)] {
            let rule = Rule::CenteredClip {
                tau_permille,
                iters,
            };
            assert!(
                matches!(
                    aggregate(rule, &eq_weights(&ds)),
                    Err(AggregateError::InvalidCenteredClip { .. })
                ),
                "{rule:?}"
            );
            let bucketed = Rule::Bucketing {
                s: 2,
                inner: BucketInner::CenteredClip {
                    tau_permille,
                    iters,
                },
            };
            assert!(matches!(
                aggregate(bucketed, &eq_weights(&ds)),
                Err(AggregateError::InvalidCenteredClip { .. })
            ));
        }
        assert!(matches!(
            aggregate(
                Rule::Bucketing {
                    s: 0,
                    inner: BucketInner::Median
                },
                &eq_weights(&ds)
            ),
            Err(AggregateError::InvalidBucketSize)
        ));
        assert!(matches!(
            aggregate(
                Rule::Bucketing {
                    s: 1,
                    inner: BucketInner::TrimmedMean { trim_permille: 500 }
                },
                &eq_weights(&ds)
            ),
            Err(AggregateError::InvalidTrim(500))
        ));
        assert!(matches!(
            aggregate(Rule::centered_clip_default(), &[]),
            Err(AggregateError::Empty)
        ));
    }

    #[test]
    fn a_stale_delta_lands_midway_between_the_newer_model_and_its_own_candidate() {
        let set = |v: [f32; 2]| {
            TensorSet::new(vec![NamedTensor {
                name: "w".into(),
                shape: vec![2],
                data: v.to_vec(),
            }])
            .unwrap()
        };
        let base = set([1.0, -2.0]);
        let onto = set([3.0, 0.0]);
        let merged = set([1.0, 4.0]);
        let next = apply_stale(&onto, &base, &merged).unwrap();
        assert_eq!(next.values().collect::<Vec<_>>(), vec![2.5, 1.0]);
        let other = TensorSet::new(vec![NamedTensor {
            name: "v".into(),
            shape: vec![2],
            data: vec![0.0, 0.0],
        }])
        .unwrap();
        assert!(
            apply_stale(&other, &base, &merged).is_err(),
            "layouts must match"
        );
    }
}
