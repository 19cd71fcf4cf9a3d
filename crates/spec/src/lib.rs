//! What every node of a project agrees on without talking: the training specification, the
//! genesis model, the dataset, the training and evaluation parameters of a task, and where the
//! project's models come from.
//!
//! A project's `modelURI` carries its [`TrainingSpec`] inline as
//! `data:application/json,<canonical JSON>` and its `modelSpecHash` is `keccak256` of that JSON, so
//! a node needs only the project id: it reads both from chain, checks the hash, rebuilds the
//! reference corpus and the genesis model locally and checks them against `datasetRoot` and
//! `initialModelRoot`. The revealed `evalSpecHash` of a task seeds its evaluation windows
//! ([`TrainingSpec::eval_spec`]). The per-task rules themselves (the task's `specHash`, the
//! seeds, the scores) are pure functions of hashes and numbers and live in `autonet-protocol`
//! ([`autonet_protocol::task`], [`autonet_protocol::scores`]).
//!
//! [`models`] loads a model by its Merkle root: from the local store, by the genesis rule, or
//! from the shard servers that announced its shards on chain, every shard verified. The role
//! agents (`autonet-agents`) and the inference node (`autonet-inference`) both load through it.
#![warn(missing_docs)]

pub mod models;

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256, keccak256};
use autonet_ml::corpus::{self, Chunk, Corpus, CorpusOptions};
use autonet_ml::train::{EvalSpec, TrainParams};
use autonet_ml::{ModelConfig, ModelState, Outer, Rule, TensorSet, init_weights, to_safetensors};
use autonet_storage::{Manifest, ShardParams, Store};
use serde::{Deserialize, Serialize};

pub use autonet_protocol::scores::MIN_TARGET_GAIN;
use autonet_protocol::task::{eval_seed, train_seed};

pub use models::{ModelError, ModelSources, decode_state, model_peers};

/// The `modelURI` prefix under which the spec is carried.
pub const SPEC_URI_PREFIX: &str = "data:application/json,";

/// Version of [`TrainingSpec`].
pub const SPEC_VERSION: u32 = 1;

/// [`TrainingSpec::target_gain`] of a spec that does not state one: a solver whose delta lowers
/// the task's evaluation loss by 1 % of the base loss earns the whole solver pool.
pub const DEFAULT_TARGET_GAIN: f64 = 0.01;

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
    /// The outer step that turns a task's aggregate into the next model
    /// ([`autonet_ml::Outer`]): `average` (`base + aggregate`; the default, and then not written,
    /// so specs from before this field keep their hash) or `nesterov:<lr‰>:<momentum‰>`, whose
    /// momentum buffer is published inside every model ([`autonet_ml::ModelState`]). Fixed at the
    /// project's creation like every field here: nodes replaying the project's history must
    /// agree on every step.
    #[serde(
        default,
        skip_serializing_if = "Outer::is_average",
        with = "outer_text"
    )]
    pub outer: Outer,
    /// How the deltas the consensus paid are merged ([`autonet_ml::Rule`], text form): a
    /// robust rule, `trimmed-mean:200` by default (and then not written, so older specs keep
    /// their hash), or `median`, `krum:F`, `centered-clip:τ‰:ITERS`, `bucketing:S:…`; `fedavg`
    /// is refused (one poisoned delta moves it anywhere). Fixed at creation.
    #[serde(default, skip_serializing_if = "is_default_rule", with = "rule_text")]
    pub aggregate: Rule,
    /// What a task of the project trains ([`Kind`]): the byte-level LM (the default, and then
    /// not written, so older specs keep their hash) or a cartridge task kind, whose module the
    /// spec pins by hash.
    #[serde(default, skip_serializing_if = "Kind::is_lm")]
    pub kind: Kind,
}

/// [`TrainingSpec::target_gain`] of [`TrainingSpec::for_cartridge`]: a contribution whose mint
/// removes a quarter of the base state's gap for good earns the whole solver pool (a gap, unlike
/// a loss, falls by large steps while the world is young).
pub const CARTRIDGE_TARGET_GAIN: f64 = 0.25;

