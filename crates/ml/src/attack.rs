//! Solver-side attack modes: what a Byzantine solver sends instead of its honest delta.
//!
//! Used by the attack-table experiment (`examples/attacks.rs`, `docs/learning.md` "Under
//! attack") and by a solver configured to misbehave on a test network. Every mode takes the
//! attacker's own honestly trained delta (`own`, trained with [`Attack::train_steps`] steps) and
//! the deltas of other solvers it knows of (`reference`), and returns the delta it sends
//! ([`Attack::craft`]).
//!
//! # Modes (string form for [`std::str::FromStr`] / [`std::fmt::Display`]: `name[:param]`)
//! - `sign-flip[:k]` ([`Attack::SignFlip`], k = 10): sends `−k · own` (each value `x · (−k)` in
//!   f32).
//! - `scale[:k]` ([`Attack::Scale`], k = 10): sends `k · own`.
//! - `alie[:z]` ([`Attack::Alie`], z = 1): "a little is enough" (Baruch, Baruch, Goldberg 2019):
//!   per coordinate `μ − z·σ`, μ and σ the mean and population standard deviation (divide by
//!   the sample count) of the samples. The samples are `reference`, or `[own]` when it is empty.
//!   With fewer than two samples σ would be 0 and the attack would send the mean itself, so then
//!   σ is estimated as `|own|` per coordinate (a delta's own magnitude is the scale of the
//!   solvers' disagreement in the regime we train in).
//! - `ipm[:eps]` ([`Attack::Ipm`], eps = 0.5): inner-product manipulation (Xie, Koyejo, Gupta
//!   2020): `−eps · μ`, μ the per-coordinate mean of the samples (as for ALIE).
//! - `noise[:sigma]` ([`Attack::Noise`], sigma = 1): i.i.d. Gaussian values, per tensor with
//!   standard deviation `sigma · rms(own tensor)` (rms = √(mean of squares)); nothing of `own`
//!   is sent.
//! - `lazy[:f]` ([`Attack::Lazy`], f = 0.25): a free rider: trains `⌈f · steps⌉` steps (at
//!   least 1) and sends that honest, short delta.
//! - `copier[:noise]` ([`Attack::Copier`], noise = 0.01): a free rider: sends `reference[0]`
//!   plus Gaussian noise of standard deviation `noise · rms(reference[0] tensor)` per tensor, so
//!   its content hash differs from the copied one. With an empty reference it abstains
//!   (`Ok(None)`).
//!
//! # Arithmetic
//! Means and standard deviations are accumulated in f64 in reference order and rounded to f32
//! once per value; rms likewise. Gaussian values come from [`SplitMix64`] streams derived from
//! the `seed` (Box–Muller in f64), so a craft is a pure function of its inputs on one platform.
//! (`ln`/`cos` come from the platform's libm, so another platform may differ in the last bit of
//! a noise value; an attacker's delta is content-addressed as sent, nobody recomputes it.)

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::rng::SplitMix64;
use crate::tensors::{Delta, NamedTensor, TensorError, TensorSet};

/// Errors of parsing or crafting an attack.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AttackError {
    /// The mode name is not one of [`Attack::ALL_NAMES`].
    #[error("unknown attack mode `{mode}` (valid modes: {})", Attack::ALL_NAMES.join(", "))]
    UnknownMode {
        /// What was given.
        mode: String,
    },
    /// The parameter after `:` is not a number or out of range.
    #[error("attack `{mode}`: invalid parameter `{value}` ({expected})")]
    InvalidParameter {
        /// The mode.
        mode: String,
        /// The parameter as given.
        value: String,
        /// What the mode accepts.
        expected: &'static str,
    },
    /// A reference delta does not have the layout of `own`.
    #[error("reference delta {index}: {source}")]
    Layout {
        /// Index in `reference`.
        index: usize,
        /// What differs.
        source: TensorError,
    },
}

