//! The agent's embedded SQLite database: what the chain said (filled by the event handler, undone
//! on reorgs) and what this agent did (its actions, with the salts and secrets of pending reveals).
//!
//! An action is written with its secrets *before* its transaction is sent (`prepared`), so a
//! process killed at any moment restarts with everything it needs to reveal, and checks the chain
//! before sending again: nothing is lost and nothing is submitted twice.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use autonet_chain::sqlite::{Schema, SchemaError, table_columns};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors of the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("agent database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file's schema is from a newer build, or could not be migrated (the file is left as
    /// it was).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A stored JSON value does not parse.
    #[error("agent database: stored action data: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value does not parse.
    #[error("agent database: corrupt value `{0}`")]
    Corrupt(String),
}

/// The agent database's schema (conventions in [`autonet_chain::sqlite`]). Version 0 is a file
/// written before versions existed; every migration keeps every stored action (its secrets:
/// salts, unrevealed scores).
pub const SCHEMA: Schema = Schema {
    store: "agent database",
    tables: TABLES,
    probe: "actions",
    migrations: &[
        migrate_0_to_1,
        migrate_1_to_2,
        migrate_2_to_3,
        migrate_3_to_4,
        migrate_4_to_5,
    ],
};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = SCHEMA.migrations.len() as i64;

/// 0 → 1: solution reveals record the delta's manifest hash instead of the self-reported sample
/// count (the TaskManager's solution commitment binds `manifestHash`). Reveals recorded before
/// keep a zero hash: no delta is served under it, so such a solution scores 0.
fn migrate_0_to_1(conn: &Transaction<'_>) -> rusqlite::Result<()> {
    let columns = table_columns(conn, "solutions")?;
    if !columns.iter().any(|c| c == "manifest_hash") {
        conn.execute_batch(&format!(
            "ALTER TABLE solutions ADD COLUMN manifest_hash TEXT NOT NULL DEFAULT '{}';",
            B256::ZERO
        ))?;
    }
    if columns.iter().any(|c| c == "num_samples") {
        conn.execute_batch("ALTER TABLE solutions DROP COLUMN num_samples;")?;
    }
    Ok(())
}

/// 1 → 2: actions gain the state `sent` (landed, not yet `confirmations` deep). No table
/// changes: the version only keeps an older build, which cannot read that state, from opening
/// the file.
fn migrate_1_to_2(_conn: &Transaction<'_>) -> rusqlite::Result<()> {
    Ok(())
}

/// 2 → 3: addresses are stored in lowercase hex like every other value of every store (they were
/// EIP-55 checksummed), so that equality in SQL is equality of the address.
fn migrate_2_to_3(conn: &Transaction<'_>) -> rusqlite::Result<()> {
    conn.execute_batch(
        "UPDATE tasks SET proposer = lower(proposer);
         UPDATE solutions SET solver = lower(solver);
         UPDATE vote_reveals SET coordinator = lower(coordinator);
         UPDATE incentives SET solver = lower(solver);
         UPDATE models SET publisher = lower(publisher);",
    )
}

/// 3 → 4: a task records the timestamp of its proposal's block (`at`, unix seconds; NULL where
/// the node's logs do not carry `blockTimestamp`, and for tasks recorded before), the status
/// page's wall-clock axis.
fn migrate_3_to_4(conn: &Transaction<'_>) -> rusqlite::Result<()> {
    if !table_columns(conn, "tasks")?.iter().any(|c| c == "at") {
        conn.execute_batch("ALTER TABLE tasks ADD COLUMN at INTEGER;")?;
    }
    Ok(())
}

/// 4 → 5: the other payouts of a finalized task are recorded too (`payouts`: coordinator
/// dividends, the proposer's and the aggregator's fees), so a node shows what its account earned
/// in every role. The table itself comes with the tables of this version; payouts of tasks
/// recorded before stay unknown.
fn migrate_4_to_5(_conn: &Transaction<'_>) -> rusqlite::Result<()> {
    Ok(())
}

/// Sets the journal mode and brings the file to [`SCHEMA_VERSION`].
fn prepare(conn: &mut Connection) -> Result<(), DbError> {
    autonet_chain::sqlite::set_wal(conn, "FULL")?;
    SCHEMA.prepare(conn)?;
    Ok(())
}

/// The tables of [`SCHEMA_VERSION`]; `IF NOT EXISTS` leaves existing (older) tables to the
/// migrations.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, proposer TEXT NOT NULL,
    spec_hash TEXT NOT NULL, gt_commit TEXT NOT NULL, reward TEXT NOT NULL, block INTEGER NOT NULL,
    commit_end INTEGER NOT NULL, gt_reveal_end INTEGER NOT NULL, sol_reveal_end INTEGER NOT NULL,
    vote_commit_end INTEGER NOT NULL, vote_reveal_end INTEGER NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL, at INTEGER);
