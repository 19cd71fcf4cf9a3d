//! What every agent of a project agrees on without talking: the training specification, the
//! genesis model, the dataset and the derived per-task values.
//!
//! A project's `modelURI` carries its [`TrainingSpec`] inline as
//! `data:application/json,<canonical JSON>` and its `modelSpecHash` is `keccak256` of that JSON, so
//! an agent needs only the project id: it reads both from chain, checks the hash, rebuilds the
//! reference corpus and the genesis model locally and checks them against `datasetRoot` and
//! `initialModelRoot`. Per task, the `specHash` binds the base model
//! ([`task_spec_hash`]); the revealed `evalSpecHash` seeds the evaluation windows
//! ([`TrainingSpec::eval_spec`]).

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use autonet_ml::corpus::{self, Chunk, Corpus, CorpusOptions};
use autonet_ml::train::{EvalSpec, TrainParams};
use autonet_ml::{ModelConfig, TensorSet, init_weights, to_safetensors};
use autonet_storage::{Manifest, ShardParams, Store};
use serde::{Deserialize, Serialize};

/// The `modelURI` prefix under which the spec is carried.
pub const SPEC_URI_PREFIX: &str = "data:application/json,";

/// Version of [`TrainingSpec`].
pub const SPEC_VERSION: u32 = 1;

/// [`TrainingSpec::target_gain`] of a spec that does not state one: a solver whose delta lowers
/// the task's evaluation loss by 1 % of the base loss earns the whole solver pool.
pub const DEFAULT_TARGET_GAIN: f64 = 0.01;

/// Protocol floor of the target honest coordinators score against
/// ([`TrainingSpec::scoring_target`]): a relative improvement of 10⁻⁴ (0.01 %). A spec with a
/// smaller target is scored as if it said this, so that evaluation noise (a few 10⁻⁵ of relative
/// loss between machines whose libtorch kernels round differently) cannot earn a meaningful share
/// of the pool, however the project's creator set its target.
pub const MIN_TARGET_GAIN: f64 = 1e-4;

/// Errors of the specification layer.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The modelURI does not carry a spec.
    #[error(
        "the project's modelURI does not carry an Autonet training spec (expected it to start with `{SPEC_URI_PREFIX}`): {0}"
    )]
    NotASpecUri(String),
    /// The JSON is not a valid spec.
    #[error("the project's training spec is not valid JSON for this node: {0}")]
    Json(#[from] serde_json::Error),
    /// The spec names a preset this node lacks.
    #[error("unknown model preset `{0}` (this node knows tiny and small)")]
    UnknownPreset(String),
    /// The spec hash on chain does not match.
    #[error("the project's modelSpecHash {on_chain} is not keccak256 of its spec ({computed})")]
    HashMismatch {
        /// From chain.
        on_chain: B256,
        /// Computed here.
        computed: B256,
    },
    /// The spec is unsupported or inconsistent.
    #[error("invalid training spec: {0}")]
    Invalid(String),
    /// Building the corpus failed.
    #[error("building the reference corpus: {0}")]
    Corpus(#[from] autonet_ml::CorpusError),
    /// Building the genesis model failed.
    #[error("building the genesis model: {0}")]
    Model(String),
}

/// A project's training specification (canonical JSON = serde field order, no whitespace).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// [`SPEC_VERSION`].
    pub version: u32,
    /// Model preset (`tiny`, `small`).
    pub preset: String,
    /// Seed of the genesis weights.
    pub init_seed: u64,
    /// Optimizer steps per local round.
    pub steps: u32,
    /// Windows per step.
    pub batch: u32,
    /// Peak learning rate.
    pub lr: f64,
    /// Size cap of the reference corpus (bytes of `.rs` sources of the locked packages).
    pub corpus_max_bytes: u64,
    /// Share of chunks held out for evaluation, per mille.
    pub eval_permille: u32,
    /// Windows per evaluation.
    pub eval_windows: u32,
    /// Reed–Solomon data shards of models and deltas.
    pub data_shards: u8,
    /// Reed–Solomon parity shards.
    pub parity_shards: u8,
    /// Relative loss improvement `(base − loss) / base` that earns a solver the full score
    /// (65535), i.e. the whole solver pool (review finding S-1): a smaller improvement earns the
    /// proportional share and the rest of the pool returns to the project's budget. In (0, 1];
    /// coordinators score against at least [`MIN_TARGET_GAIN`]. Specs written before this field
    /// existed parse with [`DEFAULT_TARGET_GAIN`].
    #[serde(default = "default_target_gain")]
    pub target_gain: f64,
}

fn default_target_gain() -> f64 {
    DEFAULT_TARGET_GAIN
}

