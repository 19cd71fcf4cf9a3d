//! The coordinator: scores every revealed solution on the task's held-out windows, commits and
//! reveals its vote, and vouches for each published model it recomputed (a BLS signature for the
//! aggregator's aggregate, or an attestation of its own when no aggregate came in time).

use alloy::primitives::U256;
use autonet_bindings::enums::ModelStatus;
use autonet_protocol::commitments::vote_commit;
use tracing::{info, warn};

use super::Ctx;
use super::journal::{self, ActionKey, Entry};
use super::ports::{Chain, Node, Tx, Vote};
use crate::agent::AgentError;
use crate::db::{ModelRow, TaskRow};

/// The coordinator's tick.
pub(crate) async fn tick<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    for (task, _) in ctx.open_tasks().await? {
        let key = ActionKey::Vote(task.task_id);
        let window = ctx.window(task.gt_reveal_end, task.vote_commit_end);
        match ctx.entry::<Vote>(key)? {
            Entry::Fresh if window == journal::Window::Open => vote(ctx, &task, key).await?,
            Entry::Fresh => {}
            Entry::Pending(a) => {
                let tx = commit_tx(ctx, &task, &a.data);
                journal::settle(ctx, key, &a, window, tx).await?;
            }
            Entry::Finished(_) => {}
        }
        if let Some(a) = ctx.entry::<Vote>(key)?.landed() {
            reveal(ctx, &task, &a.data).await?;
        }
    }
    attest_pending(ctx).await
}

fn commit_tx<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>, task: &TaskRow, v: &Vote) -> Tx {
    Tx::CommitVote {
        task: task.task_id,
        commitment: vote_commit(U256::from(task.task_id), ctx.cfg.me, &v.scores, v.salt),
    }
}

/// Scores the task's revealed solutions and commits the vote.
async fn vote<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task: &TaskRow,
    key: ActionKey,
) -> Result<(), AgentError> {
    let Some(eval_hash) = ctx.db.eval_spec(task.task_id)? else {
        return Ok(()); // the eval spec is not revealed (or not delivered) yet
    };
    let revealed = ctx.chain.revealed_solvers(task.task_id).await?;
    if revealed.is_empty() {
        return Ok(());
    }
    let voted = ctx.chain.vote_committers(task.task_id).await?;
    if ctx.acted_before(key, &voted, "voted")? {
        return Ok(());
    }
    let solutions = ctx.db.solutions(task.task_id)?;
    if solutions.len() != revealed.len() || !ctx.may_start().await? {
        return Ok(()); // the watcher has not delivered every reveal yet
    }
    let vote = ctx
        .node
        .score(task, eval_hash, &revealed, &solutions)
        .await?;
    let now = ctx.chain.latest().await?;
    if now >= task.vote_commit_end {
        return ctx.skip(
            key,
            &vote,
            "evaluation finished after the vote commit window",
        );
    }
    let tx = commit_tx(ctx, task, &vote);
    journal::start(ctx, key, &vote, now, tx).await.map(drop)
}

/// Reveals the committed vote inside the vote reveal window.
async fn reveal<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task: &TaskRow,
    v: &Vote,
) -> Result<(), AgentError> {
    let key = ActionKey::RevealVote(task.task_id);
    let window = ctx.window(task.vote_commit_end, task.vote_reveal_end);
    let open = window == journal::Window::Open;
    let tx = Tx::RevealVote {
        task: task.task_id,
        scores: v.scores.clone(),
        salt: v.salt,
    };
    match ctx.entry::<()>(key)? {
        Entry::Finished(_) => Ok(()),
        Entry::Pending(a) => journal::settle(ctx, key, &a, window, tx).await.map(drop),
        Entry::Fresh if !open => Ok(()),
        Entry::Fresh => {
            if !ctx
                .chain
                .scores_of(task.task_id, ctx.cfg.me)
                .await?
                .is_empty()
            {
                return ctx.found_on_chain(key);
            }
            if !ctx
                .chain
                .vote_committers(task.task_id)
                .await?
                .contains(&ctx.cfg.me)
            {
                return ctx.skip(
                    key,
                    &(),
                    "no vote seat: displaced by a coordinator with more stake, or the commitment was lost",
                );
            }
            journal::start(ctx, key, &(), ctx.head(), tx)
                .await
                .map(drop)
        }
    }
}

