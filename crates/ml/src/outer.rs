//! The outer step of a round: how the aggregated delta becomes the next global model.
//!
//! Solvers train local deltas from the global model `base`; [`crate::aggregate`] merges them into
//! one `aggregate`. The outer step turns `(base, aggregate)` into the next model:
//!
//! - [`Outer::Average`] (today's rule): `base + aggregate`, per value one f32 addition
//!   ([`TensorSet::add`]).
//! - [`Outer::Nesterov`] (DiLoCo's outer optimizer): the aggregate is read as the negative of an
//!   outer gradient, `g = −aggregate`, and an SGD step with Nesterov momentum is taken with it,
//!   as `torch.optim.SGD(lr = λ, momentum = μ, nesterov = true)` does: `m ← μ·m + g`,
//!   `update = −λ·(g + μ·m)`, next model `base + update`. The momentum buffer `m` is carried from
//!   round to round (zeros before the first step) and is returned next to the model. It is in
//!   torch's convention (the direction of the gradient, i.e. opposite to the aggregates).
//!   DiLoCo uses λ = 0.7, μ = 0.9 (`nesterov:700:900`). With λ = 1 and μ = 0 it is `Average`.
//!
//! # Parameters
//! λ and μ are integers in per-mille ([`Outer::Nesterov`]'s `lr_permille` and
//! `momentum_permille`), so a choice is exact and can be governed on chain:
//! `0 < lr_permille ≤ 2000` ([`MAX_LR_PERMILLE`]) and `momentum_permille < 1000`. As f64:
//! `λ = lr_permille as f64 / 1000.0`, `μ = momentum_permille as f64 / 1000.0` (one correctly
//! rounded IEEE division each, so the same f64 everywhere). Text form (`FromStr` / `Display`):
//! `average`, `nesterov:<lr_permille>:<momentum_permille>`, and `nesterov` for
//! `nesterov:700:900`.
//!
//! # Arithmetic (Nesterov), bit for bit
//! Pure Rust, no tch, no threads, no fused multiply-add, independent of the CPU's subnormal mode
//! ([`crate::fpenv`]). Per coordinate, in canonical order (tensors by name, row-major), with `b`,
//! `a`, `m` the f32 values of base, aggregate and momentum buffer (`m = 0` when there is no
//! buffer yet), `⊗ ⊕ ⊖` IEEE binary64 multiply / add / subtract, each rounded to nearest-even:
//!
//! ```text
//! rd(x)  = 0 (same sign) if x is an f32 subnormal, else x, widened exactly to f64
//! wr(y)  = 0 (same sign) if |y| < 2^-126 (f32::MIN_POSITIVE), else y rounded to nearest-even f32
//! g  = −rd(a)
//! m' = (μ ⊗ rd(m)) ⊕ g
//! s  = g ⊕ (μ ⊗ m')
//! w' = rd(b) ⊖ (λ ⊗ s)
//! next model = wr(w'), next buffer = wr(m')
//! ```
//!
//! `rd` and `wr` make the subnormal mode irrelevant: no operation sees a subnormal f32 input, no
//! f64 intermediate can be subnormal (inputs are 0 or ≥ 2^-126 in magnitude, coefficients
//! ≥ 0.001), and no conversion to f32 underflows. Negation is exact, so `w'` equals
//! `b ⊕ (−(λ ⊗ s))`, the formula above with the update spelled out.
//!
//! # Checks
//! Parameters are validated; the aggregate and the buffer must have the base's layout
//! ([`TensorSet::check_same_layout`]); inputs must be finite, and so must the results (a
//! step that overflows f32 is an error, not an infinite model). `Average` ignores any buffer
//! given and returns none.
//!
//! # The published model state
//! A project's spec names its outer rule (`autonet-spec`'s `TrainingSpec::outer`). Under
//! Nesterov the momentum buffer is part of the model the network publishes: [`ModelState`]
//! encodes weights and buffer as one tensor set, the buffer's tensors named
//! [`MOMENTUM_PREFIX`]`<weight name>`, so the model's Merkle root commits to both and a
//! coordinator that recomputes the aggregate checks the buffer with the weights. A model
//! without buffer tensors (every genesis model, every model of an `Average` project) has a zero
//! buffer.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::tensors::{Delta, NamedTensor, TensorError, TensorSet, Weights};

