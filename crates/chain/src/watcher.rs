//! The event watcher.
//!
//! This module owns turning contract logs into handler calls exactly once per canonical log:
//! `eth_getLogs` over the watched addresses in bounded block ranges, from a persisted cursor up
//! to `latest - confirmations`; handler calls deduplicated by `(tx_hash, log_index)`; the cursor
//! (block number and hash) advanced only after the range was handled; and on every poll a check
//! of the cursor block's hash, which on a mismatch (a reorg) walks back the stored checkpoints to
//! the newest block still on the chain, reports every handled log above it to
//! [`LogHandler::rollback`], and rescans from there. It must not interpret logs (handlers do) nor
//! swallow handler errors: a failing handler stops [`EventWatcher::run`] with the cursor before
//! the failing log, so a restart redelivers it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, TxHash};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::transports::TransportError;
use tokio_util::sync::CancellationToken;

use crate::store::{CursorStore, StoreError, StoredCursor};

/// The error a handler returns.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Receives logs from an [`EventWatcher`].
///
/// `handle` may see a log again after a crash between handling and recording it, so it should be
/// idempotent on `(transaction_hash, log_index)`; `rollback` is called, newest first, for every
/// handled log whose block left the canonical chain, before the logs of the new chain arrive.
pub trait LogHandler: Send {
    /// Handles one log of the canonical chain.
    fn handle(&mut self, log: &Log) -> impl Future<Output = Result<(), HandlerError>> + Send;
    /// Undoes a log previously handled whose block was reorganized away.
    fn rollback(&mut self, log: &Log) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// What the watcher scans and how.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The name under which the cursor is stored (one per watcher).
    pub name: String,
    /// The contracts whose logs are delivered.
    pub addresses: Vec<Address>,
    /// The first block to scan when there is no cursor yet (`Deployment::deploy_block`).
    pub start_block: u64,
    /// The most blocks one `eth_getLogs` covers.
    pub range: u64,
    /// Blocks below the head that are left alone (`latest - confirmations` is scanned).
    pub confirmations: u64,
    /// The pause between polls once caught up.
    pub poll_interval: Duration,
    /// Checkpoints kept for walking back on a reorg; a reorg older than all of them fails.
    pub max_checkpoints: usize,
    /// The longest pause after consecutive RPC failures in [`EventWatcher::run`].
    pub max_backoff: Duration,
}

impl WatcherConfig {
    /// Defaults: ranges of 2000 blocks, 2 confirmations, 2 s polls, 256 checkpoints.
    pub fn new(name: impl Into<String>, addresses: Vec<Address>, start_block: u64) -> Self {
        Self {
            name: name.into(),
            addresses,
            start_block,
            range: 2000,
            confirmations: 2,
            poll_interval: Duration::from_secs(2),
            max_checkpoints: 256,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Errors of the watcher.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// An RPC call failed (retried with backoff by `run`).
    #[error("rpc: {0}")]
    Rpc(#[from] TransportError),
    /// The cursor store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The handler failed on a log; it was not recorded and will be redelivered.
    #[error("handler failed on log {log_index} of transaction {tx_hash}: {source}")]
    Handler {
        /// The log's transaction.
        tx_hash: TxHash,
        /// The log's index in its block.
        log_index: u64,
        /// The handler's error.
        source: HandlerError,
    },
    /// The handler failed to roll back a log; the rewind resumes on the next poll.
    #[error("rollback failed on log {log_index} of transaction {tx_hash}: {source}")]
    Rollback {
        /// The log's transaction.
        tx_hash: TxHash,
        /// The log's index in its block.
        log_index: u64,
        /// The handler's error.
        source: HandlerError,
    },
    /// The node returned a log without its position (block, transaction, index).
    #[error("the node returned a log without block, transaction hash or index")]
    IncompleteLog,
    /// No stored checkpoint is on the current chain: the reorg is deeper than the history kept.
    #[error(
        "reorg below every stored checkpoint (cursor at block {cursor}, {checked} checkpoints checked)"
    )]
    ReorgTooDeep {
        /// The cursor block whose hash changed.
        cursor: u64,
        /// How many checkpoints were compared.
        checked: usize,
    },
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Nothing new below `latest - confirmations` (or the head moved under the scan).
    Idle,
    /// Blocks `from..=to` were scanned and `delivered` new logs handled.
    Advanced {
        /// First block scanned.
        from: u64,
        /// Last block scanned (the new cursor).
        to: u64,
        /// Logs handed to the handler.
        delivered: usize,
        /// Whether `to` is `latest - confirmations`.
        caught_up: bool,
    },
    /// The cursor block's hash changed: the cursor moved back to `to` (`None`: before the start).
    Rewound {
        /// The cursor block whose hash changed.
        from: u64,
        /// The newest checkpoint still on the chain.
        to: Option<u64>,
        /// Logs reported to [`LogHandler::rollback`].
        rolled_back: usize,
    },
}

/// Scans contract logs into a [`LogHandler`]; see the module docs.
pub struct EventWatcher<P, H> {
    provider: P,
    store: Arc<CursorStore>,
    config: WatcherConfig,
    handler: H,
}

fn position(log: &Log) -> Result<(TxHash, u64), WatcherError> {
    match (
        log.transaction_hash,
        log.log_index,
        log.block_number,
        log.block_hash,
    ) {
        (Some(tx), Some(index), Some(_), Some(_)) => Ok((tx, index)),
        _ => Err(WatcherError::IncompleteLog),
    }
}

impl<P: Provider, H: LogHandler> EventWatcher<P, H> {
    /// A watcher named `config.name` keeping its cursor in `store`.
    pub fn new(provider: P, store: Arc<CursorStore>, config: WatcherConfig, handler: H) -> Self {
        Self {
            provider,
            store,
            config,
            handler,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The stored cursor (last fully handled block).
    pub fn cursor(&self) -> Result<Option<StoredCursor>, StoreError> {
        self.store.cursor(&self.config.name)
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, TransportError> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|block| block.header.hash))
    }

