//! The reference model: a byte-level causal transformer language model on `tch`.
//!
//! Token embedding + learned positional embedding, `n_layers` pre-norm blocks (multi-head causal
//! self-attention, then a GELU MLP), final LayerNorm, output head tied to the token embedding.
//! No dropout (training is deterministic given the batch order).
//!
//! Weights are initialised in pure Rust from a seed ([`init_weights`]: uniform with GPT-2
//! standard deviations, drawn from [`SplitMix64`]), never from libtorch's global RNG, so the
//! initial model is bit-identical on every machine and device and unaffected by concurrent
//! threads. This module owns the architecture and the mapping between a `tch::nn::VarStore` and a
//! [`TensorSet`]; it does not train (see [`crate::train`]).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use thiserror::Error;

use crate::rng::SplitMix64;
use crate::tensors::{NamedTensor, TensorError, TensorSet};

/// Errors about model configuration and weights.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The configuration is inconsistent.
    #[error("invalid model config: {0}")]
    Config(String),
    /// The weights do not match the architecture.
    #[error("weights do not match the model: {0}")]
    Layout(#[from] TensorError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Architecture hyperparameters (part of a task spec, hence serde).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Vocabulary size (256 for bytes).
    pub vocab: usize,
    /// Embedding width.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Attention heads per block (`d_model % n_heads == 0`).
    pub n_heads: usize,
    /// Context length in tokens.
    pub context: usize,
    /// MLP hidden width = `mlp_ratio * d_model`.
    pub mlp_ratio: usize,
}

impl ModelConfig {
    /// Unit-test size: ~30 k parameters, trains in seconds on one core.
    pub fn tiny() -> Self {
        Self {
            vocab: 256,
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            context: 32,
            mlp_ratio: 4,
        }
    }

    /// The network's reference size (see `docs/ml.md` for measurements).
    pub fn small() -> Self {
        Self {
            vocab: 256,
            d_model: 128,
            n_layers: 4,
            n_heads: 4,
            context: 128,
            mlp_ratio: 4,
        }
    }

    /// A preset by name (`tiny`, `small`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "tiny" => Some(Self::tiny()),
            "small" => Some(Self::small()),
            _ => None,
        }
    }

    /// Checks the invariants the architecture needs.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = [
            ("vocab", self.vocab),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("context", self.context),
            ("mlp_ratio", self.mlp_ratio),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ModelError::Config(format!("{k} must be > 0")));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ModelError::Config(format!(
                "d_model {} is not divisible by n_heads {}",
                self.d_model, self.n_heads
            )));
        }
        Ok(())
    }

    /// Names and shapes of all parameters, sorted by name (the [`TensorSet`] layout).
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, h) = (self.d_model, self.d_model * self.mlp_ratio);
        let mut v = vec![
            ("wte.weight".to_string(), vec![self.vocab, d]),
            ("wpe.weight".to_string(), vec![self.context, d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
        ];
        for l in 0..self.n_layers {
            let p = |s: &str| format!("blocks.{l}.{s}");
            v.extend([
                (p("ln1.weight"), vec![d]),
                (p("ln1.bias"), vec![d]),
                (p("attn.qkv.weight"), vec![3 * d, d]),
                (p("attn.qkv.bias"), vec![3 * d]),
                (p("attn.proj.weight"), vec![d, d]),
                (p("attn.proj.bias"), vec![d]),
                (p("ln2.weight"), vec![d]),
                (p("ln2.bias"), vec![d]),
                (p("mlp.fc.weight"), vec![h, d]),
                (p("mlp.fc.bias"), vec![h]),
                (p("mlp.proj.weight"), vec![d, h]),
                (p("mlp.proj.bias"), vec![d]),
            ]);
        }
        v.sort();
        v
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.param_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// Deterministic initial weights for `cfg` from `seed`.
///
/// Embeddings and linear weights: uniform with standard deviation 0.02 (residual output
/// projections 0.02/√(2·n_layers), as GPT-2); biases 0; LayerNorm gain 1, bias 0. Values are
/// drawn in sorted-name order from `SplitMix64::derive(seed, "init")`.
pub fn init_weights(cfg: &ModelConfig, seed: u64) -> Result<TensorSet, ModelError> {
    cfg.validate()?;
    let mut rng = SplitMix64::derive(seed, "init");
    let residual_std = 0.02 / (2.0 * cfg.n_layers as f32).sqrt();
    let tensors = cfg
        .param_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if name.ends_with(".bias") {
                vec![0.0; n]
            } else if name.starts_with("ln") || name.contains(".ln") {
                vec![1.0; n]
            } else {
                let std = if name.ends_with("proj.weight") {
                    residual_std
                } else {
                    0.02
                };
                // Uniform on [-a, a) has standard deviation a/√3.
                let a = std * 3f32.sqrt();
                (0..n).map(|_| (2.0 * rng.next_f32() - 1.0) * a).collect()
            };
            NamedTensor::new(name, shape, data)
        })
        .collect();
    Ok(TensorSet::new(tensors)?)
}

