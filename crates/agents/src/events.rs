//! The chain events an agent follows, recorded into its [`AgentDb`] by an
//! [`autonet_chain::EventWatcher`] (persisted cursor, bounded ranges, reorg rollback).

use std::sync::Arc;

use alloy::primitives::{Address, Log as PrimitiveLog};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use autonet_bindings::shards::ModelShardRegistry;
use autonet_bindings::training::{Rewards, TaskManager};
use autonet_chain::watcher::{HandlerError, LogHandler};

use crate::db::{AgentDb, LogId, ModelRow, SolutionRow, TaskRow};

/// The contracts whose logs are recorded.
pub fn watched(contracts: &autonet_bindings::Contracts) -> Vec<Address> {
    vec![
        contracts.task_manager,
        contracts.rewards,
        contracts.shard_registry,
    ]
}

/// The name of a recorded event, and whether its first indexed topic is a task id.
fn event_name(topic0: alloy::primitives::B256) -> Option<(&'static str, bool)> {
    Some(match topic0 {
        TaskManager::TaskProposed::SIGNATURE_HASH => ("TaskProposed", true),
        TaskManager::GroundTruthRevealed::SIGNATURE_HASH => ("GroundTruthRevealed", true),
        TaskManager::SolutionRevealed::SIGNATURE_HASH => ("SolutionRevealed", true),
        TaskManager::VoteRevealed::SIGNATURE_HASH => ("VoteRevealed", true),
        TaskManager::TaskFinalized::SIGNATURE_HASH => ("TaskFinalized", true),
        TaskManager::TaskClosed::SIGNATURE_HASH => ("TaskClosed", true),
        TaskManager::TaskCancelled::SIGNATURE_HASH => ("TaskCancelled", true),
        Rewards::SolverRewarded::SIGNATURE_HASH => ("SolverRewarded", true),
        Rewards::CoordinatorRewarded::SIGNATURE_HASH => ("CoordinatorRewarded", true),
        Rewards::ProposerRewarded::SIGNATURE_HASH => ("ProposerRewarded", true),
        Rewards::AggregatorFeePaid::SIGNATURE_HASH => ("AggregatorFeePaid", true),
        ModelShardRegistry::ModelPublished::SIGNATURE_HASH => ("ModelPublished", false),
        ModelShardRegistry::ModelAccepted::SIGNATURE_HASH => ("ModelAccepted", false),
        _ => return None,
    })
}

/// Writes the round's events into the database.
#[derive(Clone, Debug)]
pub struct Recorder {
    db: Arc<AgentDb>,
    witness: Option<Arc<crate::witness::Witness>>,
}

impl Recorder {
    /// A recorder into `db`.
    pub fn new(db: Arc<AgentDb>) -> Self {
        Self { db, witness: None }
    }

    /// The same recorder, also writing each event it records (and each a reorg takes back) in
    /// the witness log.
    pub fn with_witness(self, witness: Arc<crate::witness::Witness>) -> Self {
        Self {
            witness: Some(witness),
            ..self
        }
    }

    fn witness(&self, log: &Log, kind: &str) {
        let Some(w) = &self.witness else { return };
        let Some((name, by_task)) = log.topic0().and_then(|t| event_name(*t)) else {
            return;
        };
        let task = log.topics().get(1).filter(|_| by_task).map(|t| {
            u64::try_from(alloy::primitives::U256::from_be_bytes(t.0)).unwrap_or(u64::MAX)
        });
        w.record(
            log.block_number.unwrap_or_default(),
            task,
            kind,
            name,
            &serde_json::json!({
                "contract": log.address(),
                "tx": log.transaction_hash,
                "log_index": log.log_index,
                "topics": log.topics(),
                "data": log.data().data,
            }),
        );
    }

