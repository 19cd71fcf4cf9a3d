//! The aggregator: finalizes what is due, publishes the aggregate of every finalized task onto
//! the project's model (the task's base, or with pipelined rounds the model built on it), in task
//! order, serves its shards, and submits one BLS aggregate attestation once the coordinators'
//! signatures carry 2/3 of the coordinator stake.

use alloy::primitives::B256;
use autonet_bindings::enums::ModelStatus;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::journal::{self, ActionKey, Entry, Step};
use super::ports::{Aggregate, Chain, Node, Tx};
use super::{Ctx, finalize};
use crate::agent::AgentError;
use crate::bls::Collection;

/// The aggregator's tick.
pub(crate) async fn tick<C: Chain, N: Node>(ctx: &Ctx<'_, C, N>) -> Result<(), AgentError> {
    finalize::due(ctx).await?;
    let current = ctx.chain.model_root().await?;
    for task_id in ctx.db.finalized_tasks(ctx.cfg.project_id)? {
        publish(ctx, task_id, current).await?;
        // In task order: a later task's aggregate waits for an earlier one still to be published
        // (with pipelined rounds it is applied to the model that one produces).
        if !matches!(
            ctx.entry::<Published>(ActionKey::Publish(task_id))?,
            Entry::Finished(_)
        ) {
            break;
        }
    }
    attest_bls(ctx, current).await
}

/// The journal data of a publication: the model published (a file written by an earlier build
/// holds only its root; the model is then recomputed).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Published {
    Model(Aggregate),
    Root(B256),
}

/// Publishes the aggregate of the finalized task `task_id` (and serves it).
async fn publish<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task_id: u64,
    current: B256,
) -> Result<(), AgentError> {
    let key = ActionKey::Publish(task_id);
    let entry = ctx.entry::<Published>(key)?;
    if matches!(entry, Entry::Finished(_))
        || (matches!(entry, Entry::Fresh) && !ctx.cfg.takes_new_work)
    {
        return Ok(());
    }
    let Some(task) = ctx.db.task(task_id)? else {
        return Ok(());
    };
    if let Entry::Pending(a) = &entry {
        let model = match &a.data {
            Published::Model(m) => m.clone(),
            Published::Root(_) => match ctx.node.aggregate(&task, current).await? {
                Some(m) => m,
                None => return ctx.skip(key, &B256::ZERO, "no solver earned incentive"),
            },
        };
        let tx = Tx::Publish {
            task: task_id,
            model: model.clone(),
        };
        // It can land only while its parent is the project's model. Once the model is accepted
        // its publisher holds every shard on chain (ShardProviders counts it without an
        // announcement), so nothing is announced.
        let open = model.parent_root == current;
        journal::settle(ctx, key, a, open, tx).await?;
        return Ok(());
    }
    if !ctx.may_apply(&task, current).await? {
        return ctx.skip(
            key,
            &current,
            "the project moved past this task's base model (further than its maxStaleness allows)",
        );
    }
    if let Some(sibling) = pending_sibling(ctx, task_id, current).await? {
        tracing::debug!(task = task_id, %sibling, "waiting for an earlier task's model on the same parent");
        return Ok(());
    }
    let Some(model) = ctx.node.aggregate(&task, current).await? else {
        return ctx.skip(
            key,
            &B256::ZERO,
            "no solver earned incentive: nothing to publish",
        );
    };
    let record = ctx.chain.model(model.root).await?;
    let head = ctx.head();
    let publish = match record.status {
        Some(ModelStatus::None | ModelStatus::Expired | ModelStatus::Superseded) => true,
        // Another record of this root is pending past its window: publishing again expires it
        // (and slashes a squatter).
        Some(ModelStatus::Pending) if head > record.expires_at => true,
        // A squatter's record with another manifest blocks the root until its window ends.
        Some(ModelStatus::Pending) if record.manifest_hash != model.manifest_hash => {
            warn!(
                model = %model.root,
                publisher = %record.publisher,
                expires_at = record.expires_at,
                "the root was published with another manifest: waiting for that record to expire"
            );
            return Ok(());
        }
        // Pending with our manifest (ours, or one that copied the same model: its publisher
        // earns the fee; the network got the model), or accepted.
        _ => false,
    };
    if publish {
        let tx = Tx::Publish {
            task: task_id,
            model: model.clone(),
        };
        // Our publication: its acceptance makes us a holder of every shard.
        return journal::start(ctx, key, &Published::Model(model.clone()), head, tx)
            .await
            .map(drop);
    }
    ctx.found_on_chain(key)?;
    if record.publisher == ctx.cfg.me {
        return Ok(());
    }
    // Another account published the same model: serve it too.
    ctx.chain.announce(model.root, model.shard_count()).await
}

