//! The proposer: proposes the project's next task once the previous round is over, and reveals
//! each task's ground truth (its eval spec) once every solution had its chance to be revealed.

use alloy::primitives::B256;
use autonet_bindings::enums::TaskState;
use autonet_protocol::commitments::gt_commit;
use tracing::{info, warn};

use super::journal::{self, ActionKey, Entry};
use super::ports::{Chain, Node, Proposal, Tx};
use super::{Ctx, finalize, random_b256};
use crate::agent::AgentError;
use crate::db::{Action, ActionState, TaskRow};
use crate::spec::task_spec_hash;

/// Blocks a prepared proposal that no receipt recorded is given to show up in the confirmed
/// events before it is sent again (beyond the confirmation depth).
const PROPOSAL_GRACE: u64 = 3;

/// The proposer's tick.
pub(crate) async fn tick<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    propose(ctx).await?;
    reveal_ground_truths(ctx).await?;
    finalize::due(ctx).await
}

fn proposal_tx(ctx: &Ctx<'_, impl Chain, impl Node>, p: &Proposal) -> Tx {
    Tx::Propose {
        spec_hash: p.spec_hash,
        gt_commit: p.gt_commit,
        reward: ctx.cfg.reward,
    }
}

/// Drives the pending proposals; once none is pending, makes the next one.
async fn propose<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    let all = ctx.db.actions_in::<Proposal>(
        ActionKey::PROPOSE_PREFIX,
        &[
            ActionState::Prepared,
            ActionState::Sent,
            ActionState::Done,
            ActionState::Skipped,
        ],
    )?;
    let mut pending = false;
    for (stored, a) in &all {
        if !matches!(a.state, ActionState::Prepared | ActionState::Sent) {
            continue;
        }
        pending = true;
        let Some(key) = ActionKey::parse(stored) else {
            continue;
        };
        // No receipt recorded (a crash after sending): the confirmed events tell whether it
        // landed; give it a few blocks to show up before sending it again.
        if a.task_id.is_none() {
            if let Some(task) = ctx.db.task_by_gt_commit(a.data.gt_commit)? {
                ctx.db.set_action_task(stored, task)?;
            } else if ctx.head() <= a.block + ctx.cfg.confirmations + PROPOSAL_GRACE {
                continue;
            }
        }
        let a = ctx
            .db
            .action::<Proposal>(stored)?
            .unwrap_or_else(|| a.clone());
        journal::settle(ctx, key, &a, true, proposal_tx(ctx, &a.data)).await?;
    }
    if pending {
        return Ok(());
    }
    let made = all
        .iter()
        .filter(|(_, a)| a.state == ActionState::Done)
        .count() as u64;
    if ctx.cfg.max_tasks.is_some_and(|max| made >= max)
        || !ready_for_next(ctx, last_proposed(&all)).await?
        || !ctx.may_start().await?
    {
        return Ok(());
    }
    let key = ActionKey::Propose(all.len() as u64 + 1);
    let project = ctx.cfg.project();
    let root = ctx.chain.model_root().await?;
    let eval_spec_hash = random_b256();
    let salt = ctx.node.salt(&key.to_string(), None, ctx.head());
    let p = Proposal {
        eval_spec_hash,
        salt,
        gt_commit: gt_commit(ctx.cfg.me, project, eval_spec_hash, salt),
        spec_hash: task_spec_hash(project, root),
        task_id: None,
    };
    let tx = proposal_tx(ctx, &p);
    tracing::debug!(view = ctx.head(), model = %root, "proposing a task on the project's model");
    journal::start(ctx, key, &p, ctx.head(), tx).await?;
    if let Some(task) = ctx
        .db
        .action::<Proposal>(&key.to_string())?
        .and_then(|a| a.task_id)
    {
        info!(task, "proposed");
    }
    Ok(())
}

/// The task of this account's newest proposal that landed.
fn last_proposed(proposals: &[(String, Action<Proposal>)]) -> Option<u64> {
    proposals
        .iter()
        .filter(|(_, a)| matches!(a.state, ActionState::Sent | ActionState::Done))
        .filter_map(|(_, a)| a.task_id)
        .max()
}

