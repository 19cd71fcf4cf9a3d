//! The persisted channel store: every voucher a server answered for survives a restart.
//!
//! This module owns the SQLite table of the payment channels (`batch-settlement`) this server
//! takes: per channel its config, the latest signed voucher (`signed_max` and its signature),
//! what the server has charged in total (`charged`, the amount it will claim), and the mirror of
//! the on-chain state (`balance`, `total_claimed`, a pending withdrawal, the refund nonce).
//!
//! The serving path writes a request's voucher and its charge in one statement
//! ([`ChannelStore::commit`]) after the output exists and before it is answered: an answered
//! request always has its voucher stored, and a crash before the write leaves nothing charged
//! (the client presents the same voucher again). The write is monotone: a charge below the
//! stored one, or above its own voucher's ceiling, changes nothing and is an error. A claim
//! reads [`ChannelStore::unclaimed`] and records [`ChannelStore::mark_claimed`] after its
//! transaction. It must not talk to the chain.
//!
//! Durability: WAL with `synchronous = NORMAL`, so a committed voucher survives a crash or
//! restart of the node's process; an operating-system crash or power loss may lose the last
//! vouchers before a checkpoint. What is lost then is the server's own revenue for requests it
//! answered (their charges are never claimed); payers are never charged twice, because every
//! claim is bounded by a voucher the payer signed. Per-request `fsync` (`FULL`) would cost more
//! than the whole payment check (measured in `docs/x402.md`).

use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use alloy::primitives::{B256, Bytes};
use autonet_chain::sqlite::{Schema, hex, set_wal};
use rusqlite::{Connection, OptionalExtension, params};

use crate::channel::WireChannelConfig;
use crate::store::StoreError;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS x402_channels (
    channel_id TEXT PRIMARY KEY NOT NULL, config TEXT NOT NULL,
    charged TEXT NOT NULL, signed_max TEXT NOT NULL, signature TEXT NOT NULL,
    balance TEXT NOT NULL, total_claimed TEXT NOT NULL,
    withdraw_requested_at INTEGER NOT NULL, withdraw_amount TEXT NOT NULL, refund_nonce TEXT NOT NULL,
    first_unclaimed_at INTEGER, updated_at INTEGER NOT NULL);
";

/// The channel store's schema.
pub const SCHEMA: Schema = Schema {
    store: "x402 channel store",
    tables: TABLES,
    probe: "x402_channels",
    migrations: &[],
};

/// What the chain says about a channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnchainChannel {
    /// Deposited minus withdrawn and refunded.
    pub balance: u128,
    /// Claimed so far.
    pub total_claimed: u128,
    /// When the payer asked to withdraw (0: no pending withdrawal).
    pub withdraw_requested_at: u64,
    /// How much the pending withdrawal takes.
    pub withdraw_amount: u128,
    /// The next refund nonce.
    pub refund_nonce: String,
}

impl OnchainChannel {
    /// What vouchers may still draw on: the balance less a pending withdrawal.
    pub fn spendable(&self) -> u128 {
        self.balance.saturating_sub(self.withdraw_amount)
    }
}

/// One channel as this server knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    /// The channel id.
    pub channel_id: B256,
    /// Its config.
    pub config: WireChannelConfig,
    /// What this server has charged in total (what it claims).
    pub charged: u128,
    /// The ceiling of the latest voucher.
    pub signed_max: u128,
    /// Its signature.
    pub signature: Bytes,
    /// The mirrored on-chain state.
    pub onchain: OnchainChannel,
    /// When the oldest charge not yet claimed was made (`None`: nothing to claim).
    pub first_unclaimed_at: Option<u64>,
    /// Last change (unix seconds).
    pub updated_at: u64,
}

impl ChannelRecord {
    /// Charged and not yet claimed.
    pub fn unclaimed(&self) -> u128 {
        self.charged.saturating_sub(self.onchain.total_claimed)
    }
}

/// The SQLite channel store.
#[derive(Debug)]
pub struct ChannelStore {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "channel_id, config, charged, signed_max, signature, balance, total_claimed, withdraw_requested_at, withdraw_amount, refund_nonce, first_unclaimed_at, updated_at";

fn parse<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(s.to_owned()))
}

type RawRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<i64>,
    i64,
);

