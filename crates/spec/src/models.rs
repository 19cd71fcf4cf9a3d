//! A project's models by Merkle root: read from the local store, rebuilt by the genesis rule, or
//! fetched from the shard servers that announced their shards in `ShardProviders`, with the
//! manifest hash published in `ModelShardRegistry` and every shard checked against the root.
//!
//! The role agents and the inference node load models only through [`ModelSources`]; what they
//! do with the weights (cache them, evaluate, serve) is theirs.

use alloy::primitives::B256;
use alloy::providers::Provider;
use autonet_bindings::{ModelShardRegistry, ShardProviders};
use autonet_ml::{ModelState, TensorSet, from_safetensors};
use autonet_storage::{ShardClient, Store};
use tracing::warn;

use crate::{SpecError, TrainingSpec};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A chain read.
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Why it failed (boxed: it is large).
        source: Box<alloy::contract::Error>,
    },
    /// No shard server announced a shard of the model.
    #[error("no provider announced the shards of model {0}")]
    NoPeers(B256),
    /// The local store or the fetch from peers.
    #[error("{0}")]
    Storage(String),
    /// The genesis rule of the spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The bytes are not a model's tensors.
    #[error("{0}")]
    Decode(String),
}

impl ModelError {
    fn read(what: impl Into<String>) -> impl FnOnce(alloy::contract::Error) -> Self {
        let what = what.into();
        move |source| ModelError::Read {
            what,
            source: Box::new(source),
        }
    }
}

/// Where the models of one project come from: the node's local store, the genesis rule of the
/// project's spec, and the shard network as the chain describes it.
pub struct ModelSources<'a, P> {
    /// The project's spec (its genesis rule and shard parameters).
    pub spec: &'a TrainingSpec,
    /// Root of the project's genesis model.
    pub genesis_root: B256,
    /// The local content-addressed store; fetched models are kept in it.
    pub store: &'a Store,
    /// Fetches shards from peers.
    pub client: &'a ShardClient,
    /// `ModelShardRegistry` (published models and their manifest hashes).
    pub shards: ModelShardRegistry::ModelShardRegistryInstance<P>,
    /// `ShardProviders` (who announced which shard, and their endpoints).
    pub providers: ShardProviders::ShardProvidersInstance<P>,
}

impl<P: Provider + Clone> ModelSources<'_, P> {
    /// The safetensors bytes of model `root`: from the local store; else, for the genesis root,
    /// rebuilt by the spec's genesis rule and stored; else fetched from the shard servers that
    /// announced it ([`model_peers`]) against `manifest_hash` (read from `ModelShardRegistry`
    /// when the caller does not know it), every shard checked against the root and stored.
    pub async fn bytes(
        &self,
        root: B256,
        manifest_hash: Option<B256>,
    ) -> Result<Vec<u8>, ModelError> {
        if self.store.has(&root.0) {
            return self
                .store
                .get(&root.0)
                .map_err(|e| ModelError::Storage(e.to_string()));
        }
        if root == self.genesis_root {
            let weights = self.spec.genesis()?;
            self.spec.store_weights(self.store, &weights)?;
            return self
                .store
                .get(&root.0)
                .map_err(|e| ModelError::Storage(e.to_string()));
        }
        let manifest_hash = match manifest_hash {
            Some(h) => h,
            None => {
                self.shards
                    .getModel(root)
                    .call()
                    .await
                    .map_err(ModelError::read(format!("model {root}")))?
                    .manifest
                    .manifestHash
            }
        };
        let peers = model_peers(&self.providers, root).await?;
        if peers.is_empty() {
            return Err(ModelError::NoPeers(root));
        }
        let fetched = self
            .client
            .fetch(root.0, manifest_hash.0, &peers, self.store)
            .await
            .map_err(|e| ModelError::Storage(format!("fetching model {root}: {e}")))?;
        for f in &fetched.failures {
            warn!(model = %root, failure = %f, "a peer failed while fetching the model");
        }
        Ok(fetched.bytes)
    }

    /// The weights of model `root` (without any momentum buffer it carries), loaded as
    /// [`Self::bytes`] does.
    pub async fn weights(
        &self,
        root: B256,
        manifest_hash: Option<B256>,
    ) -> Result<TensorSet, ModelError> {
        Ok(self.state(root, manifest_hash).await?.weights)
    }

    /// Model `root` with its outer momentum buffer, if it carries one ([`ModelState`]).
    pub async fn state(
        &self,
        root: B256,
        manifest_hash: Option<B256>,
    ) -> Result<ModelState, ModelError> {
        let bytes = self.bytes(root, manifest_hash).await?;
        decode_state(&bytes)
    }
}

