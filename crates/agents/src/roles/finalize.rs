//! Finalization: anyone may close a task whose last window passed (a transaction sent at the
//! window's last block lands after it). Not journaled: when another
//! agent finalized first, the task simply is no longer open.

use autonet_bindings::TaskManager;
use autonet_bindings::enums::TaskState;
use tracing::info;

use super::Ctx;
use super::ports::{Chain, Node, Tx};
use crate::agent::AgentError;

/// Finalizes every task of the project whose last window has passed.
pub(crate) async fn due<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    let head = ctx.head();
    for (task, view) in ctx.open_tasks().await? {
        if head < task.commit_end {
            continue;
        }
        let due = match view.state {
            Some(TaskState::Open) if view.num_committed == 0 => true,
            Some(TaskState::Open) if view.num_revealed == 0 => head >= task.sol_reveal_end,
            Some(TaskState::Open) => head >= task.gt_reveal_end,
            Some(TaskState::GroundTruthRevealed) => head >= task.vote_reveal_end,
            _ => false,
        };
        if !due {
            continue;
        }
        match ctx.chain.send(&Tx::Finalize { task: task.task_id }).await {
            Ok(_) => {}
            Err(AgentError::Tx { source, .. })
                if source
                    .reverted_with::<TaskManager::TaskManagerWrongState>()
                    .is_some() =>
            {
                // Another agent's finalize landed first.
                info!(
                    task = task.task_id,
                    "task already finalized by another agent"
                );
            }
            Err(e) => {
                let state = ctx.chain.task(task.task_id).await?.state;
                if matches!(
                    state,
                    Some(TaskState::Open | TaskState::GroundTruthRevealed)
                ) {
                    return Err(e);
                }
                info!(task = task.task_id, state = ?state, "task ended");
            }
        }
    }
    Ok(())
}
