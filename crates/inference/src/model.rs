//! The served model: the project's current model read from chain, loaded from the genesis rule
//! or fetched from its shard providers with every shard verified against the chain.

use std::path::Path;
use std::sync::{Arc, Mutex};

use alloy::primitives::{B256, U256};
use autonet_bindings::{Contracts, ModelShardRegistry, Project, ShardProviders};
use autonet_chain::ChainProvider;
use autonet_ml::generate::{GenerateParams, generate_stream};
use autonet_ml::{Lm, ModelConfig};
use autonet_spec::{ModelError, ModelSources, TrainingSpec};
use autonet_storage::{ShardClient, Store};

use crate::InferenceError;

/// A model ready to generate with: one copy of the weights per generation that may run at once
/// (a copy is used by one generation at a time; concurrent requests decode in parallel on
/// separate copies instead of queueing behind one).
pub struct LoadedModel {
    /// Its Merkle root (as published and accepted on chain).
    pub root: B256,
    copies: Vec<Mutex<Lm>>,
    next: std::sync::atomic::AtomicUsize,
}

/// Copies of a served model: one per core, at most 4 (decoding one byte is too small a job for
/// libtorch to spread over cores, so parallel requests are what uses them).
pub fn default_copies() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("root", &self.root)
            .finish()
    }
}

/// What one generation produced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Generated {
    /// The continuation (bytes, shown as UTF-8 with invalid sequences replaced).
    pub output: String,
    /// Bytes generated.
    pub tokens: usize,
    /// Why generation ended (`max_tokens`, `stop`).
    pub finish: String,
}

impl LoadedModel {
    /// Wraps `lm` as model `root` (one copy: generations take turns).
    pub fn new(root: B256, lm: Lm) -> Self {
        Self::with_copies(root, vec![lm])
    }

    /// Model `root` served from `copies` (each the same weights; at least one).
    pub fn with_copies(root: B256, copies: Vec<Lm>) -> Self {
        assert!(!copies.is_empty(), "a served model needs at least one copy");
        Self {
            root,
            copies: copies.into_iter().map(Mutex::new).collect(),
            next: Default::default(),
        }
    }

    /// Copies of the weights held.
    pub fn copies(&self) -> usize {
        self.copies.len()
    }

