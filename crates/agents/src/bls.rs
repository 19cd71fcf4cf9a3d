//! BLS aggregate attestations (`docs/bls.md`).
//!
//! A coordinator's key is created once in the agent's state directory and registered in
//! `BlsSignerRegistry` with a proof of possession. When the coordinator has recomputed a
//! published model and found it right, it signs the model's attestation message and serves the
//! signature at `GET /bls/attestations/{root}`. The aggregator finds the coordinators' nodes,
//! fetches and checks their signatures, and once the signers hold 2/3 of the coordinator stake
//! it submits one `attestModelBls`. A coordinator that sees no aggregate within its grace
//! period attests alone, so a missing aggregator never stalls the network.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use autonet_bindings::BlsSignerRegistry;
use autonet_bindings::staking::ParticipantStaking;
use autonet_bls::{
    ModelAttestation, PublicKey, SecretKey, Signature, aggregate_keys, aggregate_signatures,
    g1_from_words, g1_words, g2_from_words, g2_words,
};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::agent::{Agent, AgentError, Role};
use crate::db::ModelRow;

/// The key file in the agent's state directory (hex, owner-readable only).
pub const KEY_FILE: &str = "bls.key";

/// The G2 half of a key as the contract takes it: `[x.c1, x.c0, y.c1, y.c0]`.
pub fn g2_flat(pk: &PublicKey) -> [U256; 4] {
    let [x, y] = g2_words(&pk.g2);
    [x[0], x[1], y[0], y[1]]
}