/// A solver-side attack; see the module docs for each mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attack {
    /// Sends `−k · own`.
    SignFlip {
        /// Scale (> 0).
        k: f32,
    },
    /// Sends `k · own`.
    Scale {
        /// Scale (> 0).
        k: f32,
    },
    /// "A little is enough": per coordinate `mean − z·std` of the reference.
    Alie {
        /// Standard deviations (≥ 0).
        z: f32,
    },
    /// Inner-product manipulation: `−eps · mean(reference)`.
    Ipm {
        /// Scale (> 0).
        eps: f32,
    },
    /// Gaussian noise of standard deviation `sigma · rms(own)` per tensor.
    Noise {
        /// Relative standard deviation (> 0).
        sigma: f32,
    },
    /// Trains `⌈fraction · steps⌉` steps (at least 1) and sends that delta.
    Lazy {
        /// Fraction of the steps, in `(0, 1]`.
        fraction: f32,
    },
    /// Sends `reference[0]` plus Gaussian noise of standard deviation `noise · rms`.
    Copier {
        /// Relative standard deviation of the added noise (≥ 0).
        noise: f32,
    },
}

/// Inclusive/exclusive lower bound of a parameter, and whether it is capped at 1.
#[derive(Clone, Copy)]
enum Range {
    Positive,
    NonNegative,
    UnitInterval,
}

impl Range {
    fn accepts(self, x: f32) -> bool {
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::UnitInterval => x > 0.0 && x <= 1.0,
            }
    }

    fn describe(self) -> &'static str {
        match self {
            Range::Positive => "a finite number > 0",
            Range::NonNegative => "a finite number >= 0",
            Range::UnitInterval => "a number in (0, 1]",
        }
    }
}

impl Attack {
    /// The mode names, in the order of the enum.
    pub const ALL_NAMES: &'static [&'static str] = &[
        "sign-flip",
        "scale",
        "alie",
        "ipm",
        "noise",
        "lazy",
        "copier",
    ];

    /// Every mode with its default parameter, in the order of [`Attack::ALL_NAMES`].
    pub fn all_defaults() -> Vec<Attack> {
        Self::ALL_NAMES
            .iter()
            .map(|name| name.parse().expect("every listed name parses"))
            .collect()
    }

    /// The mode's name (one of [`Attack::ALL_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Attack::SignFlip { .. } => "sign-flip",
            Attack::Scale { .. } => "scale",
            Attack::Alie { .. } => "alie",
            Attack::Ipm { .. } => "ipm",
            Attack::Noise { .. } => "noise",
            Attack::Lazy { .. } => "lazy",
            Attack::Copier { .. } => "copier",
        }
    }

    /// The mode's parameter.
    pub fn param(&self) -> f32 {
        match *self {
            Attack::SignFlip { k } | Attack::Scale { k } => k,
            Attack::Alie { z } => z,
            Attack::Ipm { eps } => eps,
            Attack::Noise { sigma } => sigma,
            Attack::Lazy { fraction } => fraction,
            Attack::Copier { noise } => noise,
        }
    }

    /// Local steps an attacker of this kind trains when asked for `steps` (only Lazy changes
    /// it): `⌈fraction · steps⌉`, at least 1 (0 when `steps` is 0). A product within a relative
    /// 1e-6 of an integer counts as that integer, so `0.1 · 10` is 1 although 0.1 is not exact
    /// in f32.
    pub fn train_steps(&self, steps: usize) -> usize {
        match *self {
            Attack::Lazy { fraction } if steps > 0 => {
                let x = f64::from(fraction) * steps as f64;
                let r = x.round();
                let n = if (x - r).abs() <= 1e-6 * x.max(1.0) {
                    r
                } else {
                    x.ceil()
                };
                (n as usize).clamp(1, steps)
            }
            _ => steps,
        }
    }

    /// True when the attack needs other solvers' deltas in `reference` (Alie, Ipm, Copier).
    pub fn needs_reference(&self) -> bool {
        matches!(
            self,
            Attack::Alie { .. } | Attack::Ipm { .. } | Attack::Copier { .. }
        )
    }

    /// The delta the attacker sends. `own`: its honestly trained delta (trained with
    /// [`Attack::train_steps`]). `reference`: the deltas it knows of others (the experiment:
    /// this round's honest deltas; a live solver: the deltas revealed in the project's previous
    /// task). ALIE and IPM with an empty reference use `[own]` as the only sample (ALIE then
    /// estimates σ as `|own|`, see the module docs); Copier with an empty reference returns
    /// `Ok(None)`: nothing to copy, the attacker abstains. `seed` makes the noise deterministic.
    /// Errors when a reference delta's layout differs from `own`'s.
    pub fn craft(
        &self,
        own: &Delta,
        reference: &[&Delta],
        seed: u64,
    ) -> Result<Option<Delta>, AttackError> {
        for (index, r) in reference.iter().enumerate() {
            own.check_same_layout(r)
                .map_err(|source| AttackError::Layout { index, source })?;
        }
        let samples: Vec<&Delta> = if reference.is_empty() {
            vec![own]
        } else {
            reference.to_vec()
        };
        Ok(Some(match *self {
            Attack::SignFlip { k } => own.scale(-k),
            Attack::Scale { k } => own.scale(k),
            Attack::Lazy { .. } => own.clone(),
            Attack::Alie { z } => {
                let z = f64::from(z);
                let few = samples.len() < 2;
                per_coordinate(own, &samples, |own_x, xs| {
                    let (mean, std) = mean_std(xs);
                    let std = if few { f64::from(own_x).abs() } else { std };
                    (mean - z * std) as f32
                })
            }
            Attack::Ipm { eps } => {
                let eps = f64::from(eps);
                per_coordinate(own, &samples, |_, xs| (-eps * mean_std(xs).0) as f32)
            }
            Attack::Noise { sigma } => {
                let mut g = Gaussian::new(SplitMix64::derive(seed, "attack-noise"));
                map_tensors(own, |t| {
                    let sd = f64::from(sigma) * rms(&t.data);
                    t.data.iter().map(|_| (sd * g.sample()) as f32).collect()
                })
            }
            Attack::Copier { noise } => {
                let Some(source) = reference.first() else {
                    return Ok(None);
                };
                let mut g = Gaussian::new(SplitMix64::derive(seed, "attack-copier"));
                map_tensors(source, |t| {
                    let sd = f64::from(noise) * rms(&t.data);
                    t.data
                        .iter()
                        .map(|&x| (f64::from(x) + sd * g.sample()) as f32)
                        .collect()
                })
            }
        }))
    }
}