/// Largest outer learning rate accepted, in per-mille (λ ≤ 2).
pub const MAX_LR_PERMILLE: u32 = 2000;
/// DiLoCo's outer learning rate, in per-mille (λ = 0.7).
pub const DILOCO_LR_PERMILLE: u32 = 700;
/// DiLoCo's outer momentum, in per-mille (μ = 0.9).
pub const DILOCO_MOMENTUM_PERMILLE: u32 = 900;

/// Name prefix of the momentum buffer's tensors inside a published model ([`ModelState`]).
pub const MOMENTUM_PREFIX: &str = "outer.momentum.";

/// A published model: its weights and, under a Nesterov outer rule, the momentum buffer the next
/// outer step continues from (`None`: zeros, as before the first step).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelState {
    /// The model's weights (what solvers train from and nodes serve).
    pub weights: Weights,
    /// The outer momentum buffer, in the weights' layout.
    pub momentum: Option<Delta>,
}

impl ModelState {
    /// A state without momentum buffer.
    pub fn weights_only(weights: Weights) -> Self {
        Self {
            weights,
            momentum: None,
        }
    }

    /// One tensor set holding the weights and, renamed `MOMENTUM_PREFIX + name`, the buffer (what
    /// is encoded and hashed). Without a buffer it is the weights themselves, byte for byte.
    pub fn to_set(&self) -> Result<TensorSet, OuterError> {
        let Some(m) = &self.momentum else {
            return Ok(self.weights.clone());
        };
        self.weights
            .check_same_layout(m)
            .map_err(OuterError::MomentumLayout)?;
        let mut all = self.weights.tensors().to_vec();
        all.extend(m.tensors().iter().map(|t| {
            NamedTensor::new(
                format!("{MOMENTUM_PREFIX}{}", t.name),
                t.shape.clone(),
                t.data.clone(),
            )
        }));
        TensorSet::new(all).map_err(OuterError::MomentumLayout)
    }

    /// Splits a decoded tensor set back into weights and buffer. A set whose buffer tensors do
    /// not cover exactly the weights' layout is refused: a model must carry a whole buffer or
    /// none.
    pub fn from_set(set: TensorSet) -> Result<Self, OuterError> {
        let (buffer, weights): (Vec<NamedTensor>, Vec<NamedTensor>) = set
            .tensors()
            .iter()
            .cloned()
            .partition(|t| t.name.starts_with(MOMENTUM_PREFIX));
        let weights = TensorSet::new(weights).map_err(OuterError::MomentumLayout)?;
        if buffer.is_empty() {
            return Ok(Self::weights_only(weights));
        }
        let buffer = TensorSet::new(
            buffer
                .into_iter()
                .map(|t| {
                    let name = t.name[MOMENTUM_PREFIX.len()..].to_owned();
                    NamedTensor::new(name, t.shape, t.data)
                })
                .collect(),
        )
        .map_err(OuterError::MomentumLayout)?;
        weights
            .check_same_layout(&buffer)
            .map_err(OuterError::MomentumLayout)?;
        Ok(Self {
            weights,
            momentum: Some(buffer),
        })
    }
}