/// CUDA when libtorch sees a GPU, else CPU.
pub fn default_device() -> Device {
    Device::cuda_if_available()
}

#[derive(Debug)]
struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc: nn::Linear,
    fc_proj: nn::Linear,
}

/// The language model bound to a `VarStore` on a device.
#[derive(Debug)]
pub struct Lm {
    cfg: ModelConfig,
    vs: nn::VarStore,
    wte: nn::Embedding,
    wpe: nn::Embedding,
    blocks: Vec<Block>,
    ln_f: nn::LayerNorm,
}

impl Lm {
    /// Builds the model on `device` with the given weights.
    pub fn new(cfg: &ModelConfig, weights: &TensorSet, device: Device) -> Result<Self, ModelError> {
        cfg.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let zeros = nn::Init::Const(0.0);
        let lin = nn::LinearConfig {
            ws_init: zeros,
            bs_init: Some(zeros),
            bias: true,
        };
        let emb = nn::EmbeddingConfig {
            ws_init: zeros,
            ..Default::default()
        };
        let ln = nn::LayerNormConfig::default();
        let (d, h) = (cfg.d_model as i64, (cfg.d_model * cfg.mlp_ratio) as i64);
        let wte = nn::embedding(&root / "wte", cfg.vocab as i64, d, emb);
        let wpe = nn::embedding(&root / "wpe", cfg.context as i64, d, emb);
        let blocks = (0..cfg.n_layers)
            .map(|l| {
                let b = &root / "blocks" / l;
                Block {
                    ln1: nn::layer_norm(&b / "ln1", vec![d], ln),
                    qkv: nn::linear(&b / "attn" / "qkv", d, 3 * d, lin),
                    proj: nn::linear(&b / "attn" / "proj", d, d, lin),
                    ln2: nn::layer_norm(&b / "ln2", vec![d], ln),
                    fc: nn::linear(&b / "mlp" / "fc", d, h, lin),
                    fc_proj: nn::linear(&b / "mlp" / "proj", h, d, lin),
                }
            })
            .collect();
        let ln_f = nn::layer_norm(&root / "ln_f", vec![d], ln);
        let mut lm = Self {
            cfg: cfg.clone(),
            vs,
            wte,
            wpe,
            blocks,
            ln_f,
        };
        lm.load(weights)?;
        Ok(lm)
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The variable store (for optimizers).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Copies `weights` into the model (names and shapes must match exactly).
    pub fn load(&mut self, weights: &TensorSet) -> Result<(), ModelError> {
        let current = self.weights_layout();
        current.check_same_layout(weights)?;
        let vars = self.vs.variables();
        tch::no_grad(|| -> Result<(), ModelError> {
            for t in weights.tensors() {
                let shape: Vec<i64> = t.shape.iter().map(|&s| s as i64).collect();
                let src = Tensor::from_slice(&t.data)
                    .view(shape.as_slice())
                    .to_device(self.device());
                let mut dst = vars[&t.name].shallow_clone();
                dst.f_copy_(&src)?;
            }
            Ok(())
        })
    }

    /// The current weights as a [`TensorSet`] (copied to host memory).
    pub fn weights(&self) -> Result<TensorSet, ModelError> {
        let mut vars: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors = vars
            .into_iter()
            .map(|(name, t)| {
                let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
                let flat = t
                    .detach()
                    .to_device(Device::Cpu)
                    .to_kind(Kind::Float)
                    .flatten(0, -1);
                Ok(NamedTensor::new(name, shape, Vec::<f32>::try_from(&flat)?))
            })
            .collect::<Result<Vec<_>, tch::TchError>>()?;
        Ok(TensorSet::new(tensors)?)
    }

    fn weights_layout(&self) -> TensorSet {
        let tensors = self
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| {
                let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
                let n = shape.iter().product();
                NamedTensor::new(name, shape, vec![0.0; n])
            })
            .collect();
        TensorSet::new(tensors).expect("VarStore names are unique")
    }

