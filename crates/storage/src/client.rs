//! The fetch client: given a root and a manifest hash trusted from chain and a list of peers,
//! download the manifest and enough shards, verify everything, rebuild, and store locally. This
//! module owns peer selection, retries across peers and the trust checks on received bytes; it
//! never trusts a peer's word for anything that can be checked (see [`crate::server`] for the
//! wire format).
//!
//! # Checks
//!
//! - Manifest: `keccak256(body) == manifest_hash` (so the body is the publisher's canonical
//!   JSON), it validates (its root is the Merkle root of its shard hashes) and `root` equals the
//!   on-chain root.
//! - Shard `i`: status 200, exactly `shard_size` bytes (reading stops past that), `keccak256` equals
//!   the manifest's hash `i`, the `x-shard-hash` header equals it, and the `x-shard-proof` header
//!   verifies against the root with `index < k + m` (what the contract checks).
//!
//! # Scheduling
//!
//! Shard indices are fetched in order (data shards first, so a healthy swarm needs no decoding),
//! at most [`FetchConfig::concurrency`] at a time; each index tries the peers in a rotation
//! starting at `index % peers`, so load spreads over peers. A peer that refuses connections or
//! sends a shard that fails verification is not asked again during this fetch; a 404 only means
//! the peer does not hold that index. Once `k` valid shards are in, outstanding requests are
//! dropped. Every failure is logged with its peer and index and reported in [`Fetched::failures`]
//! or in the error.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use autonet_protocol::merkle::{self, Hash32};
use futures::StreamExt;
use thiserror::Error;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::manifest::{Manifest, parse_hash32};
use crate::proof;
use crate::server::{HEADER_SHARD_HASH, HEADER_SHARD_PROOF};
use crate::shard::{self, ShardError};
use crate::store::{Store, StoreError};

/// Largest manifest accepted (256 shard hashes take about 17 KiB).
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// Fetch tuning.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Most shard requests in flight at once (at least 1).
    pub concurrency: usize,
    /// TCP connect timeout per request.
    pub connect_timeout: Duration,
    /// Whole-request timeout (including the body).
    pub request_timeout: Duration,
    /// Whether to honour `HTTP_PROXY`-style environment variables; off by default since peers
    /// are addressed directly.
    pub use_env_proxy: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
            use_env_proxy: false,
        }
    }
}

/// Why one request to one peer did not yield a usable manifest or shard.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FailureReason {
    /// The peer could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The request failed after connecting (timeout, reset, bad HTTP).
    #[error("request failed: {0}")]
    Request(String),
    /// A non-200 status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// More bytes than expected.
    #[error("body longer than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A shard body of the wrong length.
    #[error("shard has {found} bytes, expected {expected}")]
    WrongSize {
        /// `shard_size`.
        expected: usize,
        /// Bytes received.
        found: usize,
    },
    /// The shard does not hash to the manifest's hash for its index.
    #[error("shard hash mismatch")]
    ShardHashMismatch,
    /// A required header is missing or malformed.
    #[error("missing or malformed header {0}")]
    BadHeader(&'static str),
    /// The `x-shard-hash` header differs from the body's hash.
    #[error("x-shard-hash header differs from the body's hash")]
    HeaderHashMismatch,
    /// The proof does not verify against the root.
    #[error("Merkle proof does not verify against the root")]
    BadProof,
    /// The manifest body does not hash to the on-chain manifest hash.
    #[error("manifest hash mismatch: got {0}")]
    ManifestHashMismatch(String),
    /// The manifest hashes right but is invalid (a bad publication).
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// The manifest is for another root than the on-chain one.
    #[error("manifest root {0} differs from the on-chain root")]
    ManifestRootMismatch(String),
}

impl FailureReason {
    /// Whether the peer should not be asked again during this fetch.
    /// A peer that is down or sends bytes that fail verification is skipped for the rest of the
    /// fetch; an error status (404 = not held, 500 = its copy is bad) or a timeout only costs
    /// that one index.
    fn disqualifies(&self) -> bool {
        !matches!(self, Self::Status(_) | Self::Request(_))
    }
}

/// One failed request: which peer, which shard (`None` = the manifest), why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerFailure {
    /// The peer's base URL.
    pub peer: String,
    /// The shard index, or `None` for the manifest.
    pub index: Option<usize>,
    /// Why.
    pub reason: FailureReason,
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{} shard {i}: {}", self.peer, self.reason),
            None => write!(f, "{} manifest: {}", self.peer, self.reason),
        }
    }
}

/// A list of failures, displayed `; `-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failures(pub Vec<PeerFailure>);