/// Recomputes every pending model of the project; for each one whose root matches, signs it for
/// the aggregator's BLS aggregate (a coordinator with a BLS key) and, when no aggregate has
/// accepted it within the grace period, attests alone.
async fn attest_pending<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    let current = ctx.chain.model_root().await?;
    for model in ctx.db.pending_models(ctx.cfg.project_id)? {
        // One action per publication: a root published again after its record expired is new work.
        let key = ActionKey::Attest {
            root: model.root,
            block: model.block,
        };
        let entry = ctx.entry::<()>(key)?;
        let tx = Tx::Attest {
            root: model.root,
            manifest_hash: model.manifest_hash,
            publisher: model.publisher,
        };
        match entry {
            Entry::Finished(_) => continue,
            Entry::Pending(a) => {
                let record = ctx.chain.model(model.root).await?;
                let open = record.status == Some(ModelStatus::Pending)
                    && record.published_block == model.block
                    && ctx.head() <= record.expires_at;
                journal::settle(ctx, key, &a, open, tx).await?;
            }
            Entry::Fresh => {
                if model.parent_root != current || !ctx.cfg.takes_new_work {
                    continue;
                }
                attest_new(ctx, &model, key, tx).await?;
            }
        }
    }
    Ok(())
}

async fn attest_new<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    model: &ModelRow,
    key: ActionKey,
    tx: Tx,
) -> Result<(), AgentError> {
    let [task_id] = model.task_ids[..] else {
        return ctx.skip(
            key,
            &(),
            "a model must aggregate exactly one task of this project",
        );
    };
    let Some(task) = ctx.db.task(task_id)? else {
        return Ok(());
    };
    if ctx.db.outcome(task_id)?.is_none() {
        return Ok(()); // the finalization has not been delivered yet
    }
    let record = ctx.chain.model(model.root).await?;
    if record.status != Some(ModelStatus::Pending)
        || record.published_block != model.block
        || ctx.head() > record.expires_at
    {
        // Accepted, superseded or expired meanwhile, or our record of the publication is not the
        // chain's current one yet: nothing to vouch for now.
        return Ok(());
    }
    if ctx.chain.has_attested(model.root, ctx.cfg.me).await? {
        return ctx.found_on_chain(key);
    }
    if !ctx.may_apply(&task, model.parent_root).await? {
        return ctx.skip(
            key,
            &(),
            "published on a model further from the task's base than the project's maxStaleness allows",
        );
    }
    let message = ctx.node.attestation_message(model).await?;
    if !ctx.node.bls_signed(model.root, message) {
        let Some(agg) = ctx.node.aggregate(&task, model.parent_root).await? else {
            return ctx.skip(key, &(), "no solver earned incentive: nothing to attest");
        };
        if agg.root != model.root
            || agg.parent_root != model.parent_root
            || agg.manifest_hash != model.manifest_hash
        {
            warn!(published = %model.root, recomputed = %agg.root, task = task_id, "published model differs from the recomputed aggregate: not attesting");
            return ctx.skip(key, &agg.root, "aggregate mismatch");
        }
        if ctx.node.has_bls() {
            // We hold the model now; the aggregate that accepts it makes us a holder of its shards
            // (ShardProviders counts its signers without an announcement).
            ctx.node.bls_sign(model.root, message);
            info!(model = %model.root, task = task_id, "recomputed the model: signed it for the BLS aggregate");
        }
    }
    if ctx.node.has_bls() && ctx.head() < model.block + ctx.cfg.bls_grace_blocks {
        return Ok(()); // the aggregator's single BLS attestation is expected first
    }
    if ctx.node.has_bls() {
        warn!(model = %model.root, grace = ctx.cfg.bls_grace_blocks, "no BLS aggregate accepted the model in time: attesting alone");
    }
    // Attesting alone: an attestation of its own makes no holder, so announce the shards to serve.
    if let Err(e) = ctx.chain.announce(model.root, record.shard_count).await {
        warn!(error = %e, "could not announce the attested model's shards");
    }
    journal::start(ctx, key, &(), model.block, tx)
        .await
        .map(drop)
}