/// `(mean, population std)` of `xs`, two passes in f64.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs
        .iter()
        .map(|&x| {
            let e = x - mean;
            e * e
        })
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// √(mean of squares), in f64; 0 for an empty tensor.
fn rms(data: &[f32]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let s: f64 = data.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (s / data.len() as f64).sqrt()
}

/// A set with `layout`'s names and shapes, each tensor's data given by `f(tensor)`.
fn map_tensors(layout: &Delta, mut f: impl FnMut(&NamedTensor) -> Vec<f32>) -> Delta {
    let tensors = layout
        .tensors()
        .iter()
        .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), f(t)))
        .collect();
    TensorSet::new(tensors).expect("layout copied from a valid set")
}

/// Every coordinate replaced by `f(own value, sample values widened to f64)`; the samples must
/// have `own`'s layout.
fn per_coordinate(own: &Delta, samples: &[&Delta], mut f: impl FnMut(f32, &[f64]) -> f32) -> Delta {
    let mut xs = vec![0f64; samples.len()];
    let mut ti = 0;
    map_tensors(own, |t| {
        let out = (0..t.data.len())
            .map(|j| {
                for (x, s) in xs.iter_mut().zip(samples) {
                    *x = f64::from(s.tensors()[ti].data[j]);
                }
                f(t.data[j], &xs)
            })
            .collect();
        ti += 1;
        out
    })
}

/// Standard normal samples by the Box–Muller transform (both outputs used).
struct Gaussian {
    rng: SplitMix64,
    spare: Option<f64>,
}

impl Gaussian {
    fn new(rng: SplitMix64) -> Self {
        Self { rng, spare: None }
    }

