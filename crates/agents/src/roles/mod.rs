//! What each role does on every tick, decided from the chain's state and the agent's database.
//!
//! - [`ports`]: the two seams a role sees, [`Chain`] (reads at the tick's block, transactions) and
//!   [`Node`] (training, scoring, aggregation, BLS). The running agent implements them in
//!   `live`; the unit tests in memory.
//! - [`journal`]: every on-chain action has one typed [`ActionKey`] and follows one rule: its
//!   secrets are stored before it is sent; it counts as done only once it is `confirmations`
//!   deep; one that a crash or a reorg lost is sent again with the same secrets while its window
//!   is open.
//! - one module per role: `proposer`, `solver`, `coordinator`, `aggregator` (and `finalize`,
//!   which anyone may do).
//!
//! Windows are block based: a phase accepts transactions in blocks `opens < block <= closes`, so
//! an action is sent when `opens <= head < closes`: the transaction, mined at `head + 1`, falls
//! inside. A phase that closed early (`PhaseClosedEarly`) is acted on at the block that closed it.
//! Every tick reads each open task's deadlines from the chain at the tick's block, never from the
//! proposal alone, since a phase closing early moves them.

mod aggregator;
mod coordinator;
mod finalize;
pub mod journal;
mod live;
pub mod ports;
mod proposer;
mod solver;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::sync::Mutex;

use alloy::primitives::{Address, B256, U256};
use tracing::error;

pub use journal::ActionKey;
pub use live::View;
pub use ports::{Chain, Node, Proposal, Solution, Vote};

use crate::agent::{Agent, AgentError, Faults, Role};
use crate::db::{AgentDb, TaskRow};

/// What a role's decisions depend on besides the chain and the database.
#[derive(Clone, Debug)]
pub struct RoleConfig {
    /// This agent's account.
    pub me: Address,
    /// The project worked on.
    pub project_id: u64,
    /// Proposer: stop after this many tasks.
    pub max_tasks: Option<u64>,
    /// Proposer: each task's reward.
    pub reward: U256,
    /// Blocks an action must be deep before it counts as done (the reorg depth the operator
    /// expects).
    pub confirmations: u64,
    /// Fault injection (tests).
    pub faults: Faults,
    /// Coordinator: blocks after a publication during which the BLS aggregate is awaited.
    pub bls_grace_blocks: u64,
    /// Whether the integrity check allows new work now.
    pub takes_new_work: bool,
}

impl RoleConfig {
    /// The configuration of `agent` now.
    pub fn of(agent: &Agent) -> Self {
        Self {
            me: agent.me,
            project_id: agent.opts.project_id,
            max_tasks: agent.opts.max_tasks,
            reward: agent.opts.reward,
            confirmations: agent.opts.confirmations,
            faults: agent.opts.faults.clone(),
            bls_grace_blocks: agent.opts.bls_grace_blocks,
            takes_new_work: agent.takes_new_work(),
        }
    }

    /// The project id as a U256.
    pub fn project(&self) -> U256 {
        U256::from(self.project_id)
    }
}

/// Says once why the agent cannot take new work (and again when the reason changes), instead of
/// a warning on every tick.
#[derive(Debug, Default)]
pub struct Notices {
    blocked: Mutex<Option<String>>,
}

impl Notices {
    /// Records that new work is blocked for `reason`; logs it when it is new.
    pub fn blocked(&self, reason: &str) -> bool {
        let mut last = self.blocked.lock().expect("notices lock");
        if last.as_deref() == Some(reason) {
            return false;
        }
        error!("cannot take new work: {reason}");
        *last = Some(reason.to_string());
        true
    }

    /// Records that new work is possible again.
    pub fn unblocked(&self) {
        let mut last = self.blocked.lock().expect("notices lock");
        if last.take().is_some() {
            tracing::info!("taking new work again");
        }
    }

    /// The reason new work is blocked, if it is.
    pub fn reason(&self) -> Option<String> {
        self.blocked.lock().expect("notices lock").clone()
    }
}