/// A project's task kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Kind {
    /// The byte-level language model (`preset`, `steps`, `batch`, `lr`, the corpus of Rust
    /// sources, `outer`, `aggregate`).
    #[default]
    Lm,
    /// A WASM cartridge that answers the task-kind protocol (`autonet_cartridge_sdk::kind`).
    /// Its data is a generated corpus of agent turns; `init_seed` seeds it, `steps` is the
    /// turns of one contribution, `eval_windows` the held-out turns of one evaluation and
    /// `eval_permille` the corpus's held-out share. `preset` is the cartridge's name; `batch`,
    /// `lr`, `outer` and `aggregate` do not apply.
    Cartridge(CartridgeSpec),
}

impl Kind {
    /// Whether this is the LM.
    pub fn is_lm(&self) -> bool {
        *self == Kind::Lm
    }

    /// The kind's name in logs (`lm`, or the cartridge's name).
    pub fn name(&self) -> &str {
        match self {
            Kind::Lm => "lm",
            Kind::Cartridge(c) => &c.name,
        }
    }
}

/// The module of a cartridge task kind, as a project's spec pins it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartridgeSpec {
    /// Its name (`substrate`).
    pub name: String,
    /// keccak256 of the module's bytes: a node runs no other module.
    pub module_hash: B256,
    /// Merkle root of the module in the shard store (how it is fetched, every shard checked).
    pub module_root: B256,
    /// keccak256 of the module's shard manifest.
    pub module_manifest: B256,
    /// Turns of the generated corpus.
    pub turns: u32,
}

fn is_default_rule(rule: &Rule) -> bool {
    *rule == Rule::default()
}

/// [`TrainingSpec::aggregate`] as its text form (`trimmed-mean:200`, `krum:1`).
mod rule_text {
    use autonet_ml::Rule;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rule: &Rule, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(rule)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("aggregate: {e}")))
    }
}

/// [`TrainingSpec::outer`] as its text form (`average`, `nesterov:700:900`).
mod outer_text {
    use autonet_ml::Outer;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(outer: &Outer, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(outer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Outer, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("outer: {e}")))
    }
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
            outer: Outer::Average,
            aggregate: Rule::default(),
            kind: Kind::Lm,
        })
    }

    /// The spec of a project whose tasks run the cartridge `module` (stored as `manifest`) under
    /// `name`, over `turns` generated agent turns: each contribution observes `steps` of them
    /// and each evaluation holds out `eval_windows`.
    pub fn for_cartridge(
        name: &str,
        module: &[u8],
        manifest: &Manifest,
        turns: u32,
        steps: u32,
        eval_windows: u32,
    ) -> Self {
        Self {
            preset: name.into(),
            steps,
            eval_windows,
            target_gain: CARTRIDGE_TARGET_GAIN,
            kind: Kind::Cartridge(CartridgeSpec {
                name: name.into(),
                module_hash: keccak256(module),
                module_root: B256::from(manifest.root),
                module_manifest: B256::from(manifest.manifest_hash()),
                turns,
            }),
            ..Self::for_preset("tiny").expect("tiny is a preset")
        }
    }

    /// The cartridge of a cartridge kind (`None` for the LM).
    pub fn cartridge(&self) -> Option<&CartridgeSpec> {
        match &self.kind {
            Kind::Lm => None,
            Kind::Cartridge(c) => Some(c),
        }
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
        match &self.kind {
            Kind::Lm => {
                self.model_config()?;
            }
            Kind::Cartridge(c) => {
                if self.preset != c.name || c.turns == 0 {
                    return Err(SpecError::Invalid(format!(
                        "a cartridge kind's preset is its name ({}, got {}) and its corpus has turns (got {})",
                        c.name, self.preset, c.turns
                    )));
                }
            }
        }
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
        self.outer
            .validate()
            .map_err(|e| SpecError::Invalid(format!("outer: {e}")))?;
        if self.aggregate == Rule::FedAvg {
            return Err(SpecError::Invalid(
                "aggregate: fedavg is not robust (one poisoned delta moves the mean anywhere); \
                 choose trimmed-mean, median, krum:F, centered-clip or bucketing"
                    .into(),
            ));
        }
        self.aggregate
            .check()
            .map_err(|e| SpecError::Invalid(format!("aggregate: {e}")))?;
        self.shard_params()?;
        Ok(())
    }

    /// The target honest coordinators score against: [`Self::target_gain`], at least
    /// [`MIN_TARGET_GAIN`] ([`autonet_protocol::scores::scoring_target`]).
    pub fn scoring_target(&self) -> f64 {
        autonet_protocol::scores::scoring_target(self.target_gain)
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

    /// The genesis weights (of the LM; a cartridge kind's genesis state comes from its module).
    pub fn genesis(&self) -> Result<TensorSet, SpecError> {
        if let Some(c) = self.cartridge() {
            return Err(SpecError::Invalid(format!(
                "the genesis of the {} task kind is its cartridge's",
                c.name
            )));
        }
        init_weights(&self.model_config()?, self.init_seed)
            .map_err(|e| SpecError::Model(e.to_string()))
    }

    /// Encodes `weights` (a model without momentum buffer) into `store`; returns the manifest
    /// (its root is the model root).
    pub fn store_weights(&self, store: &Store, weights: &TensorSet) -> Result<Manifest, SpecError> {
        self.store_set(store, weights)
    }

    /// Encodes a model with its momentum buffer ([`ModelState::to_set`]) into `store`.
    pub fn store_state(&self, store: &Store, state: &ModelState) -> Result<Manifest, SpecError> {
        let set = state
            .to_set()
            .map_err(|e| SpecError::Model(e.to_string()))?;
        self.store_set(store, &set)
    }

    fn store_set(&self, store: &Store, set: &TensorSet) -> Result<Manifest, SpecError> {
        let bytes = to_safetensors(set).map_err(|e| SpecError::Model(e.to_string()))?;
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
            seed: train_seed(task_id, solver),
            device: tch::Device::Cpu,
            ..TrainParams::default()
        }
    }
}