impl ChannelStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        set_wal(&conn, "NORMAL")?;
        SCHEMA.prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        SCHEMA.prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
        ))
    }

    fn record(raw: RawRow) -> Result<ChannelRecord, StoreError> {
        let (
            id,
            config,
            charged,
            signed_max,
            signature,
            balance,
            claimed,
            wat,
            wamount,
            nonce,
            first,
            updated,
        ) = raw;
        Ok(ChannelRecord {
            channel_id: parse(&id)?,
            config: serde_json::from_str(&config)
                .map_err(|_| StoreError::Corrupt(config.clone()))?,
            charged: parse(&charged)?,
            signed_max: parse(&signed_max)?,
            signature: parse(&signature)?,
            onchain: OnchainChannel {
                balance: parse(&balance)?,
                total_claimed: parse(&claimed)?,
                withdraw_requested_at: wat as u64,
                withdraw_amount: parse(&wamount)?,
                refund_nonce: nonce,
            },
            first_unclaimed_at: first.map(|t| t as u64),
            updated_at: updated as u64,
        })
    }

    /// The channel `id`, if this server has seen it.
    pub fn get(&self, id: &B256) -> Result<Option<ChannelRecord>, StoreError> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM x402_channels WHERE channel_id = ?1"),
                params![hex(id)],
                Self::raw_row,
            )
            .optional()?;
        raw.map(Self::record).transpose()
    }

    /// Records an answered request: `record` (its voucher as `signed_max` and `signature`, its
    /// charged total as `charged`) replaces the stored channel, only if it charges no less than
    /// the stored record and no more than its own voucher; otherwise nothing changes and the
    /// answer is [`StoreError::Corrupt`] (a stale writer, or a charge without a voucher). The
    /// claimed total stays the stored one (claims own it, [`ChannelStore::mark_claimed`]), and
    /// the oldest unclaimed charge keeps its time (a cleared one becomes `updated_at`).
    pub fn commit(&self, record: &ChannelRecord) -> Result<(), StoreError> {
        if record.charged > record.signed_max {
            return Err(StoreError::Corrupt(format!(
                "charge {} on channel {} above its voucher's {}",
                record.charged, record.channel_id, record.signed_max
            )));
        }
        let conn = self.conn();
        // Amounts are decimal text: compare them as numbers of equal width, longest first.
        let changed = conn.execute(
            &format!(
                "INSERT INTO x402_channels ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (channel_id) DO UPDATE SET
                   config = excluded.config, charged = excluded.charged, signed_max = excluded.signed_max,
                   signature = excluded.signature, balance = excluded.balance,
                   withdraw_requested_at = excluded.withdraw_requested_at, withdraw_amount = excluded.withdraw_amount,
                   refund_nonce = excluded.refund_nonce,
                   first_unclaimed_at = COALESCE(x402_channels.first_unclaimed_at, ?12),
                   updated_at = excluded.updated_at
                 WHERE length(excluded.charged) > length(x402_channels.charged)
                    OR (length(excluded.charged) = length(x402_channels.charged) AND excluded.charged >= x402_channels.charged)"
            ),
            params![
                hex(&record.channel_id),
                record.config.to_string(),
                record.charged.to_string(),
                record.signed_max.to_string(),
                record.signature.to_string(),
                record.onchain.balance.to_string(),
                record.onchain.total_claimed.to_string(),
                record.onchain.withdraw_requested_at as i64,
                record.onchain.withdraw_amount.to_string(),
                record.onchain.refund_nonce,
                record.first_unclaimed_at.map(|t| t as i64),
                record.updated_at as i64,
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!(
                "charge {} on channel {} is below the stored one",
                record.charged, record.channel_id
            )));
        }
        Ok(())
    }

    /// Refreshes the on-chain mirror of `id`.
    pub fn set_onchain(
        &self,
        id: &B256,
        onchain: &OnchainChannel,
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE x402_channels SET balance = ?2, total_claimed = ?3, withdraw_requested_at = ?4, withdraw_amount = ?5, refund_nonce = ?6, updated_at = ?7 WHERE channel_id = ?1",
            params![
                hex(id),
                onchain.balance.to_string(),
                onchain.total_claimed.to_string(),
                onchain.withdraw_requested_at as i64,
                onchain.withdraw_amount.to_string(),
                onchain.refund_nonce,
                now as i64,
            ],
        )?;
        Ok(())
    }

    /// Channels with charges not yet claimed, oldest charge first.
    pub fn unclaimed(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM x402_channels WHERE first_unclaimed_at IS NOT NULL ORDER BY first_unclaimed_at"
        ))?;
        let rows = stmt.query_map([], Self::raw_row)?;
        let all: Vec<ChannelRecord> = rows.map(|r| Self::record(r?)).collect::<Result<_, _>>()?;
        Ok(all.into_iter().filter(|r| r.unclaimed() > 0).collect())
    }

    /// Records that `id` was claimed on chain up to `total_claimed` (monotone: a lower value
    /// changes nothing); clears the unclaimed mark when everything charged is claimed.
    pub fn mark_claimed(&self, id: &B256, total_claimed: u128, now: u64) -> Result<(), StoreError> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM x402_channels WHERE channel_id = ?1"),
                params![hex(id)],
                Self::raw_row,
            )
            .optional()?;
        let Some(record) = raw.map(Self::record).transpose()? else {
            return Ok(());
        };
        let claimed = record.onchain.total_claimed.max(total_claimed);
        let first = if claimed >= record.charged {
            None
        } else {
            record.first_unclaimed_at
        };
        conn.execute(
            "UPDATE x402_channels SET total_claimed = ?2, first_unclaimed_at = ?3, updated_at = ?4 WHERE channel_id = ?1",
            params![hex(id), claimed.to_string(), first.map(|t| t as i64), now as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    fn record(id: u8) -> ChannelRecord {
        ChannelRecord {
            channel_id: B256::repeat_byte(id),
            config: WireChannelConfig {
                payer: Address::repeat_byte(1),
                payer_authorizer: Address::repeat_byte(1),
                receiver: Address::repeat_byte(2),
                receiver_authorizer: Address::repeat_byte(3),
                token: Address::repeat_byte(4),
                withdraw_delay: 900,
                salt: B256::ZERO,
            },
            charged: 0,
            signed_max: 100,
            signature: Bytes::from(vec![7u8; 65]),
            onchain: OnchainChannel {
                balance: 1000,
                refund_nonce: "0".into(),
                ..Default::default()
            },
            first_unclaimed_at: None,
            updated_at: 1,
        }
    }

    #[test]
    fn vouchers_and_charges_survive_a_reopen_and_claims_clear_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channels.sqlite");
        let id = B256::repeat_byte(5);
        {
            let store = ChannelStore::open(&path).unwrap();
            let mut r = record(5);
            r.charged = 100;
            r.first_unclaimed_at = Some(10);
            store.commit(&r).unwrap();
            // Above its own voucher, or below the stored charge: refused, nothing changes.
            let mut above = r.clone();
            above.charged = 101;
            assert!(store.commit(&above).is_err());
            let mut below = r.clone();
            below.charged = 50;
            below.signed_max = 50;
            assert!(store.commit(&below).is_err());
            // A longer decimal is a larger amount (text comparison would say "1000" < "200").
            let mut more = r.clone();
            more.charged = 1000;
            more.signed_max = 1000;
            store.commit(&more).unwrap();
            let mut less = r.clone();
            less.charged = 200;
            less.signed_max = 200;
            assert!(store.commit(&less).is_err());
        }
        let store = ChannelStore::open(&path).unwrap();
        let got = store.get(&id).unwrap().unwrap();
        assert_eq!(
            (got.charged, got.signed_max, got.first_unclaimed_at),
            (1000, 1000, Some(10))
        );
        assert_eq!(got.signature, record(5).signature);
        assert_eq!(store.unclaimed().unwrap().len(), 1);
        store.mark_claimed(&id, 400, 12).unwrap();
        assert_eq!(store.unclaimed().unwrap()[0].unclaimed(), 600);
        store.mark_claimed(&id, 1000, 13).unwrap();
        assert!(store.unclaimed().unwrap().is_empty());
        // A stale, lower claim never lowers the mirror.
        store.mark_claimed(&id, 10, 14).unwrap();
        assert_eq!(store.get(&id).unwrap().unwrap().onchain.total_claimed, 1000);
        assert!(store.get(&B256::repeat_byte(6)).unwrap().is_none());
    }
}
