//! The two seams of the role layer: [`Chain`] (reads at the tick's block and the transactions of
//! every action) and [`Node`] (the local work: training, scoring, aggregation, BLS signing). The
//! running agent implements both over alloy and libtorch (`super::live`); the unit tests implement
//! them in memory (`super::fake`), so that every decision of a role is tested in milliseconds.

use std::future::Future;

use alloy::primitives::{Address, B256, U256};
use autonet_bindings::enums::{ModelStatus, TaskState};
use serde::{Deserialize, Serialize};

use crate::agent::AgentError;
use crate::bls::Collection;
use crate::db::{ModelRow, SolutionRow, TaskRow};

/// A task as the chain holds it at the tick's block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Its state (`None` for a value this build does not know).
    pub state: Option<TaskState>,
    /// Who proposed it.
    pub proposer: Address,
    /// The proposer's ground-truth commitment.
    pub gt_commit: B256,
    /// Solver commitments holding a seat.
    pub num_committed: u8,
    /// Solutions revealed.
    pub num_revealed: u8,
    /// The task's deadlines now: the proposal's, or earlier once a phase closed early
    /// (`PhaseClosedEarly`). `None` when the chain does not know the task.
    pub deadlines: Option<Deadlines>,
}

/// The last block of each phase of a task (inclusive), as the chain holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Solvers commit until this block.
    pub commit_end: u64,
    /// Solvers reveal until this block.
    pub sol_reveal_end: u64,
    /// The proposer reveals the eval spec until this block.
    pub gt_reveal_end: u64,
    /// Coordinators commit votes until this block.
    pub vote_commit_end: u64,
    /// Coordinators reveal votes until this block.
    pub vote_reveal_end: u64,
}

impl Deadlines {
    /// `task` with these deadlines.
    pub fn apply(self, task: TaskRow) -> TaskRow {
        TaskRow {
            commit_end: self.commit_end,
            sol_reveal_end: self.sol_reveal_end,
            gt_reveal_end: self.gt_reveal_end,
            vote_commit_end: self.vote_commit_end,
            vote_reveal_end: self.vote_reveal_end,
            ..task
        }
    }
}

/// A model's record in `ModelShardRegistry` (its current publication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Status (`None` for a value this build does not know).
    pub status: Option<ModelStatus>,
    /// Who published the current record.
    pub publisher: Address,
    /// keccak256 of the published manifest.
    pub manifest_hash: B256,
    /// Block of the current publication.
    pub published_block: u64,
    /// Last block at which it can still be accepted.
    pub expires_at: u64,
    /// Its shards (data and parity; 0 for an unknown root).
    pub shard_count: usize,
}

/// A model manifest as published in `ModelShardRegistry.publishModel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Merkle root of the model.
    pub root: B256,
    /// keccak256 of its manifest.
    pub manifest_hash: B256,
    /// The base it was built on.
    pub parent_root: B256,
    /// Bytes of the encoded model.
    pub total_size: u64,
    /// Bytes per shard.
    pub shard_size: u32,
    /// Data shards.
    pub k: u8,
    /// Parity shards.
    pub m: u8,
}

impl Aggregate {
    /// Shards of the model (data and parity).
    pub fn shard_count(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }
}