/// The dataset an agent works on: the corpus split into training and held-out parts.
pub struct Dataset {
    source: Source,
    eval_permille: u32,
}

enum Source {
    /// The LM's corpus of Rust sources.
    Corpus(Corpus),
    /// A cartridge kind's generated agent turns, and their root.
    Turns(Vec<String>, B256),
}

/// The root of a corpus of turns: keccak256 of the concatenated keccak256 of each turn.
pub fn turns_root(turns: &[String]) -> B256 {
    let hashes: Vec<u8> = turns
        .iter()
        .flat_map(|t| keccak256(t.as_bytes()).0)
        .collect();
    keccak256(&hashes)
}

impl Dataset {
    /// Builds the corpus of `spec` (from `workspace` for the LM; generated for a cartridge kind)
    /// and checks its root against `dataset_root`.
    pub fn load(
        spec: &TrainingSpec,
        workspace: &Path,
        dataset_root: B256,
    ) -> Result<Self, SpecError> {
        let data = Self::build(spec, workspace)?;
        let root = data.root();
        if root != dataset_root {
            return Err(SpecError::Invalid(format!(
                "the corpus built here has root {root} but the project's datasetRoot is {dataset_root}; \
                 build from the same Cargo.lock and cargo registry as the project creator"
            )));
        }
        Ok(data)
    }

    /// Builds the corpus of `spec` (what a project creator records as its `datasetRoot`).
    pub fn build(spec: &TrainingSpec, workspace: &Path) -> Result<Self, SpecError> {
        let source = match spec.cartridge() {
            None => Source::Corpus(spec.corpus(workspace)?),
            Some(c) => {
                let turns =
                    autonet_substrate::embed::generated_turns(spec.init_seed, c.turns as usize);
                let root = turns_root(&turns);
                Source::Turns(turns, root)
            }
        };
        Ok(Self {
            source,
            eval_permille: spec.eval_permille,
        })
    }

    /// The corpus root.
    pub fn root(&self) -> B256 {
        match &self.source {
            Source::Corpus(c) => B256::from(c.root()),
            Source::Turns(_, root) => *root,
        }
    }