    fn sample(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        // u1 in (0, 1] (53 random bits), so ln(u1) is finite.
        let u1 = ((self.rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

impl fmt::Display for Attack {
    /// `name:param`, e.g. `alie:1`, `sign-flip:10`; parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name(), self.param())
    }
}

impl FromStr for Attack {
    type Err = AttackError;

    /// `name` or `name:param`; see the module docs for names, parameters and defaults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, value) = match s.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s, None),
        };
        let (default, range, build): (f32, Range, fn(f32) -> Attack) = match name {
            "sign-flip" => (10.0, Range::Positive, |k| Attack::SignFlip { k }),
            "scale" => (10.0, Range::Positive, |k| Attack::Scale { k }),
            "alie" => (1.0, Range::NonNegative, |z| Attack::Alie { z }),
            "ipm" => (0.5, Range::Positive, |eps| Attack::Ipm { eps }),
            "noise" => (1.0, Range::Positive, |sigma| Attack::Noise { sigma }),
            "lazy" => (0.25, Range::UnitInterval, |fraction| Attack::Lazy {
                fraction,
            }),
            "copier" => (0.01, Range::NonNegative, |noise| Attack::Copier { noise }),
            _ => {
                return Err(AttackError::UnknownMode {
                    mode: name.to_owned(),
                });
            }
        };
        let param = match value {
            None => default,
            Some(v) => match v.parse::<f32>() {
                Ok(x) if range.accepts(x) => x,
                _ => {
                    return Err(AttackError::InvalidParameter {
                        mode: name.to_owned(),
                        value: v.to_owned(),
                        expected: range.describe(),
                    });
                }
            },
        };
        Ok(build(param))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(vals: &[f32]) -> Delta {
        TensorSet::new(vec![NamedTensor::new("w", vec![vals.len()], vals.to_vec())]).unwrap()
    }

    /// Two tensors of pseudo-random values around `center`.
    fn sample(seed: u64, center: f32) -> Delta {
        let mut r = SplitMix64::new(seed);
        let mut v = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| center + (r.next_f32() - 0.5) * scale)
                .collect()
        };
        TensorSet::new(vec![
            NamedTensor::new("a", vec![4, 16], v(64, 0.2)),
            NamedTensor::new("b", vec![16], v(16, 2.0)),
        ])
        .unwrap()
    }

    fn dot(a: &Delta, b: &Delta) -> f64 {
        a.values()
            .zip(b.values())
            .map(|(x, y)| f64::from(x) * f64::from(y))
            .sum()
    }

    fn cosine(a: &Delta, b: &Delta) -> f64 {
        dot(a, b) / (a.l2_norm() * b.l2_norm())
    }

    fn mean_of(ds: &[&Delta]) -> Vec<f64> {
        let n = ds[0].num_params();
        (0..n)
            .map(|j| {
                ds.iter()
                    .map(|d| f64::from(d.values().nth(j).unwrap()))
                    .sum::<f64>()
                    / ds.len() as f64
            })
            .collect()
    }

    fn craft(a: Attack, own: &Delta, reference: &[&Delta], seed: u64) -> Delta {
        a.craft(own, reference, seed).unwrap().unwrap()
    }

