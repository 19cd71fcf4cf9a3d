//! An in-memory chain and node for the role tests: transactions land as effects at a block,
//! reads derive the chain's state from the effects at or below the tick's block, and a reorg
//! drops the effects above a block, as `anvil_reorg` does.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::{Address, B256, U256};
use autonet_bindings::enums::{ModelStatus, TaskState};

use super::ports::{
    Aggregate, Chain, Deadlines, ModelInfo, Node, Sent, Solution, TaskInfo, Tx, Vote,
};
use crate::agent::AgentError;
use crate::bls::Collection;
use crate::db::{ModelRow, SolutionRow, TaskRow};

/// One transaction that landed.
#[derive(Clone, Debug)]
pub(crate) struct Effect {
    pub block: u64,
    pub from: Address,
    pub tx: Tx,
    /// `Propose`: the task it created.
    pub task: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct ChainState {
    /// The tick's block (reads see effects at or below it).
    pub head: u64,
    pub effects: Vec<Effect>,
    /// Every transaction sent, landed or not, in order.
    pub sent: Vec<Tx>,
    /// Sends to fail (before landing) from now on.
    pub fail_sends: u32,
    /// Tasks proposed by others: their proposer and commitment.
    pub tasks: HashMap<u64, (Address, B256)>,
    pub next_task: u64,
    pub model_root: B256,
    pub base_roots: HashMap<u64, B256>,
    /// Records of models published by others (or preset), by root.
    pub models: HashMap<B256, ModelInfo>,
    pub publish_window: u64,
    pub standing: Option<String>,
    /// Model records expire this many blocks after publication.
    pub model_ttl: u64,
    /// Phases closed early: (task, block, the task's deadlines from that block on).
    pub closed_early: Vec<(u64, u64, Deadlines)>,
    /// `Project.config.maxStaleness`.
    pub max_staleness: u8,
    /// Shard announcements made: (root, shard count).
    pub announced: Vec<(B256, usize)>,
}

/// The fake chain; `me` sends every transaction.
pub(crate) struct FakeChain {
    pub me: Address,
    pub state: Mutex<ChainState>,
}

impl FakeChain {
    pub fn new(me: Address, head: u64) -> Self {
        Self {
            me,
            state: Mutex::new(ChainState {
                head,
                effects: Vec::new(),
                sent: Vec::new(),
                fail_sends: 0,
                tasks: HashMap::new(),
                next_task: 1,
                model_root: B256::repeat_byte(0x11),
                base_roots: HashMap::new(),
                models: HashMap::new(),
                publish_window: 10,
                standing: None,
                model_ttl: 50,
                closed_early: Vec::new(),
                max_staleness: 0,
                announced: Vec::new(),
            }),
        }
    }

    pub fn s(&self) -> std::sync::MutexGuard<'_, ChainState> {
        self.state.lock().unwrap()
    }

    /// Moves the head `n` blocks on.
    pub fn mine(&self, n: u64) {
        self.s().head += n;
    }

    /// Sets the head.
    pub fn at(&self, head: u64) {
        self.s().head = head;
    }

    /// Drops every effect above `head - depth` (their blocks replaced by empty ones).
    pub fn reorg(&self, depth: u64) -> usize {
        let mut s = self.s();
        let fork = s.head.saturating_sub(depth);
        let before = s.effects.len();
        s.effects.retain(|e| e.block <= fork);
        before - s.effects.len()
    }

    /// Lands `tx` from `from` (another participant) at the head.
    pub fn land_from(&self, from: Address, tx: Tx) {
        let mut s = self.s();
        let block = s.head;
        s.effects.push(Effect {
            block,
            from,
            tx,
            task: None,
        });
    }

    /// Closes a phase of `task` early at the head: from this block on the chain holds
    /// `deadlines` for it.
    pub fn close_early(&self, task: u64, deadlines: Deadlines) {
        let mut s = self.s();
        let block = s.head;
        s.closed_early.push((task, block, deadlines));
    }

    /// The transactions sent so far.
    pub fn sent(&self) -> Vec<Tx> {
        self.s().sent.clone()
    }

    fn visible(&self) -> Vec<Effect> {
        let s = self.s();
        s.effects
            .iter()
            .filter(|e| e.block <= s.head)
            .cloned()
            .collect()
    }

    fn task_effects(&self, task: u64) -> Vec<Effect> {
        self.visible()
            .into_iter()
            .filter(|e| tx_task(&e.tx).or(e.task) == Some(task))
            .collect()
    }
}

fn tx_task(tx: &Tx) -> Option<u64> {
    match tx {
        Tx::CommitSolution { task, .. }
        | Tx::RevealSolution { task, .. }
        | Tx::RevealGroundTruth { task, .. }
        | Tx::CommitVote { task, .. }
        | Tx::RevealVote { task, .. }
        | Tx::Finalize { task }
        | Tx::Publish { task, .. } => Some(*task),
        _ => None,
    }
}