/// The transaction of an action, built from its stored secrets. Sending the same `Tx` twice is
/// how an action dropped by a reorg is re-sent "with the same secrets".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tx {
    /// `TaskManager.proposeTask`.
    Propose {
        /// `task_spec_hash(project, base root)`.
        spec_hash: B256,
        /// `gt_commit(proposer, project, eval spec hash, salt)`.
        gt_commit: B256,
        /// The task's reward.
        reward: U256,
    },
    /// `TaskManager.commitSolution`.
    CommitSolution {
        /// Task.
        task: u64,
        /// `solution_commit(..)`.
        commitment: B256,
    },
    /// `TaskManager.revealSolution`.
    RevealSolution {
        /// Task.
        task: u64,
        /// Root of the delta.
        delta_root: B256,
        /// Its manifest hash.
        manifest_hash: B256,
        /// The commitment's salt.
        salt: B256,
    },
    /// `TaskManager.revealGroundTruth`.
    RevealGroundTruth {
        /// Task.
        task: u64,
        /// The eval spec hash.
        eval_spec_hash: B256,
        /// The commitment's salt.
        salt: B256,
    },
    /// `TaskManager.commitVote`.
    CommitVote {
        /// Task.
        task: u64,
        /// `vote_commit(..)`.
        commitment: B256,
    },
    /// `TaskManager.revealVote`.
    RevealVote {
        /// Task.
        task: u64,
        /// Scores in reveal order.
        scores: Vec<u16>,
        /// The commitment's salt.
        salt: B256,
    },
    /// `TaskManager.finalize` (anyone).
    Finalize {
        /// Task.
        task: u64,
    },
    /// `ModelShardRegistry.publishModel` of one task's aggregate.
    Publish {
        /// The aggregated task.
        task: u64,
        /// The model.
        model: Aggregate,
    },
    /// `ModelShardRegistry.attestModel` (alone).
    Attest {
        /// The model.
        root: B256,
        /// Its manifest hash.
        manifest_hash: B256,
        /// The publisher of the record attested.
        publisher: Address,
    },
    /// `ModelShardRegistry.attestModelBls` (one aggregate of the coordinators' signatures).
    AttestBls {
        /// The model.
        root: B256,
        /// Signer bitmap.
        bitmap: U256,
        /// Number of signers (for logs).
        signers: usize,
        /// Aggregate key on G2.
        apk_g2: [U256; 4],
        /// Aggregate signature.
        sigma: [U256; 2],
    },
}

impl Tx {
    /// What the transaction does, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Tx::Propose { .. } => "propose a task".into(),
            Tx::CommitSolution { task, .. } => format!("commit a solution to task {task}"),
            Tx::RevealSolution { task, .. } => format!("reveal the solution of task {task}"),
            Tx::RevealGroundTruth { task, .. } => {
                format!("reveal the ground truth of task {task}")
            }
            Tx::CommitVote { task, .. } => format!("commit a vote on task {task}"),
            Tx::RevealVote { task, .. } => format!("reveal the vote on task {task}"),
            Tx::Finalize { task } => format!("finalize task {task}"),
            Tx::Publish { task, .. } => format!("publish the aggregate of task {task}"),
            Tx::Attest { root, .. } => format!("attest model {root}"),
            Tx::AttestBls { root, signers, .. } => {
                format!("attest model {root} with one BLS aggregate of {signers}")
            }
        }
    }
}

/// A transaction that landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its hash.
    pub tx_hash: B256,
    /// The block it landed in.
    pub block: u64,
    /// `Propose`: the new task's id.
    pub task_id: Option<u64>,
}

/// A proposal's secrets (journal data of `propose:`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The eval spec hash (seed of the held-out windows).
    pub eval_spec_hash: B256,
    /// The commitment's salt.
    pub salt: B256,
    /// `gt_commit(..)` of the two.
    pub gt_commit: B256,
    /// The task's spec hash.
    pub spec_hash: B256,
    /// The task once proposed.
    pub task_id: Option<u64>,
}

/// A trained solution's secrets (journal data of `solve:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// Root of the delta.
    pub delta_root: B256,
    /// keccak256 of the delta's canonical manifest: committed with the root. Absent (zero) in a
    /// solution stored before commitments bound it.
    #[serde(default)]
    pub manifest_hash: B256,
    /// The commitment's salt.
    pub salt: B256,
    /// Training loss (logs, status page).
    pub train_loss: f32,
    /// Seconds of training (logs, status page).
    pub train_secs: f32,
}

/// A coordinator's scores and their secrets (journal data of `vote:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    /// Scores in reveal order.
    pub scores: Vec<u16>,
    /// The commitment's salt.
    pub salt: B256,
    /// Loss of the base model on the held-out windows.
    pub base_loss: f32,
    /// Loss of base + each delta (infinite for one that could not be evaluated or earned
    /// nothing; stored as `null`, which JSON has for it).
    #[serde(with = "losses_json")]
    pub losses: Vec<f32>,
    /// A cartridge kind: each contribution's mint and novelty (the reconciliation the scores
    /// come from); empty for the LM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mints: Vec<(u64, u64)>,
}

