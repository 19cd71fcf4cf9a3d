//! The persisted nonce store: a payment is settled at most once, also across restarts.
//!
//! This module owns the SQLite table of every payment nonce this server accepted. The serving
//! path claims the nonce **before** settling ([`NonceStore::claim`]: an atomic insert keyed on
//! chain, token, payer and nonce, so a concurrent or replayed request finds it taken), then
//! records the transaction ([`NonceStore::mark_submitted`]) and the outcome
//! ([`NonceStore::mark_settled`] / [`NonceStore::mark_failed`]). A claim is never released, even
//! when settling fails: the transaction may still be mined, and the token would refuse the nonce
//! anyway (as tempo-x402 does). It must not talk to the chain: whether a nonce is used on chain
//! is [`crate::onchain`]'s question.
//!
//! Calls are short synchronous SQLite statements behind a mutex (WAL, `synchronous = FULL`); the
//! file follows the conventions of `autonet_chain::sqlite` (lowercase hex, a versioned schema).

use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use alloy::primitives::{Address, B256, TxHash, U256};
use autonet_chain::sqlite::{Schema, SchemaError, hex, set_wal};
use rusqlite::{Connection, OptionalExtension, params};

use crate::verify::VerifiedPayment;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("x402 nonce store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file's schema is from a newer build, or could not be migrated.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A stored value does not parse.
    #[error("x402 nonce store: corrupt value `{0}`")]
    Corrupt(String),
    /// The nonce was never claimed.
    #[error("x402 nonce store: nonce {} of {} was not claimed", .0.nonce, .0.payer)]
    NotClaimed(NonceKey),
    /// The payment already has a final state.
    #[error("x402 nonce store: nonce {} of {} is already {state}", .key.nonce, .key.payer)]
    AlreadyFinal {
        /// The payment.
        key: NonceKey,
        /// Its final state.
        state: &'static str,
    },
}

/// What identifies an EIP-3009 authorization: nonces are per token and payer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NonceKey {
    /// The chain.
    pub chain_id: u64,
    /// The token.
    pub asset: Address,
    /// The payer (`authorization.from`).
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
}

/// Where a claimed payment stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentState {
    /// Claimed; no transaction sent yet (or the process stopped before recording it).
    Claimed,
    /// The settlement transaction was accepted by the node.
    Submitted {
        /// The transaction.
        tx_hash: TxHash,
    },
    /// The settlement transaction was mined and succeeded.
    Settled {
        /// The transaction.
        tx_hash: TxHash,
    },
    /// Settling failed; the nonce stays claimed.
    Failed {
        /// Why (an x402 error code and/or a message).
        reason: String,
        /// The transaction, if one was sent.
        tx_hash: Option<TxHash>,
    },
}

impl PaymentState {
    /// The stored name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Submitted { .. } => "submitted",
            Self::Settled { .. } => "settled",
            Self::Failed { .. } => "failed",
        }
    }

    /// Whether nothing will change it any more.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Settled { .. } | Self::Failed { .. })
    }
}

/// A claimed payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Its key.
    pub key: NonceKey,
    /// The value authorized.
    pub value: U256,
    /// The authorization's `validBefore` (after it, the nonce can no longer be used on chain).
    pub valid_before: U256,
    /// Where it stands.
    pub state: PaymentState,
    /// Unix time of the claim.
    pub claimed_at: u64,
    /// Unix time of the last change.
    pub updated_at: u64,
}

/// The result of [`NonceStore::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This call claimed the nonce: go on and settle.
    Claimed,
    /// The nonce was claimed before (a replay, or a concurrent request): refuse with
    /// `invalid_exact_evm_nonce_already_used`.
    AlreadyUsed(Box<PaymentRecord>),
}

/// The table of the newest version (see `autonet_chain::sqlite` for the conventions).
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS x402_payments (
    chain_id INTEGER NOT NULL, asset TEXT NOT NULL, payer TEXT NOT NULL, nonce TEXT NOT NULL,
    value TEXT NOT NULL, valid_before TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'submitted', 'settled', 'failed')),
    tx_hash TEXT, reason TEXT, claimed_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (chain_id, asset, payer, nonce));
CREATE INDEX IF NOT EXISTS x402_payments_state ON x402_payments (state);
";

/// The nonce store's schema. Version 1 is the layout written before versions existed (version
/// 0), which already followed the conventions: only the number is new.
pub const SCHEMA: Schema = Schema {
    store: "x402 nonce store",
    tables: TABLES,
    probe: "x402_payments",
    migrations: &[numbered],
};