    /// The training chunks of data shard `index` of `count` (everything when `count` is 1; none
    /// for a corpus of turns).
    pub fn train_shard(&self, index: usize, count: usize) -> Vec<&Chunk> {
        match &self.source {
            Source::Corpus(c) => {
                let (train, _) = corpus::split(&c.chunks, self.eval_permille);
                corpus::shard(&train, count.max(1), index)
            }
            Source::Turns(..) => Vec::new(),
        }
    }

    /// The held-out chunks (none for a corpus of turns).
    pub fn eval_chunks(&self) -> Vec<&Chunk> {
        match &self.source {
            Source::Corpus(c) => corpus::split(&c.chunks, self.eval_permille).1,
            Source::Turns(..) => Vec::new(),
        }
    }

    fn split_turns(&self) -> (&[String], &[String]) {
        match &self.source {
            Source::Corpus(_) => (&[], &[]),
            Source::Turns(t, _) => {
                let held = t.len() * self.eval_permille as usize / 1000;
                t.split_at(t.len() - held)
            }
        }
    }

    /// `n` training turns of data shard `index` of `count` (turn `i` of the training part
    /// belongs to shard `i mod count`), consecutive from a place `seed` picks, wrapping.
    pub fn train_turns(&self, index: usize, count: usize, seed: u64, n: usize) -> Vec<&str> {
        let count = count.max(1);
        let shard: Vec<&str> = self
            .split_turns()
            .0
            .iter()
            .enumerate()
            .filter(|(i, _)| i % count == index % count)
            .map(|(_, t)| t.as_str())
            .collect();
        window(&shard, seed, n)
    }

    /// `n` held-out turns, consecutive from a place `seed` picks, wrapping.
    pub fn eval_turns(&self, seed: u64, n: usize) -> Vec<&str> {
        let held: Vec<&str> = self.split_turns().1.iter().map(String::as_str).collect();
        window(&held, seed, n)
    }
}

fn window<'a>(items: &[&'a str], seed: u64, n: usize) -> Vec<&'a str> {
    if items.is_empty() {
        return Vec::new();
    }
    let start = (seed % items.len() as u64) as usize;
    (0..n.min(items.len()))
        .map(|i| items[(start + i) % items.len()])
        .collect()
}

