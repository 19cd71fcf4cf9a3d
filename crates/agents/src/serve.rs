//! The agent's shard server (the storage crate's routes), with an optional fault that corrupts
//! every shard it serves (end-to-end tests of the verifying client).

use std::net::SocketAddr;

use autonet_storage::Store;
use axum::body::{Body, to_bytes};
use axum::http::Response;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::AgentError;

/// Binds `addr` and serves `store` until `cancel`; returns the bound address and the task.
pub async fn start(
    addr: SocketAddr,
    store: Store,
    corrupt: bool,
    extra: axum::Router,
    cancel: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), AgentError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        AgentError::Other(format!(
            "binding the shard server on {addr}: {e} (choose another --listen)"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| AgentError::Other(e.to_string()))?;
    let mut router = autonet_storage::server::router(store).merge(extra);
    if corrupt {
        router = router.layer(axum::middleware::map_response(corrupt_shard));
    }
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "shard server failed");
        }
    });
    tracing::info!(%bound, corrupt, "shard server listening");
    Ok((bound, task))
}

/// Flips the first byte of every shard body (manifests, which are JSON, are left alone).
async fn corrupt_shard(response: Response<Body>) -> Response<Body> {
    let is_shard = response
        .headers()
        .contains_key(autonet_storage::server::HEADER_SHARD_HASH);
    if !is_shard {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut bytes = to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    if let Some(b) = bytes.first_mut() {
        *b ^= 0xff;
    }
    Response::from_parts(parts, Body::from(bytes))
}
