//! What every Autonet SQLite store shares: schema versions with migrations, and one encoding.
//!
//! This module owns the rules the three stores (the agent's `agent.sqlite`, the watcher's cursor
//! store, the x402 nonce store) follow, so that an operator reading any of them with `sqlite3`
//! sees the same forms, and an upgrade never makes a store unreadable:
//!
//! - **Encoding.** Addresses, hashes and other byte strings are TEXT: `0x` and lowercase hex
//!   ([`hex`]; one spelling, so that equality in SQL is equality of the value). Block numbers,
//!   indexes, counts and unix times are INTEGER. Token amounts (`U256`) are decimal TEXT.
//!   Structured data is JSON TEXT. Inserts name their columns.
//! - **Versions.** A store's `PRAGMA user_version` is the number of migrations its build knows
//!   ([`Schema::version`]); version 0 is a file from before versions existed. [`Schema::prepare`]
//!   creates missing tables and runs every migration the file lacks in one transaction (a
//!   failure leaves the file as it was), and refuses a file written by a newer build instead of
//!   guessing at it.
//!
//! It must not know any store's tables: each store declares its own [`Schema`].

use std::fmt::LowerHex;
use std::str::FromStr;

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// One schema step: moves a file from version `v` to `v + 1`, inside the opening transaction.
/// It runs after [`Schema::tables`] created any missing table, so it only alters tables that
/// existed in the older version.
pub type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// A store's tables and the migrations that bring older files to them.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The store's name in errors, e.g. `agent database`.
    pub store: &'static str,
    /// `CREATE TABLE IF NOT EXISTS …` of the newest version.
    pub tables: &'static str,
    /// A table every version has: a file without it is fresh and needs no migration.
    pub probe: &'static str,
    /// `migrations[v]` moves a file from version `v` to `v + 1`.
    pub migrations: &'static [Migration],
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// SQLite failed (the file is left as it was).
    #[error("{store}: preparing the schema: {source}")]
    Sqlite {
        /// The store.
        store: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer build, with a schema this build does not know.
    #[error(
        "{store}: schema version {found} is newer than this build's {known}: run the autonet \
         that wrote it (or a newer one); the file is left untouched"
    )]
    TooNew {
        /// The store.
        store: &'static str,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
}

impl Schema {
    /// The version this build writes.
    pub fn version(&self) -> i64 {
        self.migrations.len() as i64
    }

    /// Creates missing tables and migrates the file to [`Schema::version`], all in one
    /// transaction. Refuses a file from a newer build.
    pub fn prepare(&self, conn: &mut Connection) -> Result<(), SchemaError> {
        let sqlite = |source| SchemaError::Sqlite {
            store: self.store,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let found = user_version(&tx).map_err(sqlite)?;
        if found > self.version() {
            return Err(SchemaError::TooNew {
                store: self.store,
                found,
                known: self.version(),
            });
        }
        let fresh = table_columns(&tx, self.probe).map_err(sqlite)?.is_empty();
        tx.execute_batch(self.tables).map_err(sqlite)?;
        if !fresh {
            for step in &self.migrations[found.max(0) as usize..] {
                step(&tx).map_err(sqlite)?;
            }
        }
        if found != self.version() {
            tx.execute_batch(&format!("PRAGMA user_version = {};", self.version()))
                .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }
}

/// Sets `journal_mode = WAL` and `synchronous` (`FULL`, `NORMAL`). Switching a file to WAL needs
/// it to itself for a moment, and SQLite answers `SQLITE_BUSY` to that without waiting out the
/// busy timeout when another connection is opening the same file: this retries for up to 10 s.
pub fn set_wal(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let sql = format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};");
    loop {
        match conn.execute_batch(&sql) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// `PRAGMA user_version` of the connection's main database.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// The column names of `table` (empty when it does not exist).
pub fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let columns = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(columns)
}

/// The stored form of an address, hash or byte string: `0x` and lowercase hex.
pub fn hex<T: LowerHex>(value: &T) -> String {
    format!("{value:#x}")
}

/// Parses a stored value, `None` when it is malformed (the caller names the store).
pub fn parse<T: FromStr>(stored: &str) -> Option<T> {
    stored.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256, address};

    fn add_note(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("ALTER TABLE t ADD COLUMN note TEXT NOT NULL DEFAULT 'old';")
    }

    const V0: &str = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY);";
    const V1: Schema = Schema {
        store: "test store",
        tables: "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, note TEXT NOT NULL);",
        probe: "t",
        migrations: &[add_note],
    };

    #[test]
    fn a_fresh_file_gets_the_newest_tables_and_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        V1.prepare(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(table_columns(&conn, "t").unwrap(), ["id", "note"]);
        // Opening again changes nothing.
        V1.prepare(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
    }

    #[test]
    fn an_old_file_is_migrated_and_keeps_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V0).unwrap();
        conn.execute("INSERT INTO t (id) VALUES (7)", []).unwrap();
        V1.prepare(&mut conn).unwrap();
        let note: String = conn
            .query_row("SELECT note FROM t WHERE id = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "old");
        assert_eq!(user_version(&conn).unwrap(), 1);
    }

    #[test]
    fn a_file_from_a_newer_build_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V0).unwrap();
        conn.execute_batch("PRAGMA user_version = 2;").unwrap();
        let err = V1.prepare(&mut conn).unwrap_err();
        assert!(
            matches!(
                err,
                SchemaError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("test store: schema version 2"));
        assert_eq!(table_columns(&conn, "t").unwrap(), ["id"]);
        assert_eq!(user_version(&conn).unwrap(), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_file_as_it_was() {
        fn broken(tx: &Transaction<'_>) -> rusqlite::Result<()> {
            tx.execute_batch("ALTER TABLE t ADD COLUMN x TEXT; SELECT * FROM missing;")
        }
        let schema = Schema {
            migrations: &[broken],
            ..V1
        };
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V0).unwrap();
        assert!(schema.prepare(&mut conn).is_err());
        assert_eq!(table_columns(&conn, "t").unwrap(), ["id"]);
        assert_eq!(user_version(&conn).unwrap(), 0);
    }

    #[test]
    fn values_are_stored_as_lowercase_hex_and_read_back() {
        let a = address!("0xAbCdEf0123456789aBcDeF0123456789AbCdEf01");
        assert_eq!(hex(&a), "0xabcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(parse::<Address>(&hex(&a)), Some(a));
        let h = B256::repeat_byte(0xAB);
        assert_eq!(hex(&h), format!("0x{}", "ab".repeat(32)));
        assert_eq!(parse::<B256>("0x12"), None);
    }
}