CREATE TABLE IF NOT EXISTS eval_specs (
    task_id INTEGER PRIMARY KEY, eval_spec_hash TEXT NOT NULL, tx TEXT NOT NULL, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vote_reveals (
    task_id INTEGER NOT NULL, coordinator TEXT NOT NULL, block INTEGER NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL, PRIMARY KEY (task_id, coordinator));
CREATE TABLE IF NOT EXISTS solutions (
    task_id INTEGER NOT NULL, solver TEXT NOT NULL, delta_root TEXT NOT NULL, manifest_hash TEXT NOT NULL,
    reveal_index INTEGER NOT NULL, tx TEXT NOT NULL, log_index INTEGER NOT NULL,
    PRIMARY KEY (task_id, solver));
CREATE TABLE IF NOT EXISTS incentives (
    task_id INTEGER NOT NULL, solver TEXT NOT NULL, consensus TEXT NOT NULL, incentive TEXT NOT NULL,
    amount TEXT NOT NULL, tx TEXT NOT NULL, log_index INTEGER NOT NULL, PRIMARY KEY (task_id, solver));
CREATE TABLE IF NOT EXISTS payouts (
    task_id INTEGER NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL, amount TEXT NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL, PRIMARY KEY (task_id, account, kind));
CREATE TABLE IF NOT EXISTS outcomes (
    task_id INTEGER PRIMARY KEY, outcome TEXT NOT NULL, block INTEGER NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    root TEXT PRIMARY KEY, project_id INTEGER NOT NULL, parent_root TEXT NOT NULL,
    manifest_hash TEXT NOT NULL, task_ids TEXT NOT NULL, publisher TEXT NOT NULL, block INTEGER NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accepted (
    root TEXT PRIMARY KEY, project_id INTEGER NOT NULL, version INTEGER NOT NULL, block INTEGER NOT NULL,
    tx TEXT NOT NULL, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY, task_id INTEGER, state TEXT NOT NULL, data TEXT NOT NULL,
    block INTEGER NOT NULL, tx_hash TEXT);
";

/// Every event table, for rollbacks.
const EVENT_TABLES: [&str; 9] = [
    "tasks",
    "eval_specs",
    "solutions",
    "vote_reveals",
    "incentives",
    "payouts",
    "outcomes",
    "models",
    "accepted",
];

/// A task as proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// Task id.
    pub task_id: u64,
    /// Project id.
    pub project_id: u64,
    /// Proposer.
    pub proposer: Address,
    /// `specHash`.
    pub spec_hash: B256,
    /// `gtCommit`.
    pub gt_commit: B256,
    /// Block of the proposal.
    pub block: u64,
    /// Last block of the commit window.
    pub commit_end: u64,
    /// Last block of the ground-truth reveal window.
    pub gt_reveal_end: u64,
    /// Last block of the solution reveal window.
    pub sol_reveal_end: u64,
    /// Last block of the vote commit window.
    pub vote_commit_end: u64,
    /// Last block of the vote reveal window.
    pub vote_reveal_end: u64,
}

/// A revealed solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolutionRow {
    /// Solver.
    pub solver: Address,
    /// Merkle root of the delta.
    pub delta_root: B256,
    /// keccak256 of the delta's manifest, committed with the root.
    pub manifest_hash: B256,
    /// Position in `revealedSolvers`.
    pub reveal_index: u8,
}

/// A published model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRow {
    /// Root.
    pub root: B256,
    /// Project.
    pub project_id: u64,
    /// Parent root.
    pub parent_root: B256,
    /// Manifest hash.
    pub manifest_hash: B256,
    /// Tasks it aggregates.
    pub task_ids: Vec<u64>,
    /// Publisher.
    pub publisher: Address,
    /// Block of the publication.
    pub block: u64,
}

/// A solver's consensus result of a finalized task, as `Rewards.SolverRewarded` reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolverReward {
    /// Solver.
    pub solver: Address,
    /// Its consensus score (1e18 fixed point).
    pub consensus: U256,
    /// Its incentive share (1e18 fixed point).
    pub incentive: U256,
    /// The reward paid, in ATN base units.
    pub amount: U256,
}

/// Where a log came from (its identity for idempotence and rollback).
#[derive(Clone, Copy, Debug)]
pub struct LogId {
    /// Transaction hash.
    pub tx: B256,
    /// Log index in the block.
    pub log_index: u64,
    /// Block number.
    pub block: u64,
    /// The block's timestamp (unix seconds), where the node's logs carry it (`blockTimestamp`).
    pub at: Option<u64>,
}

/// The state of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionState {
    /// Secrets stored; the transaction may or may not have been sent.
    Prepared,
    /// Landed on chain at the action's block, not yet `confirmations` deep: a reorg may still
    /// remove it (then it is sent again with the same secrets).
    Sent,
    /// Landed and `confirmations` deep (or found there).
    Done,
    /// Given up (window missed, or decided not to act); never retried.
    Skipped,
}

impl ActionState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Sent => "sent",
            Self::Done => "done",
            Self::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Result<Self, DbError> {
        Ok(match s {
            "prepared" => Self::Prepared,
            "sent" => Self::Sent,
            "done" => Self::Done,
            "skipped" => Self::Skipped,
            other => return Err(DbError::Corrupt(other.into())),
        })
    }
}

/// A stored action.
#[derive(Clone, Debug)]
pub struct Action<T> {
    /// State.
    pub state: ActionState,
    /// Its data (salts, roots, ...).
    pub data: T,
    /// Block at which it was prepared, or at which its transaction landed once sent.
    pub block: u64,
    /// Transaction hash once confirmed.
    pub tx_hash: Option<B256>,
    /// The task it belongs to (a proposal's: once its receipt named it).
    pub task_id: Option<u64>,
}

impl Action<serde_json::Value> {
    /// The same action with its data read as a `T`.
    pub fn typed<T: DeserializeOwned>(self) -> Result<Action<T>, serde_json::Error> {
        Ok(Action {
            state: self.state,
            data: serde_json::from_value(self.data)?,
            block: self.block,
            tx_hash: self.tx_hash,
            task_id: self.task_id,
        })
    }
}

/// The agent database (one connection behind a mutex; every statement is short).
#[derive(Debug)]
pub struct AgentDb {
    conn: Mutex<Connection>,
}

fn hex<T: std::fmt::LowerHex>(v: T) -> String {
    autonet_chain::sqlite::hex(&v)
}

fn parse<T: std::str::FromStr>(s: String) -> Result<T, DbError> {
    s.parse().map_err(|_| DbError::Corrupt(s))
}

impl AgentDb {
    /// Opens (creating) the database file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing database file read-only, for a reader beside the running agent (its
    /// status page) or another process inspecting its state (`autonet devnet
    /// --check-no-leaks`): the schema is left alone and nothing can be written.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, DbError> {
        let mut conn = Connection::open_in_memory()?;
        prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------------ events

