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

use thiserror::Error;

use crate::codec::{CodecError, content_hash};
use crate::merkle::Hash32;
use crate::tensors::{Delta, NamedTensor, TensorError, TensorSet};

/// Default trim fraction in per-mille (β = 0.2).
pub const DEFAULT_TRIM_PERMILLE: u32 = 200;

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
    if let Rule::TrimmedMean { trim_permille } = rule
        && trim_permille >= 500
    {
        return Err(AggregateError::InvalidTrim(trim_permille));
    }
    if let Rule::MultiKrum { m, .. } = rule
        && (m == 0 || m > inputs.len())
    {
        return Err(AggregateError::InvalidKrum { n: inputs.len(), m });
    }
    let canon = canonicalize(inputs)?;
    let n = canon.len();
    match rule {
        Rule::FedAvg => Ok(coordinate_wise(&canon, |vals, ws| {
            weighted_mean(vals.iter().copied().zip(ws.iter().copied()))
        })),
        Rule::TrimmedMean { trim_permille } => {
            let k = trim_count(n, trim_permille);
            let mut order: Vec<usize> = (0..n).collect();
            Ok(coordinate_wise(&canon, |vals, ws| {
                order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]).then(a.cmp(&b)));
                weighted_mean(order[k..n - k].iter().map(|&i| (vals[i], ws[i])))
            }))
        }
        Rule::Median => {
            let mut sorted = vec![0f32; n];
            Ok(coordinate_wise(&canon, |vals, _| {
                sorted.copy_from_slice(vals);
                sorted.sort_by(f32::total_cmp);
                if n % 2 == 1 {
                    sorted[n / 2]
                } else {
                    ((f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0) as f32
                }
            }))
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
            Ok(coordinate_wise(&selected, |vals, ws| {
                weighted_mean(vals.iter().copied().zip(ws.iter().copied()))
            }))
        }
    }
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

    fn all_rules() -> [Rule; 5] {
        [
            Rule::FedAvg,
            Rule::default(),
            Rule::Median,
            Rule::MultiKrum { f: 1, m: 3 },
            Rule::MultiKrum { f: 1, m: 1 },
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