/// [`Vote::losses`] in JSON: a loss that is not finite is written `null` (as serde_json writes
/// it) and read back as infinite, so that a vote with an unavailable delta can be read again to
/// be revealed.
mod losses_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(losses: &[f32], s: S) -> Result<S::Ok, S::Error> {
        losses
            .iter()
            .map(|l| l.is_finite().then_some(*l))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Option<f32>>::deserialize(d)?
            .into_iter()
            .map(|l| l.unwrap_or(f32::INFINITY))
            .collect())
    }
}

/// Reads of the chain at one block (the tick's), and the transactions of the actions. Every read
/// of one tick sees the same block, so that no decision mixes two states of the chain.
pub trait Chain: Sync {
    /// The block every read of this tick is made at.
    fn head(&self) -> u64;
    /// The chain's newest block now (after long local work: did a window close meanwhile?).
    fn latest(&self) -> impl Future<Output = Result<u64, AgentError>> + Send;
    /// A task.
    fn task(&self, task: u64) -> impl Future<Output = Result<TaskInfo, AgentError>> + Send;
    /// Solvers holding a seat of `task`, in commit order.
    fn committed_solvers(
        &self,
        task: u64,
    ) -> impl Future<Output = Result<Vec<Address>, AgentError>> + Send;
    /// Solvers that revealed, in reveal order.
    fn revealed_solvers(
        &self,
        task: u64,
    ) -> impl Future<Output = Result<Vec<Address>, AgentError>> + Send;
    /// Coordinators holding a vote seat.
    fn vote_committers(
        &self,
        task: u64,
    ) -> impl Future<Output = Result<Vec<Address>, AgentError>> + Send;
    /// The revealed scores of `coordinator` (empty before its reveal).
    fn scores_of(
        &self,
        task: u64,
        coordinator: Address,
    ) -> impl Future<Output = Result<Vec<u16>, AgentError>> + Send;
    /// The project's current model root.
    fn model_root(&self) -> impl Future<Output = Result<B256, AgentError>> + Send;
    /// The model a task trains from (the project's root at its proposal block).
    fn base_root(&self, task: &TaskRow) -> impl Future<Output = Result<B256, AgentError>> + Send;
    /// The project's publish window (blocks after a finalization during which its aggregate may
    /// be published).
    fn publish_window(&self) -> impl Future<Output = Result<u64, AgentError>> + Send;
    /// How many models newer than a task's base its aggregate may be applied to
    /// (`Project.config.maxStaleness`: 0, rounds in sequence; 1, pipelined rounds).
    fn max_staleness(&self) -> impl Future<Output = Result<u8, AgentError>> + Send;
    /// The record of `root`.
    fn model(&self, root: B256) -> impl Future<Output = Result<ModelInfo, AgentError>> + Send;
    /// Whether `who` attested the current record of `root`.
    fn has_attested(
        &self,
        root: B256,
        who: Address,
    ) -> impl Future<Output = Result<bool, AgentError>> + Send;
    /// Why this account cannot take new work now (stake below its role's minimum, the project's
    /// budget below the task reward, ...), with what to do; `None` when it can.
    fn standing(&self) -> impl Future<Output = Result<Option<String>, AgentError>> + Send;
    /// Sends `tx` and waits for its receipt.
    fn send(&self, tx: &Tx) -> impl Future<Output = Result<Sent, AgentError>> + Send;
    /// Announces every shard of `root` held here (idempotent).
    fn announce(
        &self,
        root: B256,
        shard_count: usize,
    ) -> impl Future<Output = Result<(), AgentError>> + Send;
}

