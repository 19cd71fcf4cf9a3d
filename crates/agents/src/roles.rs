//! What each role does on every tick, decided from the chain's state and the agent's database.
//!
//! Every on-chain action follows the same rule: its secrets are stored as `prepared` before the
//! transaction is sent; a `prepared` action found later is first checked against the chain (did
//! it land?) and only re-sent, with the same secrets, when it did not. Windows are block based: an
//! action is sent when `opens < head < closes`, so that the transaction, mined at `head + 1` or
//! later, still falls inside.

use alloy::primitives::{Address, B256, U256};
use autonet_bindings::{ModelShardRegistry, TaskManager};
use autonet_ml::train::{evaluate, train};
use autonet_protocol::commitments::{gt_commit, solution_commit, vote_commit};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::agent::{Agent, AgentError};
use crate::db::{ActionState, TaskRow};
use crate::spec::{scores_from_losses, task_spec_hash};

use autonet_bindings::enums::{ModelStatus, TaskState};

const OPEN: Option<TaskState> = Some(TaskState::Open);
const GT_REVEALED: Option<TaskState> = Some(TaskState::GroundTruthRevealed);

fn open_window(head: u64, opens: u64, closes: u64) -> bool {
    opens < head && head < closes
}

fn random_b256() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

async fn task_view(
    agent: &Agent,
    task_id: u64,
) -> Result<autonet_bindings::training::ITaskManager::TaskView, AgentError> {
    agent
        .tasks()
        .getTask(U256::from(task_id))
        .call()
        .await
        .map_err(AgentError::read(format!("task {task_id}")))
}

/// Whether this account already appears in `on_chain` (an earlier life of this state directory
/// submitted without keeping its secrets); if so records `key` as skipped, so that nothing is
/// ever submitted twice.
fn submitted_before(
    agent: &Agent,
    key: &str,
    task_id: u64,
    head: u64,
    on_chain: &[Address],
    what: &str,
) -> Result<bool, AgentError> {
    if !on_chain.contains(&agent.me) {
        return Ok(false);
    }
    agent.skip(
        key,
        Some(task_id),
        &(),
        head,
        &format!("already {what} on chain without local secrets"),
    )?;
    Ok(true)
}

// ---------------------------------------------------------------------- finalize (anyone)

