//! Local training and deterministic evaluation of the reference model.
//!
//! [`train`] starts from base weights, runs `steps` AdamW steps on windows sampled from the given
//! chunks, and returns the delta `trained − base`. [`evaluate`] returns the mean next-byte
//! cross-entropy (nats/byte) over windows fixed by an [`EvalSpec`].
//!
//! # Determinism
//! - Batch contents depend only on (chunks, batch, context, seed): windows are drawn with
//!   [`SplitMix64`], never OS randomness. The model has no dropout and is initialised from
//!   explicit weights, so libtorch's global RNG is never used.
//! - Evaluation windows depend only on (chunks, spec); batch losses are summed in f64 in window
//!   order. For a given libtorch build, device and thread count the loss is bit-identical run to
//!   run (tested). Across machines CPU kernels may pick different vectorised paths, so
//!   coordinators compare evaluation losses with a tolerance, while aggregation
//!   ([`crate::aggregate`]) is bit-exact everywhere.
//! - Training on CPU is bit-identical run to run on one machine with one thread count; the delta
//!   is whatever the solver produced and is content-addressed as such.

use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};
use thiserror::Error;

use crate::corpus::Chunk;
use crate::model::{Lm, ModelConfig, ModelError, default_device};
use crate::rng::SplitMix64;
use crate::tensors::{Delta, TensorError, TensorSet};

/// Errors of training or evaluation.
#[derive(Debug, Error)]
pub enum TrainError {
    /// Model construction or weight transfer failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Weight arithmetic failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// No chunk is long enough for one window of `context + 1` bytes.
    #[error("no chunk holds a window of {needed} bytes")]
    NoData {
        /// Bytes needed per window.
        needed: usize,
    },
    /// Bad parameters.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// Training diverged.
    #[error("loss became non-finite at step {0}")]
    Diverged(usize),
}

/// Hyperparameters of one local training run.
#[derive(Clone, Debug)]
pub struct TrainParams {
    /// Optimizer steps.
    pub steps: usize,
    /// Windows per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// Linear warm-up steps, then cosine decay to `lr / 10` at the last step.
    pub warmup_steps: usize,
    /// Seed of the batch order.
    pub seed: u64,
    /// Device.
    pub device: Device,
    /// Draw a progress bar (it is hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            steps: 300,
            batch: 16,
            lr: 3e-3,
            weight_decay: 0.01,
            grad_clip: 1.0,
            warmup_steps: 5,
            seed: 0,
            device: default_device(),
            progress: false,
        }
    }
}

/// Result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOutput {
    /// `trained − base`.
    pub delta: Delta,
    /// Windows seen (`steps × batch`).
    pub num_samples: u64,
    /// Mean training loss over the last quarter of the steps (nats/byte).
    pub train_loss: f32,
    /// Loss of every step.
    pub losses: Vec<f32>,
}

/// The evaluation specification: which windows, and how they are batched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalSpec {
    /// Seed of the window positions.
    pub seed: u64,
    /// Number of windows.
    pub windows: usize,
    /// Windows per forward pass.
    pub batch: usize,
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self {
            seed: 0xE7A1,
            windows: 64,
            batch: 16,
        }
    }
}

fn usable<'a>(chunks: &[&'a Chunk], window: usize) -> Result<Vec<&'a Chunk>, TrainError> {
    let v: Vec<&Chunk> = chunks
        .iter()
        .copied()
        .filter(|c| c.data.len() >= window)
        .collect();
    if v.is_empty() {
        Err(TrainError::NoData { needed: window })
    } else {
        Ok(v)
    }
}

/// Samples `batch` windows of `context + 1` bytes: chunk uniformly, then offset uniformly.
/// Returns (inputs, targets) as int64 `[batch, context]`.
fn sample_batch(
    chunks: &[&Chunk],
    rng: &mut SplitMix64,
    batch: usize,
    context: usize,
) -> (Tensor, Tensor) {
    let mut buf = Vec::with_capacity(batch * (context + 1));
    for _ in 0..batch {
        let c = chunks[rng.below(chunks.len() as u64) as usize];
        let off = rng.below((c.data.len() - context) as u64) as usize;
        buf.extend(c.data[off..off + context + 1].iter().map(|&b| i64::from(b)));
    }
    let all = Tensor::from_slice(&buf).view([batch as i64, context as i64 + 1]);
    (
        all.narrow(1, 0, context as i64),
        all.narrow(1, 1, context as i64),
    )
}

