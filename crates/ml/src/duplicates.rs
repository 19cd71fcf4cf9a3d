//! Copied work: the protocol's rule for near-duplicate deltas (`docs/learning.md`, "Copied and
//! lazy work").
//!
//! A free-rider can skip training and reveal another solver's delta, from an earlier task of the
//! project (public once revealed) or from a colluder in the same task, with a little noise so the
//! bytes differ. Coordinators find such deltas with one deterministic rule, so every honest
//! coordinator reaches the same verdict and consensus backs it:
//!
//! - **Cosine.** `cos(a, b) = ⟨a, b⟩ / (‖a‖·‖b‖)` over all coordinates, each product widened
//!   to f64 and accumulated in canonical order (tensors by name, row-major), without fused
//!   multiply-add; the three sums are separate, the norms are `sqrt` of the last two (correctly
//!   rounded), the quotient one division. A vector whose norm is 0 is similar to nothing.
//! - **Against earlier tasks** ([`Originality::CopiesEarlier`]): a delta whose cosine to any
//!   delta revealed in the project's previous [`LOOKBACK_TASKS`] tasks is at least
//!   [`COPY_COSINE`] (0.99) copies published work and is scored 0. (Honest deltas of consecutive
//!   rounds: 0.52–0.77 on `tiny`.)
//! - **Within the task** ([`Originality::Group`]): two of the remaining deltas are duplicates
//!   when their cosine is at least [`COPY_COSINE`]. Honest solvers training from the same base
//!   share most of their update (0.80–0.94 on `tiny`, 40 local steps on disjoint shards: test
//!   `real_honest_deltas_are_not_duplicates_copies_are`), a copy with noise of 1% of its RMS is
//!   at 0.99995. The deltas are joined into groups by this relation (its transitive closure:
//!   union–find in the caller's order, each group named by its smallest index). A group of `c`
//!   solvers is one contribution: each member's score is divided by `c`
//!   (`autonet_protocol::scores::task_scores`). Commit–reveal hides a task's deltas until every
//!   solver has committed, so only colluders can share one; splitting the score makes them earn
//!   together what one honest solver earns.
//! - **Pairwise on purpose.** The verdict on a pair depends on that pair alone. A rule that
//!   first subtracts a common part estimated from the task's *other* deltas (to compare what is
//!   specific to each) was measured and dropped: one outlying delta among three — an attacker's
//!   — makes the two honest residuals share its mirror image, and the honest pair was judged a
//!   duplicate and lost half its reward to the attacker on a devnet.
//! - **What it does not catch.** A copy with Gaussian noise of `ρ` times its source's norm has
//!   cosine `1/√(1 + ρ²)` to it, under 0.99 from `ρ ≈ 0.14`, and isotropic noise of that size
//!   barely moves the loss of a model this size (measured: +0.002 nats/byte at ρ = 0.3), so a
//!   copier that adds enough noise passes for original work. Catching it needs evidence of
//!   *which data* a delta was trained on (each solver's data assigned by the protocol, and its
//!   delta checked to help on its own assignment more than on others'); that is not built.

use autonet_protocol::scores::Originality;

use crate::tensors::Delta;

/// Cosine at or above which a delta copies another (raw deltas).
pub const COPY_COSINE: f64 = 0.99;

/// How many earlier tasks of the project a coordinator compares a task's deltas against.
pub const LOOKBACK_TASKS: usize = 2;

