//! The HTTP shard server: serves a [`Store`]'s manifests and shards, each shard with its hash and
//! Merkle proof. This module owns the wire format; it never writes to the store and never serves
//! bytes the store did not just re-verify.
//!
//! # Wire format
//!
//! - `GET /shards/{root}/manifest` → `200`, `content-type: application/json`, body = the canonical
//!   manifest JSON (its keccak256 is the on-chain `manifestHash`).
//! - `GET /shards/{root}/{index}` → `200`, `content-type: application/octet-stream`, body = the raw
//!   shard bytes, with headers
//!   - `x-shard-index`: the index in decimal,
//!   - `x-shard-hash`: `0x` hex of `keccak256(body)`,
//!   - `x-shard-proof`: the Merkle proof as comma-separated `0x` hex (empty for a one-shard tree),
//!     what `ModelShardRegistry.verifyShard(root, index, hash, proof)` accepts.
//!
//! `{root}` is 32-byte hex with or without `0x`. Errors are plain text: `400` for a malformed root
//! or index, `404` for an unknown root or a shard not held (or out of range), `500` for a stored
//! shard that fails its hash (it is never sent) or an I/O error.

use std::net::SocketAddr;

use autonet_protocol::merkle;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::manifest::parse_hash32;
use crate::proof;
use crate::store::{Store, StoreError};

/// Response header carrying the shard index.
pub const HEADER_SHARD_INDEX: &str = "x-shard-index";
/// Response header carrying `keccak256(shard)` as `0x` hex.
pub const HEADER_SHARD_HASH: &str = "x-shard-hash";
/// Response header carrying the comma-separated Merkle proof.
pub const HEADER_SHARD_PROOF: &str = "x-shard-proof";

/// Errors of the shard server.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Binding the listener failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading the bound address or serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound (not yet running) shard server.
#[derive(Debug)]
pub struct ShardServer {
    listener: TcpListener,
    store: Store,
}

impl ShardServer {
    /// Binds `addr` (use port 0 for an ephemeral port, then [`ShardServer::local_addr`]).
    pub async fn bind(addr: SocketAddr, store: Store) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Self { listener, store })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `cancel` fires, then stops accepting and finishes in-flight requests.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ServerError> {
        let addr = self.local_addr()?;
        let span = info_span!("shard_server", %addr);
        async move {
            info!("serving shards");
            axum::serve(self.listener, router(self.store))
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await?;
            info!("stopped");
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// The routes, for embedding into a larger server.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/shards/{root}/{item}", get(get_item))
        .with_state(store)
}

async fn get_item(
    State(store): State<Store>,
    Path((root, item)): Path<(String, String)>,
) -> Response {
    let span = info_span!("shard_request", %root, %item);
    async move {
        let Some(root) = parse_hash32(&root) else {
            return (StatusCode::BAD_REQUEST, "root must be 32-byte hex\n").into_response();
        };
        if item == "manifest" {
            return blocking(move || store.manifest(&root))
                .await
                .map(|m| {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        m.canonical_json(),
                    )
                        .into_response()
                })
                .unwrap_or_else(|e| e);
        }
        let Ok(index) = item.parse::<usize>() else {
            return (
                StatusCode::BAD_REQUEST,
                "expected `manifest` or a shard index\n",
            )
                .into_response();
        };
        blocking(move || {
            let manifest = store.manifest(&root)?;
            let bytes = store.read_shard(&manifest, index)?;
            // read_shard checked index < k + m, so the proof exists.
            let proof = proof::proof(&manifest, index).unwrap_or_default();
            Ok((manifest.shard_hashes[index], proof, bytes))
        })
        .await
        .map(|(hash, proof, bytes)| {
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    HeaderName::from_static(HEADER_SHARD_INDEX),
                    index.to_string(),
                ),
                (
                    HeaderName::from_static(HEADER_SHARD_HASH),
                    merkle::to_hex(&hash),
                ),
                (
                    HeaderName::from_static(HEADER_SHARD_PROOF),
                    proof::to_header(&proof),
                ),
            ];
            (headers, bytes).into_response()
        })
        .unwrap_or_else(|e| e)
    }
    .instrument(span)
    .await
}

/// Runs a store call on the blocking pool and maps its error to a response.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_response(&e)),
        Err(e) => {
            warn!(error = %e, "store task failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response())
        }
    }
}

fn error_response(e: &StoreError) -> Response {
    let status = match e {
        StoreError::UnknownRoot(_)
        | StoreError::MissingShard { .. }
        | StoreError::IndexOutOfRange { .. } => StatusCode::NOT_FOUND,
        _ => {
            warn!(error = %e, "cannot serve");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, format!("{e}\n")).into_response()
}