impl Failures {
    /// The distinct peers that failed at least once, in first-failure order.
    pub fn peers(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.0
            .iter()
            .filter(|f| seen.insert(f.peer.as_str()))
            .map(|f| f.peer.as_str())
            .collect()
    }
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// Errors of a fetch.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No peer URLs were given.
    #[error("no peers given")]
    NoPeers,
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// No peer served a manifest that passes the checks.
    #[error("no valid manifest for {root} from any peer; failures: {failures}")]
    ManifestUnavailable {
        /// The root (hex).
        root: String,
        /// Every failed attempt.
        failures: Failures,
    },
    /// Fewer than `k` valid shards could be fetched.
    #[error(
        "only {have} of the {need} shards needed for {root} could be fetched; failing peers: \
         [{peers}]; failures: {failures}",
        peers = failures.peers().join(", ")
    )]
    NotEnoughShards {
        /// The root (hex).
        root: String,
        /// `k`.
        need: usize,
        /// Valid shards obtained.
        have: usize,
        /// Every failed attempt.
        failures: Failures,
    },
    /// Rebuilding failed (the published encoding is inconsistent or the content hash differs).
    #[error("rebuilding {root}: {source}")]
    Rebuild {
        /// The root (hex).
        root: String,
        /// Why.
        source: ShardError,
    },
    /// Storing the result failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking store task panicked or was cancelled.
    #[error("store task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A fetched, verified and stored blob.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Its manifest.
    pub manifest: Manifest,
    /// The original bytes (content hash checked).
    pub bytes: Vec<u8>,
    /// Failed requests on the way (skipped peers or shards); empty when served locally.
    pub failures: Vec<PeerFailure>,
}

/// Fetches blobs from peers into a local [`Store`].
#[derive(Clone, Debug)]
pub struct ShardClient {
    http: reqwest::Client,
    config: FetchConfig,
}