impl Chain for FakeChain {
    fn head(&self) -> u64 {
        self.s().head
    }

    async fn latest(&self) -> Result<u64, AgentError> {
        Ok(self.s().head)
    }

    async fn task(&self, task: u64) -> Result<TaskInfo, AgentError> {
        let effects = self.task_effects(task);
        let proposal = effects.iter().find_map(|e| match &e.tx {
            Tx::Propose { gt_commit, .. } => Some((e.from, *gt_commit)),
            _ => None,
        });
        let Some((proposer, gt_commit)) = proposal.or_else(|| self.s().tasks.get(&task).copied())
        else {
            return Ok(TaskInfo {
                state: Some(TaskState::None),
                proposer: Address::ZERO,
                gt_commit: B256::ZERO,
                num_committed: 0,
                num_revealed: 0,
                deadlines: None,
            });
        };
        let has = |f: fn(&Tx) -> bool| effects.iter().any(|e| f(&e.tx));
        let state = if has(|t| matches!(t, Tx::Finalize { .. })) {
            TaskState::Finalized
        } else if has(|t| matches!(t, Tx::RevealGroundTruth { .. })) {
            TaskState::GroundTruthRevealed
        } else {
            TaskState::Open
        };
        let count = |f: fn(&Tx) -> bool| effects.iter().filter(|e| f(&e.tx)).count() as u8;
        Ok(TaskInfo {
            state: Some(state),
            proposer,
            gt_commit,
            num_committed: count(|t| matches!(t, Tx::CommitSolution { .. })),
            num_revealed: count(|t| matches!(t, Tx::RevealSolution { .. })),
            deadlines: {
                let s = self.s();
                s.closed_early
                    .iter()
                    .rfind(|(t, block, _)| *t == task && *block <= s.head)
                    .map(|(_, _, d)| *d)
            },
        })
    }

    async fn committed_solvers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        Ok(self
            .task_effects(task)
            .into_iter()
            .filter(|e| matches!(e.tx, Tx::CommitSolution { .. }))
            .map(|e| e.from)
            .collect())
    }

    async fn revealed_solvers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        Ok(self
            .task_effects(task)
            .into_iter()
            .filter(|e| matches!(e.tx, Tx::RevealSolution { .. }))
            .map(|e| e.from)
            .collect())
    }

    async fn vote_committers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        Ok(self
            .task_effects(task)
            .into_iter()
            .filter(|e| matches!(e.tx, Tx::CommitVote { .. }))
            .map(|e| e.from)
            .collect())
    }

    async fn scores_of(&self, task: u64, coordinator: Address) -> Result<Vec<u16>, AgentError> {
        Ok(self
            .task_effects(task)
            .into_iter()
            .find_map(|e| match e.tx {
                Tx::RevealVote { scores, .. } if e.from == coordinator => Some(scores),
                _ => None,
            })
            .unwrap_or_default())
    }

    async fn model_root(&self) -> Result<B256, AgentError> {
        Ok(self.s().model_root)
    }

    async fn base_root(&self, task: &TaskRow) -> Result<B256, AgentError> {
        let s = self.s();
        Ok(s.base_roots
            .get(&task.task_id)
            .copied()
            .unwrap_or(s.model_root))
    }

    async fn publish_window(&self) -> Result<u64, AgentError> {
        Ok(self.s().publish_window)
    }

    async fn max_staleness(&self) -> Result<u8, AgentError> {
        Ok(self.s().max_staleness)
    }

    async fn model(&self, root: B256) -> Result<ModelInfo, AgentError> {
        let visible = self.visible();
        let ttl = self.s().model_ttl;
        let published = visible.iter().rev().find_map(|e| match &e.tx {
            Tx::Publish { model, .. } if model.root == root => Some(ModelInfo {
                status: Some(ModelStatus::Pending),
                publisher: e.from,
                manifest_hash: model.manifest_hash,
                published_block: e.block,
                expires_at: e.block + ttl,
                shard_count: model.shard_count(),
            }),
            _ => None,
        });
        let mut info = published
            .or_else(|| self.s().models.get(&root).cloned())
            .unwrap_or(ModelInfo {
                status: Some(ModelStatus::None),
                publisher: Address::ZERO,
                manifest_hash: B256::ZERO,
                published_block: 0,
                expires_at: 0,
                shard_count: 0,
            });
        if visible
            .iter()
            .any(|e| matches!(&e.tx, Tx::AttestBls { root: r, .. } if *r == root))
        {
            info.status = Some(ModelStatus::Accepted);
        }
        Ok(info)
    }

    async fn has_attested(&self, root: B256, who: Address) -> Result<bool, AgentError> {
        Ok(self
            .visible()
            .iter()
            .any(|e| e.from == who && matches!(&e.tx, Tx::Attest { root: r, .. } if *r == root)))
    }

    async fn standing(&self) -> Result<Option<String>, AgentError> {
        Ok(self.s().standing.clone())
    }

    async fn send(&self, tx: &Tx) -> Result<Sent, AgentError> {
        let mut s = self.s();
        s.sent.push(tx.clone());
        if s.fail_sends > 0 {
            s.fail_sends -= 1;
            return Err(AgentError::Other(format!(
                "{}: connection reset (injected)",
                tx.describe()
            )));
        }
        let block = s.head + 1;
        let task = match tx {
            Tx::Propose { .. } => {
                let id = s.next_task;
                s.next_task += 1;
                Some(id)
            }
            _ => None,
        };
        let n = s.effects.len() as u8;
        s.effects.push(Effect {
            block,
            from: self.me,
            tx: tx.clone(),
            task,
        });
        Ok(Sent {
            tx_hash: B256::with_last_byte(n.wrapping_add(1)),
            block,
            task_id: task,
        })
    }

    async fn announce(&self, root: B256, shard_count: usize) -> Result<(), AgentError> {
        self.s().announced.push((root, shard_count));
        Ok(())
    }
}

