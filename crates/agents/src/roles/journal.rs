//! The journal of on-chain actions: one typed key per action ([`ActionKey`]) and one rule for
//! driving an action to the chain ([`start`], [`settle`]).
//!
//! An action moves `prepared` → `sent` → `done` (or `skipped`):
//! - **prepared**: its secrets are stored, durably, before anything is sent;
//! - **sent**: its transaction landed at some block, which a reorg may still remove;
//! - **done**: it landed and is `confirmations` blocks deep; never looked at again;
//! - **skipped**: given up (window closed, or decided not to act); never retried.
//!
//! A prepared or sent action is looked up on chain on every tick. Found there, it waits to be
//! deep enough; not found (a crash before sending, or a reorg that dropped it), it is sent again
//! with the same secrets while its window is open, and skipped, loudly, once it closed.

use std::fmt;

use alloy::primitives::B256;
use autonet_bindings::enums::{ModelStatus, TaskState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{error, info, warn};

use super::Ctx;
use super::ports::{Chain, Node, Tx, Witnessed};
use crate::agent::AgentError;
use crate::db::{Action, ActionState};

/// The key of one action in the journal. Its string form is what the database stores (and what
/// files written by earlier builds hold), so it never changes for an existing kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKey {
    /// The proposer's `n`-th proposal (1-based).
    Propose(u64),
    /// The proposer's ground-truth reveal of a task.
    RevealGroundTruth(u64),
    /// A solver's commitment to a task (its data: the trained solution's secrets).
    Solve(u64),
    /// A solver's reveal of its solution.
    RevealSolution(u64),
    /// A coordinator's vote commitment (its data: the scores and their salt).
    Vote(u64),
    /// A coordinator's vote reveal.
    RevealVote(u64),
    /// The aggregator's publication of a task's aggregate.
    Publish(u64),
    /// A coordinator's own attestation of the publication of `root` at `block`.
    Attest {
        /// The model.
        root: B256,
        /// Block of the publication (a root published again is new work).
        block: u64,
    },
    /// The aggregator's BLS aggregate attestation of the publication of `root` at `block`.
    AttestBls {
        /// The model.
        root: B256,
        /// Block of the publication.
        block: u64,
    },
}

impl ActionKey {
    /// The key prefix of every proposal (`propose:000001`, ...).
    pub const PROPOSE_PREFIX: &'static str = "propose:";

    /// The task the action belongs to, if it names one.
    pub fn task(&self) -> Option<u64> {
        match *self {
            Self::RevealGroundTruth(t)
            | Self::Solve(t)
            | Self::RevealSolution(t)
            | Self::Vote(t)
            | Self::RevealVote(t)
            | Self::Publish(t) => Some(t),
            Self::Propose(_) | Self::Attest { .. } | Self::AttestBls { .. } => None,
        }
    }