/// The proposal whose ground-truth commitment is `gt`.
fn find_proposal<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    gt: B256,
) -> Result<Option<Proposal>, AgentError> {
    Ok(ctx
        .db
        .actions_in::<Proposal>(
            ActionKey::PROPOSE_PREFIX,
            &[ActionState::Prepared, ActionState::Sent, ActionState::Done],
        )?
        .into_iter()
        .map(|(_, a)| a.data)
        .find(|p| p.gt_commit == gt))
}

/// Whether the next task may be proposed now.
///
/// In sequence (`maxStaleness` 0): once the last task's round is over. Pipelined (1): already
/// once the last task's solvers are done (its commit phase closed) and the round before it is
/// over, so that solvers train the next task while the last one is revealed, scored, aggregated
/// and attested, and the next task's base is at most one model behind the model its aggregate is
/// applied to.
async fn ready_for_next<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    mine: Option<u64>,
) -> Result<bool, AgentError> {
    // Our own last proposal counts even before the watcher delivered it.
    let latest = ctx.db.latest_task(ctx.cfg.project_id)?.map(|t| t.task_id);
    let Some(last_id) = latest.max(mine) else {
        return Ok(true);
    };
    let Some(last) = ctx.db.task(last_id)? else {
        return Ok(false); // proposed, not delivered yet
    };
    if round_over(ctx, &last).await? {
        return Ok(true);
    }
    if ctx.chain.max_staleness().await? == 0 {
        return Ok(false);
    }
    let (last, _) = ctx.on_chain(last).await?;
    if ctx.head() < last.commit_end {
        return Ok(false); // its solvers may still be training
    }
    let before = ctx
        .db
        .task_ids(ctx.cfg.project_id)?
        .into_iter()
        .filter(|&id| id < last_id)
        .max();
    match before {
        None => Ok(true),
        Some(id) => match ctx.db.task(id)? {
            Some(task) => round_over(ctx, &task).await,
            None => Ok(false),
        },
    }
}

/// Whether `task`'s round is over: it ended without a model to wait for (closed, nothing to
/// aggregate), its model was accepted, the project's model moved further than its aggregate may
/// be applied to, or its publish window passed.
async fn round_over<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task: &TaskRow,
) -> Result<bool, AgentError> {
    let Some((outcome, block)) = ctx.db.outcome(task.task_id)? else {
        return Ok(false);
    };
    if outcome != "finalized" {
        return Ok(true);
    }
    if ctx
        .db
        .incentives(task.task_id)?
        .iter()
        .all(|(_, inc, _)| inc.is_zero())
    {
        return Ok(true); // nothing to aggregate
    }
    if ctx
        .db
        .task_model_accepted(ctx.cfg.project_id, task.task_id)?
        || !ctx.may_apply(task, ctx.chain.model_root().await?).await?
    {
        return Ok(true);
    }
    Ok(ctx.head() > block + ctx.chain.publish_window().await?)
}

/// Reveals the ground truth of this account's tasks inside their window.
async fn reveal_ground_truths<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    for (task, view) in ctx.open_tasks().await? {
        if task.proposer != ctx.cfg.me {
            continue;
        }
        let key = ActionKey::RevealGroundTruth(task.task_id);
        let window = ctx.window(task.sol_reveal_end, task.gt_reveal_end);
        let open = window == journal::Window::Open;
        let entry = ctx.entry::<()>(key)?;
        if matches!(entry, Entry::Finished(_)) || (matches!(entry, Entry::Fresh) && !open) {
            continue;
        }
        let Some(proposal) = find_proposal(ctx, task.gt_commit)? else {
            warn!(
                task = task.task_id,
                "a task proposed by this account but unknown to this database; cannot reveal it"
            );
            continue;
        };
        let tx = Tx::RevealGroundTruth {
            task: task.task_id,
            eval_spec_hash: proposal.eval_spec_hash,
            salt: proposal.salt,
        };
        match entry {
            Entry::Pending(a) => {
                journal::settle(ctx, key, &a, window, tx).await?;
            }
            Entry::Finished(_) => {}
            Entry::Fresh => {
                if view.state != Some(TaskState::Open) || view.num_revealed == 0 {
                    continue; // nothing to evaluate: finalize closes it
                }
                if ctx.cfg.faults.skip_gt_reveal {
                    ctx.skip(key, &(), "fault injection: never reveal the ground truth")?;
                    continue;
                }
                journal::start(ctx, key, &(), ctx.head(), tx).await?;
            }
        }
    }
    Ok(())
}