    #[test]
    fn sign_flip_and_scale_are_exact_multiples_of_own() {
        let own = sample(1, 0.1);
        let other = sample(2, 0.1);
        let flipped = craft(Attack::SignFlip { k: 10.0 }, &own, &[&other], 0);
        let expected: Vec<f32> = own.values().map(|x| -10.0 * x).collect();
        assert_eq!(flipped.values().collect::<Vec<_>>(), expected);
        let scaled = craft(Attack::Scale { k: 3.5 }, &own, &[], 0);
        let expected: Vec<f32> = own.values().map(|x| 3.5 * x).collect();
        assert_eq!(scaled.values().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn alie_stays_within_z_std_of_the_mean_and_differs_from_it() {
        let refs: Vec<Delta> = (0..5).map(|i| sample(10 + i, 0.3)).collect();
        let r: Vec<&Delta> = refs.iter().collect();
        let own = sample(99, 0.3);
        let z = 1.5f32;
        let out = craft(Attack::Alie { z }, &own, &r, 0);
        let mean = mean_of(&r);
        let mut differs = 0;
        for (j, v) in out.values().enumerate() {
            let xs: Vec<f64> = r
                .iter()
                .map(|d| f64::from(d.values().nth(j).unwrap()))
                .collect();
            let (m, s) = mean_std(&xs);
            assert!((m - mean[j]).abs() < 1e-6);
            // Exactly μ − zσ (rounded once), so within zσ of the mean, below it.
            assert_eq!(v, (m - f64::from(z) * s) as f32);
            assert!(f64::from(v) <= m + 1e-6 && m - f64::from(v) <= f64::from(z) * s + 1e-6);
            if (f64::from(v) - m).abs() > 1e-4 {
                differs += 1;
            }
        }
        assert_eq!(
            differs,
            out.num_params(),
            "every coordinate moved off the mean"
        );
        // Empty reference: own is the only sample, σ estimated as |own| → own − z·|own|.
        let own = d(&[2.0, -1.0, 0.0]);
        let out = craft(Attack::Alie { z: 1.0 }, &own, &[], 0);
        assert_eq!(out.values().collect::<Vec<_>>(), [0.0, -2.0, 0.0]);
    }

    #[test]
    fn ipm_has_negative_inner_product_with_the_reference_mean() {
        let refs: Vec<Delta> = (0..4).map(|i| sample(20 + i, 0.2)).collect();
        let r: Vec<&Delta> = refs.iter().collect();
        let own = sample(7, 0.2);
        let out = craft(Attack::Ipm { eps: 0.5 }, &own, &r, 0);
        let mean = mean_of(&r);
        let ip: f64 = out.values().zip(&mean).map(|(v, m)| f64::from(v) * m).sum();
        assert!(ip < 0.0, "{ip}");
        for (v, m) in out.values().zip(&mean) {
            assert!((f64::from(v) + 0.5 * m).abs() < 1e-6);
        }
        // Empty reference: −eps · own.
        let own = d(&[2.0, -4.0]);
        let out = craft(Attack::Ipm { eps: 0.5 }, &own, &[], 0);
        assert_eq!(out.values().collect::<Vec<_>>(), [-1.0, 2.0]);
    }

    #[test]
    fn copier_stays_close_to_its_source_and_abstains_without_one() {
        let source = sample(30, 0.05);
        let other = sample(31, 0.05);
        let own = sample(32, 0.05);
        let out = craft(Attack::Copier { noise: 0.01 }, &own, &[&source, &other], 5);
        assert!(cosine(&out, &source) > 0.99, "{}", cosine(&out, &source));
        assert_ne!(out, source, "the copy must hash differently");
        assert_eq!(
            Attack::Copier { noise: 0.01 }.craft(&own, &[], 5).unwrap(),
            None
        );
        // noise 0: an exact copy.
        assert_eq!(
            craft(Attack::Copier { noise: 0.0 }, &own, &[&source], 5),
            source
        );
    }

    #[test]
    fn noise_is_deterministic_per_seed_and_scaled_to_own() {
        let own = sample(40, 0.0);
        let a = craft(Attack::Noise { sigma: 1.0 }, &own, &[], 1);
        let b = craft(Attack::Noise { sigma: 1.0 }, &own, &[], 1);
        let c = craft(Attack::Noise { sigma: 1.0 }, &own, &[], 2);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.first_non_finite().is_none());
        assert!(cosine(&a, &own).abs() < 0.5, "noise is unrelated to own");
        // Per tensor, the sample standard deviation is near sigma · rms(own) (64 and 16 values).
        for (t, o) in a.tensors().iter().zip(own.tensors()) {
            let got = rms(&t.data);
            let want = rms(&o.data);
            assert!(got > 0.4 * want && got < 1.8 * want, "{got} vs {want}");
        }
        let big = craft(Attack::Noise { sigma: 3.0 }, &own, &[], 1);
        for (x, y) in big.values().zip(a.values()) {
            assert!((x - 3.0 * y).abs() <= 1e-5 * x.abs().max(1.0));
        }
    }

    #[test]
    fn lazy_trains_a_fraction_of_the_steps_and_sends_own() {
        let lazy = Attack::Lazy { fraction: 0.25 };
        assert_eq!(lazy.train_steps(100), 25);
        assert_eq!(lazy.train_steps(10), 3);
        assert_eq!(lazy.train_steps(1), 1);
        assert_eq!(lazy.train_steps(0), 0);
        assert_eq!(Attack::Lazy { fraction: 0.1 }.train_steps(10), 1);
        assert_eq!(Attack::Lazy { fraction: 0.01 }.train_steps(10), 1);
        assert_eq!(Attack::Lazy { fraction: 1.0 }.train_steps(7), 7);
        for a in Attack::all_defaults() {
            if !matches!(a, Attack::Lazy { .. }) {
                assert_eq!(a.train_steps(30), 30, "{a}");
            }
        }
        let own = sample(50, 0.1);
        assert_eq!(craft(lazy, &own, &[], 0), own);
    }

    #[test]
    fn needs_reference_only_for_alie_ipm_copier() {
        let needing: Vec<&str> = Attack::all_defaults()
            .iter()
            .filter(|a| a.needs_reference())
            .map(|a| a.name())
            .collect();
        assert_eq!(needing, ["alie", "ipm", "copier"]);
    }

    #[test]
    fn parse_and_display_round_trip() {
        let defaults = Attack::all_defaults();
        assert_eq!(
            defaults,
            [
                Attack::SignFlip { k: 10.0 },
                Attack::Scale { k: 10.0 },
                Attack::Alie { z: 1.0 },
                Attack::Ipm { eps: 0.5 },
                Attack::Noise { sigma: 1.0 },
                Attack::Lazy { fraction: 0.25 },
                Attack::Copier { noise: 0.01 },
            ]
        );
        let shown: Vec<String> = defaults.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            [
                "sign-flip:10",
                "scale:10",
                "alie:1",
                "ipm:0.5",
                "noise:1",
                "lazy:0.25",
                "copier:0.01"
            ]
        );
        for a in defaults.iter().chain(&[
            Attack::SignFlip { k: 2.5 },
            Attack::Alie { z: 0.0 },
            Attack::Lazy { fraction: 0.1 },
            Attack::Noise { sigma: 1e-7 },
        ]) {
            assert_eq!(a.to_string().parse::<Attack>().unwrap(), *a);
        }
        assert_eq!(
            "sign-flip:3".parse::<Attack>().unwrap(),
            Attack::SignFlip { k: 3.0 }
        );
        assert_eq!(
            " ipm : 2 ".parse::<Attack>().unwrap(),
            Attack::Ipm { eps: 2.0 }
        );
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = "flip".parse::<Attack>().unwrap_err();
        assert_eq!(
            err,
            AttackError::UnknownMode {
                mode: "flip".into()
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("`flip`") && msg.contains("sign-flip, scale, alie"),
            "{msg}"
        );
        for bad in [
            "scale:x",
            "scale:0",
            "scale:-1",
            "scale:inf",
            "noise:NaN",
            "lazy:0",
            "lazy:1.5",
            "alie:-1",
            "copier:-0.1",
            "ipm:",
        ] {
            let err = bad.parse::<Attack>().unwrap_err();
            assert!(
                matches!(err, AttackError::InvalidParameter { .. }),
                "{bad}: {err:?}"
            );
            let value = bad.split_once(':').unwrap().1;
            assert!(err.to_string().contains(&format!("`{value}`")), "{err}");
        }
    }

    #[test]
    fn layout_mismatch_is_an_error() {
        let own = d(&[1.0, 2.0]);
        let other = d(&[1.0, 2.0, 3.0]);
        for a in Attack::all_defaults() {
            assert!(
                matches!(
                    a.craft(&own, &[&own, &other], 0),
                    Err(AttackError::Layout { index: 1, .. })
                ),
                "{a}"
            );
        }
    }
}