    /// Logits `[B, T, vocab]` for int64 tokens `[B, T]` with `T <= context`.
    pub fn forward(&self, tokens: &Tensor) -> Tensor {
        self.run(tokens, None)
    }

    /// Incremental decoding: logits `[B, n, vocab]` for tokens `[B, n]` that follow the
    /// `cache.len()` positions already in `cache`, whose keys and values are reused instead of
    /// recomputed; the new positions' keys and values are appended. With an empty cache this is
    /// [`Self::forward`] op for op (the same logits, bit for bit); later steps compute the same
    /// function with other matrix shapes, so their logits agree to rounding. Needs
    /// `cache.len() + n <= context` (positions are absolute); the caller starts a new cache
    /// when its window slides.
    pub fn forward_cached(&self, tokens: &Tensor, cache: &mut KvCache) -> Tensor {
        self.run(tokens, Some(cache))
    }

    // `x = x + y`, not `x += y`: an in-place add would overwrite the LayerNorm input that
    // autograd saved for the backward pass.
    #[allow(clippy::assign_op_pattern)]
    fn run(&self, tokens: &Tensor, mut cache: Option<&mut KvCache>) -> Tensor {
        let (b, t) = tokens.size2().expect("tokens must be [batch, time]");
        let d = self.cfg.d_model as i64;
        let nh = self.cfg.n_heads as i64;
        let hd = d / nh;
        let past = cache.as_ref().map_or(0, |c| c.len) as i64;
        assert!(
            past + t <= self.cfg.context as i64,
            "{past} cached + {t} new positions exceed the context of {}",
            self.cfg.context
        );
        if let Some(c) = cache.as_deref_mut()
            && c.layers.len() != self.blocks.len()
        {
            c.layers = (0..self.blocks.len()).map(|_| None).collect();
        }
        let pos = if past == 0 {
            Tensor::arange(t, (Kind::Int64, tokens.device()))
        } else {
            Tensor::arange_start(past, past + t, (Kind::Int64, tokens.device()))
        };
        // New positions attend to every cached one and causally among themselves.
        let mask = (past > 0 && t > 1).then(|| {
            let rows = Tensor::arange(t, (Kind::Int64, tokens.device())).unsqueeze(1);
            let cols = Tensor::arange(past + t, (Kind::Int64, tokens.device())).unsqueeze(0);
            cols.le_tensor(&(rows + past))
        });
        let mut x = self.wte.forward(tokens) + self.wpe.forward(&pos);
        for (l, blk) in self.blocks.iter().enumerate() {
            let qkv = blk.qkv.forward(&blk.ln1.forward(&x));
            let parts = qkv.split(d, 2);
            let heads = |y: &Tensor| y.view([b, t, nh, hd]).transpose(1, 2);
            let (q, mut k, mut v) = (heads(&parts[0]), heads(&parts[1]), heads(&parts[2]));
            if let Some(c) = cache.as_deref_mut() {
                let slot = &mut c.layers[l];
                if let Some((pk, pv)) = slot.as_ref() {
                    k = Tensor::cat(&[pk, &k], 2);
                    v = Tensor::cat(&[pv, &v], 2);
                }
                *slot = Some((k.shallow_clone(), v.shallow_clone()));
            }
            let att = Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                mask.as_ref(),
                0.0,
                past == 0,
                None,
                false,
            );
            let att = att.transpose(1, 2).contiguous().view([b, t, d]);
            x = x + blk.proj.forward(&att);
            let m = blk
                .fc_proj
                .forward(&blk.fc.forward(&blk.ln2.forward(&x)).gelu("none"));
            x = x + m;
        }
        if let Some(c) = cache {
            c.len += t as usize;
        }
        let x = self.ln_f.forward(&x);
        x.matmul(&self.wte.ws.tr())
    }
}