/// A pending publication on `current` for an earlier task of the project: publishing a sibling
/// next to it would leave one of the two superseded, so `task_id`'s aggregate waits for it to be
/// accepted (it is then applied to that model) or to expire.
async fn pending_sibling<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    task_id: u64,
    current: B256,
) -> Result<Option<B256>, AgentError> {
    for m in ctx.db.pending_models(ctx.cfg.project_id)? {
        if m.parent_root != current
            || m.task_ids.is_empty()
            || m.task_ids.iter().any(|&t| t >= task_id)
        {
            continue;
        }
        let record = ctx.chain.model(m.root).await?;
        if record.status == Some(ModelStatus::Pending) && ctx.head() <= record.expires_at {
            return Ok(Some(m.root));
        }
    }
    Ok(None)
}

/// Collects the coordinators' BLS signatures on every pending model of the project and submits
/// one aggregate attestation once they carry 2/3 of the coordinator stake.
async fn attest_bls<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    current: B256,
) -> Result<(), AgentError> {
    for model in ctx.db.pending_models(ctx.cfg.project_id)? {
        let key = ActionKey::AttestBls {
            root: model.root,
            block: model.block,
        };
        let entry = ctx.entry::<()>(key)?;
        if matches!(entry, Entry::Finished(_)) {
            continue;
        }
        let message = ctx.node.attestation_message(&model).await?;
        let record = ctx.chain.model(model.root).await?;
        let open = record.status == Some(ModelStatus::Pending) && ctx.head() <= record.expires_at;
        if let Entry::Pending(a) = entry {
            // The aggregate itself is not stored: collected again if it must be sent again.
            let (tx, ready) = match ctx.node.bls_collect(model.root, message).await? {
                Collection::Ready {
                    bitmap,
                    signers,
                    apk_g2,
                    sigma,
                } => (
                    Tx::AttestBls {
                        root: model.root,
                        bitmap,
                        signers,
                        apk_g2,
                        sigma,
                    },
                    true,
                ),
                Collection::Short(..) => (
                    Tx::AttestBls {
                        root: model.root,
                        bitmap: Default::default(),
                        signers: 0,
                        apk_g2: Default::default(),
                        sigma: Default::default(),
                    },
                    false,
                ),
            };
            if open && !ready && !journal::landed(ctx, &tx, None).await? {
                continue; // dropped, and the signatures are not all back yet
            }
            if journal::settle(ctx, key, &a, open && ready, tx).await? == Step::Skipped {
                ctx.node.bls_forget(message);
            }
            continue;
        }
        if model.parent_root != current || !ctx.cfg.takes_new_work {
            continue;
        }
        if !open {
            ctx.node.bls_forget(message);
            continue;
        }
        if record.published_block != model.block {
            continue; // the event of the current publication is not recorded yet
        }
        let Collection::Ready {
            bitmap,
            signers,
            apk_g2,
            sigma,
        } = ctx.node.bls_collect(model.root, message).await?
        else {
            continue;
        };
        let tx = Tx::AttestBls {
            root: model.root,
            bitmap,
            signers,
            apk_g2,
            sigma,
        };
        match journal::start(ctx, key, &(), ctx.head(), tx).await {
            Ok(_) => info!(model = %model.root, signers, "BLS aggregate attestation accepted"),
            Err(e) => {
                ctx.node.bls_forget(message);
                return Err(e);
            }
        }
    }
    Ok(())
}