/// Errors of the outer step and of parsing an [`Outer`].
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OuterError {
    /// The outer learning rate is 0 or above [`MAX_LR_PERMILLE`].
    #[error("outer learning rate {0}‰ must be in 1..={MAX_LR_PERMILLE}‰")]
    InvalidLr(u32),
    /// The momentum is 1000‰ or more.
    #[error("outer momentum {0}‰ must be below 1000‰")]
    InvalidMomentum(u32),
    /// The aggregate does not have the base's layout.
    #[error("aggregate: {0}")]
    AggregateLayout(TensorError),
    /// The momentum buffer does not have the base's layout.
    #[error("momentum buffer: {0}")]
    MomentumLayout(TensorError),
    /// An input holds NaN or infinity.
    #[error("{input}: tensor `{name}` is not finite")]
    NonFinite {
        /// `base`, `aggregate` or `momentum`.
        input: &'static str,
        /// The first offending tensor.
        name: String,
    },
    /// The step overflowed f32.
    #[error("outer step overflows f32 in tensor `{0}`")]
    Overflow(String),
    /// Not a valid text form.
    #[error(
        "invalid outer rule `{0}`: expected `average`, `nesterov` or `nesterov:<lr‰>:<momentum‰>`"
    )]
    Parse(String),
}

/// An outer step rule; see the module docs for the exact arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outer {
    /// `base + aggregate` (today's rule).
    #[default]
    Average,
    /// SGD with Nesterov momentum on the outer gradient `−aggregate`; lr and momentum in
    /// per-mille so the choice is exact and governable on chain.
    Nesterov {
        /// λ in per-mille, `1..=2000`.
        lr_permille: u32,
        /// μ in per-mille, `< 1000`.
        momentum_permille: u32,
    },
}

impl Outer {
    /// DiLoCo's outer optimizer: Nesterov with λ = 0.7, μ = 0.9.
    pub const DILOCO: Outer = Outer::Nesterov {
        lr_permille: DILOCO_LR_PERMILLE,
        momentum_permille: DILOCO_MOMENTUM_PERMILLE,
    };

    /// A validated Nesterov rule.
    pub fn nesterov(lr_permille: u32, momentum_permille: u32) -> Result<Outer, OuterError> {
        let outer = Outer::Nesterov {
            lr_permille,
            momentum_permille,
        };
        outer.validate()?;
        Ok(outer)
    }

    /// Ok when the parameters are in range (see the module docs).
    pub fn validate(&self) -> Result<(), OuterError> {
        match *self {
            Outer::Average => Ok(()),
            Outer::Nesterov {
                lr_permille,
                momentum_permille,
            } => {
                if lr_permille == 0 || lr_permille > MAX_LR_PERMILLE {
                    return Err(OuterError::InvalidLr(lr_permille));
                }
                if momentum_permille >= 1000 {
                    return Err(OuterError::InvalidMomentum(momentum_permille));
                }
                Ok(())
            }
        }
    }

    /// Whether this is [`Outer::Average`] (no momentum buffer is carried).
    pub fn is_average(&self) -> bool {
        *self == Outer::Average
    }

    /// The next published model: one step from `parent`'s weights and buffer with `aggregate`.
    pub fn next_state(
        &self,
        parent: &ModelState,
        aggregate: &Delta,
    ) -> Result<ModelState, OuterError> {
        let (weights, momentum) =
            self.step(&parent.weights, aggregate, parent.momentum.as_ref())?;
        Ok(ModelState { weights, momentum })
    }