/// 0 → 1: no change to the table.
fn numbered(_tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    Ok(())
}

/// Sets the journal mode and brings the file to the current version.
fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    set_wal(conn, "FULL")?;
    SCHEMA.prepare(conn)?;
    Ok(())
}

const COLUMNS: &str = "chain_id, asset, payer, nonce, value, valid_before, state, tx_hash, reason, claimed_at, updated_at";

fn parse<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(s.to_owned()))
}

/// The SQLite nonce store.
#[derive(Debug)]
pub struct NonceStore {
    conn: Mutex<Connection>,
}

impl NonceStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory store (tests; forgets everything when dropped).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `key` atomically at unix time `now`: [`ClaimOutcome::Claimed`] for exactly one
    /// caller, [`ClaimOutcome::AlreadyUsed`] with the existing record for every other (also
    /// after a restart). A claim is never released.
    pub fn claim(
        &self,
        key: &NonceKey,
        value: U256,
        valid_before: U256,
        now: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO x402_payments (chain_id, asset, payer, nonce, value, valid_before, state, claimed_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'claimed', ?7, ?7)
             ON CONFLICT (chain_id, asset, payer, nonce) DO NOTHING",
            params![
                key.chain_id as i64,
                hex(&key.asset),
                hex(&key.payer),
                hex(&key.nonce),
                value.to_string(),
                valid_before.to_string(),
                now as i64,
            ],
        )?;
        if inserted == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        let record = Self::get_locked(&conn, key)?.ok_or(StoreError::NotClaimed(*key))?;
        Ok(ClaimOutcome::AlreadyUsed(Box::new(record)))
    }

    /// [`NonceStore::claim`] for a verified payment.
    pub fn claim_payment(
        &self,
        payment: &VerifiedPayment,
        now: u64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.claim(
            &payment.nonce_key(),
            payment.authorization.value,
            payment.authorization.valid_before,
            now,
        )
    }

    fn transition(&self, key: &NonceKey, state: &PaymentState, now: u64) -> Result<(), StoreError> {
        let (tx_hash, reason) = match state {
            PaymentState::Claimed => (None, None),
            PaymentState::Submitted { tx_hash } | PaymentState::Settled { tx_hash } => {
                (Some(hex(tx_hash)), None)
            }
            PaymentState::Failed { reason, tx_hash } => {
                (tx_hash.as_ref().map(hex), Some(reason.clone()))
            }
        };
        let conn = self.conn();
        // A later state keeps the transaction hash recorded earlier when it has none.
        let updated = conn.execute(
            "UPDATE x402_payments SET state = ?5, tx_hash = COALESCE(?6, tx_hash), reason = ?7, updated_at = ?8
             WHERE chain_id = ?1 AND asset = ?2 AND payer = ?3 AND nonce = ?4
               AND state IN ('claimed', 'submitted')",
            params![
                key.chain_id as i64,
                hex(&key.asset),
                hex(&key.payer),
                hex(&key.nonce),
                state.name(),
                tx_hash,
                reason,
                now as i64,
            ],
        )?;
        if updated == 1 {
            return Ok(());
        }
        match Self::get_locked(&conn, key)? {
            None => Err(StoreError::NotClaimed(*key)),
            Some(record) => Err(StoreError::AlreadyFinal {
                key: *key,
                state: record.state.name(),
            }),
        }
    }

    /// Records that the settlement transaction `tx_hash` was accepted by the node.
    pub fn mark_submitted(
        &self,
        key: &NonceKey,
        tx_hash: TxHash,
        now: u64,
    ) -> Result<(), StoreError> {
        self.transition(key, &PaymentState::Submitted { tx_hash }, now)
    }

    /// Records that `tx_hash` was mined and succeeded (final).
    pub fn mark_settled(
        &self,
        key: &NonceKey,
        tx_hash: TxHash,
        now: u64,
    ) -> Result<(), StoreError> {
        self.transition(key, &PaymentState::Settled { tx_hash }, now)
    }

    /// Records that settling failed for `reason` (final; the nonce stays claimed).
    pub fn mark_failed(&self, key: &NonceKey, reason: &str, now: u64) -> Result<(), StoreError> {
        self.transition(
            key,
            &PaymentState::Failed {
                reason: reason.to_owned(),
                tx_hash: None,
            },
            now,
        )
    }

    /// The record of `key`, if claimed.
    pub fn get(&self, key: &NonceKey) -> Result<Option<PaymentRecord>, StoreError> {
        Self::get_locked(&self.conn(), key)
    }

    /// Payments claimed or submitted but without a final state (to reconcile with the chain
    /// after a restart), oldest first.
    pub fn unfinished(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM x402_payments WHERE state IN ('claimed', 'submitted') ORDER BY claimed_at"
        ))?;
        let rows = stmt.query_map([], Self::raw_row)?;
        rows.map(|r| Self::record(r?)).collect()
    }

    fn get_locked(conn: &Connection, key: &NonceKey) -> Result<Option<PaymentRecord>, StoreError> {
        let raw = conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM x402_payments
                     WHERE chain_id = ?1 AND asset = ?2 AND payer = ?3 AND nonce = ?4"
                ),
                params![
                    key.chain_id as i64,
                    hex(&key.asset),
                    hex(&key.payer),
                    hex(&key.nonce),
                ],
                Self::raw_row,
            )
            .optional()?;
        raw.map(Self::record).transpose()
    }

    fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            chain_id: row.get(0)?,
            asset: row.get(1)?,
            payer: row.get(2)?,
            nonce: row.get(3)?,
            value: row.get(4)?,
            valid_before: row.get(5)?,
            state: row.get(6)?,
            tx_hash: row.get(7)?,
            reason: row.get(8)?,
            claimed_at: row.get(9)?,
            updated_at: row.get(10)?,
        })
    }

    fn record(raw: RawRow) -> Result<PaymentRecord, StoreError> {
        let tx_hash = raw.tx_hash.as_deref().map(parse::<TxHash>).transpose()?;
        let state = match (raw.state.as_str(), tx_hash) {
            ("claimed", _) => PaymentState::Claimed,
            ("submitted", Some(tx_hash)) => PaymentState::Submitted { tx_hash },
            ("settled", Some(tx_hash)) => PaymentState::Settled { tx_hash },
            ("failed", tx_hash) => PaymentState::Failed {
                reason: raw.reason.unwrap_or_default(),
                tx_hash,
            },
            (other, _) => return Err(StoreError::Corrupt(other.to_owned())),
        };
        Ok(PaymentRecord {
            key: NonceKey {
                chain_id: u64::try_from(raw.chain_id)
                    .map_err(|_| StoreError::Corrupt(raw.chain_id.to_string()))?,
                asset: parse(&raw.asset)?,
                payer: parse(&raw.payer)?,
                nonce: parse(&raw.nonce)?,
            },
            value: parse(&raw.value)?,
            valid_before: parse(&raw.valid_before)?,
            state,
            claimed_at: raw.claimed_at as u64,
            updated_at: raw.updated_at as u64,
        })
    }
}