impl TrainingSpec {
    /// The spec for `preset` with the defaults of the network (tests shrink `steps` and the corpus).
    pub fn for_preset(preset: &str) -> Result<Self, SpecError> {
        ModelConfig::preset(preset).ok_or_else(|| SpecError::UnknownPreset(preset.into()))?;
        let small = preset == "small";
        Ok(Self {
            version: SPEC_VERSION,
            preset: preset.into(),
            init_seed: 1,
            steps: if small { 60 } else { 12 },
            batch: if small { 16 } else { 8 },
            lr: 3e-3,
            corpus_max_bytes: if small { 4 << 20 } else { 1 << 20 },
            eval_permille: 100,
            eval_windows: if small { 32 } else { 16 },
            data_shards: autonet_storage::manifest::DEFAULT_DATA_SHARDS,
            parity_shards: autonet_storage::manifest::DEFAULT_PARITY_SHARDS,
            target_gain: DEFAULT_TARGET_GAIN,
        })
    }

    /// Canonical JSON.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("spec serialization is infallible")
    }

    /// `keccak256(canonical_json)`: the project's `modelSpecHash`.
    pub fn spec_hash(&self) -> B256 {
        keccak256(self.canonical_json().as_bytes())
    }

    /// The project's `modelURI`.
    pub fn model_uri(&self) -> String {
        format!("{SPEC_URI_PREFIX}{}", self.canonical_json())
    }

    /// Parses a `modelURI` and checks it against the on-chain `modelSpecHash`.
    pub fn from_chain(model_uri: &str, spec_hash: B256) -> Result<Self, SpecError> {
        let json = model_uri
            .strip_prefix(SPEC_URI_PREFIX)
            .ok_or_else(|| SpecError::NotASpecUri(model_uri.chars().take(80).collect()))?;
        let computed = keccak256(json.as_bytes());
        if computed != spec_hash {
            return Err(SpecError::HashMismatch {
                on_chain: spec_hash,
                computed,
            });
        }
        let spec: Self = serde_json::from_str(json)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the version, the preset and the ranges.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version != SPEC_VERSION {
            return Err(SpecError::Invalid(format!(
                "version {} (this node speaks {SPEC_VERSION})",
                self.version
            )));
        }
        self.model_config()?;
        if self.steps == 0
            || self.batch == 0
            || self.lr.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || self.eval_windows == 0
        {
            return Err(SpecError::Invalid(
                "steps, batch, lr and eval_windows must be > 0".into(),
            ));
        }
        if self.eval_permille == 0 || self.eval_permille >= 1000 {
            return Err(SpecError::Invalid(
                "eval_permille must be in 1..1000".into(),
            ));
        }
        if !(self.target_gain.is_finite() && self.target_gain > 0.0 && self.target_gain <= 1.0) {
            return Err(SpecError::Invalid(format!(
                "target_gain must be a relative loss improvement in (0, 1], got {}",
                self.target_gain
            )));
        }
        self.shard_params()?;
        Ok(())
    }

    /// The target honest coordinators score against: [`Self::target_gain`], at least
    /// [`MIN_TARGET_GAIN`].
    pub fn scoring_target(&self) -> f64 {
        self.target_gain.max(MIN_TARGET_GAIN)
    }

    /// The model architecture.
    pub fn model_config(&self) -> Result<ModelConfig, SpecError> {
        ModelConfig::preset(&self.preset)
            .ok_or_else(|| SpecError::UnknownPreset(self.preset.clone()))
    }

    /// The erasure-coding parameters of models and deltas.
    pub fn shard_params(&self) -> Result<ShardParams, SpecError> {
        ShardParams::new(self.data_shards, self.parity_shards)
            .map_err(|e| SpecError::Invalid(e.to_string()))
    }

    /// Builds the reference corpus (the `.rs` sources of the packages in `workspace`'s
    /// `Cargo.lock`, capped at `corpus_max_bytes`).
    pub fn corpus(&self, workspace: &Path) -> Result<Corpus, SpecError> {
        let opts = CorpusOptions {
            max_bytes: usize::try_from(self.corpus_max_bytes).unwrap_or(usize::MAX),
            ..CorpusOptions::default()
        };
        Ok(Corpus::from_cargo_lock(workspace, &opts)?)
    }

    /// The genesis weights.
    pub fn genesis(&self) -> Result<TensorSet, SpecError> {
        init_weights(&self.model_config()?, self.init_seed)
            .map_err(|e| SpecError::Model(e.to_string()))
    }

    /// Encodes `weights` into `store`; returns the manifest (its root is the model root).
    pub fn store_weights(&self, store: &Store, weights: &TensorSet) -> Result<Manifest, SpecError> {
        let bytes = to_safetensors(weights).map_err(|e| SpecError::Model(e.to_string()))?;
        store
            .put_with(&bytes, self.shard_params()?)
            .map_err(|e| SpecError::Model(e.to_string()))
    }

    /// The evaluation windows of a task, seeded by its revealed `evalSpecHash` mixed with the hash
    /// of the task's `solRevealEnd` block (`beacon`): the proposer commits to the spec before that
    /// block exists, so it cannot choose or tell anyone the windows before every solution is
    /// revealed (review finding M-7).
    pub fn eval_spec(&self, eval_spec_hash: B256, beacon: B256) -> EvalSpec {
        EvalSpec {
            seed: eval_seed(eval_spec_hash, beacon),
            windows: self.eval_windows as usize,
            batch: 16,
        }
    }

    /// The fixed evaluation used to report the global loss of a model (not any task's).
    pub fn global_eval_spec(&self) -> EvalSpec {
        EvalSpec {
            windows: (self.eval_windows as usize).max(64),
            ..EvalSpec::default()
        }
    }

    /// Local training hyperparameters of `solver` on `task_id`.
    pub fn train_params(&self, task_id: U256, solver: Address) -> TrainParams {
        TrainParams {
            steps: self.steps as usize,
            batch: self.batch as usize,
            lr: self.lr,
            warmup_steps: (self.steps as usize / 10).clamp(1, 5),
            seed: seed_of(keccak256((task_id, solver).abi_encode())),
            device: tch::Device::Cpu,
            ..TrainParams::default()
        }
    }
}