    /// A free copy, or (all busy) the next one in turn, waited for.
    fn lm(&self) -> std::sync::MutexGuard<'_, Lm> {
        for c in &self.copies {
            if let Ok(lm) = c.try_lock() {
                return lm;
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.copies.len();
        self.copies[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Generates a continuation of `prompt` (blocking: call from a blocking thread).
    pub fn generate(
        &self,
        prompt: &[u8],
        params: &GenerateParams,
    ) -> Result<Generated, InferenceError> {
        self.generate_stream(prompt, params, |_| true)
    }

    /// Generates a continuation of `prompt`, passing each output byte to `on_byte` as soon as it
    /// is known (`false` stops generation: finish `cancelled`); blocking.
    pub fn generate_stream(
        &self,
        prompt: &[u8],
        params: &GenerateParams,
        mut on_byte: impl FnMut(u8) -> bool,
    ) -> Result<Generated, InferenceError> {
        let lm = self.lm();
        let mut out = Vec::with_capacity(params.max_tokens);
        let finish = generate_stream(&lm, prompt, params, |b| {
            out.push(b);
            on_byte(b)
        })
        .map_err(|e| InferenceError::Model(e.to_string()))?;
        Ok(Generated {
            tokens: out.len(),
            output: String::from_utf8_lossy(&out).into_owned(),
            finish: serde_json::to_value(finish.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        })
    }
}

/// Splits off the front of `pending` that is text already: complete UTF-8 characters, and
/// invalid sequences (as U+FFFD, the way `String::from_utf8_lossy` writes them). What could still
/// become a character (the start of a multi-byte sequence) stays. The pieces of a byte stream
/// joined are `String::from_utf8_lossy` of the whole, once the rest is flushed with
/// [`flush_text`].
pub fn take_text(pending: &mut Vec<u8>) -> String {
    let mut text = String::new();
    loop {
        match std::str::from_utf8(pending) {
            Ok(s) => {
                text.push_str(s);
                pending.clear();
                return text;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                match e.error_len() {
                    Some(bad) => {
                        text.push_str(&String::from_utf8_lossy(&pending[..valid + bad]));
                        pending.drain(..valid + bad);
                    }
                    None => {
                        text.push_str(&String::from_utf8_lossy(&pending[..valid]));
                        pending.drain(..valid);
                        return text;
                    }
                }
            }
        }
    }
}

/// The rest of a byte stream at its end, as text (an unfinished sequence becomes U+FFFD).
pub fn flush_text(pending: &mut Vec<u8>) -> String {
    let text = String::from_utf8_lossy(pending).into_owned();
    pending.clear();
    text
}

/// Where models come from: the project on chain, its spec, and the shard network.
pub struct ModelSource {
    provider: ChainProvider,
    contracts: Contracts,
    project_id: u64,
    config: ModelConfig,
    spec: TrainingSpec,
    genesis_root: B256,
    store: Store,
    client: ShardClient,
}

impl ModelSource {
    /// Reads project `project_id`'s spec from chain; models are kept under `state_dir/store`.
    pub async fn open(
        provider: ChainProvider,
        contracts: Contracts,
        project_id: u64,
        state_dir: &Path,
    ) -> Result<Self, InferenceError> {
        let project = Project::new(contracts.project, provider.clone())
            .getProject(U256::from(project_id))
            .call()
            .await
            .map_err(|e| InferenceError::Chain(format!("reading project {project_id}: {e}")))?;
        let spec = TrainingSpec::from_chain(&project.modelURI, project.modelSpecHash)
            .map_err(|e| InferenceError::Model(format!("project {project_id}'s spec: {e}")))?;
        let config = spec
            .model_config()
            .map_err(|e| InferenceError::Model(e.to_string()))?;
        let store = Store::open(state_dir.join("store"))
            .map_err(|e| InferenceError::Storage(e.to_string()))?;
        let genesis = spec
            .store_weights(
                &store,
                &spec
                    .genesis()
                    .map_err(|e| InferenceError::Model(e.to_string()))?,
            )
            .map_err(|e| InferenceError::Model(e.to_string()))?;
        let client = ShardClient::new(autonet_storage::FetchConfig::default())
            .map_err(|e| InferenceError::Storage(e.to_string()))?;
        Ok(Self {
            provider,
            contracts,
            project_id,
            config,
            spec,
            genesis_root: B256::from(genesis.root),
            store,
            client,
        })
    }

    /// The project's current model root (the last accepted one).
    pub async fn head(&self) -> Result<B256, InferenceError> {
        Project::new(self.contracts.project, self.provider.clone())
            .modelRoot(U256::from(self.project_id))
            .call()
            .await
            .map_err(|e| InferenceError::Chain(format!("reading the project's model: {e}")))
    }

    /// The architecture of the project's models.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The preset name of the project's spec.
    pub fn preset(&self) -> &str {
        &self.spec.preset
    }

    /// Loads model `root` through [`ModelSources`]: the local store, else the genesis rule, else
    /// its providers (the manifest hash read from chain, every shard checked against the Merkle
    /// root).
    pub async fn load(&self, root: B256) -> Result<LoadedModel, InferenceError> {
        let sources = ModelSources {
            spec: &self.spec,
            genesis_root: self.genesis_root,
            store: &self.store,
            client: &self.client,
            shards: ModelShardRegistry::new(self.contracts.shard_registry, self.provider.clone()),
            providers: ShardProviders::new(self.contracts.shard_providers, self.provider.clone()),
        };
        let weights = sources.weights(root, None).await.map_err(|e| match e {
            ModelError::Read { .. } => InferenceError::Chain(e.to_string()),
            ModelError::NoPeers(_) | ModelError::Storage(_) => {
                InferenceError::Storage(e.to_string())
            }
            ModelError::Spec(_) | ModelError::Decode(_) => InferenceError::Model(e.to_string()),
        })?;
        let copies = (0..default_copies())
            .map(|_| Lm::new(&self.config, &weights, tch::Device::Cpu))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InferenceError::Model(format!("model {root}: {e}")))?;
        Ok(LoadedModel::with_copies(root, copies))
    }

    /// Whether `root` is the project's genesis model.
    pub fn is_genesis(&self, root: B256) -> bool {
        root == self.genesis_root
    }
}

/// The model being served, swapped atomically when a new one is accepted: requests in flight
/// finish on the model they started with.
#[derive(Clone, Debug)]
pub struct Current(Arc<std::sync::RwLock<Arc<LoadedModel>>>);

impl Current {
    /// Starts serving `model`.
    pub fn new(model: LoadedModel) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(model))))
    }

    /// The model now served.
    pub fn get(&self) -> Arc<LoadedModel> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `model` from now on.
    pub fn replace(&self, model: LoadedModel) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_generations_take_separate_copies_and_agree() {
        let cfg = autonet_ml::ModelConfig::tiny();
        let weights = autonet_ml::init_weights(&cfg, 2).unwrap();
        let copy = || Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let m = LoadedModel::with_copies(B256::repeat_byte(1), vec![copy(), copy()]);
        assert_eq!(m.copies(), 2);
        let greedy = GenerateParams::greedy(16);
        let alone = m.generate(b"fn", &greedy).unwrap();
        {
            // One copy busy: the other is taken at once (a single copy would wait here forever).
            let _busy = m.lm();
            let b = m.lm();
            drop(b);
            assert_eq!(m.generate(b"fn", &greedy).unwrap(), alone);
        }
        assert_eq!(alone.tokens, 16);
    }

    #[test]
    fn streamed_text_joins_to_the_lossy_text_of_the_whole() {
        let samples: [&[u8]; 4] = [
            "héllo wörld €".as_bytes(),
            b"\xff\xfeab\xe2\x82",
            b"a\xe2\x82\xacb\xc3",
            b"\xf0\x9f\x98\x80\x80x",
        ];
        for bytes in samples {
            let mut pending = Vec::new();
            let mut joined = String::new();
            for &b in bytes {
                pending.push(b);
                joined.push_str(&take_text(&mut pending));
            }
            joined.push_str(&flush_text(&mut pending));
            assert_eq!(joined, String::from_utf8_lossy(bytes), "{bytes:?}");
        }
        // A character is held back until it is complete.
        let mut pending = vec![0xe2, 0x82];
        assert_eq!(take_text(&mut pending), "");
        pending.push(0xac);
        assert_eq!(take_text(&mut pending), "€");
    }
}