/// Finalizes every task of the project whose last window has passed.
pub async fn finalize_due(agent: &Agent, head: u64) -> Result<(), AgentError> {
    for task in agent.db.open_tasks(agent.opts.project_id)? {
        if head <= task.commit_end {
            continue;
        }
        let view = task_view(agent, task.task_id).await?;
        let due = match TaskState::from_u8(view.state) {
            OPEN if view.numCommitted == 0 => head > task.commit_end,
            OPEN if view.numRevealed == 0 => head > task.sol_reveal_end,
            OPEN => head > task.gt_reveal_end,
            GT_REVEALED => head > task.vote_reveal_end,
            _ => false,
        };
        if !due {
            continue;
        }
        let id = U256::from(task.task_id);
        let what = format!("finalize task {}", task.task_id);
        // Whichever of the three events the task ends with is fine; and when another agent
        // finalized first, the task simply is no longer open.
        if let Err(e) = agent
            .send::<TaskManager::TaskFinalized, _, _>(&what, &agent.tasks().finalize(id))
            .await
        {
            if let AgentError::Tx { source, .. } = &e
                && source.revert_name() == Some("TaskManagerWrongState")
            {
                continue; // another agent's finalize is already on its way
            }
            let state = TaskState::from_u8(task_view(agent, task.task_id).await?.state);
            if state == OPEN || state == GT_REVEALED {
                return Err(e);
            }
            info!(task = task.task_id, state = ?state, "task ended");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- proposer

#[derive(Serialize, Deserialize)]
struct Proposal {
    eval_spec_hash: B256,
    salt: B256,
    gt_commit: B256,
    spec_hash: B256,
    task_id: Option<u64>,
}

/// The proposer's tick.
pub async fn proposer(agent: &Agent, head: u64) -> Result<(), AgentError> {
    let project = agent.project();
    // 1. Resolve or make the next proposal.
    let done = agent.db.count_actions("propose:", ActionState::Done)?;
    let key = format!("propose:{:06}", done + 1);
    match agent.action::<Proposal>(&key)? {
        Some(a) if a.state == ActionState::Prepared => {
            if let Some(task_id) = agent.db.task_by_gt_commit(a.data.gt_commit)? {
                agent.db.put_action(
                    &key,
                    Some(task_id),
                    ActionState::Done,
                    &Proposal {
                        task_id: Some(task_id),
                        ..a.data
                    },
                    head,
                    None,
                )?;
            } else if head > a.block + agent.opts.confirmations + 3 {
                // Not on chain after a few blocks: send it (again) with the same secrets.
                send_proposal(agent, &key, a.data, head).await?;
            }
        }
        _ => {
            if agent.opts.max_tasks.is_none_or(|max| done < max)
                && agent.takes_new_work()
                && ready_for_next(agent, head).await?
            {
                let root = agent
                    .projects()
                    .modelRoot(project)
                    .call()
                    .await
                    .map_err(AgentError::read("model root"))?;
                let eval_spec_hash = random_b256();
                let salt = random_b256();
                let p = Proposal {
                    eval_spec_hash,
                    salt,
                    gt_commit: gt_commit(agent.me, project, eval_spec_hash, salt),
                    spec_hash: task_spec_hash(project, root),
                    task_id: None,
                };
                agent.prepare(&key, None, &p, head)?;
                send_proposal(agent, &key, p, head).await?;
            }
        }
    }

    // 2. Reveal the ground truth of our tasks once every solution had its chance to be revealed.
    for task in agent.db.open_tasks(agent.opts.project_id)? {
        if task.proposer != agent.me || !open_window(head, task.sol_reveal_end, task.gt_reveal_end)
        {
            continue;
        }
        let Some(proposal) = find_proposal(agent, task.gt_commit)? else {
            warn!(
                task = task.task_id,
                "a task proposed by this account but unknown to this database; cannot reveal it"
            );
            continue;
        };
        let reveal_key = format!("gt:{}", task.task_id);
        if agent
            .action::<()>(&reveal_key)?
            .is_some_and(|a| a.state != ActionState::Prepared)
        {
            continue;
        }
        let view = task_view(agent, task.task_id).await?;
        if TaskState::from_u8(view.state) != OPEN {
            agent.done(&reveal_key, None).ok();
            continue;
        }
        if view.numRevealed == 0 {
            continue; // nothing to evaluate: finalize closes it
        }
        if agent.opts.faults.skip_gt_reveal {
            agent.skip(
                &reveal_key,
                Some(task.task_id),
                &(),
                head,
                "fault injection: never reveal the ground truth",
            )?;
            continue;
        }
        agent.prepare(&reveal_key, Some(task.task_id), &(), head)?;
        let c = agent
            .send::<TaskManager::GroundTruthRevealed, _, _>(
                &format!("reveal the ground truth of task {}", task.task_id),
                &agent.tasks().revealGroundTruth(
                    U256::from(task.task_id),
                    proposal.eval_spec_hash,
                    proposal.salt,
                ),
            )
            .await?;
        agent.done(&reveal_key, Some(c.receipt.transaction_hash))?;
    }

    // 3. Close what is due.
    finalize_due(agent, head).await
}

fn find_proposal(agent: &Agent, gt: B256) -> Result<Option<Proposal>, AgentError> {
    for state in [ActionState::Done, ActionState::Prepared] {
        for key in agent.db.action_keys("propose:", state)? {
            if let Some(a) = agent.action::<Proposal>(&key)?
                && a.data.gt_commit == gt
            {
                return Ok(Some(a.data));
            }
        }
    }
    Ok(None)
}

async fn send_proposal(agent: &Agent, key: &str, p: Proposal, head: u64) -> Result<(), AgentError> {
    let tasks = agent.tasks();
    let call = tasks.proposeTask(agent.project(), p.spec_hash, p.gt_commit, agent.opts.reward);
    let c = agent
        .send::<TaskManager::TaskProposed, _, _>("propose a task", &call)
        .await?;
    let task_id = u64::try_from(c.event.taskId).unwrap_or(u64::MAX);
    info!(task = task_id, "proposed");
    agent.db.put_action(
        key,
        Some(task_id),
        ActionState::Done,
        &Proposal {
            task_id: Some(task_id),
            ..p
        },
        head,
        Some(c.receipt.transaction_hash),
    )?;
    Ok(())
}

fn last_proposed(agent: &Agent) -> Result<Option<u64>, AgentError> {
    let mut last = None;
    for key in agent.db.action_keys("propose:", ActionState::Done)? {
        if let Some(a) = agent.action::<Proposal>(&key)? {
            last = last.max(a.data.task_id);
        }
    }
    Ok(last)
}

/// Whether the project's previous round is over: its task ended and, when finalized, the model
/// moved on (or nobody can publish any more).
async fn ready_for_next(agent: &Agent, head: u64) -> Result<bool, AgentError> {
    // Our own last proposal counts even before the watcher delivered it.
    let mine = last_proposed(agent)?;
    let latest = agent
        .db
        .latest_task(agent.opts.project_id)?
        .map(|t| t.task_id);
    let Some(last_id) = latest.max(mine) else {
        return Ok(true);
    };
    let Some(last) = agent.db.task(last_id)? else {
        return Ok(false); // proposed, not delivered yet
    };
    let Some((outcome, block)) = agent.db.outcome(last.task_id)? else {
        return Ok(false);
    };
    if outcome != "finalized" {
        return Ok(true);
    }
    if agent
        .db
        .incentives(last.task_id)?
        .iter()
        .all(|(_, inc, _)| inc.is_zero())
    {
        return Ok(true); // nothing to aggregate
    }
    let current = agent
        .projects()
        .modelRoot(agent.project())
        .call()
        .await
        .map_err(AgentError::read("model root"))?;
    if current != agent.base_root(&last).await? {
        return Ok(true);
    }
    let cfg = agent
        .projects()
        .config(agent.project())
        .call()
        .await
        .map_err(AgentError::read("project config"))?;
    Ok(head > block + u64::from(cfg.windows.publish))
}

// ---------------------------------------------------------------------- solver

#[derive(Serialize, Deserialize)]
struct Solution {
    delta_root: B256,
    /// keccak256 of the delta's canonical manifest: committed with the root. Absent (zero) in a
    /// solution stored before commitments bound it.
    #[serde(default)]
    manifest_hash: B256,
    salt: B256,
    train_loss: f32,
    train_secs: f32,
}

/// The solver's tick.
pub async fn solver(agent: &Agent, head: u64) -> Result<(), AgentError> {
    let me = agent.me;
    for task in agent.db.open_tasks(agent.opts.project_id)? {
        let key = format!("solve:{}", task.task_id);
        let action = agent.action::<Solution>(&key)?;
        match action {
            None if head < task.commit_end && agent.takes_new_work() => {
                let view = task_view(agent, task.task_id).await?;
                if TaskState::from_u8(view.state) != OPEN {
                    continue;
                }
                let committed = agent
                    .tasks()
                    .committedSolvers(U256::from(task.task_id))
                    .call()
                    .await
                    .map_err(AgentError::read("committed solvers"))?;
                if submitted_before(agent, &key, task.task_id, head, &committed, "committed")? {
                    continue;
                }
                let base_root = agent.base_root(&task).await?;
                if task.spec_hash != task_spec_hash(U256::from(task.project_id), base_root) {
                    agent.skip(
                        &key,
                        Some(task.task_id),
                        &(),
                        head,
                        "the task's specHash does not bind the project's model",
                    )?;
                    continue;
                }
                let solution = train_delta(agent, &task, base_root).await?;
                let now = agent.head().await?;
                if now >= task.commit_end {
                    agent.skip(
                        &key,
                        Some(task.task_id),
                        &(),
                        now,
                        "training finished after the commit window",
                    )?;
                    continue;
                }
                agent.prepare(&key, Some(task.task_id), &solution, now)?;
                commit_solution(agent, &task, &key, &solution).await?;
            }
            None => {}
            Some(a) if a.state == ActionState::Prepared => {
                // Secrets stored, commit maybe sent: look before sending again.
                let committed = (agent
                    .tasks()
                    .committedSolvers(U256::from(task.task_id))
                    .call()
                    .await
                    .map_err(AgentError::read("committed solvers"))?)
                .contains(&agent.me);
                if committed {
                    agent.done(&key, None)?;
                } else if head < task.commit_end {
                    commit_solution(agent, &task, &key, &a.data).await?;
                } else {
                    agent
                        .db
                        .set_action_state(&key, ActionState::Skipped, None)?;
                }
            }
            Some(a) if a.state == ActionState::Done => {
                reveal_solution(agent, &task, head, a.data, me).await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn train_delta(
    agent: &Agent,
    task: &TaskRow,
    base_root: B256,
) -> Result<Solution, AgentError> {
    let base = agent.model(base_root).await?;
    let spec = agent.spec.clone();
    let data = agent.data.clone();
    let (index, count) = agent.opts.data_shard;
    let params = spec.train_params(U256::from(task.task_id), agent.me);
    let store = agent.store.clone();
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
        let out =
            train(&cfg, &base, &chunks, &params).map_err(|e| AgentError::Ml(e.to_string()))?;
        let bytes =
            autonet_ml::to_safetensors(&out.delta).map_err(|e| AgentError::Ml(e.to_string()))?;
        let manifest = store
            .put_with(&bytes, spec.shard_params()?)
            .map_err(|e| AgentError::Storage(e.to_string()))?;
        Ok((manifest, out.train_loss))
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

async fn commit_solution(
    agent: &Agent,
    task: &TaskRow,
    key: &str,
    s: &Solution,
) -> Result<(), AgentError> {
    let id = U256::from(task.task_id);
    let c = solution_commit(id, agent.me, s.delta_root, s.manifest_hash, s.salt);
    let confirmed = agent
        .send::<TaskManager::SolutionCommitted, _, _>(
            &format!("commit a solution to task {}", task.task_id),
            &agent.tasks().commitSolution(id, c),
        )
        .await?;
    agent.done(key, Some(confirmed.receipt.transaction_hash))
}

async fn reveal_solution(
    agent: &Agent,
    task: &TaskRow,
    head: u64,
    s: Solution,
    me: Address,
) -> Result<(), AgentError> {
    let key = format!("reveal:{}", task.task_id);
    if agent
        .action::<()>(&key)?
        .is_some_and(|a| a.state != ActionState::Prepared)
    {
        return Ok(());
    }
    if !open_window(head, task.commit_end, task.sol_reveal_end) {
        return Ok(()); // solutions are revealed after the commit window, before the eval spec
    }
    if agent.opts.faults.skip_solution_reveal {
        return agent.skip(
            &key,
            Some(task.task_id),
            &(),
            head,
            "fault injection: never reveal the solution",
        );
    }
    let id = U256::from(task.task_id);
    if (agent
        .tasks()
        .revealedSolvers(id)
        .call()
        .await
        .map_err(AgentError::read("revealed solvers"))?)
    .contains(&agent.me)
    {
        return agent.done(&key, None);
    }
    if !(agent
        .tasks()
        .committedSolvers(id)
        .call()
        .await
        .map_err(AgentError::read("committed solvers"))?)
    .contains(&me)
    {
        // Every seat was taken and a solver with more stake took ours: the commitment is void.
        return agent.skip(
            &key,
            Some(task.task_id),
            &(),
            head,
            "displaced from the task by a solver with more stake",
        );
    }
    agent.prepare(&key, Some(task.task_id), &(), head)?;
    let c = agent
        .send::<TaskManager::SolutionRevealed, _, _>(
            &format!("reveal the solution of task {}", task.task_id),
            &agent
                .tasks()
                .revealSolution(id, s.delta_root, s.manifest_hash, s.salt),
        )
        .await?;
    agent.done(&key, Some(c.receipt.transaction_hash))
}

// ---------------------------------------------------------------------- coordinator

#[derive(Serialize, Deserialize)]
struct Vote {
    scores: Vec<u16>,
    salt: B256,
    base_loss: f32,
    losses: Vec<f32>,
}

/// The coordinator's tick.
pub async fn coordinator(agent: &Agent, head: u64) -> Result<(), AgentError> {
    for task in agent.db.open_tasks(agent.opts.project_id)? {
        let key = format!("vote:{}", task.task_id);
        let id = U256::from(task.task_id);
        match agent.action::<Vote>(&key)? {
            None if open_window(head, task.gt_reveal_end, task.vote_commit_end)
                && agent.takes_new_work() =>
            {
                let solutions = agent.db.solutions(task.task_id)?;
                let Some(eval_hash) = agent.db.eval_spec(task.task_id)? else {
                    continue;
                };
                let revealed = agent
                    .tasks()
                    .revealedSolvers(id)
                    .call()
                    .await
                    .map_err(AgentError::read("revealed solvers"))?;
                if revealed.is_empty() {
                    continue;
                }
                let voted = agent
                    .tasks()
                    .voteCommitters(id)
                    .call()
                    .await
                    .map_err(AgentError::read("vote committers"))?;
                if submitted_before(agent, &key, task.task_id, head, &voted, "voted")? {
                    continue;
                }
                if solutions.len() != revealed.len() {
                    continue; // the watcher has not delivered every reveal yet
                }
                let vote = score(agent, &task, eval_hash, &revealed, &solutions).await?;
                let now = agent.head().await?;
                if now >= task.vote_commit_end {
                    agent.skip(
                        &key,
                        Some(task.task_id),
                        &vote,
                        now,
                        "evaluation finished after the vote commit window",
                    )?;
                    continue;
                }
                agent.prepare(&key, Some(task.task_id), &vote, now)?;
                commit_vote(agent, task.task_id, &key, &vote).await?;
            }
            None => {}
            Some(a) if a.state == ActionState::Prepared => {
                let committed = (agent
                    .tasks()
                    .voteCommitters(id)
                    .call()
                    .await
                    .map_err(AgentError::read("vote committers"))?)
                .contains(&agent.me);
                if committed {
                    agent.done(&key, None)?;
                } else if open_window(head, task.gt_reveal_end, task.vote_commit_end) {
                    commit_vote(agent, task.task_id, &key, &a.data).await?;
                } else {
                    agent
                        .db
                        .set_action_state(&key, ActionState::Skipped, None)?;
                }
            }
            Some(a) if a.state == ActionState::Done => {
                let rkey = format!("vote-reveal:{}", task.task_id);
                if agent
                    .action::<()>(&rkey)?
                    .is_some_and(|r| r.state != ActionState::Prepared)
                    || !open_window(head, task.vote_commit_end, task.vote_reveal_end)
                {
                    continue;
                }
                let mine = agent
                    .tasks()
                    .scoresOf(id, agent.me)
                    .call()
                    .await
                    .map_err(AgentError::read("scores"))?;
                if !mine.is_empty() {
                    agent.done(&rkey, None)?;
                    continue;
                }
                if !(agent
                    .tasks()
                    .voteCommitters(id)
                    .call()
                    .await
                    .map_err(AgentError::read("vote committers"))?)
                .contains(&agent.me)
                {
                    agent.skip(
                        &rkey,
                        Some(task.task_id),
                        &(),
                        head,
                        "displaced from the vote by a coordinator with more stake",
                    )?;
                    continue;
                }
                agent.prepare(&rkey, Some(task.task_id), &(), head)?;
                let c = agent
                    .send::<TaskManager::VoteRevealed, _, _>(
                        &format!("reveal the vote on task {}", task.task_id),
                        &agent
                            .tasks()
                            .revealVote(id, a.data.scores.clone(), a.data.salt),
                    )
                    .await?;
                agent.done(&rkey, Some(c.receipt.transaction_hash))?;
            }
            Some(_) => {}
        }
    }
    attest_pending(agent, head).await
}

async fn commit_vote(agent: &Agent, task_id: u64, key: &str, v: &Vote) -> Result<(), AgentError> {
    let id = U256::from(task_id);
    let c = vote_commit(id, agent.me, &v.scores, v.salt);
    let confirmed = agent
        .send::<TaskManager::VoteCommitted, _, _>(
            &format!("commit a vote on task {task_id}"),
            &agent.tasks().commitVote(id, c),
        )
        .await?;
    agent.done(key, Some(confirmed.receipt.transaction_hash))
}

/// Evaluates the base and every revealed delta on the task's held-out windows.
async fn score(
    agent: &Agent,
    task: &TaskRow,
    eval_hash: B256,
    revealed: &[Address],
    solutions: &[crate::db::SolutionRow],
) -> Result<Vote, AgentError> {
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
    let spec = agent.spec.clone();
    let data = agent.data.clone();
    // The block that closes the solution reveals: nobody knew it while solutions could be committed
    // or revealed.
    let beacon = agent.block_hash(task.sol_reveal_end).await?;
    let eval = spec.eval_spec(eval_hash, beacon);
    let (base_loss, losses) =
        tokio::task::spawn_blocking(move || -> Result<(f32, Vec<f32>), AgentError> {
            let cfg = spec.model_config()?;
            let chunks = data.eval_chunks();
            let base_loss =
                evaluate(&cfg, &base, &chunks, &eval).map_err(|e| AgentError::Ml(e.to_string()))?;
            let losses = deltas
                .iter()
                .map(|d| {
                    d.as_ref()
                        .and_then(|d| base.add(d).ok())
                        .and_then(|w| evaluate(&cfg, &w, &chunks, &eval).ok())
                        .unwrap_or(f32::INFINITY)
                })
                .collect();
            Ok((base_loss, losses))
        })
        .await
        .map_err(|e| AgentError::Other(format!("evaluation task: {e}")))??;
    let scores = scores_from_losses(base_loss, &losses, agent.spec.scoring_target());
    info!(task = task.task_id, base_loss, ?losses, ?scores, "scored");
    Ok(Vote {
        scores,
        salt: random_b256(),
        base_loss,
        losses,
    })
}

/// Recomputes every pending model of the project; for each one whose root matches, signs it for
/// the aggregator's BLS aggregate (a coordinator with a BLS key) and, when no aggregate has
/// accepted it within the grace period, attests alone.
async fn attest_pending(agent: &Agent, head: u64) -> Result<(), AgentError> {
    let current = agent
        .projects()
        .modelRoot(agent.project())
        .call()
        .await
        .map_err(AgentError::read("model root"))?;
    for model in agent.db.pending_models(agent.opts.project_id)? {
        // One action per publication: a root published again after its record expired is new work.
        let key = format!("attest:{}:{}", model.root, model.block);
        let action = agent.action::<()>(&key)?;
        if action
            .as_ref()
            .is_some_and(|a| a.state != ActionState::Prepared)
            || model.parent_root != current
            || (action.is_none() && !agent.takes_new_work())
        {
            continue;
        }
        let [task_id] = model.task_ids[..] else {
            agent.skip(
                &key,
                None,
                &(),
                model.block,
                "a model must aggregate exactly one task of this project",
            )?;
            continue;
        };
        let Some(task) = agent.db.task(task_id)? else {
            continue;
        };
        if agent.db.outcome(task_id)?.is_none() {
            continue; // the finalization has not been delivered yet
        }
        let record = agent.model_record(model.root).await?;
        if ModelStatus::from_u8(record.status) != Some(ModelStatus::Pending)
            || record.publishedBlock != model.block
            || head > record.expiresAt
        {
            // Accepted, superseded or expired meanwhile, or our record of the publication is not the
            // chain's current one yet: nothing to vouch for now.
            continue;
        }
        if agent
            .shards()
            .hasAttested(model.root, agent.me)
            .call()
            .await
            .map_err(AgentError::read("attestation"))?
        {
            agent.done(&key, None)?;
            continue;
        }
        let message = crate::bls::attestation_message(agent, &model).await?;
        let signed = agent
            .bls
            .as_ref()
            .is_some_and(|b| b.has_signed(model.root, message));
        if !signed {
            let Some((manifest, base_root)) = agent.build_aggregate(&task).await? else {
                agent.skip(
                    &key,
                    Some(task_id),
                    &(),
                    model.block,
                    "no solver earned incentive: nothing to attest",
                )?;
                continue;
            };
            let root = B256::from(manifest.root);
            if root != model.root
                || base_root != model.parent_root
                || B256::from(manifest.manifest_hash()) != model.manifest_hash
            {
                warn!(published = %model.root, recomputed = %root, task = task_id, "published model differs from the recomputed aggregate: not attesting");
                agent.skip(
                    &key,
                    Some(task_id),
                    &root,
                    model.block,
                    "aggregate mismatch",
                )?;
                continue;
            }
            // We hold the model too: serve it.
            if let Err(e) = agent.announce(root, manifest.shard_count()).await {
                warn!(error = %e, "could not announce the attested model's shards");
            }
            if let Some(signer) = &agent.bls {
                signer.sign(agent.me, root, message);
                info!(model = %root, task = task_id, "recomputed the model: signed it for the BLS aggregate");
            }
        }
        if agent.bls.is_some() && head < model.block + agent.opts.bls_grace_blocks {
            continue; // the aggregator's single BLS attestation is expected first
        }
        let root = model.root;
        if agent.bls.is_some() {
            warn!(model = %root, grace = agent.opts.bls_grace_blocks, "no BLS aggregate accepted the model in time: attesting alone");
        }
        agent.prepare(&key, Some(task_id), &(), model.block)?;
        match agent
            .send::<ModelShardRegistry::ModelAttested, _, _>(
                &format!("attest model {root}"),
                &agent
                    .shards()
                    .attestModel(root, model.manifest_hash, model.publisher),
            )
            .await
        {
            Ok(c) => agent.done(&key, Some(c.receipt.transaction_hash))?,
            Err(e) => {
                // Accepted by the others' attestations in the meantime: nothing left to do.
                if agent.model_status(root).await? == ModelStatus::Pending {
                    return Err(e);
                }
                agent.done(&key, None)?;
            }
        }
    }
    Ok(())
}

/// Aggregator: collects the coordinators' BLS signatures on every pending model of the project
/// and submits one aggregate attestation once they carry 2/3 of the coordinator stake.
async fn attest_bls(agent: &Agent, head: u64, current: B256) -> Result<(), AgentError> {
    for model in agent.db.pending_models(agent.opts.project_id)? {
        let key = format!("bls-attest:{}:{}", model.root, model.block);
        if model.parent_root != current
            || !agent.takes_new_work()
            || agent
                .action::<()>(&key)?
                .is_some_and(|a| a.state != ActionState::Prepared)
        {
            continue;
        }
        let message = crate::bls::attestation_message(agent, &model).await?;
        let record = agent.model_record(model.root).await?;
        if ModelStatus::from_u8(record.status) != Some(ModelStatus::Pending)
            || head > record.expiresAt
        {
            agent.bls_collector.forget(message);
            continue;
        }
        if record.publishedBlock != model.block {
            continue; // the event of the current publication is not recorded yet
        }
        let crate::bls::Collection::Ready {
            bitmap,
            signers,
            apk_g2,
            sigma,
        } = crate::bls::collect(agent, model.root, message).await?
        else {
            continue;
        };
        agent.prepare(&key, None, &(), head)?;
        match agent
            .send::<ModelShardRegistry::ModelAttestedBls, _, _>(
                &format!(
                    "attest model {} with one BLS aggregate of {signers}",
                    model.root
                ),
                &agent
                    .shards()
                    .attestModelBls(model.root, bitmap, apk_g2, sigma),
            )
            .await
        {
            Ok(c) => {
                info!(model = %model.root, signers, stake = %c.event.stake, "BLS aggregate attestation accepted");
                agent.done(&key, Some(c.receipt.transaction_hash))?;
            }
            Err(e) => {
                agent.bls_collector.forget(message);
                if agent.model_status(model.root).await? == ModelStatus::Pending {
                    return Err(e);
                }
                agent.done(&key, None)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- aggregator

/// The aggregator's tick.
pub async fn aggregator(agent: &Agent, head: u64) -> Result<(), AgentError> {
    finalize_due(agent, head).await?;
    let current = agent
        .projects()
        .modelRoot(agent.project())
        .call()
        .await
        .map_err(AgentError::read("model root"))?;
    for task_id in agent.db.finalized_tasks(agent.opts.project_id)? {
        let key = format!("publish:{task_id}");
        let action = agent.action::<B256>(&key)?;
        if action
            .as_ref()
            .is_some_and(|a| a.state != ActionState::Prepared)
            || (action.is_none() && !agent.takes_new_work())
        {
            continue;
        }
        let Some(task) = agent.db.task(task_id)? else {
            continue;
        };
        if agent.base_root(&task).await? != current {
            agent.skip(
                &key,
                Some(task_id),
                &current,
                head,
                "the project moved past this task's base model",
            )?;
            continue;
        }
        let Some((manifest, base_root)) = agent.build_aggregate(&task).await? else {
            agent.skip(
                &key,
                Some(task_id),
                &B256::ZERO,
                head,
                "no solver earned incentive: nothing to publish",
            )?;
            continue;
        };
        let root = B256::from(manifest.root);
        let manifest_hash = B256::from(manifest.manifest_hash());
        agent.prepare(&key, Some(task_id), &root, head)?;
        let record = agent.model_record(root).await?;
        let status = ModelStatus::from_u8(record.status);
        let publish = match status {
            Some(ModelStatus::None | ModelStatus::Expired | ModelStatus::Superseded) => true,
            // Another record of this root is pending: ours, or one that copied the same model (its
            // publisher earns the fee; the network got the model), or a squatter's with another
            // manifest, which blocks the root until its window ends (then publishing again expires
            // it and slashes its publisher).
            Some(ModelStatus::Pending) if head > record.expiresAt => true,
            Some(ModelStatus::Pending) if record.manifest.manifestHash != manifest_hash => {
                warn!(
                    model = %root,
                    publisher = %record.publisher,
                    expires_at = record.expiresAt,
                    "the root was published with another manifest: waiting for that record to expire"
                );
                continue;
            }
            _ => false,
        };
        if publish {
            let m = autonet_bindings::shards::IModelShardRegistry::ModelManifest {
                projectId: agent.project(),
                root,
                manifestHash: manifest_hash,
                parentRoot: base_root,
                totalSize: manifest.total_size,
                shardSize: manifest.shard_size,
                dataShards: manifest.k,
                parityShards: manifest.m,
            };
            let c = agent
                .send::<ModelShardRegistry::ModelPublished, _, _>(
                    &format!("publish the aggregate of task {task_id}"),
                    &agent.shards().publishModel(m, vec![U256::from(task_id)]),
                )
                .await?;
            agent.done(&key, Some(c.receipt.transaction_hash))?;
        } else {
            agent.done(&key, None)?;
        }
        agent.announce(root, manifest.shard_count()).await?;
    }
    attest_bls(agent, head, current).await
}