impl ShardClient {
    /// Builds a client.
    pub fn new(config: FetchConfig) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout);
        if !config.use_env_proxy {
            builder = builder.no_proxy();
        }
        Ok(Self {
            http: builder.build().map_err(ClientError::Build)?,
            config,
        })
    }

    /// Fetches the blob committed by `root` / `manifest_hash` (both from chain) from `peers`
    /// (base URLs like `http://host:port`), verifies it and stores all `k + m` shards in `store`.
    /// Returns at once if `store` already holds a readable copy with that manifest hash.
    pub async fn fetch(
        &self,
        root: Hash32,
        manifest_hash: Hash32,
        peers: &[String],
        store: &Store,
    ) -> Result<Fetched, ClientError> {
        let span = info_span!("fetch", root = %merkle::to_hex(&root));
        self.fetch_inner(root, manifest_hash, peers, store)
            .instrument(span)
            .await
    }

    async fn fetch_inner(
        &self,
        root: Hash32,
        manifest_hash: Hash32,
        peers: &[String],
        store: &Store,
    ) -> Result<Fetched, ClientError> {
        let local = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let manifest = store.manifest(&root).ok()?;
                let bytes = store.get(&root).ok()?;
                (manifest.manifest_hash() == manifest_hash).then_some(Fetched {
                    manifest,
                    bytes,
                    failures: Vec::new(),
                })
            })
            .await?
        };
        if let Some(fetched) = local {
            debug!("served from the local store");
            return Ok(fetched);
        }

        let mut failures = Vec::new();
        let manifest = self
            .fetch_manifest_inner(root, manifest_hash, peers, &mut failures)
            .await?;
        let (slots, have) = self.fetch_shards(&manifest, peers, &mut failures).await;
        let need = usize::from(manifest.k);
        if have < need {
            return Err(ClientError::NotEnoughShards {
                root: merkle::to_hex(&root),
                need,
                have,
                failures: Failures(failures),
            });
        }
        let encoded =
            shard::reconstruct_all(&manifest, slots).map_err(|source| ClientError::Rebuild {
                root: merkle::to_hex(&root),
                source,
            })?;
        let bytes = encoded.content();
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.insert(&encoded)).await??;
        info!(
            size = bytes.len(),
            failures = failures.len(),
            "fetched, verified and stored"
        );
        Ok(Fetched {
            manifest,
            bytes,
            failures,
        })
    }

    /// Fetches and verifies only the manifest (first peer that serves a valid one).
    pub async fn fetch_manifest(
        &self,
        root: Hash32,
        manifest_hash: Hash32,
        peers: &[String],
    ) -> Result<Manifest, ClientError> {
        let mut failures = Vec::new();
        self.fetch_manifest_inner(root, manifest_hash, peers, &mut failures)
            .await
    }

    async fn fetch_manifest_inner(
        &self,
        root: Hash32,
        manifest_hash: Hash32,
        peers: &[String],
        failures: &mut Vec<PeerFailure>,
    ) -> Result<Manifest, ClientError> {
        if peers.is_empty() {
            return Err(ClientError::NoPeers);
        }
        for peer in peers {
            match self.manifest_from(peer, &root, manifest_hash).await {
                Ok(manifest) => return Ok(manifest),
                Err(reason) => {
                    warn!(peer = %peer, error = %reason, "manifest rejected");
                    failures.push(PeerFailure {
                        peer: peer.clone(),
                        index: None,
                        reason,
                    });
                }
            }
        }
        Err(ClientError::ManifestUnavailable {
            root: merkle::to_hex(&root),
            failures: Failures(failures.clone()),
        })
    }

    async fn manifest_from(
        &self,
        peer: &str,
        root: &Hash32,
        manifest_hash: Hash32,
    ) -> Result<Manifest, FailureReason> {
        let url = format!("{}/shards/{}/manifest", base(peer), merkle::to_hex(root));
        let response = self.get(&url).await?;
        let body = read_limited(response, MAX_MANIFEST_BYTES).await?;
        let found = merkle::keccak256(&body);
        if found != manifest_hash {
            return Err(FailureReason::ManifestHashMismatch(merkle::to_hex(&found)));
        }
        let manifest = Manifest::from_json(&body)
            .map_err(|e| FailureReason::InvalidManifest(e.to_string()))?;
        if &manifest.root != root {
            return Err(FailureReason::ManifestRootMismatch(merkle::to_hex(
                &manifest.root,
            )));
        }
        Ok(manifest)
    }

    /// Fetches shards until `k` are valid or every index has been tried on every usable peer.
    /// Returns the slots and the number of valid shards in them.
    async fn fetch_shards(
        &self,
        manifest: &Manifest,
        peers: &[String],
        failures: &mut Vec<PeerFailure>,
    ) -> (Vec<Option<Vec<u8>>>, usize) {
        let n = manifest.shard_count();
        let need = usize::from(manifest.k);
        let banned: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
        let banned = &banned;
        let mut stream = futures::stream::iter(0..n)
            .map(|index| async move {
                let mut tried = Vec::new();
                for offset in 0..peers.len() {
                    let p = (index + offset) % peers.len();
                    if banned.lock().expect("ban list lock").contains(&p) {
                        continue;
                    }
                    match self.shard_from(&peers[p], manifest, index).await {
                        Ok(bytes) => return (index, Some(bytes), tried),
                        Err(reason) => {
                            warn!(peer = %peers[p], index, error = %reason, "shard rejected");
                            if reason.disqualifies() {
                                banned.lock().expect("ban list lock").insert(p);
                            }
                            tried.push(PeerFailure {
                                peer: peers[p].clone(),
                                index: Some(index),
                                reason,
                            });
                        }
                    }
                }
                (index, None, tried)
            })
            .buffer_unordered(self.config.concurrency.max(1));

        let mut slots: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut have = 0;
        while let Some((index, shard, tried)) = stream.next().await {
            failures.extend(tried);
            if let Some(bytes) = shard {
                debug!(index, "shard verified");
                slots[index] = Some(bytes);
                have += 1;
                if have == need {
                    break;
                }
            }
        }
        (slots, have)
    }

    async fn shard_from(
        &self,
        peer: &str,
        manifest: &Manifest,
        index: usize,
    ) -> Result<Vec<u8>, FailureReason> {
        let url = format!(
            "{}/shards/{}/{index}",
            base(peer),
            merkle::to_hex(&manifest.root)
        );
        let response = self.get(&url).await?;
        let header = |name: &'static str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or(FailureReason::BadHeader(name))
        };
        let claimed_hash = parse_hash32(&header(HEADER_SHARD_HASH)?)
            .ok_or(FailureReason::BadHeader(HEADER_SHARD_HASH))?;
        let proof = proof::from_header(&header(HEADER_SHARD_PROOF)?)
            .map_err(|_| FailureReason::BadHeader(HEADER_SHARD_PROOF))?;
        let expected = manifest.shard_size as usize;
        let body = read_limited(response, expected).await?;
        if body.len() != expected {
            return Err(FailureReason::WrongSize {
                expected,
                found: body.len(),
            });
        }
        let hash = merkle::keccak256(&body);
        if hash != claimed_hash {
            return Err(FailureReason::HeaderHashMismatch);
        }
        if hash != manifest.shard_hashes[index] {
            return Err(FailureReason::ShardHashMismatch);
        }
        if !proof::verify(
            &manifest.root,
            index as u64,
            manifest.shard_count(),
            &hash,
            &proof,
        ) {
            return Err(FailureReason::BadProof);
        }
        Ok(body)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, FailureReason> {
        let response = self.http.get(url).send().await.map_err(|e| {
            if e.is_connect() {
                FailureReason::Unreachable(error_chain(&e))
            } else {
                FailureReason::Request(error_chain(&e))
            }
        })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(FailureReason::Status(status.as_u16()));
        }
        Ok(response)
    }
}

fn base(peer: &str) -> &str {
    peer.trim_end_matches('/')
}

/// Reads at most `limit` bytes of the body; a longer body is an error.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FailureReason> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(FailureReason::TooLarge { limit });
    }
    let mut body = Vec::with_capacity(limit.min(1 << 20));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FailureReason::Request(error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(FailureReason::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