struct RawRow {
    chain_id: i64,
    asset: String,
    payer: String,
    nonce: String,
    value: String,
    valid_before: String,
    state: String,
    tx_hash: Option<String>,
    reason: Option<String>,
    claimed_at: i64,
    updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NonceKey {
        NonceKey {
            chain_id: 31337,
            asset: Address::repeat_byte(0xaa),
            payer: Address::repeat_byte(0xbb),
            nonce: B256::repeat_byte(n),
        }
    }

    #[test]
    fn a_nonce_is_claimed_once() {
        let store = NonceStore::open_in_memory().unwrap();
        let k = key(1);
        assert_eq!(
            store.claim(&k, U256::from(5), U256::from(100), 10).unwrap(),
            ClaimOutcome::Claimed
        );
        let ClaimOutcome::AlreadyUsed(record) =
            store.claim(&k, U256::from(5), U256::from(100), 11).unwrap()
        else {
            panic!("claimed twice");
        };
        assert_eq!(record.key, k);
        assert_eq!(record.state, PaymentState::Claimed);
        assert_eq!(record.value, U256::from(5));
        assert_eq!(record.claimed_at, 10);
        // Another nonce, token, chain or payer is another payment.
        for other in [
            key(2),
            NonceKey {
                asset: Address::repeat_byte(1),
                ..k
            },
            NonceKey { chain_id: 1, ..k },
            NonceKey {
                payer: Address::repeat_byte(2),
                ..k
            },
        ] {
            assert_eq!(
                store
                    .claim(&other, U256::from(5), U256::from(100), 12)
                    .unwrap(),
                ClaimOutcome::Claimed
            );
        }
    }

