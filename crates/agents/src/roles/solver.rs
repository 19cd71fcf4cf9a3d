//! The solver: trains a delta for every open task of the project, commits to it inside the
//! commit window, and reveals it inside the solution reveal window.

use alloy::primitives::U256;
use autonet_bindings::enums::TaskState;
use autonet_protocol::commitments::solution_commit;

use super::Ctx;
use super::journal::{self, ActionKey, Entry};
use super::ports::{Chain, Node, Solution, Tx};
use crate::agent::AgentError;
use crate::db::TaskRow;
use crate::spec::task_spec_hash;

/// The solver's tick.
pub(crate) async fn tick<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    for (task, info) in ctx.open_tasks().await? {
        let key = ActionKey::Solve(task.task_id);
        let entry = ctx.entry::<Solution>(key)?;
        match &entry {
            Entry::Fresh => commit_new(ctx, &task, info.state, key).await?,
            Entry::Pending(a) => {
                let open = ctx.head() < task.commit_end;
                let tx = commit_tx(ctx, &task, &a.data);
                journal::settle(ctx, key, a, open, tx).await?;
            }
            Entry::Finished(_) => {}
        }
        // Reveal once the commitment landed.
        if let Some(a) = ctx.entry::<Solution>(key)?.landed() {
            reveal(ctx, &task, &a.data).await?;
        }
    }
    Ok(())
}

fn commit_tx<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>, task: &TaskRow, s: &Solution) -> Tx {
    Tx::CommitSolution {
        task: task.task_id,
        commitment: solution_commit(
            U256::from(task.task_id),
            ctx.cfg.me,
            s.delta_root,
            s.manifest_hash,
            s.salt,
        ),
    }
}

/// Trains and commits a solution to `task` (in `state` on chain), when it is open and this solver
/// may work.
async fn commit_new<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task: &TaskRow,
    state: Option<TaskState>,
    key: ActionKey,
) -> Result<(), AgentError> {
    if ctx.head() >= task.commit_end {
        return Ok(());
    }
    if state != Some(TaskState::Open) {
        return Ok(());
    }
    let committed = ctx.chain.committed_solvers(task.task_id).await?;
    if ctx.acted_before(key, &committed, "committed")? || !ctx.may_start().await? {
        return Ok(());
    }
    let base_root = ctx.chain.base_root(task).await?;
    if task.spec_hash != task_spec_hash(U256::from(task.project_id), base_root) {
        return ctx.skip(
            key,
            &(),
            &format!(
                "the task's specHash {} does not bind the project's model {base_root} at its proposal block {}",
                task.spec_hash, task.block
            ),
        );
    }
    let solution = match ctx.node.train(task, base_root).await {
        Err(AgentError::Abstain(why)) => return ctx.skip(key, &(), &why),
        other => other?,
    };
    let now = ctx.chain.latest().await?;
    if now >= task.commit_end {
        return ctx.skip(key, &(), "training finished after the commit window");
    }
    let tx = commit_tx(ctx, task, &solution);
    journal::start(ctx, key, &solution, now, tx).await?;
    Ok(())
}

/// Reveals the committed solution inside the solution reveal window.
async fn reveal<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task: &TaskRow,
    s: &Solution,
) -> Result<(), AgentError> {
    let key = ActionKey::RevealSolution(task.task_id);
    let window = ctx.window(task.commit_end, task.sol_reveal_end);
    let open = window == journal::Window::Open;
    let tx = Tx::RevealSolution {
        task: task.task_id,
        delta_root: s.delta_root,
        manifest_hash: s.manifest_hash,
        salt: s.salt,
    };
    match ctx.entry::<()>(key)? {
        Entry::Finished(_) => Ok(()),
        Entry::Pending(a) => journal::settle(ctx, key, &a, window, tx).await.map(drop),
        Entry::Fresh if !open => Ok(()),
        Entry::Fresh => {
            if ctx.cfg.faults.skip_solution_reveal {
                return ctx.skip(key, &(), "fault injection: never reveal the solution");
            }
            if ctx
                .chain
                .revealed_solvers(task.task_id)
                .await?
                .contains(&ctx.cfg.me)
            {
                return ctx.found_on_chain(key);
            }
            if !ctx
                .chain
                .committed_solvers(task.task_id)
                .await?
                .contains(&ctx.cfg.me)
            {
                // Every seat was taken and a solver with more stake took ours (or a reorg
                // dropped the commitment after its window): the commitment is void.
                return ctx.skip(
                    key,
                    &(),
                    "no seat on the task: displaced by a solver with more stake, or the commitment was lost",
                );
            }
            journal::start(ctx, key, &(), ctx.head(), tx)
                .await
                .map(drop)
        }
    }
}