/// The dataset an agent works on: the corpus split into training and held-out chunks.
pub struct Dataset {
    corpus: Corpus,
    eval_permille: u32,
}

impl Dataset {
    /// Builds the corpus of `spec` from `workspace` and checks its root against `dataset_root`.
    pub fn load(
        spec: &TrainingSpec,
        workspace: &Path,
        dataset_root: B256,
    ) -> Result<Self, SpecError> {
        let corpus = spec.corpus(workspace)?;
        let root = B256::from(corpus.root());
        if root != dataset_root {
            return Err(SpecError::Invalid(format!(
                "the corpus built here has root {root} but the project's datasetRoot is {dataset_root}; \
                 build from the same Cargo.lock and cargo registry as the project creator"
            )));
        }
        Ok(Self {
            corpus,
            eval_permille: spec.eval_permille,
        })
    }

    /// The corpus root.
    pub fn root(&self) -> B256 {
        B256::from(self.corpus.root())
    }

    /// The training chunks of data shard `index` of `count` (everything when `count` is 1).
    pub fn train_shard(&self, index: usize, count: usize) -> Vec<&Chunk> {
        let (train, _) = corpus::split(&self.corpus.chunks, self.eval_permille);
        corpus::shard(&train, count.max(1), index)
    }

    /// The held-out chunks.
    pub fn eval_chunks(&self) -> Vec<&Chunk> {
        corpus::split(&self.corpus.chunks, self.eval_permille).1
    }
}

/// The default workspace whose `Cargo.lock` names the reference corpus.
pub fn default_workspace() -> PathBuf {
    corpus::default_workspace_root()
}

/// `specHash` of a task training from `base_root` in `project_id`.
pub fn task_spec_hash(project_id: U256, base_root: B256) -> B256 {
    keccak256((keccak256(b"autonet.task.v1"), project_id, base_root).abi_encode())
}

/// The seed of a task's evaluation windows: `seed_of(keccak256(abi.encode(evalSpecHash,
/// beacon)))`, with `beacon` the hash of the task's `solRevealEnd` block.
pub fn eval_seed(eval_spec_hash: B256, beacon: B256) -> u64 {
    seed_of(keccak256((eval_spec_hash, beacon).abi_encode()))
}

/// A u64 seed from a hash (its first 8 bytes, big-endian).
pub fn seed_of(hash: B256) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