    /// Parses a stored key (`None` for a key no action of this build writes).
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once(':')?;
        let task = || rest.parse::<u64>().ok();
        let publication = || {
            let (root, block) = rest.split_once(':')?;
            Some((root.parse::<B256>().ok()?, block.parse::<u64>().ok()?))
        };
        Some(match kind {
            "propose" => Self::Propose(task()?),
            "gt" => Self::RevealGroundTruth(task()?),
            "solve" => Self::Solve(task()?),
            "reveal" => Self::RevealSolution(task()?),
            "vote" => Self::Vote(task()?),
            "vote-reveal" => Self::RevealVote(task()?),
            "publish" => Self::Publish(task()?),
            "attest" => {
                let (root, block) = publication()?;
                Self::Attest { root, block }
            }
            "bls-attest" => {
                let (root, block) = publication()?;
                Self::AttestBls { root, block }
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Propose(n) => write!(f, "propose:{n:06}"),
            Self::RevealGroundTruth(t) => write!(f, "gt:{t}"),
            Self::Solve(t) => write!(f, "solve:{t}"),
            Self::RevealSolution(t) => write!(f, "reveal:{t}"),
            Self::Vote(t) => write!(f, "vote:{t}"),
            Self::RevealVote(t) => write!(f, "vote-reveal:{t}"),
            Self::Publish(t) => write!(f, "publish:{t}"),
            Self::Attest { root, block } => write!(f, "attest:{root}:{block}"),
            Self::AttestBls { root, block } => write!(f, "bls-attest:{root}:{block}"),
        }
    }
}

/// An action as the journal holds it.
pub(crate) enum Entry<T> {
    /// Never started.
    Fresh,
    /// Prepared or sent: [`settle`] drives it.
    Pending(Action<T>),
    /// Done or skipped; with its data when it holds a `T` (an action skipped before it had any,
    /// or found on chain without local secrets, holds none).
    Finished(Option<Action<T>>),
}

impl<T> Entry<T> {
    /// The stored action when it landed (sent or done): what a later action of the same task
    /// builds on.
    pub(crate) fn landed(self) -> Option<Action<T>> {
        match self {
            Entry::Pending(a) | Entry::Finished(Some(a))
                if matches!(a.state, ActionState::Sent | ActionState::Done) =>
            {
                Some(a)
            }
            _ => None,
        }
    }
}

/// Where an action stands after one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Landed; waiting to be deep enough (or for its transaction).
    Waiting,
    /// Landed and deep enough.
    Done,
    /// Given up.
    Skipped,
}

impl<C: Chain, N: Node> Ctx<'_, C, N> {
    /// The journal entry of `key`.
    pub(crate) fn entry<T: DeserializeOwned>(
        &self,
        key: ActionKey,
    ) -> Result<Entry<T>, AgentError> {
        let Some(raw) = self.db.action::<serde_json::Value>(&key.to_string())? else {
            return Ok(Entry::Fresh);
        };
        Ok(match raw.state {
            // Pending actions always hold their secrets: unreadable ones are an error.
            ActionState::Prepared | ActionState::Sent => Entry::Pending(
                raw.typed()
                    .map_err(|e| AgentError::Db(crate::db::DbError::Json(e)))?,
            ),
            ActionState::Done | ActionState::Skipped => Entry::Finished(raw.typed().ok()),
        })
    }

    /// Records `key` as skipped (never retried) with `data`, logging why.
    pub(crate) fn skip<T: Serialize>(
        &self,
        key: ActionKey,
        data: &T,
        why: &str,
    ) -> Result<(), AgentError> {
        warn!(key = %key, why, "skipping");
        self.node.witness(Witnessed::Skipped {
            key: &key.to_string(),
            task: key.task(),
            block: self.chain.head(),
            why,
        });
        self.db.put_action(
            &key.to_string(),
            key.task(),
            ActionState::Skipped,
            data,
            self.chain.head(),
            None,
        )?;
        Ok(())
    }

    /// Whether this account already appears in `on_chain` (an earlier life of this state
    /// directory acted without keeping its secrets); if so records `key` as skipped, so that
    /// nothing is ever submitted twice.
    pub(crate) fn acted_before(
        &self,
        key: ActionKey,
        on_chain: &[alloy::primitives::Address],
        what: &str,
    ) -> Result<bool, AgentError> {
        if !on_chain.contains(&self.cfg.me) {
            return Ok(false);
        }
        self.skip(
            key,
            &(),
            &format!("already {what} on chain without local secrets"),
        )?;
        Ok(true)
    }

    /// Records `key` as done without a transaction of ours: its effect is on chain already (an
    /// earlier life of this state directory, or another node, did it).
    pub(crate) fn found_on_chain(&self, key: ActionKey) -> Result<(), AgentError> {
        info!(key = %key, "already on chain");
        self.db.put_action(
            &key.to_string(),
            key.task(),
            ActionState::Done,
            &(),
            self.chain.head(),
            None,
        )?;
        Ok(())
    }

    fn mark_sent(&self, key: ActionKey, block: u64, tx: Option<B256>) -> Result<Step, AgentError> {
        let k = key.to_string();
        if self.cfg.confirmations == 0 {
            self.db
                .update_action(&k, ActionState::Done, Some(block), tx)?;
            return Ok(Step::Done);
        }
        self.db
            .update_action(&k, ActionState::Sent, Some(block), tx)?;
        Ok(Step::Waiting)
    }
}