    fn record(&self, log: &Log) -> Result<(), HandlerError> {
        let Some(topic0) = log.topic0().copied() else {
            return Ok(());
        };
        let id = LogId {
            tx: log.transaction_hash.unwrap_or_default(),
            log_index: log.log_index.unwrap_or_default(),
            block: log.block_number.unwrap_or_default(),
            at: log.block_timestamp,
        };
        let inner: &PrimitiveLog = &log.inner;
        let db = &self.db;
        let u64_of = |v: alloy::primitives::U256| u64::try_from(v).unwrap_or(u64::MAX);
        match topic0 {
            TaskManager::TaskProposed::SIGNATURE_HASH => {
                let e = TaskManager::TaskProposed::decode_log(inner)?.data;
                let d = &e.deadlines;
                db.insert_task(
                    &TaskRow {
                        task_id: u64_of(e.taskId),
                        project_id: u64_of(e.projectId),
                        proposer: e.proposer,
                        spec_hash: e.specHash,
                        gt_commit: e.gtCommit,
                        block: id.block,
                        commit_end: d.commitEnd,
                        gt_reveal_end: d.gtRevealEnd,
                        sol_reveal_end: d.solRevealEnd,
                        vote_commit_end: d.voteCommitEnd,
                        vote_reveal_end: d.voteRevealEnd,
                    },
                    e.reward,
                    id,
                )?;
            }
            TaskManager::GroundTruthRevealed::SIGNATURE_HASH => {
                let e = TaskManager::GroundTruthRevealed::decode_log(inner)?.data;
                db.insert_eval_spec(u64_of(e.taskId), e.evalSpecHash, id)?;
            }
            TaskManager::SolutionRevealed::SIGNATURE_HASH => {
                let e = TaskManager::SolutionRevealed::decode_log(inner)?.data;
                db.insert_solution(
                    u64_of(e.taskId),
                    &SolutionRow {
                        solver: e.solver,
                        delta_root: e.deltaRoot,
                        manifest_hash: e.manifestHash,
                        reveal_index: e.revealIndex,
                    },
                    id,
                )?;
            }
            TaskManager::VoteRevealed::SIGNATURE_HASH => {
                let e = TaskManager::VoteRevealed::decode_log(inner)?.data;
                db.insert_vote_reveal(u64_of(e.taskId), e.coordinator, id)?;
            }
            TaskManager::TaskFinalized::SIGNATURE_HASH => {
                let e = TaskManager::TaskFinalized::decode_log(inner)?.data;
                db.insert_outcome(u64_of(e.taskId), "finalized", id)?;
            }
            TaskManager::TaskClosed::SIGNATURE_HASH => {
                let e = TaskManager::TaskClosed::decode_log(inner)?.data;
                db.insert_outcome(u64_of(e.taskId), "closed", id)?;
            }
            TaskManager::TaskCancelled::SIGNATURE_HASH => {
                let e = TaskManager::TaskCancelled::decode_log(inner)?.data;
                db.insert_outcome(u64_of(e.taskId), "cancelled", id)?;
            }
            Rewards::SolverRewarded::SIGNATURE_HASH => {
                let e = Rewards::SolverRewarded::decode_log(inner)?.data;
                db.insert_incentive(
                    u64_of(e.taskId),
                    e.solver,
                    e.consensus,
                    e.incentive,
                    e.amount,
                    id,
                )?;
            }
            Rewards::CoordinatorRewarded::SIGNATURE_HASH => {
                let e = Rewards::CoordinatorRewarded::decode_log(inner)?.data;
                db.insert_payout(u64_of(e.taskId), e.coordinator, "coordinator", e.amount, id)?;
            }
            Rewards::ProposerRewarded::SIGNATURE_HASH => {
                let e = Rewards::ProposerRewarded::decode_log(inner)?.data;
                db.insert_payout(u64_of(e.taskId), e.proposer, "proposer", e.amount, id)?;
            }
            Rewards::AggregatorFeePaid::SIGNATURE_HASH => {
                let e = Rewards::AggregatorFeePaid::decode_log(inner)?.data;
                db.insert_payout(u64_of(e.taskId), e.aggregator, "aggregator", e.amount, id)?;
            }
            ModelShardRegistry::ModelPublished::SIGNATURE_HASH => {
                let e = ModelShardRegistry::ModelPublished::decode_log(inner)?.data;
                db.insert_model(
                    &ModelRow {
                        root: e.root,
                        project_id: u64_of(e.projectId),
                        parent_root: e.parentRoot,
                        manifest_hash: e.manifestHash,
                        task_ids: e.taskIds.iter().map(|t| u64_of(*t)).collect(),
                        publisher: e.publisher,
                        block: id.block,
                    },
                    id,
                )?;
            }
            ModelShardRegistry::ModelAccepted::SIGNATURE_HASH => {
                let e = ModelShardRegistry::ModelAccepted::decode_log(inner)?.data;
                db.insert_accepted(e.root, u64_of(e.projectId), u64_of(e.version), id)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl LogHandler for Recorder {
    async fn handle(&mut self, log: &Log) -> Result<(), HandlerError> {
        self.record(log)?;
        self.witness(log, "event");
        Ok(())
    }

    async fn rollback(&mut self, log: &Log) -> Result<(), HandlerError> {
        let n = self.db.rollback(
            log.transaction_hash.unwrap_or_default(),
            log.log_index.unwrap_or_default(),
        )?;
        tracing::warn!(tx = ?log.transaction_hash, log_index = ?log.log_index, rows = n, "reorg: forgot an event");
        self.witness(log, "reorg");
        Ok(())
    }
}