impl Lm {
    /// One decoding step of `n` sequences at once, each held in a slot of `store`: the logits
    /// `[n, vocab]` of `tokens[i]` at position `positions[i]` of the sequence in slot
    /// `slots[i]`, which attends to that slot's positions `0 ..= positions[i]` (the earlier ones
    /// as stored, this one's keys and values written into the slot). The same function as a
    /// [`Self::forward_cached`] step of each sequence alone, with other matrix shapes: the
    /// logits agree to rounding. Slots must be distinct and positions below `context`.
    #[allow(clippy::assign_op_pattern)] // the same operations as `run`
    pub fn forward_slots(
        &self,
        tokens: &[i64],
        slots: &[usize],
        positions: &[usize],
        store: &mut SlotCache,
    ) -> Tensor {
        let n = tokens.len();
        assert!(
            n == slots.len() && n == positions.len() && n > 0,
            "one slot and one position per token"
        );
        assert!(
            positions.iter().all(|&p| p < self.cfg.context),
            "positions must lie in the context of {}",
            self.cfg.context
        );
        let device = self.vs.device();
        store.ensure(self, device);
        let n = n as i64;
        let d = self.cfg.d_model as i64;
        let nh = self.cfg.n_heads as i64;
        let hd = d / nh;
        let ids = |v: &[usize]| {
            Tensor::from_slice(&v.iter().map(|&x| x as i64).collect::<Vec<_>>()).to_device(device)
        };
        let (slot_t, pos_t) = (ids(slots), ids(positions));
        let tok_t = Tensor::from_slice(tokens).to_device(device);
        // Row i attends to its slot's positions 0..=positions[i]; no row looks past `upto`.
        let upto = positions.iter().max().map_or(1, |&p| p as i64 + 1);
        // Slots in a run (the usual case) are read as a view, others gathered.
        let run = slots.windows(2).all(|w| w[1] == w[0] + 1);
        let mask = Tensor::arange(upto, (Kind::Int64, device))
            .unsqueeze(0)
            .le_tensor(&pos_t.unsqueeze(1))
            .view([n, 1, 1, upto]);
        let mut x = (self.wte.forward(&tok_t) + self.wpe.forward(&pos_t)).view([n, 1, d]);
        for (l, blk) in self.blocks.iter().enumerate() {
            let qkv = blk.qkv.forward(&blk.ln1.forward(&x));
            let parts = qkv.split(d, 2);
            let q = parts[0].view([n, 1, nh, hd]).transpose(1, 2);
            let (sk, sv) = &mut store.layers[l];
            let at = [Some(slot_t.shallow_clone()), Some(pos_t.shallow_clone())];
            let _ = sk.index_put_(&at, &parts[1].view([n, nh, hd]), false);
            let _ = sv.index_put_(&at, &parts[2].view([n, nh, hd]), false);
            let rows = |t: &Tensor| {
                let t = if run {
                    t.narrow(0, slots[0] as i64, n)
                } else {
                    t.index_select(0, &slot_t)
                };
                t.narrow(1, 0, upto).transpose(1, 2)
            };
            let (k, v) = (rows(sk), rows(sv));
            let att = Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                Some(&mask),
                0.0,
                false,
                None,
                false,
            );
            let att = att.transpose(1, 2).contiguous().view([n, 1, d]);
            x = x + blk.proj.forward(&att);
            let m = blk
                .fc_proj
                .forward(&blk.fc.forward(&blk.ln2.forward(&x)).gelu("none"));
            x = x + m;
        }
        let x = self.ln_f.forward(&x);
        x.matmul(&self.wte.ws.tr()).view([n, self.cfg.vocab as i64])
    }
}