/// Absolute scores of a coordinator from the evaluation losses (review finding S-1): each
/// solver's relative improvement `gain = (base − loss) / base` against `target` (the spec's
/// [`TrainingSpec::scoring_target`]), `round(65535 · min(1, gain / target))`. A loss that is not
/// finite or not below the base scores 0, and so does every solver when the base loss is not a
/// finite positive number (there is no improvement to measure against it). `Rewards` pays the
/// solver pool in proportion to the highest score the coordinators back, so a solver that
/// reaches the target earns the whole pool and a small improvement a small share.
pub fn scores_from_losses(base_loss: f32, losses: &[f32], target: f64) -> Vec<u16> {
    let base = f64::from(base_loss);
    if !(base.is_finite() && base > 0.0 && target.is_finite() && target > 0.0) {
        return vec![0; losses.len()];
    }
    losses
        .iter()
        .map(|&l| {
            let gain = (base - f64::from(l)) / base;
            if !(gain.is_finite() && gain > 0.0) {
                return 0;
            }
            ((gain / target).min(1.0) * f64::from(u16::MAX)).round() as u16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_seed_depends_on_the_spec_and_the_beacon() {
        let spec = B256::repeat_byte(1);
        let beacon = B256::repeat_byte(2);
        let seed = eval_seed(spec, beacon);
        assert_eq!(seed, eval_seed(spec, beacon));
        assert_ne!(seed, eval_seed(spec, B256::repeat_byte(3)));
        assert_ne!(seed, eval_seed(B256::repeat_byte(4), beacon));
        assert_ne!(
            seed,
            seed_of(spec),
            "the proposer's hash alone must not give the seed"
        );
    }

    #[test]
    fn spec_round_trips_through_the_model_uri_and_checks_the_hash() {
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        let uri = spec.model_uri();
        assert_eq!(
            TrainingSpec::from_chain(&uri, spec.spec_hash()).unwrap(),
            spec
        );
        let err = TrainingSpec::from_chain(&uri, B256::ZERO).unwrap_err();
        assert!(matches!(err, SpecError::HashMismatch { .. }), "{err}");
        let err = TrainingSpec::from_chain("ipfs://x", B256::ZERO).unwrap_err();
        assert!(matches!(err, SpecError::NotASpecUri(_)), "{err}");
    }

    #[test]
    fn invalid_specs_are_rejected_with_the_reason() {
        let mut spec = TrainingSpec::for_preset("tiny").unwrap();
        spec.preset = "huge".into();
        assert!(matches!(spec.validate(), Err(SpecError::UnknownPreset(p)) if p == "huge"));
        let mut spec = TrainingSpec::for_preset("tiny").unwrap();
        spec.eval_permille = 1000;
        assert!(spec.validate().is_err());
        let mut spec = TrainingSpec::for_preset("tiny").unwrap();
        spec.data_shards = 0;
        assert!(spec.validate().is_err());
        assert!(TrainingSpec::for_preset("nope").is_err());
    }

    #[test]
    fn scores_are_absolute_improvement_against_the_target() {
        // Exact binary fractions: base 4, target 1/64 (≈ 1.6 %).
        let t = 1.0 / 64.0;
        // 4 → 3.96875 is 1/128 better: half the target, half the score.
        assert_eq!(scores_from_losses(4.0, &[3.968_75], t), vec![32768]);
        // At and far above the target: both get the full score (before S-1 the first, at 1/64,
        // would have scored 65535 / 16 against the second).
        assert_eq!(
            scores_from_losses(4.0, &[3.9375, 3.0], t),
            vec![65535, 65535]
        );
        // A quarter of the target, alone: a quarter of the score (relative scoring gave 65535).
        assert_eq!(scores_from_losses(4.0, &[3.984_375], t), vec![16384]);
        // No improvement, a worse loss, a diverged or missing delta: 0.
        assert_eq!(
            scores_from_losses(4.0, &[4.0, 4.5, f32::NAN, f32::INFINITY], t),
            vec![0, 0, 0, 0]
        );
        // Scoring is per solver: the others' results do not change a solver's score.
        assert_eq!(
            scores_from_losses(4.0, &[f32::NAN, 3.968_75, 3.0], t),
            vec![0, 32768, 65535]
        );
        // No measurable base: nothing scores.
        for base in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(scores_from_losses(base, &[0.5], t), vec![0], "{base}");
        }
    }

    #[test]
    fn target_gain_is_validated_defaulted_and_floored() {
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        assert_eq!(spec.target_gain, DEFAULT_TARGET_GAIN);
        for bad in [0.0, -0.01, 1.5, f64::NAN, f64::INFINITY] {
            let mut s = spec.clone();
            s.target_gain = bad;
            assert!(
                matches!(s.validate(), Err(SpecError::Invalid(m)) if m.contains("target_gain")),
                "{bad}"
            );
        }
        let mut s = spec.clone();
        s.target_gain = 1e-9;
        s.validate().unwrap();
        assert_eq!(s.scoring_target(), MIN_TARGET_GAIN, "the floor applies");
        s.target_gain = 0.05;
        assert_eq!(s.scoring_target(), 0.05);
        // A spec published before the field existed parses with the default.
        let json = spec.canonical_json().replace(",\"target_gain\":0.01", "");
        assert!(!json.contains("target_gain"));
        let old: TrainingSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(old.target_gain, DEFAULT_TARGET_GAIN);
        let uri = format!("{SPEC_URI_PREFIX}{json}");
        let parsed = TrainingSpec::from_chain(&uri, keccak256(json.as_bytes())).unwrap();
        assert_eq!(parsed, spec);
    }

    #[test]
    fn task_spec_binds_project_and_base() {
        let a = task_spec_hash(U256::from(1), B256::repeat_byte(1));
        assert_ne!(a, task_spec_hash(U256::from(2), B256::repeat_byte(1)));
        assert_ne!(a, task_spec_hash(U256::from(1), B256::repeat_byte(2)));
    }
}