    /// One step: check the cursor for a reorg (and rewind), or scan the next range.
    pub async fn poll_once(&mut self) -> Result<PollOutcome, WatcherError> {
        let name = self.config.name.clone();
        let cursor = self.store.cursor(&name)?;
        if let Some(cursor) = cursor
            && self.block_hash(cursor.number).await? != Some(cursor.hash)
        {
            return self.rewind(cursor).await;
        }

        let head = self.provider.get_block_number().await?;
        let safe = head.saturating_sub(self.config.confirmations);
        let from = cursor.map_or(self.config.start_block, |c| c.number + 1);
        if from > safe {
            return Ok(PollOutcome::Idle);
        }
        let to = safe.min(from.saturating_add(self.config.range.max(1) - 1));
        let Some(to_hash) = self.block_hash(to).await? else {
            return Ok(PollOutcome::Idle);
        };
        let filter = Filter::new()
            .address(self.config.addresses.clone())
            .from_block(from)
            .to_block(to);
        let mut logs = self.provider.get_logs(&filter).await?;
        // The logs must belong to the chain whose block `to` we recorded; otherwise a reorg
        // raced the scan and the next poll starts over.
        if self.block_hash(to).await? != Some(to_hash)
            || logs
                .iter()
                .any(|l| l.block_number == Some(to) && l.block_hash != Some(to_hash))
        {
            tracing::debug!(watcher = %name, to, "chain moved during the scan; retrying");
            return Ok(PollOutcome::Idle);
        }
        logs.sort_by_key(|l| (l.block_number, l.log_index));

        let mut delivered = 0;
        for log in logs.iter().filter(|l| !l.removed) {
            let (tx_hash, log_index) = position(log)?;
            if self.store.is_seen(&name, tx_hash, log_index)? {
                continue;
            }
            self.handler
                .handle(log)
                .await
                .map_err(|source| WatcherError::Handler {
                    tx_hash,
                    log_index,
                    source,
                })?;
            self.store.mark_seen(&name, log)?;
            delivered += 1;
        }
        self.store.advance(
            &name,
            StoredCursor {
                number: to,
                hash: to_hash,
            },
            self.config.max_checkpoints,
        )?;
        tracing::debug!(watcher = %name, from, to, delivered, "scanned");
        Ok(PollOutcome::Advanced {
            from,
            to,
            delivered,
            caught_up: to == safe,
        })
    }

    /// Walks back the checkpoints to the newest one still on the chain, rolls back every handled
    /// log above it (newest first) and moves the cursor there.
    async fn rewind(&mut self, cursor: StoredCursor) -> Result<PollOutcome, WatcherError> {
        let name = self.config.name.clone();
        let checkpoints = self.store.checkpoints(&name)?;
        let mut fork = None;
        for checkpoint in &checkpoints {
            if self.block_hash(checkpoint.number).await? == Some(checkpoint.hash) {
                fork = Some(*checkpoint);
                break;
            }
        }
        if fork.is_none() && checkpoints.len() >= self.config.max_checkpoints {
            // Older history was pruned: we cannot tell what to undo.
            return Err(WatcherError::ReorgTooDeep {
                cursor: cursor.number,
                checked: checkpoints.len(),
            });
        }
        // With no checkpoint left on the chain and nothing pruned, everything is undone and the
        // scan restarts at `start_block`.
        let first_undone = fork.map_or(0, |f| f.number + 1);
        tracing::warn!(
            watcher = %name,
            cursor = cursor.number,
            fork = ?fork.map(|f| f.number),
            "reorg detected; rewinding"
        );
        let undone = self.store.seen_from(&name, first_undone)?;
        for log in &undone {
            let (tx_hash, log_index) = position(log)?;
            self.handler
                .rollback(log)
                .await
                .map_err(|source| WatcherError::Rollback {
                    tx_hash,
                    log_index,
                    source,
                })?;
            self.store.forget_seen(&name, tx_hash, log_index)?;
        }
        self.store.rewind(&name, fork)?;
        Ok(PollOutcome::Rewound {
            from: cursor.number,
            to: fork.map(|f| f.number),
            rolled_back: undone.len(),
        })
    }

    /// Polls until `cancel` fires: back to back while behind, every `poll_interval` once caught
    /// up, with capped exponential backoff on RPC errors. Handler, store and too-deep-reorg
    /// errors end the run (a supervisor restarts it; the cursor makes that safe).
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), WatcherError> {
        let mut failures: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let pause = match self.poll_once().await {
                Ok(PollOutcome::Advanced {
                    caught_up: false, ..
                })
                | Ok(PollOutcome::Rewound { .. }) => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.config.poll_interval
                }
                Err(WatcherError::Rpc(err)) => {
                    failures = failures.saturating_add(1);
                    let pause = self
                        .config
                        .poll_interval
                        .saturating_mul(2u32.saturating_pow(failures.min(16)))
                        .min(self.config.max_backoff);
                    tracing::warn!(watcher = %self.config.name, %err, ?pause, "rpc failed; backing off");
                    pause
                }
                Err(err) => return Err(err),
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
