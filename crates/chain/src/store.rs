//! The watcher's persistent state in SQLite.
//!
//! This module owns three tables: the cursor of each watcher (last fully handled block and its
//! hash), recent checkpoints (block number → hash the watcher saw, the ancestry walked back on a
//! reorg) and the "seen" set of handled logs keyed by `(tx_hash, log_index)` with their block, so
//! a rewind can find, report and delete the logs it rolls back. The file follows the conventions
//! of [`crate::sqlite`] (hashes as `0x` lowercase hex, a versioned schema). It must not talk to a
//! chain or decide anything about reorgs: the watcher does.

use std::path::Path;
use std::sync::Mutex;

use alloy::primitives::{B256, TxHash};
use alloy::rpc::types::Log;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::sqlite::{self, Schema, SchemaError, hex};

/// Errors of the cursor store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored log could not be (de)serialized.
    #[error("stored log: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value is malformed (not a 32-byte hex hash, a negative number).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The file's schema is unusable (from a newer build) or could not be migrated.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A log handed to the store lacks its position (pending logs are never stored).
    #[error("log without transaction hash, index or block")]
    IncompleteLog,
}

/// A block the watcher has fully handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCursor {
    /// Block number.
    pub number: u64,
    /// Block hash as seen when it was handled.
    pub hash: B256,
}

/// SQLite-backed cursors, checkpoints and seen sets for any number of named watchers.
#[derive(Debug)]
pub struct CursorStore {
    conn: Mutex<Connection>,
}

/// The tables of the newest version (see [`crate::sqlite`] for the conventions).
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS watcher_cursor (
    watcher      TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watcher_checkpoint (
    watcher      TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    PRIMARY KEY (watcher, block_number)
);
CREATE TABLE IF NOT EXISTS watcher_seen (
    watcher      TEXT NOT NULL,
    tx_hash      TEXT NOT NULL,
    log_index    INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    log_json     TEXT NOT NULL,
    PRIMARY KEY (watcher, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS watcher_seen_block ON watcher_seen (watcher, block_number);
";

/// The cursor store's schema: version 1 stores hashes as `0x` lowercase hex TEXT (version 0, from
/// before versions existed, stored them as 32-byte BLOBs).
pub const SCHEMA: Schema = Schema {
    store: "watcher store",
    tables: TABLES,
    probe: "watcher_cursor",
    migrations: &[migrate_0_to_1],
};

/// 0 → 1: every hash column from a BLOB to `0x` lowercase hex TEXT; the tables are rebuilt with
/// TEXT columns and every row is kept.
fn migrate_0_to_1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let hex = |column: &str| {
        format!(
            "CASE WHEN typeof({column}) = 'blob' THEN '0x' || lower(hex({column})) ELSE {column} END"
        )
    };
    tx.execute_batch(&format!(
        "ALTER TABLE watcher_cursor RENAME TO watcher_cursor_v0;
         ALTER TABLE watcher_checkpoint RENAME TO watcher_checkpoint_v0;
         ALTER TABLE watcher_seen RENAME TO watcher_seen_v0;
         DROP INDEX IF EXISTS watcher_seen_block;
         {TABLES}
         INSERT INTO watcher_cursor (watcher, block_number, block_hash)
             SELECT watcher, block_number, {} FROM watcher_cursor_v0;
         INSERT INTO watcher_checkpoint (watcher, block_number, block_hash)
             SELECT watcher, block_number, {} FROM watcher_checkpoint_v0;
         INSERT INTO watcher_seen (watcher, tx_hash, log_index, block_number, log_json)
             SELECT watcher, {}, log_index, block_number, log_json FROM watcher_seen_v0;
         DROP TABLE watcher_cursor_v0;
         DROP TABLE watcher_checkpoint_v0;
         DROP TABLE watcher_seen_v0;",
        hex("block_hash"),
        hex("block_hash"),
        hex("tx_hash"),
    ))
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("block number {n} too large")))
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative block number {n}")))
}