/// The default workspace whose `Cargo.lock` names the reference corpus.
pub fn default_workspace() -> PathBuf {
    corpus::default_workspace_root()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_outer_rule_is_written_only_when_not_average_and_checked() {
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        assert_eq!(spec.outer, Outer::Average);
        // Average is not written: the specs of existing projects keep their hashes.
        assert!(!spec.canonical_json().contains("outer"));
        let mut nesterov = spec.clone();
        nesterov.outer = Outer::DILOCO;
        let json = nesterov.canonical_json();
        assert!(json.ends_with(",\"outer\":\"nesterov:700:900\"}"), "{json}");
        assert_ne!(nesterov.spec_hash(), spec.spec_hash());
        let parsed = TrainingSpec::from_chain(&nesterov.model_uri(), nesterov.spec_hash()).unwrap();
        assert_eq!(parsed.outer, Outer::DILOCO);
        // Out-of-range or unknown rules are refused by name.
        for bad in ["nesterov:0:900", "nesterov:700:1000", "adam"] {
            let json = json.replace("nesterov:700:900", bad);
            let uri = format!("{SPEC_URI_PREFIX}{json}");
            let err = TrainingSpec::from_chain(&uri, keccak256(json.as_bytes())).unwrap_err();
            assert!(err.to_string().contains("outer"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_aggregation_rule_is_written_only_when_not_the_default_and_must_be_robust() {
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        assert_eq!(spec.aggregate, Rule::default());
        assert!(!spec.canonical_json().contains("aggregate"));
        let mut krum = spec.clone();
        krum.aggregate = "krum:1".parse().unwrap();
        let json = krum.canonical_json();
        assert!(json.ends_with(",\"aggregate\":\"krum:1\"}"), "{json}");
        let parsed = TrainingSpec::from_chain(&krum.model_uri(), krum.spec_hash()).unwrap();
        assert_eq!(parsed.aggregate, Rule::MultiKrum { f: 1, m: 0 });
        for bad in ["fedavg", "trimmed-mean:600", "mean"] {
            let json = json.replace("krum:1", bad);
            let uri = format!("{SPEC_URI_PREFIX}{json}");
            let err = TrainingSpec::from_chain(&uri, keccak256(json.as_bytes())).unwrap_err();
            assert!(err.to_string().contains("aggregat"), "{bad}: {err}");
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
    fn a_cartridge_kind_is_written_pinned_and_checked_and_the_lm_spec_keeps_its_hash() {
        let lm = TrainingSpec::for_preset("tiny").unwrap();
        assert!(!lm.canonical_json().contains("kind"));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let module = b"(module)";
        let manifest = store.put(module).unwrap();
        let spec = TrainingSpec::for_cartridge("substrate", module, &manifest, 100, 8, 10);
        spec.validate().unwrap();
        let json = spec.canonical_json();
        assert!(
            json.contains("\"kind\":{\"cartridge\":{\"name\":\"substrate\""),
            "{json}"
        );
        let parsed = TrainingSpec::from_chain(&spec.model_uri(), spec.spec_hash()).unwrap();
        assert_eq!(parsed, spec);
        let c = parsed.cartridge().unwrap();
        assert_eq!(c.module_hash, keccak256(module));
        assert_eq!(c.module_root, B256::from(manifest.root));
        assert!(
            spec.genesis()
                .unwrap_err()
                .to_string()
                .contains("cartridge")
        );
        // A spec whose preset is not its cartridge's name, or whose corpus is empty, is refused.
        for bad in [
            json.replace("\"preset\":\"substrate\"", "\"preset\":\"tiny\""),
            json.replace("\"turns\":100", "\"turns\":0"),
        ] {
            let uri = format!("{SPEC_URI_PREFIX}{bad}");
            let err = TrainingSpec::from_chain(&uri, keccak256(bad.as_bytes())).unwrap_err();
            assert!(err.to_string().contains("cartridge"), "{err}");
        }
        // An unknown field inside the pin is refused, not ignored.
        let extra = json.replace("\"turns\":100", "\"turns\":100,\"x\":1");
        let uri = format!("{SPEC_URI_PREFIX}{extra}");
        assert!(TrainingSpec::from_chain(&uri, keccak256(extra.as_bytes())).is_err());
    }

    #[test]
    fn a_corpus_of_turns_splits_into_disjoint_shards_and_a_held_out_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let manifest = store.put(b"m").unwrap();
        let spec = TrainingSpec::for_cartridge("substrate", b"m", &manifest, 200, 8, 10);
        let data = Dataset::build(&spec, Path::new("/nonexistent")).unwrap();
        let again = Dataset::load(&spec, Path::new("/nonexistent"), data.root()).unwrap();
        assert_eq!(again.root(), data.root());
        assert!(Dataset::load(&spec, Path::new("/x"), B256::ZERO).is_err());
        // 10% held out (eval_permille 100): 180 training turns, 20 held out.
        let held: Vec<&str> = data.eval_turns(0, 1000);
        assert_eq!(held.len(), 20);
        let a = data.train_turns(0, 2, 0, 1000);
        let b = data.train_turns(1, 2, 0, 1000);
        assert_eq!((a.len(), b.len()), (90, 90));
        // The shards are the training part's even and odd turns: none held out, none shared
        // (the generator repeats texts, so compare positions through the other shard's).
        let turns = autonet_substrate::embed::generated_turns(spec.init_seed, 200);
        assert_eq!(a[0], turns[0]);
        assert_eq!(b[0], turns[1]);
        assert_eq!(held[0], turns[180]);
        // A seed picks where a window starts; the same seed, the same turns.
        assert_eq!(data.train_turns(0, 2, 7, 5), data.train_turns(0, 2, 7, 5));
        assert_eq!(data.train_turns(0, 2, 7, 5)[0], a[7]);
        assert_eq!(data.eval_turns(25, 3)[0], held[5]);
        assert!(data.train_shard(0, 1).is_empty() && data.eval_chunks().is_empty());
    }
}