    /// Applies one outer step. `momentum`: the buffer carried from the previous round (`None` at
    /// the start = zeros; must have the model's layout; ignored by `Average`).
    /// Returns (new model, new momentum buffer — `None` for `Average`).
    pub fn step(
        &self,
        base: &Weights,
        aggregate: &Delta,
        momentum: Option<&Delta>,
    ) -> Result<(Weights, Option<Delta>), OuterError> {
        self.validate()?;
        base.check_same_layout(aggregate)
            .map_err(OuterError::AggregateLayout)?;
        finite("base", base)?;
        finite("aggregate", aggregate)?;
        let (lr_permille, momentum_permille) = match *self {
            Outer::Average => {
                let next = base.add(aggregate).map_err(OuterError::AggregateLayout)?;
                check_result(&next)?;
                return Ok((next, None));
            }
            Outer::Nesterov {
                lr_permille,
                momentum_permille,
            } => (lr_permille, momentum_permille),
        };
        if let Some(m) = momentum {
            base.check_same_layout(m)
                .map_err(OuterError::MomentumLayout)?;
            finite("momentum", m)?;
        }
        let lr = f64::from(lr_permille) / 1000.0;
        let mu = f64::from(momentum_permille) / 1000.0;
        let mut weights = Vec::with_capacity(base.tensors().len());
        let mut buffers = Vec::with_capacity(base.tensors().len());
        for (ti, (b, a)) in base.tensors().iter().zip(aggregate.tensors()).enumerate() {
            let m = momentum.map(|m| &m.tensors()[ti].data);
            let mut w_out = Vec::with_capacity(b.data.len());
            let mut m_out = Vec::with_capacity(b.data.len());
            for (j, (&bv, &av)) in b.data.iter().zip(&a.data).enumerate() {
                let mv = m.map_or(0.0, |m| m[j]);
                let (w, m_next) = nesterov_coordinate(lr, mu, bv, av, mv);
                w_out.push(w);
                m_out.push(m_next);
            }
            weights.push(NamedTensor::new(b.name.clone(), b.shape.clone(), w_out));
            buffers.push(NamedTensor::new(b.name.clone(), b.shape.clone(), m_out));
        }
        let weights = TensorSet::new(weights).expect("layout copied from a valid set");
        let buffers = TensorSet::new(buffers).expect("layout copied from a valid set");
        check_result(&weights)?;
        check_result(&buffers)?;
        Ok((weights, Some(buffers)))
    }
}

/// `rd` of the module docs.
fn rd(x: f32) -> f64 {
    if x.is_subnormal() {
        if x.is_sign_negative() { -0.0 } else { 0.0 }
    } else {
        f64::from(x)
    }
}

/// `wr` of the module docs.
fn wr(y: f64) -> f32 {
    if y.abs() < f64::from(f32::MIN_POSITIVE) {
        if y.is_sign_negative() { -0.0 } else { 0.0 }
    } else {
        y as f32
    }
}

/// One coordinate of the Nesterov step: (next weight, next buffer), as in the module docs.
/// Each operation is a separate, correctly rounded f64 operation (Rust never contracts `a * b + c`
/// into a fused multiply-add).
fn nesterov_coordinate(lr: f64, mu: f64, b: f32, a: f32, m: f32) -> (f32, f32) {
    let g = -rd(a);
    let m_next = mu * rd(m) + g;
    let s = g + mu * m_next;
    let w = rd(b) - lr * s;
    (wr(w), wr(m_next))
}

fn finite(input: &'static str, set: &TensorSet) -> Result<(), OuterError> {
    match set.first_non_finite() {
        Some(name) => Err(OuterError::NonFinite {
            input,
            name: name.to_owned(),
        }),
        None => Ok(()),
    }
}

fn check_result(set: &TensorSet) -> Result<(), OuterError> {
    match set.first_non_finite() {
        Some(name) => Err(OuterError::Overflow(name.to_owned())),
        None => Ok(()),
    }
}

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outer::Average => f.write_str("average"),
            Outer::Nesterov {
                lr_permille,
                momentum_permille,
            } => write!(f, "nesterov:{lr_permille}:{momentum_permille}"),
        }
    }
}