/// Keys and values of up to `slots` sequences side by side, one slot each, for
/// [`Lm::forward_slots`] (batched decoding): per block, keys and values
/// `[slots, context, heads, head_dim]`, allocated on first use.
#[derive(Debug)]
pub struct SlotCache {
    slots: usize,
    layers: Vec<(Tensor, Tensor)>,
}

impl SlotCache {
    /// Room for `slots` sequences.
    pub fn new(slots: usize) -> Self {
        Self {
            slots,
            layers: Vec::new(),
        }
    }

    /// Slots held.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn ensure(&mut self, lm: &Lm, device: Device) {
        if self.layers.len() == lm.blocks.len() {
            return;
        }
        let c = &lm.cfg;
        let shape = [
            self.slots as i64,
            c.context as i64,
            c.n_heads as i64,
            (c.d_model / c.n_heads) as i64,
        ];
        self.layers = (0..lm.blocks.len())
            .map(|_| {
                (
                    Tensor::zeros(shape, (Kind::Float, device)),
                    Tensor::zeros(shape, (Kind::Float, device)),
                )
            })
            .collect();
    }

    /// Puts the positions `cache` holds (one sequence's, from [`Lm::forward_cached`]) into
    /// `slot`: later [`Lm::forward_slots`] steps of that slot continue after them.
    pub fn load(&mut self, lm: &Lm, slot: usize, cache: &KvCache) {
        assert!(slot < self.slots, "slot {slot} of {}", self.slots);
        self.ensure(lm, lm.vs.device());
        tch::no_grad(|| {
            for ((sk, sv), layer) in self.layers.iter_mut().zip(&cache.layers) {
                if let Some((k, v)) = layer {
                    // [1, heads, len, head_dim] → [len, heads, head_dim]
                    let len = k.size()[2];
                    sk.get(slot as i64)
                        .narrow(0, 0, len)
                        .copy_(&k.get(0).transpose(0, 1));
                    sv.get(slot as i64)
                        .narrow(0, 0, len)
                        .copy_(&v.get(0).transpose(0, 1));
                }
            }
        });
    }
}