/// Cosine of two equally long f64 streams, as specified in the module docs.
fn cosine_of(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in pairs {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

/// `cos(a, b)` as specified in the module docs; 0 when either norm is 0 or the layouts differ.
pub fn cosine(a: &Delta, b: &Delta) -> f64 {
    if a.check_same_layout(b).is_err() {
        return 0.0;
    }
    cosine_of(
        a.values()
            .zip(b.values())
            .map(|(x, y)| (f64::from(x), f64::from(y))),
    )
}

/// The originality of each of a task's deltas (`None`: unavailable, its own group), in the
/// caller's order (the order of `revealedSolvers`), against the deltas revealed in earlier tasks.
/// Deltas whose layout differs from the first available one are left alone (their own groups);
/// they cannot be applied to the model anyway.
pub fn originality(current: &[Option<&Delta>], earlier: &[&Delta]) -> Vec<Originality> {
    let n = current.len();
    let copies: Vec<bool> = current
        .iter()
        .map(|d| d.is_some_and(|d| earlier.iter().any(|e| cosine(d, e) >= COPY_COSINE)))
        .collect();
    let first = current.iter().flatten().next();
    let remaining: Vec<usize> = (0..n)
        .filter(|&i| {
            !copies[i]
                && current[i].is_some_and(|d| first.is_some_and(|f| f.check_same_layout(d).is_ok()))
        })
        .collect();
    // Union–find over the remaining deltas; each group is named by its smallest index.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (p, &i) in remaining.iter().enumerate() {
        for &j in &remaining[p + 1..] {
            let (a, b) = (current[i].unwrap(), current[j].unwrap());
            let duplicate = cosine(a, b) >= COPY_COSINE;
            if duplicate {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                let (lo, hi) = (ri.min(rj), ri.max(rj));
                parent[hi] = lo;
            }
        }
    }
    (0..n)
        .map(|i| {
            if copies[i] {
                Originality::CopiesEarlier
            } else {
                Originality::Group(root(&mut parent, i) as u32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Corpus, CorpusOptions, shard, split};
    use crate::model::{ModelConfig, init_weights};
    use crate::rng::SplitMix64;
    use crate::tensors::{NamedTensor, TensorSet};
    use crate::train::{TrainParams, train};

    fn delta(values: &[f32]) -> Delta {
        TensorSet::new(vec![NamedTensor::new(
            "w",
            vec![values.len()],
            values.to_vec(),
        )])
        .unwrap()
    }

    /// `d` plus Gaussian noise of `rel` times its RMS (Box–Muller on the crate's RNG).
    fn noisy(d: &Delta, rel: f64, seed: u64) -> Delta {
        let rms = d.l2_norm() / (d.num_params() as f64).sqrt();
        let mut rng = SplitMix64::new(seed);
        let noise = d
            .tensors()
            .iter()
            .map(|t| {
                let data = t
                    .data
                    .iter()
                    .map(|_| {
                        let u1 = f64::from(rng.next_f32()).max(1e-12);
                        let u2 = f64::from(rng.next_f32());
                        let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                        (rel * rms * g) as f32
                    })
                    .collect();
                NamedTensor::new(t.name.clone(), t.shape.clone(), data)
            })
            .collect();
        d.add(&TensorSet::new(noise).unwrap()).unwrap()
    }

    #[test]
    fn cosine_is_exact_on_hand_values() {
        assert_eq!(cosine(&delta(&[1.0, 0.0]), &delta(&[0.0, 2.0])), 0.0);
        assert_eq!(cosine(&delta(&[3.0, 4.0]), &delta(&[6.0, 8.0])), 1.0);
        assert_eq!(cosine(&delta(&[3.0, 4.0]), &delta(&[-3.0, -4.0])), -1.0);
        assert_eq!(
            cosine(&delta(&[3.0, 4.0]), &delta(&[4.0, 3.0])),
            24.0 / 25.0
        );
        assert_eq!(cosine(&delta(&[0.0, 0.0]), &delta(&[1.0, 2.0])), 0.0);
        // Layout mismatch: similar to nothing.
        assert_eq!(cosine(&delta(&[1.0]), &delta(&[1.0, 2.0])), 0.0);
    }

    #[test]
    fn groups_and_earlier_copies() {
        let (a, b, c) = (
            delta(&[1.0, 0.0, 0.0]),
            delta(&[0.0, 1.0, 0.0]),
            delta(&[0.0, 0.0, 1.0]),
        );
        let a2 = delta(&[1.0, 0.05, 0.0]); // cos 0.9988 to a
        let old = delta(&[0.0, 0.0, 3.0]);
        // c copies `old`; the unavailable delta (None) is its own group.
        let got = originality(&[Some(&a), None, Some(&c), Some(&a2), Some(&b)], &[&old]);
        assert_eq!(
            got,
            vec![
                Originality::Group(0),
                Originality::Group(1),
                Originality::CopiesEarlier,
                Originality::Group(0),
                Originality::Group(4),
            ]
        );
        // The order of the inputs only renames groups: the same partition.
        let got = originality(&[Some(&a2), Some(&b), Some(&a)], &[]);
        assert_eq!(
            got,
            vec![
                Originality::Group(0),
                Originality::Group(1),
                Originality::Group(0)
            ]
        );
        // Transitive: x ~ y ~ z although x and z alone are not duplicates (cos 0.981).
        let x = delta(&[1.0, 0.0]);
        let y = delta(&[1.0, 0.1]);
        let z = delta(&[1.0, 0.2]);
        assert!(cosine(&x, &z) < COPY_COSINE && cosine(&x, &y) >= COPY_COSINE);
        assert!(cosine(&y, &z) >= COPY_COSINE);
        assert_eq!(
            originality(&[Some(&z), Some(&x), Some(&y)], &[]),
            vec![Originality::Group(0); 3]
        );
    }

    #[test]
    fn an_outlier_does_not_make_two_honest_deltas_duplicates() {
        // Two honest deltas with a common part, and an attacker's far outlier: pairwise, the
        // honest pair stays apart (a rule subtracting the others' mean would join them).
        let h1 = delta(&[1.0, 0.3, 0.0]);
        let h2 = delta(&[1.0, 0.0, 0.3]);
        let attacker = delta(&[-10.0, -3.0, 0.0]);
        assert_eq!(
            originality(&[Some(&h1), Some(&h2), Some(&attacker)], &[]),
            vec![
                Originality::Group(0),
                Originality::Group(1),
                Originality::Group(2)
            ]
        );
    }

    /// Real deltas: honest solvers on disjoint shards, from the same base, in two consecutive
    /// rounds, are not duplicates of each other; a copy with 1% noise is, of its source in the
    /// same round and in the round before; a lazy solver (a quarter of the steps) is not.
    #[test]
    fn real_honest_deltas_are_not_duplicates_copies_are() {
        let cfg = ModelConfig::tiny();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let opts = CorpusOptions {
            chunk_size: 2048,
            max_bytes: 256 * 1024,
            extensions: Some(vec!["rs".into()]),
        };
        let corpus = Corpus::from_dir(&dir, &opts).unwrap();
        let (train_c, eval_c) = split(&corpus.chunks, 100);
        let params = |steps: usize, seed: u64| TrainParams {
            steps,
            batch: 8,
            lr: 3e-3,
            seed,
            device: tch::Device::Cpu,
            ..Default::default()
        };
        let mut base = init_weights(&cfg, 7).unwrap();
        let mut before_last = base.clone();
        let mut rounds: Vec<Vec<Delta>> = Vec::new();
        for round in 0..2u64 {
            let deltas: Vec<Delta> = (0..4)
                .map(|i| {
                    let chunks = shard(&train_c, 4, i);
                    train(&cfg, &base, &chunks, &params(40, round * 10 + i as u64))
                        .unwrap()
                        .delta
                })
                .collect();
            before_last = base.clone();
            base = base.add(&deltas[0]).unwrap();
            rounds.push(deltas);
        }
        let mut max_honest = f64::MIN;
        for (r, deltas) in rounds.iter().enumerate() {
            for i in 0..4 {
                for j in i + 1..4 {
                    let c = cosine(&deltas[i], &deltas[j]);
                    eprintln!("round {r}: cos(solver {i}, solver {j}) = {c:.4}");
                    max_honest = max_honest.max(c);
                }
            }
        }
        for i in 0..4 {
            for j in 0..4 {
                let c = cosine(&rounds[1][i], &rounds[0][j]);
                eprintln!("cos(round 1 solver {i}, round 0 solver {j}) = {c:.4}");
                max_honest = max_honest.max(c);
            }
        }
        assert!(
            max_honest < COPY_COSINE,
            "honest deltas reach cos {max_honest}"
        );
        let copy = noisy(&rounds[0][1], 0.01, 3);
        let c = cosine(&copy, &rounds[0][1]);
        eprintln!("cos(copy with 1% noise, source) = {c:.6}");
        assert!(c > 0.9999);
        // A copier in round 1 of a delta revealed in round 0: scored as a copy of earlier work.
        let earlier: Vec<&Delta> = rounds[0].iter().collect();
        let current = [
            Some(&rounds[1][0]),
            Some(&copy),
            Some(&rounds[1][2]),
            Some(&rounds[1][3]),
        ];
        let got = originality(&current, &earlier);
        assert_eq!(
            got,
            vec![
                Originality::Group(0),
                Originality::CopiesEarlier,
                Originality::Group(2),
                Originality::Group(3)
            ]
        );
        // A colluder's copy in the same task: one group of two.
        let same = noisy(&rounds[1][2], 0.01, 4);
        let current = [Some(&rounds[1][0]), Some(&rounds[1][2]), Some(&same)];
        let got = originality(&current, &earlier);
        assert_eq!(
            got,
            vec![
                Originality::Group(0),
                Originality::Group(1),
                Originality::Group(1)
            ]
        );
        // The honest task alone: four groups.
        let honest: Vec<Option<&Delta>> = rounds[1].iter().map(Some).collect();
        assert_eq!(
            originality(&honest, &earlier),
            (0..4).map(Originality::Group).collect::<Vec<_>>()
        );
        // A colluder's copy with noise of 5% of the norm among four honest solvers: joined to its
        // source. With 30% it passes for original work, at almost no cost in loss (printed; see
        // the module docs: what it does not catch).
        for (rho, joined) in [(0.05, true), (0.3, false)] {
            let far = noisy(&rounds[1][3], rho, 5);
            let mut current = honest.clone();
            current.push(Some(&far));
            let got = originality(&current, &earlier);
            assert_eq!(got[4] == Originality::Group(3), joined, "{rho}: {got:?}");
            assert_eq!(
                got[..4],
                (0..4).map(Originality::Group).collect::<Vec<_>>()[..]
            );
            let spec = crate::train::EvalSpec {
                seed: 3,
                windows: 32,
                batch: 16,
            };
            let loss = |d: &Delta| {
                crate::train::evaluate(&cfg, &before_last.add(d).unwrap(), &eval_c, &spec).unwrap()
            };
            eprintln!(
                "copy with {rho} noise: cos {:.4}, eval loss {:.4} (source {:.4}, base {:.4})",
                cosine(&far, &rounds[1][3]),
                loss(&far),
                loss(&rounds[1][3]),
                crate::train::evaluate(&cfg, &before_last, &eval_c, &spec).unwrap(),
            );
        }
        // A lazy solver (10 of 40 steps) on its own shard: original work, however little.
        let lazy = train(&cfg, &base, &shard(&train_c, 3, 1), &params(10, 99))
            .unwrap()
            .delta;
        let c = cosine(&lazy, &rounds[1][1]);
        eprintln!("cos(lazy, honest on other data) = {c:.4}");
        assert!(originality(&[Some(&lazy)], &earlier) == vec![Originality::Group(0)]);
    }
}
