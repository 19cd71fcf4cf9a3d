//! The role ports over the running agent: alloy reads pinned to the tick's block, transactions
//! through the agent's sender, training, scoring and aggregation by the project's task kind
//! ([`crate::kind`]), BLS through the agent's signer and collector.

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use autonet_bindings::enums::{ModelStatus, TaskState};
use autonet_bindings::{ModelShardRegistry, ParticipantStaking, TaskManager};
use autonet_protocol::units::format_atn;
use tracing::info;

use super::ports::{
    Aggregate, Chain, Deadlines, ModelInfo, Node, Sent, Solution, TaskInfo, Tx, Vote, Witnessed,
};
use crate::agent::{Agent, AgentError, Role};
use crate::bls::Collection;
use crate::db::{ModelRow, SolutionRow, TaskRow};
use crate::kind::TaskKind;

/// The chain as the agent's provider sees it at one block: the block the event watcher has
/// recorded the database up to, named by its hash, so that every read of a tick and every row
/// of the database describe the same chain (a read after a reorg replaced that block fails, and
/// the tick is retried once the watcher has rewound).
pub(crate) struct LiveChain<'a> {
    agent: &'a Agent,
    view: View,
}

/// The block a tick reads at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Its number (the tick's "now" for windows).
    pub number: u64,
    /// Its hash, when known (`None`: read by number, before the watcher recorded a block).
    pub hash: Option<B256>,
}

impl<'a> LiveChain<'a> {
    pub(crate) fn new(agent: &'a Agent, view: View) -> Self {
        Self { agent, view }
    }

    fn at(&self) -> BlockId {
        match self.view.hash {
            Some(hash) => BlockId::hash(hash),
            None => BlockId::number(self.view.number),
        }
    }

    /// The project's round configuration at the view.
    async fn config(&self) -> Result<autonet_bindings::project::IProject::Config, AgentError> {
        self.agent
            .projects()
            .config(self.agent.project())
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("project config"))
    }
}

fn sent(c: &alloy::rpc::types::TransactionReceipt) -> (B256, u64) {
    (c.transaction_hash, c.block_number.unwrap_or_default())
}