impl FromStr for Outer {
    type Err = OuterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OuterError::Parse(s.to_owned());
        let parts: Vec<&str> = s.trim().split(':').collect();
        let outer = match parts.as_slice() {
            ["average"] => Outer::Average,
            ["nesterov"] => Outer::DILOCO,
            ["nesterov", lr, mu] => Outer::Nesterov {
                lr_permille: lr.parse().map_err(|_| bad())?,
                momentum_permille: mu.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        outer.validate()?;
        Ok(outer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: &[f32], b: &[f32]) -> TensorSet {
        TensorSet::new(vec![
            NamedTensor::new("a", vec![a.len()], a.to_vec()),
            NamedTensor::new("b", vec![b.len()], b.to_vec()),
        ])
        .unwrap()
    }

    fn one(v: &[f32]) -> TensorSet {
        TensorSet::new(vec![NamedTensor::new("w", vec![v.len()], v.to_vec())]).unwrap()
    }

    /// Deterministic pseudo-random values in about ±scale (xorshift).
    fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn random_set(seed: u64, scale: f32) -> TensorSet {
        set(&values(seed, 97, scale), &values(seed + 1, 64, scale))
    }

    fn bits(set: &TensorSet) -> Vec<u32> {
        set.values().map(f32::to_bits).collect()
    }

    fn data(set: &TensorSet) -> Vec<f32> {
        set.values().collect()
    }

    #[test]
    fn a_model_state_round_trips_through_one_tensor_set_and_refuses_a_partial_buffer() {
        let weights = random_set(3, 1.0);
        let momentum = random_set(5, 0.1);
        // Without a buffer the set is the weights, byte for byte (Average projects and genesis).
        let plain = ModelState::weights_only(weights.clone());
        assert_eq!(plain.to_set().unwrap(), weights);
        assert_eq!(ModelState::from_set(weights.clone()).unwrap(), plain);
        let state = ModelState {
            weights: weights.clone(),
            momentum: Some(momentum.clone()),
        };
        let set = state.to_set().unwrap();
        assert_eq!(set.tensors().len(), 4);
        assert!(set.get("outer.momentum.a").is_some());
        let bytes = crate::codec::to_safetensors(&set).unwrap();
        let back = ModelState::from_set(crate::codec::from_safetensors(&bytes).unwrap()).unwrap();
        assert_eq!(back, state);
        // A buffer that misses a tensor, or has another shape, is refused.
        let partial = TensorSet::new(
            weights
                .tensors()
                .iter()
                .cloned()
                .chain(std::iter::once(NamedTensor::new(
                    "outer.momentum.a",
                    vec![97],
                    vec![0.0; 97],
                )))
                .collect(),
        )
        .unwrap();
        assert!(matches!(
            ModelState::from_set(partial),
            Err(OuterError::MomentumLayout(_))
        ));
        let wrong = ModelState {
            weights: weights.clone(),
            momentum: Some(one(&[1.0])),
        };
        assert!(matches!(wrong.to_set(), Err(OuterError::MomentumLayout(_))));
    }

    #[test]
    fn next_state_carries_the_buffer_from_round_to_round() {
        let genesis = ModelState::weights_only(random_set(7, 1.0));
        let a1 = random_set(11, 0.01);
        let a2 = random_set(13, 0.01);
        let s1 = Outer::DILOCO.next_state(&genesis, &a1).unwrap();
        let s2 = Outer::DILOCO.next_state(&s1, &a2).unwrap();
        let (w1, m1) = Outer::DILOCO.step(&genesis.weights, &a1, None).unwrap();
        let (w2, m2) = Outer::DILOCO.step(&w1, &a2, m1.as_ref()).unwrap();
        assert_eq!(bits(&s2.weights), bits(&w2));
        assert_eq!(
            bits(s2.momentum.as_ref().unwrap()),
            bits(m2.as_ref().unwrap())
        );
        // Average carries none and is base + aggregate.
        let avg = Outer::Average.next_state(&s1, &a2).unwrap();
        assert!(avg.momentum.is_none());
        assert_eq!(bits(&avg.weights), bits(&s1.weights.add(&a2).unwrap()));
    }

    #[test]
    fn average_is_base_plus_aggregate_bit_for_bit() {
        let base = random_set(1, 1.0);
        let agg = random_set(7, 0.01);
        let (next, buffer) = Outer::Average.step(&base, &agg, None).unwrap();
        assert_eq!(bits(&next), bits(&base.add(&agg).unwrap()));
        assert!(buffer.is_none());
        // A buffer given to Average is ignored.
        let (again, buffer) = Outer::Average.step(&base, &agg, Some(&agg)).unwrap();
        assert_eq!(bits(&again), bits(&next));
        assert!(buffer.is_none());
    }

    #[test]
    fn nesterov_with_lr_one_and_no_momentum_is_average() {
        let base = random_set(3, 1.0);
        let agg = random_set(11, 0.01);
        let plain = Outer::nesterov(1000, 0).unwrap();
        let (next, buffer) = plain.step(&base, &agg, None).unwrap();
        assert_eq!(bits(&next), bits(&base.add(&agg).unwrap()));
        // The buffer is the outer gradient, −aggregate.
        assert_eq!(bits(&buffer.unwrap()), bits(&agg.scale(-1.0)));
    }

    #[test]
    fn nesterov_matches_a_hand_computation() {
        // Exact binary values: λ = 0.5, μ = 0.5.
        // g = −0.25; m' = 0.5·0 − 0.25 = −0.25; s = −0.25 + 0.5·(−0.25) = −0.375;
        // w' = 1 − 0.5·(−0.375) = 1.1875.
        let half = Outer::nesterov(500, 500).unwrap();
        let (next, buffer) = half
            .step(&one(&[1.0, -2.0]), &one(&[0.25, -1.0]), None)
            .unwrap();
        // Second coordinate: g = 1; m' = 1; s = 1 + 0.5 = 1.5; w' = −2 − 0.75 = −2.75.
        assert_eq!(data(&next), vec![1.1875, -2.75]);
        assert_eq!(data(&buffer.unwrap()), vec![-0.25, 1.0]);

        // DiLoCo's λ = 0.7, μ = 0.9 with a carried buffer, against the formula written out.
        let (b, a, m) = (0.5f32, 0.125f32, -0.0625f32);
        let (next, buffer) = Outer::DILOCO
            .step(&one(&[b]), &one(&[a]), Some(&one(&[m])))
            .unwrap();
        let g = -f64::from(a);
        let m1 = 0.9 * f64::from(m) + g; // −0.18125
        let w = f64::from(b) - 0.7 * (g + 0.9 * m1); // 0.5 + 0.7·0.288125 = 0.7016875
        assert_eq!(data(&next), vec![w as f32]);
        assert_eq!(data(&buffer.unwrap()), vec![m1 as f32]);
        assert!((w - 0.7016875).abs() < 1e-12 && (m1 + 0.18125).abs() < 1e-12);
    }

    #[test]
    fn buffer_evolves_over_two_steps() {
        let half = Outer::nesterov(500, 500).unwrap();
        let (w1, m1) = half.step(&one(&[1.0]), &one(&[0.25]), None).unwrap();
        let m1 = m1.unwrap();
        assert_eq!(data(&m1), vec![-0.25]);
        // Round 2: a = 0.5 from w1 = 1.1875. m'' = 0.5·(−0.25) − 0.5 = −0.625;
        // s = −0.5 + 0.5·(−0.625) = −0.8125; w = 1.1875 + 0.40625 = 1.59375.
        let (w2, m2) = half.step(&w1, &one(&[0.5]), Some(&m1)).unwrap();
        assert_eq!(data(&m2.unwrap()), vec![-0.625]);
        assert_eq!(data(&w2), vec![1.59375]);
        // Without the buffer the second step is only the fresh one: s = −0.75, w = 1.5625.
        let (fresh, _) = half.step(&w1, &one(&[0.5]), None).unwrap();
        assert_eq!(data(&fresh), vec![1.5625]);
    }

    #[test]
    fn nesterov_is_deterministic_and_ignores_the_subnormal_mode() {
        let base = random_set(5, 1.0);
        let agg = random_set(9, 0.001);
        let mom = random_set(13, 0.001);
        // Subnormal inputs and a result that would be subnormal.
        let tiny = f32::from_bits(3);
        let edge_base = one(&[tiny, 1.5 * f32::MIN_POSITIVE, 1.0]);
        let edge_agg = one(&[0.0, -f32::MIN_POSITIVE, -tiny]);
        let run = move || {
            let (w, m) = Outer::DILOCO.step(&base, &agg, Some(&mom)).unwrap();
            let (we, me) = Outer::nesterov(1000, 0)
                .unwrap()
                .step(&edge_base, &edge_agg, None)
                .unwrap();
            (bits(&w), bits(&m.unwrap()), bits(&we), bits(&me.unwrap()))
        };
        let first = run.clone()();
        assert_eq!(first, run.clone()());
        // The same bytes with flush-to-zero / denormals-are-zero set (as training agents do).
        let flushed = std::thread::spawn(move || {
            crate::fpenv::flush_denormals();
            run()
        })
        .join()
        .unwrap();
        assert_eq!(first, flushed);
        // Subnormal base read as 0; 1.5·2^-126 − 2^-126 = 2^-127 written as 0; 1 − tiny = 1.
        assert_eq!(
            first.2,
            vec![0f32.to_bits(), 0f32.to_bits(), 1f32.to_bits()]
        );
    }

    #[test]
    fn text_form_round_trips() {
        for s in [
            "average",
            "nesterov:700:900",
            "nesterov:1000:0",
            "nesterov:2000:999",
        ] {
            let outer: Outer = s.parse().unwrap();
            assert_eq!(outer.to_string(), s);
        }
        assert_eq!("nesterov".parse::<Outer>().unwrap(), Outer::DILOCO);
        assert_eq!(Outer::DILOCO.to_string(), "nesterov:700:900");
        assert_eq!(Outer::default(), Outer::Average);
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert_eq!(
            "nesterov:0:900".parse::<Outer>(),
            Err(OuterError::InvalidLr(0))
        );
        assert_eq!(
            "nesterov:2001:900".parse::<Outer>(),
            Err(OuterError::InvalidLr(2001))
        );
        assert_eq!(
            "nesterov:700:1000".parse::<Outer>(),
            Err(OuterError::InvalidMomentum(1000))
        );
        for s in [
            "",
            "avg",
            "nesterov:700",
            "nesterov:700:",
            "nesterov:-1:900",
            "nesterov:0.7:0.9",
            "nesterov:700:900:1",
            "average:1",
        ] {
            assert!(
                matches!(s.parse::<Outer>(), Err(OuterError::Parse(_))),
                "{s}"
            );
        }
        // Unvalidated values are rejected by the step too.
        let bad = Outer::Nesterov {
            lr_permille: 700,
            momentum_permille: 1500,
        };
        let w = one(&[1.0]);
        assert_eq!(
            bad.step(&w, &w, None),
            Err(OuterError::InvalidMomentum(1500))
        );
    }

    #[test]
    fn bad_layouts_and_values_are_rejected() {
        let base = set(&[1.0, 2.0], &[3.0]);
        let good = set(&[0.1, 0.2], &[0.3]);
        let other = set(&[0.1], &[0.3]);
        assert!(matches!(
            Outer::DILOCO.step(&base, &other, None),
            Err(OuterError::AggregateLayout(_))
        ));
        assert!(matches!(
            Outer::Average.step(&base, &other, None),
            Err(OuterError::AggregateLayout(_))
        ));
        assert!(matches!(
            Outer::DILOCO.step(&base, &good, Some(&other)),
            Err(OuterError::MomentumLayout(_))
        ));
        let nan = set(&[0.1, f32::NAN], &[0.3]);
        assert_eq!(
            Outer::DILOCO.step(&base, &good, Some(&nan)),
            Err(OuterError::NonFinite {
                input: "momentum",
                name: "a".into()
            })
        );
        assert!(matches!(
            Outer::Average.step(&base, &nan, None),
            Err(OuterError::NonFinite {
                input: "aggregate",
                ..
            })
        ));
        let huge = one(&[f32::MAX]);
        assert_eq!(
            Outer::nesterov(2000, 0).unwrap().step(&huge, &huge, None),
            Err(OuterError::Overflow("w".into()))
        );
    }
}