/// The fake local work: deterministic solutions, scores and aggregates; counts its calls.
#[derive(Default)]
pub(crate) struct FakeNode {
    pub trainings: Mutex<u32>,
    pub scorings: Mutex<u32>,
    /// Blocks a training or a scoring takes (moves `clock`'s head).
    pub work_blocks: u64,
    pub clock: Option<std::sync::Arc<FakeChain>>,
    pub aggregate: Mutex<Option<Aggregate>>,
    /// Per-task aggregates, in place of `aggregate`.
    pub aggregate_of: Mutex<HashMap<u64, Aggregate>>,
    /// Every aggregation asked for: (task, the model it was applied to).
    pub aggregated: Mutex<Vec<(u64, B256)>>,
    pub bls: bool,
    /// A training that abstains (a copier with nothing to copy), saying this.
    pub abstain: Option<&'static str>,
    pub signed: Mutex<Vec<B256>>,
    pub collection: Mutex<Option<Collection>>,
    pub forgotten: Mutex<Vec<B256>>,
}

impl FakeNode {
    pub fn solution(task: u64) -> Solution {
        Solution {
            delta_root: B256::with_last_byte(task as u8),
            manifest_hash: B256::repeat_byte(task as u8),
            salt: B256::repeat_byte(0x5a),
            train_loss: 1.0,
            train_secs: 0.1,
        }
    }
}

impl Node for FakeNode {
    async fn train(&self, task: &TaskRow, _base_root: B256) -> Result<Solution, AgentError> {
        *self.trainings.lock().unwrap() += 1;
        if let Some(c) = &self.clock {
            c.mine(self.work_blocks);
        }
        if let Some(why) = self.abstain {
            return Err(AgentError::Abstain(why.into()));
        }
        let mut s = Self::solution(task.task_id);
        s.salt = super::random_b256();
        Ok(s)
    }

    async fn score(
        &self,
        _task: &TaskRow,
        _eval_spec_hash: B256,
        revealed: &[Address],
        _solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        *self.scorings.lock().unwrap() += 1;
        if let Some(c) = &self.clock {
            c.mine(self.work_blocks);
        }
        Ok(Vote {
            scores: revealed.iter().map(|_| 5_000).collect(),
            salt: super::random_b256(),
            base_loss: 2.0,
            losses: revealed.iter().map(|_| 1.9).collect(),
            mints: Vec::new(),
        })
    }

    async fn aggregate(&self, task: &TaskRow, onto: B256) -> Result<Option<Aggregate>, AgentError> {
        self.aggregated.lock().unwrap().push((task.task_id, onto));
        let own = self
            .aggregate_of
            .lock()
            .unwrap()
            .get(&task.task_id)
            .cloned();
        Ok(own
            .or_else(|| self.aggregate.lock().unwrap().clone())
            .map(|a| Aggregate {
                parent_root: onto,
                ..a
            }))
    }

    fn has_bls(&self) -> bool {
        self.bls
    }

    async fn attestation_message(&self, model: &ModelRow) -> Result<B256, AgentError> {
        Ok(alloy::primitives::keccak256(
            [model.root.as_slice(), &model.block.to_be_bytes()].concat(),
        ))
    }

    fn bls_signed(&self, _root: B256, message: B256) -> bool {
        self.signed.lock().unwrap().contains(&message)
    }

    fn bls_sign(&self, _root: B256, message: B256) {
        self.signed.lock().unwrap().push(message);
    }

    async fn bls_collect(&self, _root: B256, _message: B256) -> Result<Collection, AgentError> {
        Ok(self
            .collection
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Collection::Short(0, U256::ZERO, U256::from(1))))
    }

    fn bls_forget(&self, message: B256) {
        self.forgotten.lock().unwrap().push(message);
    }

    fn salt(&self, _action: &str, _task: Option<u64>, _block: u64) -> B256 {
        super::random_b256()
    }

    fn witness(&self, _what: super::ports::Witnessed<'_>) {}

    async fn anchor(&self, _task: u64) -> Result<(), AgentError> {
        Ok(())
    }
}