fn loss_of(lm: &Lm, x: &Tensor, y: &Tensor) -> Tensor {
    let logits = lm.forward(x);
    let v = logits.size()[2];
    logits
        .view([-1, v])
        .cross_entropy_for_logits(&y.reshape([-1]))
}

fn lr_at(p: &TrainParams, step: usize) -> f64 {
    if step < p.warmup_steps {
        return p.lr * (step + 1) as f64 / p.warmup_steps as f64;
    }
    let span = p.steps.saturating_sub(p.warmup_steps).max(1) as f64;
    let t = (step - p.warmup_steps) as f64 / span;
    let min = p.lr / 10.0;
    min + 0.5 * (p.lr - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Trains from `base` on `chunks` and returns the delta.
pub fn train(
    cfg: &ModelConfig,
    base: &TensorSet,
    chunks: &[&Chunk],
    params: &TrainParams,
) -> Result<TrainOutput, TrainError> {
    train_with_hook(cfg, base, chunks, params, &mut |_, _| Ok(()))
}

/// [`train`], calling `hook(steps_done, model)` after every optimizer step (e.g. to evaluate
/// intermediate checkpoints).
pub fn train_with_hook(
    cfg: &ModelConfig,
    base: &TensorSet,
    chunks: &[&Chunk],
    params: &TrainParams,
    hook: &mut dyn FnMut(usize, &Lm) -> Result<(), TrainError>,
) -> Result<TrainOutput, TrainError> {
    crate::fpenv::flush_denormals();
    if params.steps == 0 || params.batch == 0 || params.lr.is_nan() || params.lr <= 0.0 {
        return Err(TrainError::Params("steps, batch and lr must be > 0".into()));
    }
    let data = usable(chunks, cfg.context + 1)?;
    let lm = Lm::new(cfg, base, params.device)?;
    let mut opt = nn::AdamW {
        wd: params.weight_decay,
        ..Default::default()
    }
    .build(lm.var_store(), params.lr)?;
    let mut rng = SplitMix64::derive(params.seed, "batch");
    let bar = if params.progress {
        ProgressBar::new(params.steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps, loss {msg} ({elapsed} / {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut losses = Vec::with_capacity(params.steps);
    for step in 0..params.steps {
        let (x, y) = sample_batch(&data, &mut rng, params.batch, cfg.context);
        let (x, y) = (x.to_device(params.device), y.to_device(params.device));
        opt.set_lr(lr_at(params, step));
        let loss = loss_of(&lm, &x, &y);
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(params.grad_clip);
        opt.step();
        let l = f32::try_from(&loss)?;
        if !l.is_finite() {
            return Err(TrainError::Diverged(step));
        }
        losses.push(l);
        bar.set_message(format!("{l:.3}"));
        bar.inc(1);
        hook(step + 1, &lm)?;
    }
    bar.finish_and_clear();
    let tail = &losses[losses.len() - (losses.len() / 4).max(1)..];
    let train_loss = tail.iter().map(|&l| f64::from(l)).sum::<f64>() / tail.len() as f64;
    let trained = lm.weights()?;
    Ok(TrainOutput {
        delta: trained.sub(base)?,
        num_samples: (params.steps * params.batch) as u64,
        train_loss: train_loss as f32,
        losses,
    })
}

/// Mean next-byte cross-entropy of `weights` on windows of `chunks` chosen by `spec`, on CPU.
pub fn evaluate(
    cfg: &ModelConfig,
    weights: &TensorSet,
    chunks: &[&Chunk],
    spec: &EvalSpec,
) -> Result<f32, TrainError> {
    evaluate_on(cfg, weights, chunks, spec, Device::Cpu)
}

/// [`evaluate`] on a chosen device.
pub fn evaluate_on(
    cfg: &ModelConfig,
    weights: &TensorSet,
    chunks: &[&Chunk],
    spec: &EvalSpec,
    device: Device,
) -> Result<f32, TrainError> {
    crate::fpenv::flush_denormals();
    if spec.windows == 0 || spec.batch == 0 {
        return Err(TrainError::Params(
            "eval windows and batch must be > 0".into(),
        ));
    }
    let data = usable(chunks, cfg.context + 1)?;
    let lm = Lm::new(cfg, weights, device)?;
    let mut rng = SplitMix64::derive(spec.seed, "eval");
    let mut total = 0f64;
    let mut left = spec.windows;
    tch::no_grad(|| -> Result<(), TrainError> {
        while left > 0 {
            let n = left.min(spec.batch);
            let (x, y) = sample_batch(&data, &mut rng, n, cfg.context);
            let l = loss_of(&lm, &x.to_device(device), &y.to_device(device)).to_kind(Kind::Double);
            total += f64::try_from(&l)? * n as f64;
            left -= n;
        }
        Ok(())
    })?;
    Ok((total / spec.windows as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Corpus, CorpusOptions, split};
    use crate::model::init_weights;

    /// A small real corpus: this crate's own sources (fast, present on every checkout).
    fn corpus() -> Corpus {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let opts = CorpusOptions {
            chunk_size: 2048,
            max_bytes: 256 * 1024,
            extensions: Some(vec!["rs".into()]),
        };
        Corpus::from_dir(&dir, &opts).unwrap()
    }

    fn params(steps: usize, seed: u64) -> TrainParams {
        TrainParams {
            steps,
            batch: 8,
            lr: 3e-3,
            seed,
            device: Device::Cpu,
            ..Default::default()
        }
    }

    #[test]
    fn training_on_real_chunks_lowers_eval_loss() {
        let cfg = ModelConfig::tiny();
        let c = corpus();
        let (train_c, eval_c) = split(&c.chunks, 150);
        let base = init_weights(&cfg, 42).unwrap();
        let spec = EvalSpec {
            seed: 9,
            windows: 64,
            batch: 32,
        };
        let before = evaluate(&cfg, &base, &eval_c, &spec).unwrap();
        // Untrained ≈ uniform over 256 bytes: ln 256 ≈ 5.545.
        // (The corpus is this crate's own sources, so the exact value moves as they change.)
        assert!((before - 256f32.ln()).abs() < 0.25, "initial loss {before}");
        let out = train(&cfg, &base, &train_c, &params(150, 1)).unwrap();
        assert_eq!(out.num_samples, 150 * 8);
        let after = evaluate(&cfg, &base.add(&out.delta).unwrap(), &eval_c, &spec).unwrap();
        assert!(after < before - 1.0, "eval loss {before} -> {after}");
        assert!(out.train_loss < out.losses[0]);
    }

    #[test]
    fn evaluation_and_training_are_reproducible() {
        let cfg = ModelConfig::tiny();
        let c = corpus();
        let (train_c, eval_c) = split(&c.chunks, 150);
        let base = init_weights(&cfg, 5).unwrap();
        let spec = EvalSpec {
            seed: 1,
            windows: 20,
            batch: 8,
        };
        let a = evaluate(&cfg, &base, &eval_c, &spec).unwrap();
        assert_eq!(
            a.to_bits(),
            evaluate(&cfg, &base, &eval_c, &spec).unwrap().to_bits()
        );
        let other = evaluate(&cfg, &base, &eval_c, &EvalSpec { seed: 2, ..spec }).unwrap();
        assert_ne!(a.to_bits(), other.to_bits());
        let t1 = train(&cfg, &base, &train_c, &params(5, 3)).unwrap();
        let t2 = train(&cfg, &base, &train_c, &params(5, 3)).unwrap();
        assert_eq!(t1.losses, t2.losses);
        assert_eq!(t1.delta, t2.delta);
        let t3 = train(&cfg, &base, &train_c, &params(5, 4)).unwrap();
        assert_ne!(t1.delta, t3.delta);
    }

    #[test]
    fn rejects_unusable_inputs() {
        let cfg = ModelConfig::tiny();
        let base = init_weights(&cfg, 0).unwrap();
        let short = Chunk {
            index: 0,
            hash: [0; 32],
            data: vec![1; cfg.context],
        };
        assert!(matches!(
            train(&cfg, &base, &[&short], &params(1, 0)),
            Err(TrainError::NoData { .. })
        ));
        assert!(matches!(
            train(&cfg, &base, &[&short], &params(0, 0)),
            Err(TrainError::Params(_))
        ));
        let spec = EvalSpec {
            windows: 0,
            ..Default::default()
        };
        assert!(matches!(
            evaluate(&cfg, &base, &[&short], &spec),
            Err(TrainError::Params(_))
        ));
    }

    #[test]
    fn lr_schedule_warms_up_then_decays() {
        let p = TrainParams {
            steps: 100,
            warmup_steps: 10,
            lr: 1.0,
            ..params(100, 0)
        };
        assert_eq!(lr_at(&p, 0), 0.1);
        assert_eq!(lr_at(&p, 9), 1.0);
        assert_eq!(lr_at(&p, 10), 1.0);
        assert!((lr_at(&p, 100) - 0.1).abs() < 1e-12);
        assert!(lr_at(&p, 55) < 1.0 && lr_at(&p, 55) > 0.1);
    }
}