/// Loads the key from `dir/bls.key`, or creates it (32 random bytes, written to a temporary
/// file with mode 0600 and renamed, so a crash never leaves half a key).
pub fn load_or_create(dir: &Path) -> Result<SecretKey, AgentError> {
    let path = dir.join(KEY_FILE);
    let bad = |e: String| AgentError::Other(format!("{}: {e}", path.display()));
    match fs::read_to_string(&path) {
        Ok(text) => SecretKey::from_hex(&text).map_err(|e| {
            bad(format!(
                "{e}; restore the key from a backup, or delete the file to make a new one and \
                 register it again"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = loop {
                if let Ok(k) = SecretKey::from_bytes(&rand::random::<[u8; 32]>()) {
                    break k;
                }
            };
            write_private(&path, &format!("{}\n", B256::from(key.to_bytes()))).map_err(bad)?;
            info!(path = %path.display(), "created a BLS key");
            Ok(key)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// A coordinator's signature over one model it recomputed and found right.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAttestation {
    /// The model.
    pub root: B256,
    /// The coordinator.
    pub signer: Address,
    /// Its signer index in `BlsSignerRegistry`.
    pub index: u64,
    /// The attestation message signed (`blsAttestationMessage(root)` of the publication checked).
    pub message: B256,
    /// The signature, G1 words `[x, y]`.
    pub sigma: [U256; 2],
    /// The signer's key on G2 in the contract's order (`[x.c1, x.c0, y.c1, y.c0]`).
    pub pk_g2: [U256; 4],
}

/// The path a coordinator serves its signature on.
pub fn attestation_path(root: B256) -> String {
    format!("/bls/attestations/{root}")
}

/// Signatures made by this coordinator, by model root (shared with its HTTP server).
#[derive(Clone, Debug, Default)]
pub struct Attestations(Arc<RwLock<HashMap<B256, SignedAttestation>>>);

impl Attestations {
    /// The signature on `root`, if this coordinator made one.
    pub fn get(&self, root: B256) -> Option<SignedAttestation> {
        self.0.read().ok()?.get(&root).cloned()
    }

    fn insert(&self, a: SignedAttestation) {
        if let Ok(mut m) = self.0.write() {
            m.insert(a.root, a);
        }
    }
}

/// `GET /bls/attestations/{root}`: the signature as JSON, or 404 while the model is unchecked.
pub fn routes(attestations: Attestations) -> Router {
    async fn one(
        State(a): State<Attestations>,
        UrlPath(root): UrlPath<String>,
    ) -> axum::response::Response {
        let Ok(root) = root.parse::<B256>() else {
            return (
                StatusCode::BAD_REQUEST,
                "the model root must be 32 bytes of hex (0x…)",
            )
                .into_response();
        };
        match a.get(root) {
            Some(s) => (
                [(CONTENT_TYPE, "application/json")],
                serde_json::to_string(&s).unwrap_or_default(),
            )
                .into_response(),
            None => (
                StatusCode::NOT_FOUND,
                "this coordinator has not verified that model (yet)",
            )
                .into_response(),
        }
    }
    Router::new()
        .route("/bls/attestations/{root}", get(one))
        .with_state(attestations)
}

/// A coordinator's signing side: its key, signer index and the signatures it serves.
#[derive(Clone, Debug)]
pub struct Signer {
    key: SecretKey,
    pk: PublicKey,
    index: u64,
    attestations: Attestations,
}

impl Signer {
    /// A signer for `key` registered at `index`, publishing into `attestations`.
    pub fn new(key: SecretKey, index: u64, attestations: Attestations) -> Self {
        Self {
            pk: key.public_key(),
            key,
            index,
            attestations,
        }
    }

    /// Whether this coordinator already signed `message` for `root` (a root published again after
    /// its record expired has another message, which is signed anew).
    pub fn has_signed(&self, root: B256, message: B256) -> bool {
        self.attestations
            .get(root)
            .is_some_and(|a| a.message == message)
    }

    /// Signs `message` for `root` and serves the signature.
    pub fn sign(&self, me: Address, root: B256, message: B256) -> SignedAttestation {
        let a = SignedAttestation {
            root,
            signer: me,
            index: self.index,
            message,
            sigma: g1_words(&self.key.sign(message).0),
            pk_g2: g2_flat(&self.pk),
        };
        self.attestations.insert(a.clone());
        a
    }
}

/// The attestation message a coordinator signs for the publication `model` (as its
/// `ModelPublished` event recorded it: root, parent, manifest hash, publisher, block, tasks),
/// computed locally from what it verified itself.
pub async fn attestation_message(agent: &Agent, model: &ModelRow) -> Result<B256, AgentError> {
    let chain_id = agent.provider.get_chain_id().await?;
    let ids: Vec<U256> = model.task_ids.iter().map(|&t| U256::from(t)).collect();
    Ok(autonet_bls::attestation_message(&ModelAttestation {
        chain_id,
        registry: agent.contracts.shard_registry,
        project_id: U256::from(model.project_id),
        parent_root: model.parent_root,
        root: model.root,
        manifest_hash: model.manifest_hash,
        publisher: model.publisher,
        published_block: model.block,
        task_ids: &ids,
    }))
}

/// One verified signature held by the aggregator.
#[derive(Clone, Debug)]
struct Collected {
    key: PublicKey,
    sig: Signature,
    stake: U256,
}

/// The aggregator's signatures collected so far, by attestation message (one per publication of
/// a root) and signer index.
#[derive(Debug, Default)]
pub struct Collector {
    by_message: Mutex<HashMap<B256, BTreeMap<u64, Collected>>>,
    endpoints: Mutex<HashMap<Address, String>>,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Collector {
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
    }

    fn snapshot(&self, message: B256) -> BTreeMap<u64, Collected> {
        self.by_message
            .lock()
            .map(|m| m.get(&message).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn put(&self, message: B256, index: u64, c: Collected) {
        if let Ok(mut m) = self.by_message.lock() {
            m.entry(message).or_default().insert(index, c);
        }
    }

    /// Forgets the signatures on `message` (its model accepted, superseded or expired, or an
    /// aggregate the chain refused).
    pub fn forget(&self, message: B256) {
        if let Ok(mut m) = self.by_message.lock() {
            m.remove(&message);
        }
    }
}

/// What one collection round found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Not enough stake signed yet: `(signers, signed stake, total coordinator stake)`.
    Short(usize, U256, U256),
    /// Enough: the aggregate to submit.
    Ready {
        /// Bit `i` set: signer index `i` signed.
        bitmap: U256,
        /// Number of signers.
        signers: usize,
        /// Aggregate key on G2 (contract order).
        apk_g2: [U256; 4],
        /// Aggregate signature.
        sigma: [U256; 2],
    },
}

/// Fetches the signatures on `message` (the current publication of `root`) still missing from
/// the coordinators' nodes, keeps the valid ones, and says whether they reach 2/3 of the
/// coordinator stake.
pub async fn collect(agent: &Agent, root: B256, message: B256) -> Result<Collection, AgentError> {
    let signers = agent.bls_signers();
    let staking = ParticipantStaking::new(agent.contracts.staking, agent.provider.clone());
    let count = signers
        .blsSignerCount()
        .call()
        .await
        .map_err(AgentError::read("the BLS signer count"))?
        .to::<u64>();
    let have = agent.bls_collector.snapshot(message);
    for index in (0..count).filter(|i| !have.contains_key(i)) {
        let signer = signers
            .blsSignerAt(U256::from(index))
            .call()
            .await
            .map_err(AgentError::read("a BLS signer"))?;
        let active = staking
            .isActive(signer, Role::Coordinator.on_chain().into_underlying())
            .call()
            .await
            .map_err(AgentError::read("a signer's role"))?;
        if !active {
            continue;
        }
        let Some(prefix) = signature_endpoint(agent, signer).await? else {
            debug!(%signer, index, "this coordinator announces no BLS endpoint");
            continue;
        };
        match fetch(agent, &prefix, root).await {
            Ok(a) => {
                if a.root != root || a.signer != signer || a.index != index || a.message != message
                {
                    warn!(%signer, index, "a coordinator served an attestation for something else: ignored");
                    continue;
                }
                let registered = signers
                    .blsKeyOf(signer)
                    .call()
                    .await
                    .map_err(AgentError::read("a signer's BLS key"))?;
                let key = match (
                    g1_from_words(registered.pkG1, "registered key"),
                    g2_from_words(
                        [[a.pk_g2[0], a.pk_g2[1]], [a.pk_g2[2], a.pk_g2[3]]],
                        "pk_g2",
                    ),
                    g1_from_words(a.sigma, "sigma"),
                ) {
                    (Ok(g1), Ok(g2), Ok(s)) => (PublicKey { g1, g2 }, Signature(s)),
                    _ => {
                        warn!(%signer, index, "a coordinator served malformed curve points: ignored");
                        continue;
                    }
                };
                // The contract's own check: the signature is valid and the served G2 key is the
                // registered G1 key's twin, so one bad signer cannot spoil the aggregate.
                if !autonet_bls::verify(message, &key.0, &key.1) {
                    warn!(%signer, index, "a coordinator served an invalid signature: ignored");
                    continue;
                }
                let stake = staking
                    .stakeOf(signer)
                    .call()
                    .await
                    .map_err(AgentError::read("a signer's stake"))?;
                debug!(%signer, index, "collected a BLS signature");
                agent.bls_collector.put(
                    message,
                    index,
                    Collected {
                        key: key.0,
                        sig: key.1,
                        stake,
                    },
                );
            }
            Err(why) => {
                // Look the endpoint up again next time: the node may have moved.
                if let Ok(mut m) = agent.bls_collector.endpoints.lock() {
                    m.remove(&signer);
                }
                debug!(%signer, index, why, "no BLS signature yet");
            }
        }
    }
    let got = agent.bls_collector.snapshot(message);
    let signed: U256 = got.values().map(|c| c.stake).sum();
    let total = staking
        .totalStake(Role::Coordinator.on_chain().into_underlying())
        .call()
        .await
        .map_err(AgentError::read("the total coordinator stake"))?;
    if got.is_empty() || signed * U256::from(3) < total * U256::from(2) {
        return Ok(Collection::Short(got.len(), signed, total));
    }
    let bitmap = got
        .keys()
        .fold(U256::ZERO, |b, &i| b | (U256::from(1) << (i as usize)));
    let apk = aggregate_keys(got.values().map(|c| &c.key));
    let sigma = aggregate_signatures(got.values().map(|c| &c.sig));
    Ok(Collection::Ready {
        bitmap,
        signers: got.len(),
        apk_g2: g2_flat(&apk),
        sigma: g1_words(&sigma.0),
    })
}

/// Where `signer` serves its signatures: its ERC-8004 registration's `bls-attestation` endpoint,
/// else the shard server it registered in `ShardProviders`.
async fn signature_endpoint(agent: &Agent, signer: Address) -> Result<Option<String>, AgentError> {
    if let Some(e) = agent
        .bls_collector
        .endpoints
        .lock()
        .ok()
        .and_then(|m| m.get(&signer).cloned())
    {
        return Ok(Some(e));
    }
    let found = match crate::identity::find_endpoint(
        &agent.provider,
        agent.contracts.identity,
        signer,
        agent.opts.from_block,
        crate::identity::endpoints::BLS_ATTESTATION,
    )
    .await
    {
        Ok(Some(e)) => Some(e),
        Ok(None) => None,
        Err(e) => {
            warn!(%signer, error = %e, "reading a coordinator's identity");
            None
        }
    };
    let found = match found {
        Some(e) => Some(e),
        None => {
            let base = agent
                .providers()
                .endpointOf(signer)
                .call()
                .await
                .map_err(AgentError::read("a coordinator's endpoint"))?;
            (!base.is_empty()).then(|| format!("{}/bls/attestations/", base.trim_end_matches('/')))
        }
    };
    if let (Some(e), Ok(mut m)) = (&found, agent.bls_collector.endpoints.lock()) {
        m.insert(signer, e.clone());
    }
    Ok(found)
}

async fn fetch(agent: &Agent, prefix: &str, root: B256) -> Result<SignedAttestation, String> {
    let url = format!("{prefix}{root}");
    let r = agent
        .bls_collector
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// Makes sure the running aggregate counts this coordinator with its current stake (after a
/// governance change of the minimum stake the registry only learns it through `syncBlsSigner`).
async fn ensure_counted(agent: &Agent, index: u64) -> Result<(), AgentError> {
    let signers = agent.bls_signers();
    let recorded = signers
        .blsSignerStake(U256::from(index))
        .call()
        .await
        .map_err(AgentError::read("the recorded BLS signer stake"))?;
    let stake = ParticipantStaking::new(agent.contracts.staking, agent.provider.clone())
        .stakeOf(agent.me)
        .call()
        .await
        .map_err(AgentError::read("the stake"))?;
    if recorded != stake {
        agent
            .send::<BlsSignerRegistry::BlsSignerUpdated, _, _>(
                "sync this coordinator into the BLS aggregate",
                &signers.syncBlsSigner(agent.me),
            )
            .await?;
        info!(index, %stake, "BLS aggregate now counts this coordinator's stake");
    }
    Ok(())
}

/// Registers `key` for this coordinator unless the registry already holds it; returns the
/// signer index.
pub async fn ensure_registered(agent: &Agent, key: &SecretKey) -> Result<u64, AgentError> {
    let pk = key.public_key();
    let signers = agent.bls_signers();
    let current = signers
        .blsKeyOf(agent.me)
        .call()
        .await
        .map_err(AgentError::read("the registered BLS key"))?;
    if current.registered && current.pkG1 == g1_words(&pk.g1) {
        let index = current.index.to::<u64>();
        info!(index, "BLS key already registered");
        ensure_counted(agent, index).await?;
        return Ok(index);
    }
    let chain_id = agent.provider.get_chain_id().await?;
    let pop = key.proof_of_possession(chain_id, agent.contracts.bls_signers, agent.me);
    let done = agent
        .send::<BlsSignerRegistry::BlsKeyRegistered, _, _>(
            "register the BLS key",
            &signers.registerBlsKey(g1_words(&pk.g1), g2_flat(&pk), g1_words(&pop.0)),
        )
        .await?;
    let index = done.event.index.to::<u64>();
    info!(index, "BLS key registered with its proof of possession");
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), a);
    }

    #[test]
    fn a_damaged_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bls.key") && err.contains("32 bytes of hex"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            "not a key"
        );
    }
}