/// What the journal tells the witness log.
#[derive(Clone, Debug)]
pub enum Witnessed<'a> {
    /// An action's secrets were stored and its transaction is about to be sent.
    Prepared {
        /// The action.
        key: &'a str,
        /// Its task.
        task: Option<u64>,
        /// The tick's block.
        block: u64,
        /// The transaction.
        tx: &'a Tx,
        /// The stored data (sealed when `sealed`).
        data: serde_json::Value,
        /// Whether the data stays sealed until its reveal.
        sealed: bool,
    },
    /// An action's transaction landed.
    Landed {
        /// The action.
        key: &'a str,
        /// Its task.
        task: Option<u64>,
        /// Its block.
        block: u64,
        /// Its transaction.
        tx_hash: B256,
        /// The transaction.
        tx: &'a Tx,
    },
    /// An action was given up.
    Skipped {
        /// The action.
        key: &'a str,
        /// Its task.
        task: Option<u64>,
        /// The tick's block.
        block: u64,
        /// Why.
        why: &'a str,
    },
}

/// The local work of the roles.
pub trait Node: Sync {
    /// Trains a delta for `task` from `base_root` and stores it.
    fn train(
        &self,
        task: &TaskRow,
        base_root: B256,
    ) -> impl Future<Output = Result<Solution, AgentError>> + Send;
    /// Scores the revealed deltas of `task` on its held-out windows.
    fn score(
        &self,
        task: &TaskRow,
        eval_spec_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> impl Future<Output = Result<Vote, AgentError>> + Send;
    /// The aggregate of a finalized task applied to the model `onto` (its base, or with pipelined
    /// rounds the model built on its base); `None`: no solver earned incentive.
    fn aggregate(
        &self,
        task: &TaskRow,
        onto: B256,
    ) -> impl Future<Output = Result<Option<Aggregate>, AgentError>> + Send;
    /// Whether this node signs attestations with a BLS key.
    fn has_bls(&self) -> bool;
    /// The message a coordinator signs for the publication `model`.
    fn attestation_message(
        &self,
        model: &ModelRow,
    ) -> impl Future<Output = Result<B256, AgentError>> + Send;
    /// Whether this node already signed `message` for `root`.
    fn bls_signed(&self, root: B256, message: B256) -> bool;
    /// Signs `message` for `root` (served to the aggregator).
    fn bls_sign(&self, root: B256, message: B256);
    /// Aggregator: collects the coordinators' signatures on `message`.
    fn bls_collect(
        &self,
        root: B256,
        message: B256,
    ) -> impl Future<Output = Result<Collection, AgentError>> + Send;
    /// Aggregator: drops the signatures collected on `message`.
    fn bls_forget(&self, message: B256);
    /// A fresh salt for the commit–reveal action `action` (the running agent's anchors its
    /// witness log's head: [`crate::witness::Witness::anchored_salt`]).
    fn salt(&self, action: &str, task: Option<u64>, block: u64) -> B256;
    /// Records what the journal did in the witness log.
    fn witness(&self, what: Witnessed<'_>);
    /// Aggregator: anchors the witness log's head on chain once it published `task`'s aggregate
    /// (the aggregator has no commit–reveal salt to carry it).
    fn anchor(&self, task: u64) -> impl Future<Output = Result<(), AgentError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{ActionState, AgentDb};

    #[test]
    fn a_vote_with_an_infinite_loss_is_stored_and_read_back() {
        let vote = Vote {
            scores: vec![40_000, 0],
            salt: B256::repeat_byte(7),
            base_loss: 5.5,
            losses: vec![5.0, f32::INFINITY],
            mints: vec![(10, 20), (0, 0)],
        };
        let json = serde_json::to_string(&vote).unwrap();
        assert!(json.contains("\"losses\":[5.0,null]"), "{json}");
        assert_eq!(serde_json::from_str::<Vote>(&json).unwrap(), vote);
        // The journal's path: what a coordinator stores before its commitment and reads to reveal.
        let db = AgentDb::open_in_memory().unwrap();
        db.put_action("vote:1", Some(1), ActionState::Prepared, &vote, 10, None)
            .unwrap();
        let back = db.action::<Vote>("vote:1").unwrap().unwrap().data;
        assert_eq!(back, vote);
        assert!(back.losses[1].is_infinite());
    }
}
