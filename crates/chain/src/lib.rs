//! Chain access for every Autonet role.
//!
//! This crate owns how Rust talks to the Autonet contracts: signing HTTP providers with retries
//! and a chain-id check ([`provider`]), the transaction helper that simulates, sends, waits for
//! the receipt and checks the expected event while decoding reverts into custom error names
//! ([`tx`]), contract discovery through the Registry ([`discovery`]), chunked log reads
//! ([`logs`]) and a reorg-aware event watcher with a SQLite cursor ([`watcher`], [`store`]). It must not contain protocol
//! decisions (when to commit, what to vote): role crates build on top of it.

#![warn(missing_docs)]

pub mod discovery;
pub mod foundry;
pub mod logs;
pub mod provider;
pub mod sqlite;
pub mod store;
pub mod tx;
pub mod watcher;

pub use autonet_bindings as bindings;
pub use discovery::{DiscoveryError, discover_contracts};
pub use foundry::foundry_tool_path;
pub use logs::scan_logs;
pub use provider::{ChainProvider, ProviderConfig, ProviderError, check_chain_id, connect};
pub use store::{CursorStore, StoreError, StoredCursor};
pub use tx::{Confirmed, TxError, TxOptions, send_and_confirm};
pub use watcher::{
    EventWatcher, HandlerError, LogHandler, PollOutcome, WatcherConfig, WatcherError,
};