/// Everything one tick of a role reads and writes.
pub struct Ctx<'a, C, N> {
    /// The chain at the tick's block.
    pub chain: &'a C,
    /// The local work.
    pub node: &'a N,
    /// The journal and the events recorded by the watcher.
    pub db: &'a AgentDb,
    /// The role's settings.
    pub cfg: &'a RoleConfig,
    /// Notices shown once.
    pub notices: &'a Notices,
}

impl<C: Chain, N: Node> Ctx<'_, C, N> {
    /// The tick's block.
    pub fn head(&self) -> u64 {
        self.chain.head()
    }

    /// Where the phase that accepts blocks `opens < block <= closes` stands for a transaction
    /// sent now, mined at `head + 1`: open when `opens <= head < closes`, else not open yet or
    /// closed.
    pub(crate) fn window(&self, opens: u64, closes: u64) -> journal::Window {
        if self.head() >= closes {
            journal::Window::Closed
        } else if self.head() < opens {
            journal::Window::NotYet
        } else {
            journal::Window::Open
        }
    }

    /// The project's tasks the database holds as open, each with its deadlines as the chain holds
    /// them at the tick's block (earlier than proposed once a phase closed early), and the chain's
    /// record of it read for that (one read per task and tick).
    pub async fn open_tasks(&self) -> Result<Vec<(TaskRow, ports::TaskInfo)>, AgentError> {
        let mut tasks = Vec::new();
        for task in self.db.open_tasks(self.cfg.project_id)? {
            tasks.push(self.on_chain(task).await?);
        }
        Ok(tasks)
    }

    /// `task` with its deadlines as the chain holds them at the tick's block, and the chain's
    /// record of it (one read).
    pub async fn on_chain(&self, task: TaskRow) -> Result<(TaskRow, ports::TaskInfo), AgentError> {
        let info = self.chain.task(task.task_id).await?;
        let task = match info.deadlines {
            Some(d) => d.apply(task),
            None => task,
        };
        Ok((task, info))
    }

    /// Whether the aggregate of `task` may be applied to the model `onto`: `onto` is the task's
    /// base, or the project allows pipelined rounds (`maxStaleness` 1) and `onto` was built on
    /// the task's base (one model newer). Coordinators refuse to attest anything else, so the
    /// aggregator publishes nothing else.
    pub async fn may_apply(&self, task: &TaskRow, onto: B256) -> Result<bool, AgentError> {
        let base = self.chain.base_root(task).await?;
        if onto == base {
            return Ok(true);
        }
        Ok(self.chain.max_staleness().await? >= 1 && self.db.parent_of(onto)? == Some(base))
    }

    /// Whether new work may start now: the integrity check allows it and the chain says this
    /// account can act (said once, with what to do, when it cannot).
    pub async fn may_start(&self) -> Result<bool, AgentError> {
        if !self.cfg.takes_new_work {
            return Ok(false);
        }
        match self.chain.standing().await? {
            Some(reason) => {
                self.notices.blocked(&reason);
                Ok(false)
            }
            None => {
                self.notices.unblocked();
                Ok(true)
            }
        }
    }
}

/// A fresh random secret.
pub(crate) fn random_b256() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

/// Runs one tick of `agent`'s role with the chain read at `view`.
pub async fn tick(agent: &Agent, view: View) -> Result<(), AgentError> {
    let chain = live::LiveChain::new(agent, view);
    let node = live::LiveNode(agent);
    let cfg = RoleConfig::of(agent);
    let ctx = Ctx {
        chain: &chain,
        node: &node,
        db: &agent.db,
        cfg: &cfg,
        notices: &agent.notices,
    };
    match agent.opts.role {
        Role::Proposer => proposer::tick(&ctx).await,
        Role::Solver => solver::tick(&ctx).await,
        Role::Coordinator => coordinator::tick(&ctx).await,
        Role::Aggregator => aggregator::tick(&ctx).await,
    }
}
