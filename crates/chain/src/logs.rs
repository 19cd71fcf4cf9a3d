//! Reading past logs in bounded ranges (RPC providers cap the block range of `eth_getLogs`).
//! The event watcher keeps its own ranges: it also checks each range against reorgs.

use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::transports::TransportError;

/// Blocks per `eth_getLogs` request.
pub const LOG_CHUNK: u64 = 50_000;

/// Every log matching `filter` (its address and topics; its block range is replaced) in blocks
/// `from..=to`, oldest first, read [`LOG_CHUNK`] blocks at a time.
pub async fn scan_logs<P: Provider>(
    provider: &P,
    filter: &Filter,
    from: u64,
    to: u64,
) -> Result<Vec<Log>, TransportError> {
    scan_logs_by(provider, filter, from, to, LOG_CHUNK).await
}

/// [`scan_logs`] with `chunk` blocks per request.
pub async fn scan_logs_by<P: Provider>(
    provider: &P,
    filter: &Filter,
    from: u64,
    to: u64,
    chunk: u64,
) -> Result<Vec<Log>, TransportError> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start.saturating_add(chunk.max(1) - 1).min(to);
        let range = filter.clone().from_block(start).to_block(end);
        out.extend(provider.get_logs(&range).await?);
        start = end + 1;
    }
    Ok(out)
}