/// The keys and values of the positions an [`Lm`] has seen, per block, for incremental decoding
/// ([`Lm::forward_cached`]).
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position (for a new window).
    pub fn clear(&mut self) {
        self.layers.clear();
        self.len = 0;
    }

    /// Keeps the first `len` positions and forgets the later ones (rolls back positions fed
    /// speculatively); a no-op when `len >= self.len()`, as `Vec::truncate`. The kept keys and
    /// values are the same tensors' first `len` positions, untouched.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if len == 0 {
            self.clear();
            return;
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.narrow(2, 0, len as i64);
            *v = v.narrow(2, 0, len as i64);
        }
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_deterministic_and_matches_the_varstore_layout() {
        let cfg = ModelConfig::tiny();
        let a = init_weights(&cfg, 1).unwrap();
        assert_eq!(a, init_weights(&cfg, 1).unwrap());
        assert_ne!(a, init_weights(&cfg, 2).unwrap());
        assert_eq!(a.num_params(), cfg.num_params());
        let lm = Lm::new(&cfg, &a, Device::Cpu).unwrap();
        // The weights read back from libtorch are bit-identical to the ones loaded.
        assert_eq!(lm.weights().unwrap(), a);
        assert_eq!(
            a.get("blocks.1.ln2.weight").unwrap().data,
            vec![1.0; cfg.d_model]
        );
        assert_eq!(
            a.get("blocks.0.mlp.fc.bias").unwrap().data,
            vec![0.0; 4 * cfg.d_model]
        );
        // Empirical std of the token embedding is close to 0.02.
        let w = &a.get("wte.weight").unwrap().data;
        let var = w.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var.sqrt() - 0.02).abs() < 0.002, "std {}", var.sqrt());
    }

    #[test]
    fn cached_forward_reproduces_the_full_forward() {
        let cfg = ModelConfig::tiny();
        let lm = Lm::new(&cfg, &init_weights(&cfg, 5).unwrap(), Device::Cpu).unwrap();
        let tokens: Vec<i64> = (0..24).map(|i| (i * 37 + 11) % 256).collect();
        let x = Tensor::from_slice(&tokens).view([1, 24]);
        tch::no_grad(|| {
            let full = lm.forward(&x);
            let mut cache = KvCache::new();
            // Prefill: op for op the full forward of those positions, so bit-identical.
            let first = lm.forward_cached(&x.narrow(1, 0, 6), &mut cache);
            let alone = lm.forward(&x.narrow(1, 0, 6));
            assert!(first.equal(&alone), "prefill differs from forward");
            assert_eq!(cache.len(), 6);
            // One position at a time, then a chunk of several after cached ones (masked).
            let mut rows = vec![first];
            for i in 6..18 {
                rows.push(lm.forward_cached(&x.narrow(1, i, 1), &mut cache));
            }
            rows.push(lm.forward_cached(&x.narrow(1, 18, 6), &mut cache));
            assert_eq!(cache.len(), 24);
            let cached = Tensor::cat(&rows, 1);
            let diff = (&cached - &full).abs().max().double_value(&[]);
            assert!(
                diff < 1e-5,
                "cached logits differ from the full forward by {diff}"
            );
            cache.clear();
            assert!(cache.is_empty());
        });
    }

    #[test]
    fn forward_is_causal_and_shaped() {
        let cfg = ModelConfig::tiny();
        let lm = Lm::new(&cfg, &init_weights(&cfg, 3).unwrap(), Device::Cpu).unwrap();
        let a = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([1, 6]);
        let b = Tensor::from_slice(&[1i64, 2, 3, 9, 9, 9]).view([1, 6]);
        let (la, lb) = (lm.forward(&a), lm.forward(&b));
        assert_eq!(la.size(), [1, 6, 256]);
        // Positions 0..3 only see the shared prefix, so their logits agree; position 3 differs.
        let diff =
            |i: i64| f64::try_from((la.get(0).get(i) - lb.get(0).get(i)).abs().max()).unwrap();
        assert!(diff(0) == 0.0 && diff(2) < 1e-6, "{} {}", diff(0), diff(2));
        assert!(diff(3) > 1e-6);
    }

    #[test]
    fn bad_config_and_bad_weights_are_rejected() {
        let mut cfg = ModelConfig::tiny();
        cfg.n_heads = 3;
        assert!(matches!(cfg.validate(), Err(ModelError::Config(_))));
        let tiny = ModelConfig::tiny();
        let small_w = init_weights(
            &ModelConfig {
                d_model: 16,
                ..tiny.clone()
            },
            0,
        )
        .unwrap();
        assert!(matches!(
            Lm::new(&tiny, &small_w, Device::Cpu),
            Err(ModelError::Layout(_))
        ));
        assert_eq!(ModelConfig::preset("small"), Some(ModelConfig::small()));
        assert!(ModelConfig::preset("huge").is_none());
    }
}
