//! The role ports over the running agent: alloy reads pinned to the tick's block, transactions
//! through the agent's sender, libtorch training and scoring, BLS through the agent's signer and
//! collector.

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use autonet_bindings::enums::{ModelStatus, TaskState};
use autonet_bindings::{ModelShardRegistry, ParticipantStaking, TaskManager};
use autonet_ml::train::{evaluate, train};
use autonet_protocol::units::format_atn;
use tracing::{info, warn};

use super::ports::{
    Aggregate, Chain, Deadlines, ModelInfo, Node, Sent, Solution, TaskInfo, Tx, Vote,
};
use super::random_b256;
use crate::agent::{Agent, AgentError, Role};
use crate::bls::Collection;
use crate::db::{ModelRow, SolutionRow, TaskRow};
use crate::spec::{Originality, task_scores};
use autonet_ml::duplicates::{LOOKBACK_TASKS, originality};
use autonet_ml::{Attack, TensorSet};

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
        let agent = self.0;
        let base = agent.model(base_root).await?;
        let spec = agent.spec.clone();
        let data = agent.data.clone();
        let (index, count) = agent.opts.data_shard;
        let mut params = spec.train_params(U256::from(task.task_id), agent.me);
        let store = agent.store.clone();
        let attack = agent.opts.faults.attack;
        // A Byzantine solver (`--attack`, test networks only) knows the deltas revealed in the
        // project's previous task, as any observer of the chain does.
        let reference: Vec<TensorSet> = match attack {
            Some(a) if a.needs_reference() => revealed_before(agent, task, 1)
                .await?
                .into_iter()
                .filter(|(solver, _)| *solver != agent.me)
                .map(|(_, d)| d)
                .collect(),
            _ => Vec::new(),
        };
        if let Some(a) = attack {
            params.steps = a.train_steps(params.steps);
            warn!(task = task.task_id, attack = %a, known_deltas = reference.len(), "ATTACKING (--attack): this solver sends a crafted delta");
            if matches!(a, Attack::Copier { .. }) && reference.is_empty() {
                return Err(AgentError::Abstain(format!(
                    "attack {a}: no delta of an earlier task to copy yet"
                )));
            }
        }
        info!(
            task = task.task_id,
            steps = params.steps,
            shard = index,
            of = count,
            "training"
        );
        let started = std::time::Instant::now();
        let (manifest, loss) = tokio::task::spawn_blocking(move || -> Result<_, AgentError> {
            let cfg = spec.model_config()?;
            let chunks = data.train_shard(index, count);
            let ml = |e: String| AgentError::Ml(e);
            let refs: Vec<&TensorSet> = reference.iter().collect();
            let (delta, train_loss) = match attack {
                // A copier does not train: it sends what it copied.
                Some(a @ Attack::Copier { .. }) => (
                    a.craft(refs[0], &refs, params.seed)
                        .map_err(|e| ml(e.to_string()))?
                        .ok_or_else(|| ml("copier: nothing to copy".into()))?,
                    0.0, // nothing trained (a NaN would not survive the journal's JSON)
                ),
                _ => {
                    let out =
                        train(&cfg, &base, &chunks, &params).map_err(|e| ml(e.to_string()))?;
                    let delta = match attack {
                        None => out.delta,
                        Some(a) => a
                            .craft(&out.delta, &refs, params.seed)
                            .map_err(|e| ml(e.to_string()))?
                            .ok_or_else(|| ml(format!("attack {a} produced no delta")))?,
                    };
                    (delta, out.train_loss)
                }
            };
            let bytes =
                autonet_ml::to_safetensors(&delta).map_err(|e| AgentError::Ml(e.to_string()))?;
            let manifest = store
                .put_with(&bytes, spec.shard_params()?)
                .map_err(|e| AgentError::Storage(e.to_string()))?;
            Ok((manifest, train_loss))
        })
        .await
        .map_err(|e| AgentError::Other(format!("training task: {e}")))??;
        info!(task = task.task_id, train_loss = loss, secs = started.elapsed().as_secs_f32(), delta = %B256::from(manifest.root), "trained");
        Ok(Solution {
            delta_root: B256::from(manifest.root),
            manifest_hash: B256::from(manifest.manifest_hash()),
            salt: random_b256(),
            train_loss: loss,
            train_secs: started.elapsed().as_secs_f32(),
        })
    }

    async fn score(
        &self,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        let agent = self.0;
        let base = agent.model(agent.base_root(task).await?).await?;
        let mut deltas = Vec::with_capacity(revealed.len());
        for solver in revealed {
            let (root, manifest_hash) = solutions
                .iter()
                .find(|s| s.solver == *solver)
                .map(|s| (s.delta_root, s.manifest_hash))
                .ok_or_else(|| AgentError::Other(format!("reveal of {solver} not recorded")))?;
            match agent.delta(*solver, root, manifest_hash).await {
                Ok(d) => deltas.push(Some(d)),
                Err(e) => {
                    warn!(task = task.task_id, solver = %solver, error = %e, "delta unavailable: scored 0");
                    deltas.push(None);
                }
            }
        }
        let earlier: Vec<TensorSet> = revealed_before(agent, task, LOOKBACK_TASKS)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let spec = agent.spec.clone();
        let data = agent.data.clone();
        // The block that closes the solution reveals: nobody knew it while solutions could be
        // committed or revealed.
        let beacon = agent.block_hash(task.sol_reveal_end).await?;
        let eval = spec.eval_spec(eval_hash, beacon);
        let (base_loss, losses, originality) = tokio::task::spawn_blocking(
            move || -> Result<(f32, Vec<f32>, Vec<Originality>), AgentError> {
                let cfg = spec.model_config()?;
                let chunks = data.eval_chunks();
                let base_loss = evaluate(&cfg, &base, &chunks, &eval)
                    .map_err(|e| AgentError::Ml(e.to_string()))?;
                let losses = deltas
                    .iter()
                    .map(|d| {
                        d.as_ref()
                            .and_then(|d| base.add(d).ok())
                            .and_then(|w| evaluate(&cfg, &w, &chunks, &eval).ok())
                            .unwrap_or(f32::INFINITY)
                    })
                    .collect();
                let current: Vec<Option<&TensorSet>> = deltas.iter().map(Option::as_ref).collect();
                let earlier: Vec<&TensorSet> = earlier.iter().collect();
                Ok((base_loss, losses, originality(&current, &earlier)))
            },
        )
        .await
        .map_err(|e| AgentError::Other(format!("evaluation task: {e}")))??;
        let scores = task_scores(
            base_loss,
            &losses,
            agent.spec.scoring_target(),
            &originality,
        );
        for (solver, o) in revealed.iter().zip(&originality) {
            match o {
                Originality::CopiesEarlier => {
                    warn!(task = task.task_id, solver = %solver, "delta copies one revealed in an earlier task: scored 0")
                }
                Originality::Group(g) if revealed[*g as usize] != *solver => {
                    warn!(task = task.task_id, solver = %solver, with = %revealed[*g as usize], "delta duplicates another solver's in this task: they share one contribution")
                }
                Originality::Group(_) => {}
            }
        }
        info!(task = task.task_id, base_loss, ?losses, ?scores, "scored");
        Ok(Vote {
            scores,
            salt: random_b256(),
            base_loss,
            losses,
        })
    }

    async fn aggregate(&self, task: &TaskRow, onto: B256) -> Result<Option<Aggregate>, AgentError> {
        Ok(self
            .0
            .build_aggregate(task, onto)
            .await?
            .map(|(manifest, parent_root)| Aggregate {
                root: B256::from(manifest.root),
                manifest_hash: B256::from(manifest.manifest_hash()),
                parent_root,
                total_size: manifest.total_size,
                shard_size: manifest.shard_size,
                k: manifest.k,
                m: manifest.m,
            }))
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
}

/// The deltas revealed in the project's last `tasks` tasks before `task` that this agent can
/// load, with their solvers (the duplicate rule compares a task's deltas against the last
/// [`LOOKBACK_TASKS`]). One it cannot load is left out with a warning.
async fn revealed_before(
    agent: &Agent,
    task: &TaskRow,
    tasks: usize,
) -> Result<Vec<(Address, TensorSet)>, AgentError> {
    let ids = agent.db.task_ids(task.project_id)?;
    let mut out = Vec::new();
    for id in ids
        .into_iter()
        .filter(|id| *id < task.task_id)
        .rev()
        .take(tasks)
    {
        for s in agent.db.solutions(id)? {
            match agent.delta(s.solver, s.delta_root, s.manifest_hash).await {
                Ok(d) => out.push((s.solver, d)),
                Err(e) => {
                    warn!(task = id, solver = %s.solver, error = %e, "earlier delta unavailable: not compared against")
                }
            }
        }
    }
    Ok(out)
}