    #[test]
    fn states_advance_and_final_states_stick() {
        let store = NonceStore::open_in_memory().unwrap();
        let k = key(1);
        let tx = TxHash::repeat_byte(9);
        assert!(matches!(
            store.mark_submitted(&k, tx, 1),
            Err(StoreError::NotClaimed(_))
        ));
        store.claim(&k, U256::from(5), U256::from(100), 1).unwrap();
        store.mark_submitted(&k, tx, 2).unwrap();
        assert_eq!(store.unfinished().unwrap().len(), 1);
        store.mark_settled(&k, tx, 3).unwrap();
        let record = store.get(&k).unwrap().unwrap();
        assert_eq!(record.state, PaymentState::Settled { tx_hash: tx });
        assert_eq!(record.updated_at, 3);
        assert!(record.state.is_final());
        assert!(matches!(
            store.mark_failed(&k, "late", 4),
            Err(StoreError::AlreadyFinal {
                state: "settled",
                ..
            })
        ));
        assert!(store.unfinished().unwrap().is_empty());

        // A failure after submission keeps the transaction hash.
        let k2 = key(2);
        store.claim(&k2, U256::from(5), U256::from(100), 5).unwrap();
        store.mark_submitted(&k2, tx, 6).unwrap();
        store
            .mark_failed(&k2, "invalid_transaction_state", 7)
            .unwrap();
        assert_eq!(
            store.get(&k2).unwrap().unwrap().state,
            PaymentState::Failed {
                reason: "invalid_transaction_state".into(),
                tx_hash: Some(tx)
            }
        );
        // And the failed nonce is never released.
        assert!(matches!(
            store.claim(&k2, U256::from(5), U256::from(100), 8).unwrap(),
            ClaimOutcome::AlreadyUsed(_)
        ));
    }

    #[test]
    fn claims_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x402.sqlite");
        let tx = TxHash::repeat_byte(3);
        {
            let store = NonceStore::open(&path).unwrap();
            store
                .claim(&key(1), U256::from(7), U256::from(100), 1)
                .unwrap();
            store.mark_submitted(&key(1), tx, 2).unwrap();
            store
                .claim(&key(2), U256::from(7), U256::from(100), 3)
                .unwrap();
        }
        let store = NonceStore::open(&path).unwrap();
        let ClaimOutcome::AlreadyUsed(record) = store
            .claim(&key(1), U256::from(7), U256::from(100), 9)
            .unwrap()
        else {
            panic!("the claim was lost on reopen");
        };
        assert_eq!(record.state, PaymentState::Submitted { tx_hash: tx });
        let unfinished = store.unfinished().unwrap();
        assert_eq!(
            unfinished.iter().map(|r| r.key).collect::<Vec<_>>(),
            vec![key(1), key(2)]
        );
        assert!(matches!(
            store
                .claim(&key(2), U256::from(7), U256::from(100), 9)
                .unwrap(),
            ClaimOutcome::AlreadyUsed(_)
        ));
    }

    /// A store written before versions existed (the same table, `user_version` 0) opens with
    /// every claim, and is numbered.
    #[test]
    fn a_store_from_before_versions_keeps_its_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x402.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(TABLES).unwrap();
            conn.execute(
                "INSERT INTO x402_payments (chain_id, asset, payer, nonce, value, valid_before, state, tx_hash, claimed_at, updated_at)
                 VALUES (31337, ?1, ?2, ?3, '5', '100', 'submitted', ?4, 10, 11)",
                params![
                    hex(&key(1).asset),
                    hex(&key(1).payer),
                    hex(&key(1).nonce),
                    hex(&TxHash::repeat_byte(0x77))
                ],
            )
            .unwrap();
        }
        let store = NonceStore::open(&path).unwrap();
        let record = store.get(&key(1)).unwrap().unwrap();
        assert_eq!(
            record.state,
            PaymentState::Submitted {
                tx_hash: TxHash::repeat_byte(0x77)
            }
        );
        assert_eq!(store.unfinished().unwrap().len(), 1);
        assert!(matches!(
            store.claim(&key(1), U256::from(5), U256::from(100), 12),
            Ok(ClaimOutcome::AlreadyUsed(_))
        ));
        drop(store);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            autonet_chain::sqlite::user_version(&conn).unwrap(),
            SCHEMA.version()
        );
    }

    #[test]
    fn concurrent_claims_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x402.sqlite");
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    // Separate connections, as separate server processes would have.
                    s.spawn(move || {
                        let store = NonceStore::open(&path).unwrap();
                        store
                            .claim(&key(1), U256::from(1), U256::from(1), 1)
                            .unwrap()
                            == ClaimOutcome::Claimed
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1);
    }
}