/// Stores `data` as the prepared secrets of `key` and sends `tx` (built from them).
pub(crate) async fn start<C: Chain, N: Node, T: Serialize>(
    ctx: &Ctx<'_, C, N>,
    key: ActionKey,
    data: &T,
    at: u64,
    tx: Tx,
) -> Result<Step, AgentError> {
    ctx.db.put_action(
        &key.to_string(),
        key.task(),
        ActionState::Prepared,
        data,
        at,
        None,
    )?;
    ctx.node.witness(Witnessed::Prepared {
        key: &key.to_string(),
        task: key.task(),
        block: at,
        tx: &tx,
        data: serde_json::to_value(data).unwrap_or_default(),
        sealed: matches!(
            key,
            ActionKey::Propose(_) | ActionKey::Solve(_) | ActionKey::Vote(_)
        ),
    });
    send(ctx, key, &tx).await
}

/// Where an action's window stands at the tick's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    /// Not open yet: a reorg (or a phase closed early and then reorged away) moved it later.
    NotYet,
    /// A transaction sent now lands inside it.
    Open,
    /// Over: the action can no longer land.
    Closed,
}

impl From<bool> for Window {
    /// `true`: open; `false`: closed.
    fn from(open: bool) -> Self {
        if open { Window::Open } else { Window::Closed }
    }
}

/// One step of a prepared or sent action: done once it is on chain and deep enough; sent again
/// (the same `tx`, from the stored secrets) when it is not on chain and its window is open;
/// waiting while the window is not open yet; skipped when it is not on chain and its window
/// closed.
pub(crate) async fn settle<C: Chain, N: Node, T>(
    ctx: &Ctx<'_, C, N>,
    key: ActionKey,
    entry: &Action<T>,
    window: impl Into<Window>,
    tx: Tx,
) -> Result<Step, AgentError> {
    let window = window.into();
    let open = window == Window::Open;
    let head = ctx.chain.head();
    let landed = landed(ctx, &tx, proposed_task(&tx, entry)).await?;
    match (landed, entry.state) {
        (true, ActionState::Sent) if head >= entry.block + ctx.cfg.confirmations => {
            ctx.db
                .update_action(&key.to_string(), ActionState::Done, None, None)?;
            Ok(Step::Done)
        }
        (true, ActionState::Sent) => Ok(Step::Waiting),
        // Found on chain without a recorded receipt (a crash after sending): count its depth
        // from now.
        (true, _) => ctx.mark_sent(key, head, None),
        // Not on chain and its window not open yet (it moved later): wait for it.
        (false, _) if window == Window::NotYet => Ok(Step::Waiting),
        (false, state) if open => {
            if state == ActionState::Sent {
                warn!(key = %key, landed_at = entry.block, "a reorg removed the action: sending it again with the same secrets");
            }
            send(ctx, key, &tx).await
        }
        (false, ActionState::Sent) => {
            error!(key = %key, landed_at = entry.block, "a reorg removed the action after its window closed: it cannot be sent again");
            ctx.db
                .update_action(&key.to_string(), ActionState::Skipped, None, None)?;
            Ok(Step::Skipped)
        }
        (false, _) => {
            warn!(key = %key, "the action's window closed before it landed");
            ctx.db
                .update_action(&key.to_string(), ActionState::Skipped, None, None)?;
            Ok(Step::Skipped)
        }
    }
}

/// A proposal's task, known once its receipt was recorded.
fn proposed_task<T>(tx: &Tx, entry: &Action<T>) -> Option<u64> {
    match tx {
        Tx::Propose { .. } => entry.task_id,
        _ => None,
    }
}