fn to_b256(stored: String) -> Result<B256, StoreError> {
    sqlite::parse(&stored).ok_or_else(|| StoreError::Corrupt(format!("hash `{stored}`")))
}

/// A cursor from its stored `(block_number, block_hash)` columns.
fn to_cursor((n, h): (i64, String)) -> Result<StoredCursor, StoreError> {
    Ok(StoredCursor {
        number: to_u64(n)?,
        hash: to_b256(h)?,
    })
}

impl CursorStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// A store that lives in memory (tests, throwaway watchers).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        crate::sqlite::set_wal(&conn, "NORMAL")?;
        SCHEMA.prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }

    /// The cursor of `watcher`, if it has handled anything yet.
    pub fn cursor(&self, watcher: &str) -> Result<Option<StoredCursor>, StoreError> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT block_number, block_hash FROM watcher_cursor WHERE watcher = ?1",
                    params![watcher],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?;
            row.map(to_cursor).transpose()
        })
    }

    /// Advances the cursor of `watcher` to `cursor`, records it as a checkpoint, keeps only the
    /// newest `keep_checkpoints` checkpoints and forgets seen logs older than the oldest one kept
    /// (a rewind can never reach them).
    pub fn advance(
        &self,
        watcher: &str,
        cursor: StoredCursor,
        keep_checkpoints: usize,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = to_i64(cursor.number)?;
            tx.execute(
                "INSERT INTO watcher_cursor (watcher, block_number, block_hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT (watcher) DO UPDATE SET block_number = ?2, block_hash = ?3",
                params![watcher, n, hex(&cursor.hash)],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO watcher_checkpoint (watcher, block_number, block_hash)
                 VALUES (?1, ?2, ?3)",
                params![watcher, n, hex(&cursor.hash)],
            )?;
            let oldest_kept: Option<i64> = tx
                .query_row(
                    "SELECT block_number FROM watcher_checkpoint WHERE watcher = ?1
                     ORDER BY block_number DESC LIMIT 1 OFFSET ?2",
                    params![watcher, to_i64(keep_checkpoints.saturating_sub(1) as u64)?],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(oldest) = oldest_kept {
                tx.execute(
                    "DELETE FROM watcher_checkpoint WHERE watcher = ?1 AND block_number < ?2",
                    params![watcher, oldest],
                )?;
                tx.execute(
                    "DELETE FROM watcher_seen WHERE watcher = ?1 AND block_number < ?2",
                    params![watcher, oldest],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Records that block `number` had hash `hash` when the watcher handled a log in it.
    pub fn add_checkpoint(&self, watcher: &str, cursor: StoredCursor) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO watcher_checkpoint (watcher, block_number, block_hash)
                 VALUES (?1, ?2, ?3)",
                params![watcher, to_i64(cursor.number)?, hex(&cursor.hash)],
            )?;
            Ok(())
        })
    }

    /// Checkpoints of `watcher`, newest first.
    pub fn checkpoints(&self, watcher: &str) -> Result<Vec<StoredCursor>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT block_number, block_hash FROM watcher_checkpoint WHERE watcher = ?1
                 ORDER BY block_number DESC",
            )?;
            let rows = stmt.query_map(params![watcher], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            rows.map(|row| to_cursor(row?)).collect()
        })
    }

    /// Whether `watcher` already handled the log `(tx_hash, log_index)`.
    pub fn is_seen(
        &self,
        watcher: &str,
        tx_hash: TxHash,
        log_index: u64,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM watcher_seen WHERE watcher = ?1 AND tx_hash = ?2 AND log_index = ?3",
                params![watcher, hex(&tx_hash), to_i64(log_index)?],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    /// Records that `watcher` handled `log` (and its block hash as a checkpoint).
    pub fn mark_seen(&self, watcher: &str, log: &Log) -> Result<(), StoreError> {
        let (Some(tx_hash), Some(index), Some(number), Some(hash)) = (
            log.transaction_hash,
            log.log_index,
            log.block_number,
            log.block_hash,
        ) else {
            return Err(StoreError::IncompleteLog);
        };
        let json = serde_json::to_string(log)?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO watcher_seen (watcher, tx_hash, log_index, block_number, log_json)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![watcher, hex(&tx_hash), to_i64(index)?, to_i64(number)?, json],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO watcher_checkpoint (watcher, block_number, block_hash)
                 VALUES (?1, ?2, ?3)",
                params![watcher, to_i64(number)?, hex(&hash)],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Handled logs of `watcher` in blocks `first_block` and later, newest first (the undo order).
    pub fn seen_from(&self, watcher: &str, first_block: u64) -> Result<Vec<Log>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT log_json FROM watcher_seen WHERE watcher = ?1 AND block_number >= ?2
                 ORDER BY block_number DESC, log_index DESC",
            )?;
            let rows = stmt.query_map(params![watcher, to_i64(first_block)?], |r| {
                r.get::<_, String>(0)
            })?;
            rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
        })
    }

    /// Forgets one handled log (after its rollback was reported).
    pub fn forget_seen(
        &self,
        watcher: &str,
        tx_hash: TxHash,
        log_index: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM watcher_seen WHERE watcher = ?1 AND tx_hash = ?2 AND log_index = ?3",
                params![watcher, hex(&tx_hash), to_i64(log_index)?],
            )?;
            Ok(())
        })
    }

    /// Moves the cursor of `watcher` back to `cursor` (the fork point), dropping checkpoints and
    /// seen logs above it; `None` means "nothing handled yet".
    pub fn rewind(&self, watcher: &str, cursor: Option<StoredCursor>) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let above = match cursor {
                Some(cur) => {
                    tx.execute(
                        "INSERT INTO watcher_cursor (watcher, block_number, block_hash) VALUES (?1, ?2, ?3)
                         ON CONFLICT (watcher) DO UPDATE SET block_number = ?2, block_hash = ?3",
                        params![watcher, to_i64(cur.number)?, hex(&cur.hash)],
                    )?;
                    to_i64(cur.number)?
                }
                None => {
                    tx.execute("DELETE FROM watcher_cursor WHERE watcher = ?1", params![watcher])?;
                    -1
                }
            };
            tx.execute(
                "DELETE FROM watcher_checkpoint WHERE watcher = ?1 AND block_number > ?2",
                params![watcher, above],
            )?;
            tx.execute(
                "DELETE FROM watcher_seen WHERE watcher = ?1 AND block_number > ?2",
                params![watcher, above],
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, LogData};

    fn log(block: u64, index: u64, tx: u8) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: Address::ZERO,
                data: LogData::new_unchecked(vec![], Default::default()),
            },
            block_hash: Some(B256::with_last_byte(block as u8)),
            block_number: Some(block),
            block_timestamp: None,
            transaction_hash: Some(B256::with_last_byte(tx)),
            transaction_index: Some(0),
            log_index: Some(index),
            removed: false,
        }
    }

    fn cur(n: u64) -> StoredCursor {
        StoredCursor {
            number: n,
            hash: B256::with_last_byte(n as u8),
        }
    }

    #[test]
    fn cursor_seen_and_rewind_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite");
        {
            let s = CursorStore::open(&path).unwrap();
            assert_eq!(s.cursor("a").unwrap(), None);
            s.mark_seen("a", &log(5, 0, 1)).unwrap();
            s.mark_seen("a", &log(7, 3, 2)).unwrap();
            s.advance("a", cur(8), 100).unwrap();
        }
        let s = CursorStore::open(&path).unwrap();
        assert_eq!(s.cursor("a").unwrap(), Some(cur(8)));
        assert_eq!(s.cursor("b").unwrap(), None);
        assert!(s.is_seen("a", B256::with_last_byte(2), 3).unwrap());
        assert!(!s.is_seen("b", B256::with_last_byte(2), 3).unwrap());
        let numbers: Vec<u64> = s
            .checkpoints("a")
            .unwrap()
            .iter()
            .map(|c| c.number)
            .collect();
        assert_eq!(numbers, vec![8, 7, 5]);
        let after: Vec<u64> = s
            .seen_from("a", 6)
            .unwrap()
            .iter()
            .map(|l| l.block_number.unwrap())
            .collect();
        assert_eq!(after, vec![7]);
        s.rewind("a", Some(cur(5))).unwrap();
        assert_eq!(s.cursor("a").unwrap(), Some(cur(5)));
        assert!(!s.is_seen("a", B256::with_last_byte(2), 3).unwrap());
        assert!(s.is_seen("a", B256::with_last_byte(1), 0).unwrap());
    }

    /// A store written before versions existed: hashes as 32-byte BLOBs, `user_version` 0.
    #[test]
    fn an_upgrade_from_version_0_keeps_cursors_checkpoints_and_seen_logs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite");
        let seen = log(7, 3, 2);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE watcher_cursor (watcher TEXT PRIMARY KEY, block_number INTEGER NOT NULL,
                     block_hash BLOB NOT NULL);
                 CREATE TABLE watcher_checkpoint (watcher TEXT NOT NULL, block_number INTEGER NOT NULL,
                     block_hash BLOB NOT NULL, PRIMARY KEY (watcher, block_number));
                 CREATE TABLE watcher_seen (watcher TEXT NOT NULL, tx_hash BLOB NOT NULL,
                     log_index INTEGER NOT NULL, block_number INTEGER NOT NULL, log_json TEXT NOT NULL,
                     PRIMARY KEY (watcher, tx_hash, log_index));
                 CREATE INDEX watcher_seen_block ON watcher_seen (watcher, block_number);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO watcher_cursor (watcher, block_number, block_hash) VALUES ('a', 8, ?1)",
                [cur(8).hash.as_slice()],
            )
            .unwrap();
            for n in [7u64, 8] {
                conn.execute(
                    "INSERT INTO watcher_checkpoint (watcher, block_number, block_hash) VALUES ('a', ?1, ?2)",
                    params![n as i64, cur(n).hash.as_slice()],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO watcher_seen (watcher, tx_hash, log_index, block_number, log_json)
                 VALUES ('a', ?1, 3, 7, ?2)",
                params![
                    seen.transaction_hash.unwrap().as_slice(),
                    serde_json::to_string(&seen).unwrap()
                ],
            )
            .unwrap();
        }
        let s = CursorStore::open(&path).unwrap();
        assert_eq!(s.cursor("a").unwrap(), Some(cur(8)));
        assert_eq!(s.checkpoints("a").unwrap(), vec![cur(8), cur(7)]);
        assert!(s.is_seen("a", B256::with_last_byte(2), 3).unwrap());
        assert_eq!(s.seen_from("a", 0).unwrap(), vec![seen]);
        // The same hashes, now in their text form; the version is recorded.
        let conn = Connection::open(&path).unwrap();
        let (hash, kind): (String, String) = conn
            .query_row(
                "SELECT block_hash, typeof(block_hash) FROM watcher_cursor",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((hash, kind.as_str()), (hex(&cur(8).hash), "text"));
        assert_eq!(sqlite::user_version(&conn).unwrap(), SCHEMA.version());
        // New logs keep working after the upgrade, and a rewind still finds the old one.
        s.mark_seen("a", &log(9, 0, 4)).unwrap();
        s.rewind("a", Some(cur(6))).unwrap();
        assert!(!s.is_seen("a", B256::with_last_byte(2), 3).unwrap());
    }

    #[test]
    fn advance_prunes_old_checkpoints_and_seen_logs() {
        let s = CursorStore::open_in_memory().unwrap();
        s.mark_seen("a", &log(1, 0, 1)).unwrap();
        for n in 2..=10 {
            s.advance("a", cur(n), 3).unwrap();
        }
        let numbers: Vec<u64> = s
            .checkpoints("a")
            .unwrap()
            .iter()
            .map(|c| c.number)
            .collect();
        assert_eq!(numbers, vec![10, 9, 8]);
        assert!(!s.is_seen("a", B256::with_last_byte(1), 0).unwrap());
    }
}