impl Chain for LiveChain<'_> {
    fn head(&self) -> u64 {
        self.view.number
    }

    async fn latest(&self) -> Result<u64, AgentError> {
        self.agent.head().await
    }

    async fn task(&self, task: u64) -> Result<TaskInfo, AgentError> {
        let v = self
            .agent
            .tasks()
            .getTask(U256::from(task))
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read(format!("task {task}")))?;
        Ok(TaskInfo {
            state: TaskState::from_u8(v.state),
            proposer: v.proposer,
            gt_commit: v.gtCommit,
            num_committed: v.numCommitted,
            num_revealed: v.numRevealed,
            deadlines: (v.state != 0).then_some(Deadlines {
                commit_end: v.deadlines.commitEnd,
                sol_reveal_end: v.deadlines.solRevealEnd,
                gt_reveal_end: v.deadlines.gtRevealEnd,
                vote_commit_end: v.deadlines.voteCommitEnd,
                vote_reveal_end: v.deadlines.voteRevealEnd,
            }),
        })
    }

    async fn committed_solvers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        self.agent
            .tasks()
            .committedSolvers(U256::from(task))
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("committed solvers"))
    }

    async fn revealed_solvers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        self.agent
            .tasks()
            .revealedSolvers(U256::from(task))
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("revealed solvers"))
    }

    async fn vote_committers(&self, task: u64) -> Result<Vec<Address>, AgentError> {
        self.agent
            .tasks()
            .voteCommitters(U256::from(task))
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("vote committers"))
    }

    async fn scores_of(&self, task: u64, coordinator: Address) -> Result<Vec<u16>, AgentError> {
        self.agent
            .tasks()
            .scoresOf(U256::from(task), coordinator)
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("scores"))
    }

    async fn model_root(&self) -> Result<B256, AgentError> {
        self.agent
            .projects()
            .modelRoot(self.agent.project())
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("model root"))
    }

    async fn base_root(&self, task: &TaskRow) -> Result<B256, AgentError> {
        self.agent.base_root(task).await
    }

    async fn publish_window(&self) -> Result<u64, AgentError> {
        Ok(u64::from(self.config().await?.windows.publish))
    }

    async fn max_staleness(&self) -> Result<u8, AgentError> {
        Ok(self.config().await?.maxStaleness)
    }

    async fn model(&self, root: B256) -> Result<ModelInfo, AgentError> {
        let m = self
            .agent
            .shards()
            .getModel(root)
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read(format!("model {root}")))?;
        Ok(ModelInfo {
            status: ModelStatus::from_u8(m.status),
            publisher: m.publisher,
            manifest_hash: m.manifest.manifestHash,
            published_block: m.publishedBlock,
            expires_at: m.expiresAt,
            shard_count: usize::from(m.manifest.dataShards) + usize::from(m.manifest.parityShards),
        })
    }

    async fn has_attested(&self, root: B256, who: Address) -> Result<bool, AgentError> {
        self.agent
            .shards()
            .hasAttested(root, who)
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("attestation"))
    }

    async fn standing(&self) -> Result<Option<String>, AgentError> {
        let agent = self.agent;
        let role = agent.opts.role;
        let staking = ParticipantStaking::new(agent.contracts.staking, agent.provider.clone());
        let on_chain = role.on_chain().into_underlying();
        let active = staking
            .isActive(agent.me, on_chain)
            .block(self.at())
            .call()
            .await
            .map_err(AgentError::read("the stake's standing"))?;
        if !active {
            let have = staking
                .stakeOf(agent.me)
                .block(self.at())
                .call()
                .await
                .map_err(AgentError::read("the stake"))?;
            let need = staking
                .minStake(on_chain)
                .block(self.at())
                .call()
                .await
                .map_err(AgentError::read("the minimum stake"))?;
            return Ok(Some(format!(
                "{} holds {} ATN of stake, below the {} minimum of {} ATN (slashed, unbonding, or staked for another role): \
                 add stake with `autonet stake --role {} --amount <ATN>`, or stop this agent",
                agent.me,
                format_atn(have),
                role.name(),
                format_atn(need),
                role.name(),
            )));
        }
        if role == Role::Proposer {
            let project = agent.project();
            let budget = agent
                .projects()
                .budgetOf(project)
                .block(self.at())
                .call()
                .await
                .map_err(AgentError::read("the project's budget"))?;
            if budget < agent.opts.reward {
                return Ok(Some(format!(
                    "project {project}'s budget of {} ATN is below the task reward of {} ATN: \
                     fund it with `autonet project fund {project} --amount <ATN>`, or lower --reward",
                    format_atn(budget),
                    format_atn(agent.opts.reward),
                )));
            }
            let cap = agent
                .projects()
                .proposerCap(project, agent.me)
                .block(self.at())
                .call()
                .await
                .map_err(AgentError::read("the proposer's cap"))?;
            if cap < agent.opts.reward {
                return Ok(Some(format!(
                    "project {project} lets {} hold at most {} ATN of rewards, below the task reward of {} ATN: \
                     the project's owner approves it with `autonet project approve-proposer {project} {} --max-reward <ATN>`",
                    agent.me,
                    format_atn(cap),
                    format_atn(agent.opts.reward),
                    agent.me,
                )));
            }
            let held = agent
                .tasks()
                .heldBy(project, agent.me)
                .block(self.at())
                .call()
                .await
                .map_err(AgentError::read("the rewards the proposer holds"))?;
            if held + agent.opts.reward > cap {
                return Ok(Some(format!(
                    "{} holds {} ATN of rewards in open tasks; one more task of {} ATN would pass its cap of {} ATN \
                     on project {project}: the next task waits for one to end (pipelined rounds need room for two: \
                     `autonet project approve-proposer {project} {} --max-reward <ATN>`)",
                    agent.me,
                    format_atn(held),
                    format_atn(agent.opts.reward),
                    format_atn(cap),
                    agent.me,
                )));
            }
        }
        Ok(None)
    }

    async fn send(&self, tx: &Tx) -> Result<Sent, AgentError> {
        let a = self.agent;
        let what = tx.describe();
        let tasks = a.tasks();
        let id = |t: &u64| U256::from(*t);
        let (hash, block, task_id) = match tx {
            Tx::Propose {
                spec_hash,
                gt_commit,
                reward,
            } => {
                let c = a
                    .send::<TaskManager::TaskProposed, _, _>(
                        &what,
                        &tasks.proposeTask(a.project(), *spec_hash, *gt_commit, *reward),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (
                    h,
                    b,
                    Some(u64::try_from(c.event.taskId).unwrap_or(u64::MAX)),
                )
            }
            Tx::CommitSolution { task, commitment } => {
                let c = a
                    .send::<TaskManager::SolutionCommitted, _, _>(
                        &what,
                        &tasks.commitSolution(id(task), *commitment),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::RevealSolution {
                task,
                delta_root,
                manifest_hash,
                salt,
            } => {
                let c = a
                    .send::<TaskManager::SolutionRevealed, _, _>(
                        &what,
                        &tasks.revealSolution(id(task), *delta_root, *manifest_hash, *salt),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::RevealGroundTruth {
                task,
                eval_spec_hash,
                salt,
            } => {
                let c = a
                    .send::<TaskManager::GroundTruthRevealed, _, _>(
                        &what,
                        &tasks.revealGroundTruth(id(task), *eval_spec_hash, *salt),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::CommitVote { task, commitment } => {
                let c = a
                    .send::<TaskManager::VoteCommitted, _, _>(
                        &what,
                        &tasks.commitVote(id(task), *commitment),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::RevealVote { task, scores, salt } => {
                let c = a
                    .send::<TaskManager::VoteRevealed, _, _>(
                        &what,
                        &tasks.revealVote(id(task), scores.clone(), *salt),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::Finalize { task } => {
                // Whichever of the three events the task ends with is fine.
                let c = a
                    .send::<TaskManager::TaskFinalized, _, _>(&what, &tasks.finalize(id(task)))
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::Publish { task, model } => {
                let m = autonet_bindings::shards::IModelShardRegistry::ModelManifest {
                    projectId: a.project(),
                    root: model.root,
                    manifestHash: model.manifest_hash,
                    parentRoot: model.parent_root,
                    totalSize: model.total_size,
                    shardSize: model.shard_size,
                    dataShards: model.k,
                    parityShards: model.m,
                };
                let c = a
                    .send::<ModelShardRegistry::ModelPublished, _, _>(
                        &what,
                        &a.shards().publishModel(m, vec![id(task)]),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::Attest {
                root,
                manifest_hash,
                publisher,
            } => {
                let c = a
                    .send::<ModelShardRegistry::ModelAttested, _, _>(
                        &what,
                        &a.shards().attestModel(*root, *manifest_hash, *publisher),
                    )
                    .await?;
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
            Tx::AttestBls {
                root,
                bitmap,
                apk_g2,
                sigma,
                ..
            } => {
                let c = a
                    .send::<ModelShardRegistry::ModelAttestedBls, _, _>(
                        &what,
                        &a.shards().attestModelBls(*root, *bitmap, *apk_g2, *sigma),
                    )
                    .await?;
                info!(model = %root, stake = %c.event.stake, "BLS aggregate attestation accepted");
                let (h, b) = sent(&c.receipt);
                (h, b, None)
            }
        };
        Ok(Sent {
            tx_hash: hash,
            block,
            task_id,
        })
    }

    async fn announce(&self, root: B256, shard_count: usize) -> Result<(), AgentError> {
        self.agent.announce(root, shard_count).await
    }
}

/// Training, scoring, aggregation and BLS of the running agent.
pub(crate) struct LiveNode<'a>(pub(crate) &'a Agent);

impl Node for LiveNode<'_> {
    async fn train(&self, task: &TaskRow, base_root: B256) -> Result<Solution, AgentError> {
        self.0.kind.train(self.0, task, base_root).await
    }

    async fn score(
        &self,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        self.0
            .kind
            .score(self.0, task, eval_hash, revealed, solutions)
            .await
    }

    async fn aggregate(&self, task: &TaskRow, onto: B256) -> Result<Option<Aggregate>, AgentError> {
        self.0.kind.aggregate(self.0, task, onto).await
    }

    fn has_bls(&self) -> bool {
        self.0.bls.is_some()
    }

    async fn attestation_message(&self, model: &ModelRow) -> Result<B256, AgentError> {
        crate::bls::attestation_message(self.0, model).await
    }

    fn bls_signed(&self, root: B256, message: B256) -> bool {
        self.0
            .bls
            .as_ref()
            .is_some_and(|b| b.has_signed(root, message))
    }

    fn bls_sign(&self, root: B256, message: B256) {
        if let Some(signer) = &self.0.bls {
            signer.sign(self.0.me, root, message);
        }
    }

    async fn bls_collect(&self, root: B256, message: B256) -> Result<Collection, AgentError> {
        crate::bls::collect(self.0, root, message).await
    }

    fn bls_forget(&self, message: B256) {
        self.0.bls_collector.forget(message);
    }

    fn salt(&self, action: &str, task: Option<u64>, block: u64) -> B256 {
        self.0.witness.anchored_salt(block, task, action)
    }

    fn witness(&self, what: Witnessed<'_>) {
        let w = &self.0.witness;
        match what {
            Witnessed::Prepared {
                key,
                task,
                block,
                tx,
                data,
                sealed,
            } => {
                let data = serde_json::json!({"tx": tx.describe(), "data": data});
                if sealed {
                    w.seal(block, task, "action", key, &data);
                } else {
                    w.record(block, task, "action", key, &data);
                }
            }
            Witnessed::Landed {
                key,
                task,
                block,
                tx_hash,
                tx,
            } => {
                w.record(
                    block,
                    task,
                    "sent",
                    key,
                    &serde_json::json!({"tx": tx_hash}),
                );
                if let Tx::RevealSolution { salt, .. }
                | Tx::RevealVote { salt, .. }
                | Tx::RevealGroundTruth { salt, .. } = tx
                {
                    w.reveal(*salt, tx_hash, block, task);
                }
            }
            Witnessed::Skipped {
                key,
                task,
                block,
                why,
            } => {
                w.record(
                    block,
                    task,
                    "skipped",
                    key,
                    &serde_json::json!({"why": why}),
                );
            }
        }
    }

    async fn anchor(&self, task: u64) -> Result<(), AgentError> {
        crate::witness::anchor(self.0, task).await
    }
}