/// Decodes a published model's bytes into weights and momentum buffer.
pub fn decode_state(bytes: &[u8]) -> Result<ModelState, ModelError> {
    let set = from_safetensors(bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
    ModelState::from_set(set).map_err(|e| ModelError::Decode(e.to_string()))
}

/// The shard servers (base URLs) that announced shards of model `root` (published in
/// `ModelShardRegistry`) in `ShardProviders`.
pub async fn model_peers<P: Provider + Clone>(
    providers: &ShardProviders::ShardProvidersInstance<P>,
    root: B256,
) -> Result<Vec<String>, ModelError> {
    let holders_seen = providers
        .holdersOf(root)
        .call()
        .await
        .map_err(ModelError::read(format!("shard holders of {root}")))?;
    let mut peers = Vec::new();
    for p in holders_seen {
        let endpoint = providers
            .endpointOf(p)
            .call()
            .await
            .map_err(ModelError::read(format!("endpoint of {p}")))?;
        if !endpoint.is_empty() && !peers.contains(&endpoint) {
            peers.push(endpoint);
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;
    use alloy::providers::{DynProvider, ProviderBuilder};

    use super::*;

    /// Sources whose chain is unreachable: whatever needs the chain fails, so a model that loads
    /// came from the store or the genesis rule.
    fn offline<'a>(
        spec: &'a TrainingSpec,
        genesis_root: B256,
        store: &'a Store,
        client: &'a ShardClient,
    ) -> ModelSources<'a, DynProvider> {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http("http://127.0.0.1:9".parse().unwrap())
            .erased();
        ModelSources {
            spec,
            genesis_root,
            store,
            client,
            shards: ModelShardRegistry::new(Address::repeat_byte(1), provider.clone()),
            providers: ShardProviders::new(Address::repeat_byte(2), provider),
        }
    }

    #[tokio::test]
    async fn the_genesis_model_is_rebuilt_and_stored_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        let genesis = spec.genesis().unwrap();
        // Its root, from a scratch store: the model's own store starts empty.
        let root = {
            let scratch = Store::open(dir.path().join("scratch")).unwrap();
            B256::from(spec.store_weights(&scratch, &genesis).unwrap().root)
        };
        let store = Store::open(dir.path().join("store")).unwrap();
        let client = ShardClient::new(autonet_storage::FetchConfig::default()).unwrap();
        let sources = offline(&spec, root, &store, &client);
        assert!(!store.has(&root.0));
        let weights = sources.weights(root, None).await.unwrap();
        assert!(store.has(&root.0), "the genesis model is kept in the store");
        assert_eq!(
            autonet_ml::to_safetensors(&weights).unwrap(),
            autonet_ml::to_safetensors(&genesis).unwrap()
        );
        // From the store now, byte for byte the same.
        let again = sources.bytes(root, None).await.unwrap();
        assert_eq!(again, autonet_ml::to_safetensors(&genesis).unwrap());
    }

    #[tokio::test]
    async fn another_model_needs_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TrainingSpec::for_preset("tiny").unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let client = ShardClient::new(autonet_storage::FetchConfig::default()).unwrap();
        let sources = offline(&spec, B256::repeat_byte(0xee), &store, &client);
        let root = B256::repeat_byte(0xaa);
        let err = sources.bytes(root, None).await.unwrap_err();
        assert!(
            matches!(&err, ModelError::Read { what, .. } if *what == format!("model {root}")),
            "{err}"
        );
        // A known manifest hash skips that read; finding the peers still reads the chain.
        let err = sources
            .bytes(root, Some(B256::repeat_byte(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, ModelError::Read { .. }), "{err}");
    }
}