async fn send<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    key: ActionKey,
    tx: &Tx,
) -> Result<Step, AgentError> {
    match ctx.chain.send(tx).await {
        Ok(sent) => {
            if let Some(task) = sent.task_id {
                ctx.db.set_action_task(&key.to_string(), task)?;
            }
            ctx.node.witness(Witnessed::Landed {
                key: &key.to_string(),
                task: key.task().or(sent.task_id),
                block: sent.block,
                tx_hash: sent.tx_hash,
                tx,
            });
            let step = ctx.mark_sent(key, sent.block, Some(sent.tx_hash))?;
            if let Tx::Publish { task, .. } = tx
                && let Err(e) = ctx.node.anchor(*task).await
            {
                warn!(task, error = %e, "anchoring the witness log's head failed; the next publication anchors it");
            }
            Ok(step)
        }
        Err(e) => {
            // Landed meanwhile (an earlier send mined after all, or another node's identical
            // transaction): nothing is lost.
            if landed(ctx, tx, None).await.unwrap_or(false) {
                info!(key = %key, error = %e, "the action is on chain already");
                return ctx.mark_sent(key, ctx.chain.head(), None);
            }
            Err(e)
        }
    }
}

/// Whether the effect of `tx` is visible on chain at the tick's block.
pub(crate) async fn landed<C: Chain, N: Node>(
    ctx: &Ctx<'_, C, N>,
    tx: &Tx,
    proposed: Option<u64>,
) -> Result<bool, AgentError> {
    let me = ctx.cfg.me;
    let chain = ctx.chain;
    Ok(match tx {
        Tx::Propose { gt_commit, .. } => match proposed {
            Some(task) => {
                let t = chain.task(task).await?;
                t.proposer == me && t.gt_commit == *gt_commit
            }
            None => false,
        },
        Tx::CommitSolution { task, .. } => chain.committed_solvers(*task).await?.contains(&me),
        Tx::RevealSolution { task, .. } => chain.revealed_solvers(*task).await?.contains(&me),
        Tx::RevealGroundTruth { task, .. } => matches!(
            chain.task(*task).await?.state,
            Some(TaskState::GroundTruthRevealed | TaskState::Finalized | TaskState::Closed)
        ),
        Tx::CommitVote { task, .. } => chain.vote_committers(*task).await?.contains(&me),
        Tx::RevealVote { task, .. } => !chain.scores_of(*task, me).await?.is_empty(),
        Tx::Finalize { task } => !matches!(
            chain.task(*task).await?.state,
            Some(TaskState::Open | TaskState::GroundTruthRevealed)
        ),
        Tx::Publish { model, .. } => {
            let record = chain.model(model.root).await?;
            matches!(
                record.status,
                Some(ModelStatus::Pending | ModelStatus::Accepted)
            ) && record.manifest_hash == model.manifest_hash
        }
        Tx::Attest { root, .. } => {
            chain.has_attested(*root, me).await?
                || chain.model(*root).await?.status == Some(ModelStatus::Accepted)
        }
        Tx::AttestBls { root, .. } => {
            chain.model(*root).await?.status == Some(ModelStatus::Accepted)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_its_stored_form() {
        let root = B256::repeat_byte(0xab);
        let keys = [
            ActionKey::Propose(1),
            ActionKey::RevealGroundTruth(7),
            ActionKey::Solve(7),
            ActionKey::RevealSolution(7),
            ActionKey::Vote(7),
            ActionKey::RevealVote(7),
            ActionKey::Publish(7),
            ActionKey::Attest { root, block: 99 },
            ActionKey::AttestBls { root, block: 99 },
        ];
        for key in keys {
            assert_eq!(ActionKey::parse(&key.to_string()), Some(key), "{key}");
        }
        // The stored forms written by earlier builds.
        assert_eq!(ActionKey::Propose(1).to_string(), "propose:000001");
        assert_eq!(ActionKey::RevealVote(3).to_string(), "vote-reveal:3");
        assert_eq!(
            ActionKey::Attest { root, block: 5 }.to_string(),
            format!("attest:{root}:5")
        );
        assert_eq!(ActionKey::parse("vote:x"), None);
        assert_eq!(ActionKey::parse("unknown:1"), None);
    }
}