    /// Records a proposal.
    pub fn insert_task(&self, t: &TaskRow, reward: U256, id: LogId) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO tasks (task_id, project_id, proposer, spec_hash, gt_commit, reward, block, commit_end, gt_reveal_end, sol_reveal_end, vote_commit_end, vote_reveal_end, tx, log_index, at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
            params![
                t.task_id as i64,
                t.project_id as i64,
                hex(t.proposer),
                hex(t.spec_hash),
                hex(t.gt_commit),
                reward.to_string(),
                t.block as i64,
                t.commit_end as i64,
                t.gt_reveal_end as i64,
                t.sol_reveal_end as i64,
                t.vote_commit_end as i64,
                t.vote_reveal_end as i64,
                hex(id.tx),
                id.log_index as i64,
                id.at.map(|at| at as i64)
            ],
        )?;
        Ok(())
    }

    /// Records a ground-truth reveal.
    pub fn insert_eval_spec(&self, task_id: u64, eval: B256, id: LogId) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO eval_specs (task_id, eval_spec_hash, tx, log_index) VALUES (?1,?2,?3,?4)",
            params![task_id as i64, hex(eval), hex(id.tx), id.log_index as i64],
        )?;
        Ok(())
    }

    /// Records a revealed solution.
    pub fn insert_solution(&self, task_id: u64, s: &SolutionRow, id: LogId) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO solutions (task_id, solver, delta_root, manifest_hash, reveal_index, tx, log_index) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            params![
                task_id as i64,
                hex(s.solver),
                hex(s.delta_root),
                hex(s.manifest_hash),
                i64::from(s.reveal_index),
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records that `coordinator` revealed its vote on `task_id` (`VoteRevealed`): from then on
    /// that coordinator's evaluation of the task is public (see `crate::status`).
    pub fn insert_vote_reveal(
        &self,
        task_id: u64,
        coordinator: Address,
        id: LogId,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO vote_reveals (task_id, coordinator, block, tx, log_index) VALUES (?1,?2,?3,?4,?5)",
            params![
                task_id as i64,
                hex(coordinator),
                id.block as i64,
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records a payout of a finalized task other than a solver's: `kind` is `coordinator`
    /// (dividends), `proposer` or `aggregator` (fees).
    pub fn insert_payout(
        &self,
        task_id: u64,
        account: Address,
        kind: &str,
        amount: U256,
        id: LogId,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO payouts (task_id, account, kind, amount, tx, log_index) VALUES (?1,?2,?3,?4,?5,?6)",
            params![
                task_id as i64,
                hex(account),
                kind,
                amount.to_string(),
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records a solver's consensus result.
    pub fn insert_incentive(
        &self,
        task_id: u64,
        solver: Address,
        consensus: U256,
        incentive: U256,
        amount: U256,
        id: LogId,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO incentives (task_id, solver, consensus, incentive, amount, tx, log_index) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            params![
                task_id as i64,
                hex(solver),
                consensus.to_string(),
                incentive.to_string(),
                amount.to_string(),
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records how a task ended (`finalized`, `closed`, `cancelled`).
    pub fn insert_outcome(&self, task_id: u64, outcome: &str, id: LogId) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO outcomes (task_id, outcome, block, tx, log_index) VALUES (?1,?2,?3,?4,?5)",
            params![
                task_id as i64,
                outcome,
                id.block as i64,
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records a published model.
    pub fn insert_model(&self, m: &ModelRow, id: LogId) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO models (root, project_id, parent_root, manifest_hash, task_ids, publisher, block, tx, log_index) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            params![
                hex(m.root),
                m.project_id as i64,
                hex(m.parent_root),
                hex(m.manifest_hash),
                serde_json::to_string(&m.task_ids)?,
                hex(m.publisher),
                m.block as i64,
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Records an accepted model.
    pub fn insert_accepted(
        &self,
        root: B256,
        project_id: u64,
        version: u64,
        id: LogId,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO accepted (root, project_id, version, block, tx, log_index) VALUES (?1,?2,?3,?4,?5,?6)",
            params![
                hex(root),
                project_id as i64,
                version as i64,
                id.block as i64,
                hex(id.tx),
                id.log_index as i64
            ],
        )?;
        Ok(())
    }

    /// Forgets every row recorded from the log `(tx, log_index)` (a reorg removed it).
    pub fn rollback(&self, tx: B256, log_index: u64) -> Result<usize, DbError> {
        let conn = self.conn();
        let mut n = 0;
        for table in EVENT_TABLES {
            n += conn.execute(
                &format!("DELETE FROM {table} WHERE tx = ?1 AND log_index = ?2"),
                params![hex(tx), log_index as i64],
            )?;
        }
        Ok(n)
    }

    // ------------------------------------------------------------------ queries

    fn task_from_row(
        r: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(i64, i64, String, String, String, [i64; 6])> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            [
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ],
        ))
    }

    fn to_task(raw: (i64, i64, String, String, String, [i64; 6])) -> Result<TaskRow, DbError> {
        let (task_id, project_id, proposer, spec, gt, b) = raw;
        Ok(TaskRow {
            task_id: task_id as u64,
            project_id: project_id as u64,
            proposer: parse(proposer)?,
            spec_hash: parse(spec)?,
            gt_commit: parse(gt)?,
            block: b[0] as u64,
            commit_end: b[1] as u64,
            gt_reveal_end: b[2] as u64,
            sol_reveal_end: b[3] as u64,
            vote_commit_end: b[4] as u64,
            vote_reveal_end: b[5] as u64,
        })
    }

    const TASK_COLUMNS: &str = "task_id, project_id, proposer, spec_hash, gt_commit, block, commit_end, \
        gt_reveal_end, sol_reveal_end, vote_commit_end, vote_reveal_end";

    /// Tasks of `project_id` without a recorded outcome, oldest first.
    pub fn open_tasks(&self, project_id: u64) -> Result<Vec<TaskRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM tasks WHERE project_id = ?1 AND task_id NOT IN (SELECT task_id FROM outcomes) \
             ORDER BY task_id",
            Self::TASK_COLUMNS
        ))?;
        let rows = stmt
            .query_map(params![project_id as i64], Self::task_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(Self::to_task).collect()
    }

    /// One task.
    pub fn task(&self, task_id: u64) -> Result<Option<TaskRow>, DbError> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!(
                    "SELECT {} FROM tasks WHERE task_id = ?1",
                    Self::TASK_COLUMNS
                ),
                params![task_id as i64],
                Self::task_from_row,
            )
            .optional()?;
        raw.map(Self::to_task).transpose()
    }

    /// When a task was proposed: its proposal block's timestamp (unix seconds), where recorded.
    pub fn task_time(&self, task_id: u64) -> Result<Option<u64>, DbError> {
        let at: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT at FROM tasks WHERE task_id = ?1",
                params![task_id as i64],
                |r| r.get(0),
            )
            .optional()?;
        Ok(at.flatten().and_then(|at| u64::try_from(at).ok()))
    }

    /// The newest task of `project_id`.
    pub fn latest_task(&self, project_id: u64) -> Result<Option<TaskRow>, DbError> {
        let id: Option<i64> = self.conn().query_row(
            "SELECT MAX(task_id) FROM tasks WHERE project_id = ?1",
            params![project_id as i64],
            |r| r.get(0),
        )?;
        match id {
            Some(id) => self.task(id as u64),
            None => Ok(None),
        }
    }

    /// The task whose ground-truth commitment is `gt` (how a proposer finds its own proposal).
    pub fn task_by_gt_commit(&self, gt: B256) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT task_id FROM tasks WHERE gt_commit = ?1",
                params![hex(gt)],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|v| v as u64))
    }

    /// The revealed `evalSpecHash` of a task.
    pub fn eval_spec(&self, task_id: u64) -> Result<Option<B256>, DbError> {
        self.conn()
            .query_row(
                "SELECT eval_spec_hash FROM eval_specs WHERE task_id = ?1",
                params![task_id as i64],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(parse)
            .transpose()
    }

    /// The revealed solutions of a task, by reveal index.
    pub fn solutions(&self, task_id: u64) -> Result<Vec<SolutionRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT solver, delta_root, manifest_hash, reveal_index FROM solutions WHERE task_id = ?1 \
             ORDER BY reveal_index",
        )?;
        let rows = stmt
            .query_map(params![task_id as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(s, d, n, i)| {
                Ok(SolutionRow {
                    solver: parse(s)?,
                    delta_root: parse(d)?,
                    manifest_hash: parse(n)?,
                    reveal_index: i as u8,
                })
            })
            .collect()
    }

    /// Whether `coordinator`'s `VoteRevealed` on `task_id` is recorded. A file written before
    /// reveals were recorded and opened [read-only](Self::open_read_only) (so not migrated) has
    /// no such table: nothing counts as revealed.
    pub fn vote_revealed(&self, task_id: u64, coordinator: Address) -> Result<bool, DbError> {
        match self
            .conn()
            .query_row(
                "SELECT 1 FROM vote_reveals WHERE task_id = ?1 AND coordinator = ?2",
                params![task_id as i64, hex(coordinator)],
                |_| Ok(()),
            )
            .optional()
        {
            Ok(found) => Ok(found.is_some()),
            Err(e) if e.to_string().contains("no such table") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `(account, kind, amount)` of a finalized task's payouts other than the solvers'
    /// ([`Self::insert_payout`]), by account and kind.
    pub fn payouts(&self, task_id: u64) -> Result<Vec<(Address, String, U256)>, DbError> {
        self.task_text_triples(
            "SELECT account, kind, amount FROM payouts WHERE task_id = ?1 ORDER BY account, kind",
            task_id,
        )?
        .into_iter()
        .map(|(a, k, v)| Ok((parse(a)?, k, parse(v)?)))
        .collect()
    }

    /// The rows of `sql` (three text columns, one parameter: the task id).
    fn task_text_triples(
        &self,
        sql: &str,
        task_id: u64,
    ) -> Result<Vec<(String, String, String)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map(params![task_id as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// `(solver, incentive, amount)` of a finalized task.
    pub fn incentives(&self, task_id: u64) -> Result<Vec<(Address, U256, U256)>, DbError> {
        self.task_text_triples(
            "SELECT solver, incentive, amount FROM incentives WHERE task_id = ?1 ORDER BY solver",
            task_id,
        )?
        .into_iter()
        .map(|(s, i, a)| Ok((parse(s)?, parse(i)?, parse(a)?)))
        .collect()
    }

    /// How a task ended and in which block.
    pub fn outcome(&self, task_id: u64) -> Result<Option<(String, u64)>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT outcome, block FROM outcomes WHERE task_id = ?1",
                params![task_id as i64],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    /// Finalized tasks of a project (oldest first).
    pub fn finalized_tasks(&self, project_id: u64) -> Result<Vec<u64>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT o.task_id FROM outcomes o JOIN tasks t ON t.task_id = o.task_id \
             WHERE t.project_id = ?1 AND o.outcome = 'finalized' ORDER BY o.task_id",
        )?;
        let rows = stmt
            .query_map(params![project_id as i64], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.into_iter().map(|v| v as u64).collect())
    }

    /// Published models of a project that were not accepted (yet), oldest first.
    pub fn pending_models(&self, project_id: u64) -> Result<Vec<ModelRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT root, project_id, parent_root, manifest_hash, task_ids, publisher, block FROM models \
             WHERE project_id = ?1 AND root NOT IN (SELECT root FROM accepted) ORDER BY block",
        )?;
        let rows = stmt
            .query_map(params![project_id as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(root, p, parent, mh, ids, publisher, block)| {
                Ok(ModelRow {
                    root: parse(root)?,
                    project_id: p as u64,
                    parent_root: parse(parent)?,
                    manifest_hash: parse(mh)?,
                    task_ids: serde_json::from_str(&ids)?,
                    publisher: parse(publisher)?,
                    block: block as u64,
                })
            })
            .collect()
    }

    /// The manifest hash of a published model.
    pub fn manifest_hash(&self, root: B256) -> Result<Option<B256>, DbError> {
        self.conn()
            .query_row(
                "SELECT manifest_hash FROM models WHERE root = ?1",
                params![hex(root)],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(parse)
            .transpose()
    }

    /// The parent a published model was built on (`ModelPublished.parentRoot` of its latest
    /// publication); `None` for a model never published (the genesis model).
    pub fn parent_of(&self, root: B256) -> Result<Option<B256>, DbError> {
        self.conn()
            .query_row(
                "SELECT parent_root FROM models WHERE root = ?1",
                params![hex(root)],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(parse)
            .transpose()
    }

    /// Whether a model aggregating `task_id` was accepted.
    pub fn task_model_accepted(&self, project_id: u64, task_id: u64) -> Result<bool, DbError> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM models m JOIN accepted a ON a.root = m.root, json_each(m.task_ids) j \
             WHERE m.project_id = ?1 AND j.value = ?2)",
            params![project_id as i64, task_id as i64],
            |r| r.get::<_, bool>(0),
        )?)
    }

    /// Every account the database has seen take part in `project_id`: its tasks' proposers,
    /// revealed solvers and coordinators, and model publishers; ascending, each once.
    pub fn participants(&self, project_id: u64) -> Result<Vec<Address>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT proposer FROM tasks WHERE project_id = ?1 \
             UNION SELECT s.solver FROM solutions s JOIN tasks t ON t.task_id = s.task_id WHERE t.project_id = ?1 \
             UNION SELECT v.coordinator FROM vote_reveals v JOIN tasks t ON t.task_id = v.task_id WHERE t.project_id = ?1 \
             UNION SELECT publisher FROM models WHERE project_id = ?1 \
             ORDER BY 1",
        )?;
        let rows = stmt
            .query_map(params![project_id as i64], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(parse).collect()
    }

    /// Task ids of `project_id`, ascending.
    pub fn task_ids(&self, project_id: u64) -> Result<Vec<u64>, DbError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT task_id FROM tasks WHERE project_id = ?1 ORDER BY task_id")?;
        let ids = stmt
            .query_map(params![project_id as i64], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids.into_iter().map(|v| v as u64).collect())
    }

    /// The reward a task reserved at its proposal (`TaskProposed.reward`).
    pub fn task_reward(&self, task_id: u64) -> Result<Option<U256>, DbError> {
        self.conn()
            .query_row(
                "SELECT reward FROM tasks WHERE task_id = ?1",
                params![task_id as i64],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(parse)
            .transpose()
    }

    /// What `Rewards` recorded for each solver of a finalized task (`SolverRewarded`), by
    /// solver.
    pub fn solver_rewards(&self, task_id: u64) -> Result<Vec<SolverReward>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT solver, consensus, incentive, amount FROM incentives WHERE task_id = ?1 \
             ORDER BY solver",
        )?;
        let rows = stmt
            .query_map(params![task_id as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(s, c, i, a)| {
                Ok(SolverReward {
                    solver: parse(s)?,
                    consensus: parse(c)?,
                    incentive: parse(i)?,
                    amount: parse(a)?,
                })
            })
            .collect()
    }

    /// Every published model of a project, oldest publication first, each with the version
    /// under which it was accepted (`None`: not accepted).
    pub fn published_models(
        &self,
        project_id: u64,
    ) -> Result<Vec<(ModelRow, Option<u64>)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT m.root, m.project_id, m.parent_root, m.manifest_hash, m.task_ids, m.publisher, \
             m.block, a.version FROM models m LEFT JOIN accepted a ON a.root = m.root \
             WHERE m.project_id = ?1 ORDER BY m.block",
        )?;
        let rows = stmt
            .query_map(params![project_id as i64], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                    ),
                    r.get::<_, Option<i64>>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|((root, p, parent, mh, ids, publisher, block), version)| {
                Ok((
                    ModelRow {
                        root: parse(root)?,
                        project_id: p as u64,
                        parent_root: parse(parent)?,
                        manifest_hash: parse(mh)?,
                        task_ids: serde_json::from_str(&ids)?,
                        publisher: parse(publisher)?,
                        block: block as u64,
                    },
                    version.map(|v| v as u64),
                ))
            })
            .collect()
    }

    // ------------------------------------------------------------------ actions

    /// An action by key.
    pub fn action<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Action<T>>, DbError> {
        let raw = self
            .conn()
            .query_row(
                "SELECT state, data, block, tx_hash, task_id FROM actions WHERE key = ?1",
                params![key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .optional()?;
        raw.map(|(state, data, block, tx, task)| {
            Ok(Action {
                state: ActionState::parse(&state)?,
                data: serde_json::from_str(&data)?,
                block: block as u64,
                tx_hash: tx.map(parse).transpose()?,
                task_id: task.map(|t| t as u64),
            })
        })
        .transpose()
    }

    /// Writes an action (durably, before its transaction is sent).
    pub fn put_action<T: Serialize>(
        &self,
        key: &str,
        task_id: Option<u64>,
        state: ActionState,
        data: &T,
        block: u64,
        tx_hash: Option<B256>,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO actions (key, task_id, state, data, block, tx_hash) VALUES (?1,?2,?3,?4,?5,?6)",
            params![
                key,
                task_id.map(|t| t as i64),
                state.as_str(),
                serde_json::to_string(data)?,
                block as i64,
                tx_hash.map(hex)
            ],
        )?;
        Ok(())
    }

    /// Moves an action to `state`, keeping its data.
    pub fn set_action_state(
        &self,
        key: &str,
        state: ActionState,
        tx_hash: Option<B256>,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE actions SET state = ?2, tx_hash = COALESCE(?3, tx_hash) WHERE key = ?1",
            params![key, state.as_str(), tx_hash.map(hex)],
        )?;
        Ok(())
    }

    /// Moves an action to `state`, keeping its data; `block` (when given) becomes its block (where
    /// its transaction landed), `tx_hash` (when given) its transaction.
    pub fn update_action(
        &self,
        key: &str,
        state: ActionState,
        block: Option<u64>,
        tx_hash: Option<B256>,
    ) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE actions SET state = ?2, block = COALESCE(?3, block), \
             tx_hash = COALESCE(?4, tx_hash) WHERE key = ?1",
            params![
                key,
                state.as_str(),
                block.map(|b| b as i64),
                tx_hash.map(hex)
            ],
        )?;
        Ok(())
    }

    /// Records the task an action belongs to (a proposal's, once its receipt named it).
    pub fn set_action_task(&self, key: &str, task_id: u64) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE actions SET task_id = ?2 WHERE key = ?1",
            params![key, task_id as i64],
        )?;
        Ok(())
    }

    /// Every action whose key starts with `prefix` and whose state is one of `states`, by key.
    pub fn actions_in<T: DeserializeOwned>(
        &self,
        prefix: &str,
        states: &[ActionState],
    ) -> Result<Vec<(String, Action<T>)>, DbError> {
        self.actions(prefix)?
            .into_iter()
            .filter(|(_, a)| states.contains(&a.state))
            .map(|(key, a)| Ok((key, a.typed()?)))
            .collect()
    }

    /// Number of actions whose key starts with `prefix` and are in `state`.
    pub fn count_actions(&self, prefix: &str, state: ActionState) -> Result<u64, DbError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM actions WHERE key LIKE ?1 || '%' AND state = ?2",
            params![prefix, state.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Every action whose key starts with `prefix`, in any state, by key, with its data as
    /// stored (secrets included: never serve this).
    pub fn actions(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Action<serde_json::Value>)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, state, data, block, tx_hash, task_id FROM actions \
             WHERE key LIKE ?1 || '%' ORDER BY key",
        )?;
        let rows = stmt
            .query_map(params![prefix], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(key, state, data, block, tx, task)| {
                Ok((
                    key,
                    Action {
                        state: ActionState::parse(&state)?,
                        data: serde_json::from_str(&data)?,
                        block: block as u64,
                        tx_hash: tx.map(parse).transpose()?,
                        task_id: task.map(|t| t as u64),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> LogId {
        LogId {
            tx: B256::with_last_byte(n as u8),
            log_index: n,
            block: n,
            at: None,
        }
    }

    fn task(task_id: u64, gt: u8) -> TaskRow {
        TaskRow {
            task_id,
            project_id: 1,
            proposer: Address::repeat_byte(1),
            spec_hash: B256::repeat_byte(2),
            gt_commit: B256::repeat_byte(gt),
            block: 10,
            commit_end: 15,
            sol_reveal_end: 20,
            gt_reveal_end: 25,
            vote_commit_end: 30,
            vote_reveal_end: 35,
        }
    }

    #[test]
    fn tasks_round_trip_and_reorgs_remove_them() {
        let db = AgentDb::open_in_memory().unwrap();
        db.insert_task(&task(1, 7), U256::from(5), id(1)).unwrap();
        db.insert_task(&task(2, 8), U256::from(5), id(2)).unwrap();
        assert_eq!(db.task(1).unwrap().unwrap(), task(1, 7));
        assert_eq!(db.task_by_gt_commit(B256::repeat_byte(8)).unwrap(), Some(2));
        assert_eq!(db.latest_task(1).unwrap().unwrap().task_id, 2);
        db.insert_outcome(1, "closed", id(3)).unwrap();
        assert_eq!(db.open_tasks(1).unwrap(), vec![task(2, 8)]);
        // The reorg drops the proposal of task 2 and the outcome of task 1.
        assert_eq!(db.rollback(id(2).tx, 2).unwrap(), 1);
        assert_eq!(db.rollback(id(3).tx, 3).unwrap(), 1);
        assert_eq!(db.open_tasks(1).unwrap(), vec![task(1, 7)]);
        assert_eq!(db.latest_task(1).unwrap().unwrap().task_id, 1);
    }

    #[test]
    fn actions_survive_reopening_with_their_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        {
            let db = AgentDb::open(&path).unwrap();
            db.put_action(
                "vote:1",
                Some(1),
                ActionState::Prepared,
                &("salt", 42u64),
                9,
                None,
            )
            .unwrap();
        }
        let db = AgentDb::open(&path).unwrap();
        let a = db.action::<(String, u64)>("vote:1").unwrap().unwrap();
        assert_eq!(a.state, ActionState::Prepared);
        assert_eq!(a.data, ("salt".to_string(), 42));
        db.set_action_state("vote:1", ActionState::Done, Some(B256::repeat_byte(3)))
            .unwrap();
        let a = db.action::<(String, u64)>("vote:1").unwrap().unwrap();
        assert_eq!(
            (a.state, a.tx_hash),
            (ActionState::Done, Some(B256::repeat_byte(3)))
        );
        assert_eq!(db.count_actions("vote:", ActionState::Done).unwrap(), 1);
        assert!(db.action::<u64>("nope").unwrap().is_none());
    }

    #[test]
    fn vote_reveals_are_recorded_per_coordinator_and_undone_by_reorgs() {
        let db = AgentDb::open_in_memory().unwrap();
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        assert!(!db.vote_revealed(1, a).unwrap());
        db.insert_vote_reveal(1, a, id(6)).unwrap();
        assert!(db.vote_revealed(1, a).unwrap());
        assert!(!db.vote_revealed(1, b).unwrap(), "another coordinator");
        assert!(!db.vote_revealed(2, a).unwrap(), "another task");
        assert_eq!(db.rollback(id(6).tx, 6).unwrap(), 1);
        assert!(!db.vote_revealed(1, a).unwrap());
    }

    #[test]
    fn a_read_only_view_lists_actions_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let db = AgentDb::open(&path).unwrap();
        for (key, state) in [
            ("vote:1", ActionState::Done),
            ("vote:2", ActionState::Prepared),
            ("solve:1", ActionState::Skipped),
        ] {
            db.put_action(
                key,
                Some(1),
                state,
                &serde_json::json!({ "k": key }),
                3,
                None,
            )
            .unwrap();
        }
        let ro = AgentDb::open_read_only(&path).unwrap();
        let votes = ro.actions("vote:").unwrap();
        assert_eq!(
            votes
                .iter()
                .map(|(k, a)| (k.as_str(), a.state))
                .collect::<Vec<_>>(),
            [
                ("vote:1", ActionState::Done),
                ("vote:2", ActionState::Prepared)
            ]
        );
        assert_eq!(votes[1].1.data["k"], "vote:2");
        assert!(
            ro.put_action("vote:3", None, ActionState::Done, &(), 1, None)
                .is_err()
        );
        assert!(AgentDb::open_read_only(dir.path().join("missing.sqlite")).is_err());
    }

    #[test]
    fn models_are_pending_until_accepted() {
        let db = AgentDb::open_in_memory().unwrap();
        let m = ModelRow {
            root: B256::repeat_byte(9),
            project_id: 1,
            parent_root: B256::repeat_byte(8),
            manifest_hash: B256::repeat_byte(7),
            task_ids: vec![1],
            publisher: Address::repeat_byte(6),
            block: 40,
        };
        db.insert_model(&m, id(4)).unwrap();
        assert_eq!(db.pending_models(1).unwrap(), vec![m.clone()]);
        assert_eq!(db.manifest_hash(m.root).unwrap(), Some(m.manifest_hash));
        db.insert_accepted(m.root, 1, 1, id(5)).unwrap();
        assert!(db.pending_models(1).unwrap().is_empty());
    }

    #[test]
    fn the_status_accessors_read_rewards_and_accepted_versions() {
        let db = AgentDb::open_in_memory().unwrap();
        let mut other = task(2, 8);
        other.project_id = 2;
        db.insert_task(&task(3, 9), U256::from(7), id(1)).unwrap();
        db.insert_task(&other, U256::from(5), id(2)).unwrap();
        db.insert_task(&task(1, 7), U256::from(5), id(3)).unwrap();
        assert_eq!(db.task_ids(1).unwrap(), [1, 3]);
        assert_eq!(db.task_ids(2).unwrap(), [2]);
        assert!(db.task_ids(9).unwrap().is_empty());
        assert_eq!(db.task_reward(3).unwrap(), Some(U256::from(7)));
        assert_eq!(db.task_reward(4).unwrap(), None);

        let (a, b) = (Address::repeat_byte(0xb), Address::repeat_byte(0xa));
        db.insert_incentive(1, a, U256::from(3), U256::from(2), U256::from(9), id(4))
            .unwrap();
        db.insert_incentive(1, b, U256::from(4), U256::from(1), U256::from(8), id(5))
            .unwrap();
        let reward = |solver, c: u64, i: u64, amount: u64| SolverReward {
            solver,
            consensus: U256::from(c),
            incentive: U256::from(i),
            amount: U256::from(amount),
        };
        assert_eq!(
            db.solver_rewards(1).unwrap(),
            [reward(b, 4, 1, 8), reward(a, 3, 2, 9)],
            "by solver"
        );
        assert_eq!(
            db.incentives(1).unwrap(),
            [
                (b, U256::from(1), U256::from(8)),
                (a, U256::from(2), U256::from(9))
            ]
        );
        assert!(db.solver_rewards(3).unwrap().is_empty());

        // The other payouts, by account and kind; a reorg removes one.
        db.insert_payout(1, a, "coordinator", U256::from(5), id(20))
            .unwrap();
        db.insert_payout(1, a, "aggregator", U256::from(2), id(21))
            .unwrap();
        db.insert_payout(1, b, "proposer", U256::from(1), id(22))
            .unwrap();
        assert_eq!(
            db.payouts(1).unwrap(),
            [
                (b, "proposer".to_string(), U256::from(1)),
                (a, "aggregator".to_string(), U256::from(2)),
                (a, "coordinator".to_string(), U256::from(5)),
            ]
        );
        assert_eq!(db.rollback(id(21).tx, 21).unwrap(), 1);
        assert_eq!(db.payouts(1).unwrap().len(), 2);
        assert!(db.payouts(3).unwrap().is_empty());

        let model = |root: u8, block: u64| ModelRow {
            root: B256::repeat_byte(root),
            project_id: 1,
            parent_root: B256::ZERO,
            manifest_hash: B256::repeat_byte(root + 1),
            task_ids: vec![1, 3],
            publisher: Address::repeat_byte(6),
            block,
        };
        db.insert_model(&model(0x20, 50), id(6)).unwrap();
        db.insert_model(&model(0x10, 40), id(7)).unwrap();
        // Participants of project 1: its proposer, solvers, coordinators and publishers, once
        // each; project 2's are not.
        let solution = |solver| SolutionRow {
            solver,
            delta_root: B256::ZERO,
            manifest_hash: B256::ZERO,
            reveal_index: 0,
        };
        db.insert_solution(1, &solution(a), id(30)).unwrap();
        db.insert_solution(3, &solution(a), id(31)).unwrap();
        db.insert_solution(2, &solution(Address::repeat_byte(0xee)), id(32))
            .unwrap();
        db.insert_vote_reveal(1, b, id(33)).unwrap();
        assert_eq!(
            db.participants(1).unwrap(),
            [Address::repeat_byte(1), Address::repeat_byte(6), b, a]
        );
        db.insert_accepted(B256::repeat_byte(0x10), 1, 4, id(8))
            .unwrap();
        assert_eq!(
            db.published_models(1).unwrap(),
            [(model(0x10, 40), Some(4)), (model(0x20, 50), None)]
        );
        assert!(db.published_models(2).unwrap().is_empty());
        // A reorg of the acceptance leaves the publication, not accepted.
        db.rollback(id(8).tx, 8).unwrap();
        assert_eq!(db.published_models(1).unwrap()[0].1, None);
    }

    #[test]
    fn a_read_only_file_without_reveals_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE tasks (task_id INTEGER PRIMARY KEY);")
            .unwrap();
        let db = AgentDb::open_read_only(&path).unwrap();
        assert!(!db.vote_revealed(1, Address::repeat_byte(1)).unwrap());
        assert!(
            db.solutions(1).is_err(),
            "only the missing reveals table reads as empty"
        );
    }

    /// The agent database as written before schema versions existed, with a stored secret and a
    /// recorded reveal in it.
    fn version_0_file(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(include_str!("../tests/fixtures/agent_db_v0.sql"))
            .unwrap();
        conn.execute(
            "INSERT INTO actions (key, task_id, state, data, block, tx_hash) \
             VALUES ('vote:7', 7, 'prepared', ?1, 40, NULL)",
            params![r#"{"scores":[65535,0],"salt":"0x5a17000000000000000000000000000000000000000000000000000000000001","base_loss":5.0,"losses":[4.0,5.5]}"#],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO solutions (task_id, solver, delta_root, num_samples, reveal_index, tx, \
             log_index) VALUES (7, ?1, ?2, '64', 0, ?3, 3)",
            params![
                Address::repeat_byte(0xab).to_string(),
                B256::repeat_byte(0x40).to_string(),
                B256::repeat_byte(0x77).to_string()
            ],
        )
        .unwrap();
        // Before version 4 a task had no proposal time.
        conn.execute(
            "INSERT INTO tasks (task_id, project_id, proposer, spec_hash, gt_commit, reward, block, \
             commit_end, gt_reveal_end, sol_reveal_end, vote_commit_end, vote_reveal_end, tx, \
             log_index) VALUES (7, 1, ?1, ?2, ?2, '10', 30, 31, 32, 33, 34, 35, ?2, 1)",
            params![
                Address::repeat_byte(0x01).to_checksum(None),
                B256::repeat_byte(0x79).to_string()
            ],
        )
        .unwrap();
        // Before version 3 addresses were stored EIP-55 checksummed.
        conn.execute(
            "INSERT INTO vote_reveals (task_id, coordinator, block, tx, log_index) \
             VALUES (7, ?1, 41, ?2, 0)",
            params![
                Address::repeat_byte(0xcd).to_checksum(None),
                B256::repeat_byte(0x78).to_string()
            ],
        )
        .unwrap();
    }

    #[test]
    fn an_upgrade_from_version_0_keeps_every_secret_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        version_0_file(&path);

        let db = AgentDb::open(&path).unwrap();
        // The unrevealed vote (its salt and scores) reads back exactly.
        let vote = db.action::<serde_json::Value>("vote:7").unwrap().unwrap();
        assert_eq!(vote.state, ActionState::Prepared);
        assert_eq!(
            vote.data["salt"],
            "0x5a17000000000000000000000000000000000000000000000000000000000001"
        );
        assert_eq!(vote.data["scores"], serde_json::json!([65535, 0]));
        // The reveal recorded before keeps its root, with a zero manifest hash.
        let sols = db.solutions(7).unwrap();
        assert_eq!(sols.len(), 1);
        assert_eq!(sols[0].delta_root, B256::repeat_byte(0x40));
        assert_eq!(sols[0].manifest_hash, B256::ZERO);
        assert_eq!(sols[0].solver, Address::repeat_byte(0xab));
        // A task recorded before version 4 has no time; one recorded now has its block's.
        assert_eq!(db.task(7).unwrap().map(|t| t.block), Some(30));
        assert_eq!(db.task_time(7).unwrap(), None);
        db.insert_task(
            &task(8, 8),
            U256::from(10),
            LogId {
                at: Some(1_700_000_123),
                ..id(50)
            },
        )
        .unwrap();
        assert_eq!(db.task_time(8).unwrap(), Some(1_700_000_123));
        assert_eq!(
            db.task_time(9).unwrap(),
            None,
            "an unknown task has no time"
        );
        // A checksummed address stored before version 3 is found by the address.
        assert!(db.vote_revealed(7, Address::repeat_byte(0xcd)).unwrap());
        // New reveals are recorded with their manifest hash.
        let row = SolutionRow {
            solver: Address::repeat_byte(0x12),
            delta_root: B256::repeat_byte(0x41),
            manifest_hash: B256::repeat_byte(0x4d),
            reveal_index: 1,
        };
        db.insert_solution(7, &row, id(9)).unwrap();
        assert_eq!(
            db.solutions(7).unwrap()[1].manifest_hash,
            B256::repeat_byte(0x4d)
        );
        drop(db);

        // The file now says the current version, holds addresses in lowercase, and opening it
        // again changes nothing.
        let conn = Connection::open(&path).unwrap();
        let stored: String = conn
            .query_row("SELECT coordinator FROM vote_reveals", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, format!("0x{}", "cd".repeat(20)));
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        drop(conn);
        let db = AgentDb::open(&path).unwrap();
        assert_eq!(db.solutions(7).unwrap().len(), 2);
        assert!(db.action::<serde_json::Value>("vote:7").unwrap().is_some());
    }

    #[test]
    fn a_file_from_a_newer_build_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        drop(AgentDb::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
            .unwrap();
        let Err(err) = AgentDb::open(&path) else {
            panic!("a newer schema must be refused");
        };
        assert!(
            matches!(err, DbError::Schema(SchemaError::TooNew { found, known, .. }) if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err}"
        );
        assert!(err.to_string().contains("newer than this build"), "{err}");
        let v: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_fresh_file_starts_at_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        drop(AgentDb::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert!(
            table_columns(&conn, "solutions")
                .unwrap()
                .contains(&"manifest_hash".to_string())
        );
    }
}
