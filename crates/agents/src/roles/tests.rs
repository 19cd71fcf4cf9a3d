//! The roles' decisions on an in-memory chain and node: windows, restarts after a crash at each
//! step, skipped tasks, faults, agents that cannot act, and reorgs that drop each kind of action
//! in each phase.

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use autonet_protocol::commitments::{gt_commit, solution_commit, vote_commit};

use super::fake::{FakeChain, FakeNode};
use super::journal::ActionKey;
use super::ports::{Aggregate, Deadlines, Proposal, Solution, Tx, Vote};
use super::{Ctx, Notices, RoleConfig, aggregator, coordinator, proposer, solver};
use crate::agent::{AgentError, Faults, Role};
use crate::bls::Collection;
use crate::db::{ActionState, AgentDb, LogId, ModelRow, SolutionRow, TaskRow};
use crate::spec::task_spec_hash;

const ME: Address = Address::repeat_byte(0xaa);
const OTHER: Address = Address::repeat_byte(0xbb);
const PROJECT: u64 = 1;
/// The proposal block of the test task; its windows follow.
const B: u64 = 100;
const COMMIT_END: u64 = B + 10;
const SOL_REVEAL_END: u64 = B + 16;
const GT_REVEAL_END: u64 = B + 22;
const VOTE_COMMIT_END: u64 = B + 30;
const VOTE_REVEAL_END: u64 = B + 36;

struct World {
    chain: Arc<FakeChain>,
    node: FakeNode,
    db: AgentDb,
    cfg: RoleConfig,
    notices: Notices,
}

fn log(n: u64) -> LogId {
    LogId {
        tx: B256::with_last_byte(n as u8),
        log_index: n,
        block: n,
        at: None,
    }
}

impl World {
    fn new() -> Self {
        let chain = Arc::new(FakeChain::new(ME, B));
        Self {
            node: FakeNode {
                clock: Some(chain.clone()),
                ..FakeNode::default()
            },
            chain,
            db: AgentDb::open_in_memory().unwrap(),
            cfg: RoleConfig {
                me: ME,
                project_id: PROJECT,
                max_tasks: None,
                reward: U256::from(10),
                confirmations: 2,
                faults: Faults::default(),
                bls_grace_blocks: 5,
                takes_new_work: true,
            },
            notices: Notices::default(),
        }
    }

    async fn tick(&self, role: Role) -> Result<(), AgentError> {
        let ctx = Ctx {
            chain: self.chain.as_ref(),
            node: &self.node,
            db: &self.db,
            cfg: &self.cfg,
            notices: &self.notices,
        };
        match role {
            Role::Proposer => proposer::tick(&ctx).await,
            Role::Solver => solver::tick(&ctx).await,
            Role::Coordinator => coordinator::tick(&ctx).await,
            Role::Aggregator => aggregator::tick(&ctx).await,
        }
    }

    /// Ticks at `head`.
    async fn tick_at(&self, role: Role, head: u64) {
        self.chain.at(head);
        self.tick(role).await.unwrap();
    }

    /// Records task `id` (proposed by `proposer` with `gt`) as the watcher would.
    fn add_task(&self, id: u64, proposer: Address, gt: B256) -> TaskRow {
        let root = self.chain.s().model_root;
        let t = TaskRow {
            task_id: id,
            project_id: PROJECT,
            proposer,
            spec_hash: task_spec_hash(U256::from(PROJECT), root),
            gt_commit: gt,
            block: B,
            commit_end: COMMIT_END,
            gt_reveal_end: GT_REVEAL_END,
            sol_reveal_end: SOL_REVEAL_END,
            vote_commit_end: VOTE_COMMIT_END,
            vote_reveal_end: VOTE_REVEAL_END,
        };
        self.db.insert_task(&t, U256::from(10), log(id)).unwrap();
        self.chain.s().tasks.insert(id, (proposer, gt));
        t
    }

    fn state(&self, key: ActionKey) -> Option<ActionState> {
        self.db
            .action::<serde_json::Value>(&key.to_string())
            .unwrap()
            .map(|a| a.state)
    }

    fn sent_of(&self, pick: impl Fn(&Tx) -> bool) -> Vec<Tx> {
        self.chain.sent().into_iter().filter(|t| pick(t)).collect()
    }

    fn reveal_from(&self, task: u64, solver: Address, index: u8) {
        self.chain.land_from(
            solver,
            Tx::CommitSolution {
                task,
                commitment: B256::repeat_byte(index),
            },
        );
        self.chain.land_from(
            solver,
            Tx::RevealSolution {
                task,
                delta_root: B256::with_last_byte(index + 1),
                manifest_hash: B256::repeat_byte(index + 1),
                salt: B256::ZERO,
            },
        );
        self.db
            .insert_solution(
                task,
                &SolutionRow {
                    solver,
                    delta_root: B256::with_last_byte(index + 1),
                    manifest_hash: B256::repeat_byte(index + 1),
                    reveal_index: index,
                },
                log(50 + u64::from(index)),
            )
            .unwrap();
    }
}

fn is_commit(t: &Tx) -> bool {
    matches!(t, Tx::CommitSolution { .. })
}
fn is_reveal(t: &Tx) -> bool {
    matches!(t, Tx::RevealSolution { .. })
}
fn is_propose(t: &Tx) -> bool {
    matches!(t, Tx::Propose { .. })
}
fn is_gt(t: &Tx) -> bool {
    matches!(t, Tx::RevealGroundTruth { .. })
}
fn is_vote(t: &Tx) -> bool {
    matches!(t, Tx::CommitVote { .. })
}
fn is_vote_reveal(t: &Tx) -> bool {
    matches!(t, Tx::RevealVote { .. })
}
fn is_publish(t: &Tx) -> bool {
    matches!(t, Tx::Publish { .. })
}

// ---------------------------------------------------------------------- solver

/// A solver world with task 1 proposed by someone else, ticked to a commit.
async fn committed_solver() -> World {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, B + 1).await;
    w
}

#[tokio::test]
async fn a_solver_trains_once_and_commits_to_its_stored_secrets() {
    let w = committed_solver().await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
    let stored =
        w.db.action::<Solution>(&ActionKey::Solve(1).to_string())
            .unwrap()
            .unwrap();
    assert_eq!(stored.state, ActionState::Sent);
    let expected = solution_commit(
        U256::from(1),
        ME,
        stored.data.delta_root,
        stored.data.manifest_hash,
        stored.data.salt,
    );
    assert_eq!(
        w.sent_of(is_commit),
        vec![Tx::CommitSolution {
            task: 1,
            commitment: expected
        }]
    );
    // Later ticks neither train nor commit again.
    w.tick_at(Role::Solver, B + 2).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
    assert_eq!(w.sent_of(is_commit).len(), 1);
}

#[tokio::test]
async fn a_commitment_counts_as_done_only_once_it_is_confirmations_deep() {
    let w = committed_solver().await; // landed at B + 2
    w.tick_at(Role::Solver, B + 3).await;
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Sent));
    w.tick_at(Role::Solver, B + 4).await;
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Done));
}

#[tokio::test]
async fn a_solver_does_not_train_for_a_task_whose_commit_window_closed() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, COMMIT_END).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 0);
    assert!(w.chain.sent().is_empty());
    assert_eq!(w.state(ActionKey::Solve(1)), None);
}

#[tokio::test]
async fn a_task_whose_spec_hash_does_not_bind_the_model_is_skipped_untrained() {
    let w = World::new();
    let mut t = w.add_task(1, OTHER, B256::repeat_byte(1));
    t.spec_hash = B256::repeat_byte(0xee);
    w.db.insert_task(&t, U256::from(10), log(1)).unwrap();
    w.tick_at(Role::Solver, B + 1).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 0);
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn a_solver_that_abstains_skips_the_task_once_and_sends_nothing() {
    let mut w = World::new();
    w.node.abstain = Some("attack copier: nothing to copy yet");
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, B + 1).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
    assert!(w.chain.sent().is_empty());
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
    // Skipped for good: later ticks do not try again.
    w.tick_at(Role::Solver, B + 2).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
}

#[tokio::test]
async fn training_that_ends_after_the_commit_window_is_skipped_not_sent() {
    let mut w = World::new();
    w.node.work_blocks = 20;
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, B + 1).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
    assert!(w.chain.sent().is_empty());
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn a_solver_that_committed_in_an_earlier_life_without_its_secrets_does_not_commit_twice() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.chain.land_from(
        ME,
        Tx::CommitSolution {
            task: 1,
            commitment: B256::repeat_byte(9),
        },
    );
    w.tick_at(Role::Solver, B + 1).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 0);
    assert!(w.chain.sent().is_empty());
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn a_crash_between_storing_the_secrets_and_sending_resends_the_same_commitment() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.chain.s().fail_sends = 1;
    w.chain.at(B + 1);
    assert!(w.tick(Role::Solver).await.is_err());
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Prepared));
    w.tick_at(Role::Solver, B + 2).await;
    let commits = w.sent_of(is_commit);
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0], commits[1], "the same secrets");
    assert_eq!(*w.node.trainings.lock().unwrap(), 1, "no second training");
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Sent));
}

#[tokio::test]
async fn a_prepared_commitment_whose_window_closed_is_skipped_and_never_revealed() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.chain.s().fail_sends = 1;
    w.chain.at(B + 1);
    assert!(w.tick(Role::Solver).await.is_err());
    w.tick_at(Role::Solver, COMMIT_END + 1).await;
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
    assert_eq!(w.sent_of(is_commit).len(), 1);
    assert!(w.sent_of(is_reveal).is_empty());
}

#[tokio::test]
async fn a_solver_reveals_its_stored_solution_inside_the_reveal_window_only() {
    let w = committed_solver().await;
    w.tick_at(Role::Solver, COMMIT_END - 1).await;
    assert!(
        w.sent_of(is_reveal).is_empty(),
        "a reveal sent now would land at commitEnd, inside the commit window"
    );
    w.tick_at(Role::Solver, COMMIT_END).await;
    let s =
        w.db.action::<Solution>(&ActionKey::Solve(1).to_string())
            .unwrap()
            .unwrap()
            .data;
    assert_eq!(
        w.sent_of(is_reveal),
        vec![Tx::RevealSolution {
            task: 1,
            delta_root: s.delta_root,
            manifest_hash: s.manifest_hash,
            salt: s.salt
        }]
    );
}

#[tokio::test]
async fn a_reorg_that_drops_the_commitment_inside_its_window_resends_the_same_commitment() {
    let w = committed_solver().await; // landed at B + 2
    w.chain.at(B + 3);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Solver).await.unwrap();
    let commits = w.sent_of(is_commit);
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0], commits[1]);
    assert_eq!(*w.node.trainings.lock().unwrap(), 1);
    w.tick_at(Role::Solver, B + 6).await;
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Done));
}

#[tokio::test]
async fn a_reorg_that_drops_the_commitment_after_its_window_gives_it_up_and_reveals_nothing() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, COMMIT_END - 2).await; // lands at COMMIT_END - 1
    w.chain.at(COMMIT_END + 1);
    assert_eq!(w.chain.reorg(3), 1);
    w.tick(Role::Solver).await.unwrap();
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
    assert_eq!(w.sent_of(is_commit).len(), 1);
    assert!(w.sent_of(is_reveal).is_empty());
}

#[tokio::test]
async fn a_reorg_that_drops_the_solution_reveal_resends_the_same_reveal() {
    let w = committed_solver().await;
    w.tick_at(Role::Solver, COMMIT_END + 1).await; // reveal lands at COMMIT_END + 2
    w.chain.at(COMMIT_END + 3);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Solver).await.unwrap();
    let reveals = w.sent_of(is_reveal);
    assert_eq!(reveals.len(), 2);
    assert_eq!(reveals[0], reveals[1]);
}

#[tokio::test]
async fn a_solver_displaced_from_its_seat_does_not_reveal() {
    let w = committed_solver().await;
    // The seat is taken over: the commitment is gone from the chain after its window (the
    // journal gives it up) ...
    w.chain
        .s()
        .effects
        .retain(|e| !matches!(e.tx, Tx::CommitSolution { .. }));
    w.tick_at(Role::Solver, COMMIT_END + 1).await;
    assert!(w.sent_of(is_reveal).is_empty());
    assert_eq!(w.state(ActionKey::Solve(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn the_skip_reveal_fault_commits_but_never_reveals() {
    let mut w = World::new();
    w.cfg.faults.skip_solution_reveal = true;
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.tick_at(Role::Solver, B + 1).await;
    w.tick_at(Role::Solver, COMMIT_END + 1).await;
    assert_eq!(w.sent_of(is_commit).len(), 1);
    assert!(w.sent_of(is_reveal).is_empty());
    assert_eq!(
        w.state(ActionKey::RevealSolution(1)),
        Some(ActionState::Skipped)
    );
}

#[tokio::test]
async fn a_solver_that_cannot_act_says_so_once_and_starts_nothing() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.chain.s().standing = Some("stake below the solver minimum".into());
    w.tick_at(Role::Solver, B + 1).await;
    w.tick_at(Role::Solver, B + 2).await;
    assert_eq!(*w.node.trainings.lock().unwrap(), 0);
    assert_eq!(
        w.notices.reason().as_deref(),
        Some("stake below the solver minimum")
    );
    // Once it can act again it works.
    w.chain.s().standing = None;
    w.tick_at(Role::Solver, B + 3).await;
    assert_eq!(w.notices.reason(), None);
    assert_eq!(w.sent_of(is_commit).len(), 1);
}

// ---------------------------------------------------------------------- proposer

#[tokio::test]
async fn a_proposer_proposes_once_and_waits_for_the_round() {
    let w = World::new();
    w.tick_at(Role::Proposer, B).await;
    let proposals = w.sent_of(is_propose);
    assert_eq!(proposals.len(), 1);
    let p =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap();
    assert_eq!(p.task_id, Some(1));
    assert_eq!(
        p.data.gt_commit,
        gt_commit(ME, U256::from(PROJECT), p.data.eval_spec_hash, p.data.salt)
    );
    // Not delivered by the watcher yet, then delivered and open: no second proposal.
    w.tick_at(Role::Proposer, B + 5).await;
    w.add_task(1, ME, p.data.gt_commit);
    w.tick_at(Role::Proposer, B + 6).await;
    assert_eq!(w.sent_of(is_propose).len(), 1);
    assert_eq!(w.state(ActionKey::Propose(1)), Some(ActionState::Done));
    // The round ends without anything to aggregate: the next proposal follows.
    w.db.insert_outcome(1, "closed", log(2)).unwrap();
    w.tick_at(Role::Proposer, B + 7).await;
    assert_eq!(w.sent_of(is_propose).len(), 2);
    assert!(w.state(ActionKey::Propose(2)).is_some());
}

#[tokio::test]
async fn a_proposer_stops_at_max_tasks() {
    let mut w = World::new();
    w.cfg.max_tasks = Some(1);
    w.tick_at(Role::Proposer, B).await;
    let gt =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap()
            .data
            .gt_commit;
    w.add_task(1, ME, gt);
    w.tick_at(Role::Proposer, B + 5).await;
    w.db.insert_outcome(1, "closed", log(2)).unwrap();
    w.tick_at(Role::Proposer, B + 6).await;
    assert_eq!(w.sent_of(is_propose).len(), 1);
}

#[tokio::test]
async fn a_proposer_whose_budget_or_stake_is_short_says_what_to_do_once() {
    let w = World::new();
    w.chain.s().standing = Some("fund the project".into());
    w.tick_at(Role::Proposer, B).await;
    w.tick_at(Role::Proposer, B + 1).await;
    assert!(w.sent_of(is_propose).is_empty());
    assert_eq!(w.notices.reason().as_deref(), Some("fund the project"));
    assert!(!w.notices.blocked("fund the project"), "said only once");
}

#[tokio::test]
async fn a_proposal_sent_without_a_recorded_receipt_is_found_in_the_events_not_sent_twice() {
    let w = World::new();
    // A crash after sending: the transaction lands but no receipt is recorded.
    w.chain.s().fail_sends = 1;
    w.chain.at(B);
    assert!(w.tick(Role::Proposer).await.is_err());
    let p =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap();
    w.chain.land_from(
        ME,
        Tx::Propose {
            spec_hash: p.data.spec_hash,
            gt_commit: p.data.gt_commit,
            reward: U256::from(10),
        },
    );
    w.add_task(7, ME, p.data.gt_commit);
    w.tick_at(Role::Proposer, B + 1).await;
    assert_eq!(w.sent_of(is_propose).len(), 1, "found, not sent again");
    let p =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap();
    assert_eq!(p.task_id, Some(7));
}

#[tokio::test]
async fn a_lost_proposal_is_sent_again_with_the_same_commitment_after_the_grace() {
    let w = World::new();
    w.chain.s().fail_sends = 1;
    w.chain.at(B);
    assert!(w.tick(Role::Proposer).await.is_err());
    w.tick_at(Role::Proposer, B + 2).await;
    assert_eq!(w.sent_of(is_propose).len(), 1, "within the grace: wait");
    w.tick_at(Role::Proposer, B + 10).await;
    let sent = w.sent_of(is_propose);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
}

#[tokio::test]
async fn a_reorg_that_drops_a_proposal_resends_it_with_the_same_secrets() {
    let w = World::new();
    w.tick_at(Role::Proposer, B).await; // lands at B + 1
    w.chain.at(B + 2);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Proposer).await.unwrap();
    let sent = w.sent_of(is_propose);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
}

/// A proposer world whose task 1 (its own) has one revealed solution.
async fn proposer_with_task() -> (World, Proposal) {
    let w = World::new();
    w.tick_at(Role::Proposer, B - 1).await;
    let p =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap()
            .data;
    w.add_task(1, ME, p.gt_commit);
    w.reveal_from(1, OTHER, 0);
    (w, p)
}

#[tokio::test]
async fn the_ground_truth_is_revealed_after_the_solution_reveals_and_only_then() {
    let (w, p) = proposer_with_task().await;
    w.tick_at(Role::Proposer, SOL_REVEAL_END - 1).await;
    assert!(w.sent_of(is_gt).is_empty());
    w.tick_at(Role::Proposer, SOL_REVEAL_END).await;
    assert_eq!(
        w.sent_of(is_gt),
        vec![Tx::RevealGroundTruth {
            task: 1,
            eval_spec_hash: p.eval_spec_hash,
            salt: p.salt
        }]
    );
}

#[tokio::test]
async fn no_ground_truth_is_revealed_for_a_task_without_revealed_solutions() {
    let w = World::new();
    w.tick_at(Role::Proposer, B - 1).await;
    let p =
        w.db.action::<Proposal>(&ActionKey::Propose(1).to_string())
            .unwrap()
            .unwrap()
            .data;
    w.add_task(1, ME, p.gt_commit);
    w.tick_at(Role::Proposer, SOL_REVEAL_END + 1).await;
    assert!(w.sent_of(is_gt).is_empty());
}

#[tokio::test]
async fn the_withhold_fault_never_reveals_the_ground_truth() {
    let (mut w, _) = proposer_with_task().await;
    w.cfg.faults.skip_gt_reveal = true;
    w.tick_at(Role::Proposer, SOL_REVEAL_END + 1).await;
    assert!(w.sent_of(is_gt).is_empty());
    assert_eq!(
        w.state(ActionKey::RevealGroundTruth(1)),
        Some(ActionState::Skipped)
    );
}

#[tokio::test]
async fn a_reorg_that_drops_the_ground_truth_reveal_resends_it_inside_its_window() {
    // The devnet failure: a 4-block reorg dropped the reveal after it was marked done.
    let (w, _) = proposer_with_task().await;
    w.tick_at(Role::Proposer, SOL_REVEAL_END + 1).await; // lands at +2
    w.tick_at(Role::Proposer, SOL_REVEAL_END + 3).await;
    w.chain.at(SOL_REVEAL_END + 5);
    assert_eq!(w.chain.reorg(4), 1);
    w.tick(Role::Proposer).await.unwrap();
    let gts = w.sent_of(is_gt);
    assert_eq!(gts.len(), 2);
    assert_eq!(gts[0], gts[1]);
    w.tick_at(Role::Proposer, SOL_REVEAL_END + 9).await;
    assert_eq!(
        w.state(ActionKey::RevealGroundTruth(1)),
        Some(ActionState::Done)
    );
}

#[tokio::test]
async fn a_reorg_that_drops_the_ground_truth_reveal_after_its_window_gives_it_up_loudly() {
    let (w, _) = proposer_with_task().await;
    w.tick_at(Role::Proposer, GT_REVEAL_END - 2).await; // lands at GT_REVEAL_END - 1
    w.chain.at(GT_REVEAL_END + 1);
    assert_eq!(w.chain.reorg(3), 1);
    w.tick(Role::Proposer).await.unwrap();
    assert_eq!(w.sent_of(is_gt).len(), 1);
    assert_eq!(
        w.state(ActionKey::RevealGroundTruth(1)),
        Some(ActionState::Skipped)
    );
}

// ---------------------------------------------------------------------- coordinator

/// A coordinator world: task 1 with two revealed solutions and its eval spec revealed.
fn coordinator_world() -> World {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    w.reveal_from(1, Address::repeat_byte(0xc1), 0);
    w.reveal_from(1, Address::repeat_byte(0xc2), 1);
    w.chain.land_from(
        OTHER,
        Tx::RevealGroundTruth {
            task: 1,
            eval_spec_hash: B256::repeat_byte(0xe0),
            salt: B256::ZERO,
        },
    );
    w.db.insert_eval_spec(1, B256::repeat_byte(0xe0), log(60))
        .unwrap();
    w
}

#[tokio::test]
async fn a_coordinator_votes_inside_the_vote_window_with_its_stored_scores() {
    let w = coordinator_world();
    w.tick_at(Role::Coordinator, GT_REVEAL_END - 1).await;
    assert!(w.sent_of(is_vote).is_empty(), "opens after gtRevealEnd");
    w.tick_at(Role::Coordinator, GT_REVEAL_END).await;
    let v =
        w.db.action::<Vote>(&ActionKey::Vote(1).to_string())
            .unwrap()
            .unwrap()
            .data;
    assert_eq!(v.scores.len(), 2);
    assert_eq!(
        w.sent_of(is_vote),
        vec![Tx::CommitVote {
            task: 1,
            commitment: vote_commit(U256::from(1), ME, &v.scores, v.salt)
        }]
    );
    w.tick_at(Role::Coordinator, VOTE_COMMIT_END - 1).await;
    assert!(w.sent_of(is_vote_reveal).is_empty());
    w.tick_at(Role::Coordinator, VOTE_COMMIT_END).await;
    assert_eq!(
        w.sent_of(is_vote_reveal),
        vec![Tx::RevealVote {
            task: 1,
            scores: v.scores.clone(),
            salt: v.salt
        }]
    );
}

#[tokio::test]
async fn a_coordinator_waits_until_the_watcher_delivered_every_reveal() {
    let w = coordinator_world();
    // A third reveal on chain that the database does not hold yet.
    w.chain.land_from(
        Address::repeat_byte(0xc3),
        Tx::RevealSolution {
            task: 1,
            delta_root: B256::ZERO,
            manifest_hash: B256::ZERO,
            salt: B256::ZERO,
        },
    );
    w.tick_at(Role::Coordinator, GT_REVEAL_END + 1).await;
    assert_eq!(*w.node.scorings.lock().unwrap(), 0);
    assert!(w.sent_of(is_vote).is_empty());
}

#[tokio::test]
async fn scoring_that_ends_after_the_vote_window_is_skipped_not_sent() {
    let mut w = coordinator_world();
    w.node.work_blocks = 10;
    w.tick_at(Role::Coordinator, GT_REVEAL_END + 1).await;
    assert!(w.sent_of(is_vote).is_empty());
    assert_eq!(w.state(ActionKey::Vote(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn a_reorg_that_drops_the_vote_commitment_resends_the_same_commitment() {
    let w = coordinator_world();
    w.tick_at(Role::Coordinator, GT_REVEAL_END + 1).await;
    w.chain.at(GT_REVEAL_END + 3);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Coordinator).await.unwrap();
    let votes = w.sent_of(is_vote);
    assert_eq!(votes.len(), 2);
    assert_eq!(votes[0], votes[1]);
    assert_eq!(*w.node.scorings.lock().unwrap(), 1, "not scored again");
}

#[tokio::test]
async fn a_reorg_that_drops_the_vote_reveal_resends_the_same_scores_and_salt() {
    let w = coordinator_world();
    w.tick_at(Role::Coordinator, GT_REVEAL_END + 1).await;
    w.tick_at(Role::Coordinator, VOTE_COMMIT_END + 1).await;
    w.chain.at(VOTE_COMMIT_END + 3);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Coordinator).await.unwrap();
    let reveals = w.sent_of(is_vote_reveal);
    assert_eq!(reveals.len(), 2);
    assert_eq!(reveals[0], reveals[1]);
}

/// The aggregate of task 1 built on `parent`.
fn model_on(parent: B256) -> Aggregate {
    Aggregate {
        root: B256::repeat_byte(0x77),
        manifest_hash: B256::repeat_byte(0x78),
        parent_root: parent,
        total_size: 1000,
        shard_size: 256,
        k: 4,
        m: 2,
    }
}

/// A published model of task 1 (finalized), parent = the project's model.
fn publish_world(aggregate_matches: bool) -> (World, Aggregate, ModelRow) {
    let w = coordinator_world();
    w.db.insert_outcome(1, "finalized", log(70)).unwrap();
    let parent = w.chain.s().model_root;
    let agg = model_on(parent);
    let published = if aggregate_matches {
        agg.clone()
    } else {
        Aggregate {
            manifest_hash: B256::repeat_byte(0x99),
            ..agg.clone()
        }
    };
    *w.node.aggregate.lock().unwrap() = Some(agg.clone());
    w.chain.at(VOTE_REVEAL_END + 2);
    w.chain.land_from(
        OTHER,
        Tx::Publish {
            task: 1,
            model: published.clone(),
        },
    );
    let row = ModelRow {
        root: published.root,
        project_id: PROJECT,
        parent_root: parent,
        manifest_hash: published.manifest_hash,
        task_ids: vec![1],
        publisher: OTHER,
        block: VOTE_REVEAL_END + 2,
    };
    w.db.insert_model(&row, log(80)).unwrap();
    (w, agg, row)
}

#[tokio::test]
async fn a_coordinator_attests_a_model_it_recomputed() {
    let (w, agg, row) = publish_world(true);
    w.tick_at(Role::Coordinator, row.block + 1).await;
    let attest = ActionKey::Attest {
        root: agg.root,
        block: row.block,
    };
    assert_eq!(
        w.sent_of(|t| matches!(t, Tx::Attest { .. })),
        vec![Tx::Attest {
            root: agg.root,
            manifest_hash: agg.manifest_hash,
            publisher: OTHER
        }]
    );
    assert_eq!(w.state(attest), Some(ActionState::Sent));
    // Its own attestation makes it no holder: it announces the shards it now serves.
    assert_eq!(
        w.chain.s().announced,
        vec![(agg.root, agg.shard_count())],
        "announced before attesting alone"
    );
}

#[tokio::test]
async fn a_coordinator_does_not_attest_a_model_that_differs_from_its_recomputation() {
    let (w, agg, row) = publish_world(false);
    w.tick_at(Role::Coordinator, row.block + 1).await;
    assert!(w.sent_of(|t| matches!(t, Tx::Attest { .. })).is_empty());
    assert_eq!(
        w.state(ActionKey::Attest {
            root: agg.root,
            block: row.block
        }),
        Some(ActionState::Skipped)
    );
}

#[tokio::test]
async fn a_bls_coordinator_signs_first_and_attests_alone_only_after_the_grace() {
    let (mut w, agg, row) = publish_world(true);
    w.node.bls = true;
    w.tick_at(Role::Coordinator, row.block + 1).await;
    assert_eq!(w.node.signed.lock().unwrap().len(), 1);
    assert!(w.sent_of(|t| matches!(t, Tx::Attest { .. })).is_empty());
    // A signer of the aggregate that accepts the model holds its shards without announcing.
    assert!(
        w.chain.s().announced.is_empty(),
        "no announcement while signing"
    );
    w.tick_at(Role::Coordinator, row.block + 5).await;
    assert_eq!(w.node.signed.lock().unwrap().len(), 1, "signed once");
    assert_eq!(
        w.sent_of(|t| matches!(t, Tx::Attest { root, .. } if *root == agg.root))
            .len(),
        1
    );
    // Attesting alone after the grace: no aggregate will make it a holder, so it announces.
    assert_eq!(w.chain.s().announced, vec![(agg.root, agg.shard_count())]);
}

// ---------------------------------------------------------------------- aggregator

#[tokio::test]
async fn an_aggregator_publishes_a_finalized_task_once() {
    let w = coordinator_world();
    w.db.insert_outcome(1, "finalized", log(70)).unwrap();
    let agg = model_on(w.chain.s().model_root);
    *w.node.aggregate.lock().unwrap() = Some(agg.clone());
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 1).await;
    assert_eq!(
        w.sent_of(is_publish),
        vec![Tx::Publish {
            task: 1,
            model: agg.clone()
        }]
    );
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 2).await;
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 5).await;
    assert_eq!(w.sent_of(is_publish).len(), 1);
    assert_eq!(w.state(ActionKey::Publish(1)), Some(ActionState::Done));
    // Its acceptance makes the publisher a holder of every shard: no announcement.
    assert!(w.chain.s().announced.is_empty());
}

#[tokio::test]
async fn an_aggregator_serves_a_model_another_account_published_first() {
    let (w, agg, row) = publish_world(true);
    w.tick_at(Role::Aggregator, row.block + 1).await;
    assert!(
        w.sent_of(is_publish).is_empty(),
        "the same model is already published"
    );
    assert_eq!(w.state(ActionKey::Publish(1)), Some(ActionState::Done));
    assert_eq!(w.chain.s().announced, vec![(agg.root, agg.shard_count())]);
}

#[tokio::test]
async fn a_reorg_that_drops_the_publication_publishes_the_same_model_again() {
    let w = coordinator_world();
    w.db.insert_outcome(1, "finalized", log(70)).unwrap();
    let agg = model_on(w.chain.s().model_root);
    *w.node.aggregate.lock().unwrap() = Some(agg.clone());
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 1).await;
    // The model the node would build now differs (it must not matter: the journal holds it).
    *w.node.aggregate.lock().unwrap() = None;
    w.chain.at(VOTE_REVEAL_END + 3);
    assert_eq!(w.chain.reorg(2), 1);
    w.tick(Role::Aggregator).await.unwrap();
    let published = w.sent_of(is_publish);
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], published[1]);
}

#[tokio::test]
async fn an_aggregator_skips_a_task_whose_base_the_project_moved_past() {
    let w = coordinator_world();
    w.db.insert_outcome(1, "finalized", log(70)).unwrap();
    w.chain.s().base_roots.insert(1, B256::repeat_byte(0x01));
    *w.node.aggregate.lock().unwrap() = Some(model_on(B256::repeat_byte(0x01)));
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 1).await;
    assert!(w.sent_of(is_publish).is_empty());
    assert_eq!(w.state(ActionKey::Publish(1)), Some(ActionState::Skipped));
}

#[tokio::test]
async fn an_aggregator_waits_out_a_squatter_with_another_manifest() {
    let (w, agg, row) = publish_world(false);
    w.tick_at(Role::Aggregator, row.block + 1).await;
    assert!(w.sent_of(is_publish).is_empty());
    assert_eq!(w.state(ActionKey::Publish(1)), None, "still to do");
    // Past the squatter's expiry: publish over it.
    w.tick_at(Role::Aggregator, row.block + 51).await;
    assert_eq!(
        w.sent_of(is_publish),
        vec![Tx::Publish {
            task: 1,
            model: agg
        }]
    );
}

#[tokio::test]
async fn an_aggregator_submits_one_bls_aggregate_once_the_signatures_are_in() {
    let (w, agg, row) = publish_world(true);
    w.tick_at(Role::Aggregator, row.block + 1).await;
    let bls = |t: &Tx| matches!(t, Tx::AttestBls { .. });
    assert!(w.sent_of(bls).is_empty(), "signatures short");
    *w.node.collection.lock().unwrap() = Some(Collection::Ready {
        bitmap: U256::from(7),
        signers: 3,
        apk_g2: [U256::from(1); 4],
        sigma: [U256::from(2); 2],
    });
    w.tick_at(Role::Aggregator, row.block + 2).await;
    w.tick_at(Role::Aggregator, row.block + 3).await;
    let sent = w.sent_of(bls);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0], Tx::AttestBls { root, signers: 3, .. } if *root == agg.root));
}

// ---------------------------------------------------------------------- finalize

#[tokio::test]
async fn a_task_is_finalized_once_its_last_window_passed_and_not_before() {
    let w = coordinator_world();
    let fin = |t: &Tx| matches!(t, Tx::Finalize { .. });
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END - 1).await;
    assert!(w.sent_of(fin).is_empty());
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END).await;
    assert_eq!(w.sent_of(fin), vec![Tx::Finalize { task: 1 }]);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 3).await;
    assert_eq!(w.sent_of(fin).len(), 1, "finalized on chain: not again");
}

#[tokio::test]
async fn a_task_nobody_committed_to_is_finalized_right_after_its_commit_window() {
    let w = World::new();
    w.add_task(1, OTHER, B256::repeat_byte(1));
    let fin = |t: &Tx| matches!(t, Tx::Finalize { .. });
    w.tick_at(Role::Aggregator, COMMIT_END - 1).await;
    assert!(w.sent_of(fin).is_empty());
    w.tick_at(Role::Aggregator, COMMIT_END).await;
    assert_eq!(w.sent_of(fin), vec![Tx::Finalize { task: 1 }]);
}

// ---------------------------------------------------------------------- phases closed early

/// The test task's deadlines once `phase` (0 commit .. 4 vote reveal) closed at `block`: that
/// phase ends there and every later one moves earlier by the same number of blocks.
fn closed_at(phase: usize, block: u64) -> Deadlines {
    let ends = [
        COMMIT_END,
        SOL_REVEAL_END,
        GT_REVEAL_END,
        VOTE_COMMIT_END,
        VOTE_REVEAL_END,
    ];
    let left = ends[phase] - block;
    let end = |i: usize| if i >= phase { ends[i] - left } else { ends[i] };
    Deadlines {
        commit_end: end(0),
        sol_reveal_end: end(1),
        gt_reveal_end: end(2),
        vote_commit_end: end(3),
        vote_reveal_end: end(4),
    }
}

#[tokio::test]
async fn a_solver_reveals_at_the_block_that_closed_the_commit_phase_early() {
    let w = committed_solver().await;
    let close = B + 4;
    w.tick_at(Role::Solver, close - 1).await;
    assert!(w.sent_of(is_reveal).is_empty(), "the commit phase is open");
    w.chain.at(close);
    w.chain.close_early(1, closed_at(0, close));
    w.tick(Role::Solver).await.unwrap();
    assert_eq!(
        w.sent_of(is_reveal).len(),
        1,
        "sent at the closing block, so it lands one block after it"
    );
}

#[tokio::test]
async fn a_proposer_reveals_the_eval_spec_at_the_block_that_closed_the_solution_reveals() {
    let (w, p) = proposer_with_task().await;
    let close = COMMIT_END + 1;
    w.tick_at(Role::Proposer, close - 1).await;
    assert!(w.sent_of(is_gt).is_empty());
    w.chain.at(close);
    w.chain.close_early(1, closed_at(1, close));
    w.tick(Role::Proposer).await.unwrap();
    assert_eq!(
        w.sent_of(is_gt),
        vec![Tx::RevealGroundTruth {
            task: 1,
            eval_spec_hash: p.eval_spec_hash,
            salt: p.salt
        }]
    );
}

#[tokio::test]
async fn a_coordinator_follows_every_early_close_within_one_block() {
    let w = coordinator_world();
    // The eval spec landed at `gt`, closing its phase: votes open the next block.
    let gt = SOL_REVEAL_END + 1;
    w.tick_at(Role::Coordinator, gt - 1).await;
    assert!(w.sent_of(is_vote).is_empty());
    w.chain.at(gt);
    w.chain.close_early(1, closed_at(2, gt));
    w.tick(Role::Coordinator).await.unwrap();
    assert_eq!(w.sent_of(is_vote).len(), 1, "voted at the closing block");
    // Every coordinator committed at `votes`: reveals open the next block.
    let votes = gt + 2;
    let d = closed_at(2, gt);
    let left = d.vote_commit_end - votes;
    w.chain.at(votes);
    w.chain.close_early(
        1,
        Deadlines {
            vote_commit_end: votes,
            vote_reveal_end: d.vote_reveal_end - left,
            ..d
        },
    );
    w.tick(Role::Coordinator).await.unwrap();
    assert_eq!(
        w.sent_of(is_vote_reveal).len(),
        1,
        "revealed at the closing block"
    );
}

#[tokio::test]
async fn a_prepared_vote_whose_window_a_reorg_moved_later_waits_for_it_instead_of_giving_up() {
    // The eval spec closed its phase early at `gt`; the coordinator prepared its vote there but
    // the send failed. A reorg then dropped the eval spec and its early close: the vote window
    // is back at the proposal's deadlines, not open yet.
    let w = coordinator_world();
    let gt = SOL_REVEAL_END + 1;
    w.chain.at(gt);
    w.chain.close_early(1, closed_at(2, gt));
    w.chain.s().fail_sends = 1;
    assert!(w.tick(Role::Coordinator).await.is_err());
    assert_eq!(w.state(ActionKey::Vote(1)), Some(ActionState::Prepared));
    w.chain.s().closed_early.clear();
    w.tick_at(Role::Coordinator, gt + 1).await;
    assert_eq!(
        w.state(ActionKey::Vote(1)),
        Some(ActionState::Prepared),
        "waiting, not skipped"
    );
    assert_eq!(w.sent_of(is_vote).len(), 1, "only the failed send so far");
    w.tick_at(Role::Coordinator, GT_REVEAL_END).await;
    let votes = w.sent_of(is_vote);
    assert_eq!(votes.len(), 2);
    assert_eq!(
        votes[0], votes[1],
        "the same commitment, from the stored secrets"
    );
    assert_eq!(w.state(ActionKey::Vote(1)), Some(ActionState::Sent));
}

#[tokio::test]
async fn a_task_whose_vote_reveals_closed_early_is_finalized_at_the_closing_block() {
    let w = coordinator_world();
    let fin = |t: &Tx| matches!(t, Tx::Finalize { .. });
    let close = VOTE_COMMIT_END + 2;
    w.tick_at(Role::Aggregator, close - 1).await;
    assert!(w.sent_of(fin).is_empty());
    w.chain.at(close);
    w.chain.close_early(1, closed_at(4, close));
    w.tick(Role::Aggregator).await.unwrap();
    assert_eq!(w.sent_of(fin), vec![Tx::Finalize { task: 1 }]);
}

#[tokio::test]
async fn a_reveal_after_a_restart_uses_the_deadlines_the_chain_holds_not_the_proposal() {
    // A solver restarted after the commit phase closed early: its database still holds the
    // proposal's deadlines, and the chain's are what it acts on.
    let w = committed_solver().await;
    let close = B + 3;
    w.chain.at(close);
    w.chain.close_early(1, closed_at(0, close));
    let row = w.db.open_tasks(PROJECT).unwrap().remove(0);
    assert_eq!(
        row.commit_end, COMMIT_END,
        "the database keeps the proposal"
    );
    w.tick(Role::Solver).await.unwrap();
    assert_eq!(w.sent_of(is_reveal).len(), 1);
    // Past the shifted reveal deadline the solver sends nothing more, even though the proposal's
    // deadline has not passed.
    let w2 = committed_solver().await;
    w2.chain.at(close);
    w2.chain.close_early(1, closed_at(0, close));
    w2.chain.at(closed_at(0, close).sol_reveal_end);
    w2.tick(Role::Solver).await.unwrap();
    assert!(w2.sent_of(is_reveal).is_empty(), "its reveal phase is over");
}

#[test]
fn the_same_solution_always_commits_to_the_same_hash() {
    // The reorg re-send relies on the commitment being a function of the stored secrets only.
    let s = FakeNode::solution(3);
    let a = solution_commit(U256::from(3), ME, s.delta_root, s.manifest_hash, s.salt);
    let b = solution_commit(U256::from(3), ME, s.delta_root, s.manifest_hash, s.salt);
    assert_eq!(a, b);
    assert_ne!(
        a,
        solution_commit(U256::from(3), OTHER, s.delta_root, s.manifest_hash, s.salt)
    );
}

// ---------------------------------------------------------------------- pipelined rounds

/// The genesis model, the model task 1 produced on it, and the one task 2 produced on that.
const M0: B256 = B256::repeat_byte(0x11);
const M1: B256 = B256::repeat_byte(0x77);
const M2: B256 = B256::repeat_byte(0x88);

impl World {
    /// The same chain and database with a fresh node and fresh notices: the agent restarted.
    fn restart(self) -> World {
        World {
            node: FakeNode {
                clock: Some(self.chain.clone()),
                aggregate: std::sync::Mutex::new(self.node.aggregate.lock().unwrap().clone()),
                aggregate_of: std::sync::Mutex::new(self.node.aggregate_of.lock().unwrap().clone()),
                ..FakeNode::default()
            },
            notices: Notices::default(),
            ..self
        }
    }

    fn pipelined(self) -> World {
        self.chain.s().max_staleness = 1;
        self
    }

    /// Task `id` finalized with one solver earning incentive.
    fn finalize(&self, id: u64) {
        self.db
            .insert_incentive(
                id,
                Address::repeat_byte(0xc1),
                U256::from(1),
                U256::from(1),
                U256::from(1),
                log(90 + id),
            )
            .unwrap();
        let head = self.chain.s().head;
        self.db
            .insert_outcome(
                id,
                "finalized",
                LogId {
                    block: head,
                    ..log(70 + id)
                },
            )
            .unwrap();
    }

    /// `root` (task `task`'s model on `parent`) published at the head, as the watcher records it.
    fn published(&self, task: u64, root: B256, parent: B256) -> ModelRow {
        let row = ModelRow {
            root,
            project_id: PROJECT,
            parent_root: parent,
            manifest_hash: B256::repeat_byte(0x78),
            task_ids: vec![task],
            publisher: OTHER,
            block: self.chain.s().head,
        };
        self.db.insert_model(&row, log(100 + task)).unwrap();
        row
    }

    /// `root` accepted: the project's model from now on.
    fn accept(&self, root: B256, version: u64) {
        self.db
            .insert_accepted(root, PROJECT, version, log(110 + version))
            .unwrap();
        self.chain.s().model_root = root;
    }
}

/// The proposal of this account's `n`-th proposal.
fn proposal(w: &World, n: u64) -> Proposal {
    w.db.action::<Proposal>(&ActionKey::Propose(n).to_string())
        .unwrap()
        .unwrap()
        .data
}

#[tokio::test]
async fn a_pipelined_proposer_proposes_the_next_task_once_the_commit_phase_closes() {
    for staleness in [0u8, 1] {
        let w = World::new();
        w.chain.s().max_staleness = staleness;
        w.tick_at(Role::Proposer, B).await;
        w.add_task(1, ME, proposal(&w, 1).gt_commit);
        w.tick_at(Role::Proposer, COMMIT_END - 1).await;
        assert_eq!(w.sent_of(is_propose).len(), 1, "solvers may still commit");
        w.tick_at(Role::Proposer, COMMIT_END).await;
        let expected = if staleness == 1 { 2 } else { 1 };
        assert_eq!(
            w.sent_of(is_propose).len(),
            expected,
            "maxStaleness {staleness}"
        );
    }
    // A commit phase that closed early lets the next task start at once.
    let w = World::new().pipelined();
    w.tick_at(Role::Proposer, B).await;
    w.add_task(1, ME, proposal(&w, 1).gt_commit);
    w.tick_at(Role::Proposer, B + 3).await;
    assert_eq!(w.sent_of(is_propose).len(), 1);
    w.chain.close_early(1, closed_at(0, B + 3));
    w.tick(Role::Proposer).await.unwrap();
    assert_eq!(w.sent_of(is_propose).len(), 2);
    // Task 2 trains on the model task 1 started from (the only accepted one).
    assert_eq!(
        proposal(&w, 2).spec_hash,
        task_spec_hash(U256::from(PROJECT), M0)
    );
}

#[tokio::test]
async fn a_pipelined_proposer_keeps_two_tasks_in_flight_at_most_across_restarts() {
    let w = World::new().pipelined();
    w.tick_at(Role::Proposer, B).await;
    w.add_task(1, ME, proposal(&w, 1).gt_commit);
    w.tick_at(Role::Proposer, COMMIT_END - 1).await;
    w.tick_at(Role::Proposer, COMMIT_END).await;
    w.add_task(2, ME, proposal(&w, 2).gt_commit);
    // Task 2's solvers are done and task 1 finalized, but its model is not accepted yet: a third
    // task now would train on the genesis model and land two models behind.
    w.finalize(1);
    w.tick_at(Role::Proposer, COMMIT_END + 5).await;
    let w = w.restart();
    w.tick_at(Role::Proposer, COMMIT_END + 6).await;
    assert_eq!(w.sent_of(is_propose).len(), 2);
    // Published, still not accepted: the same.
    w.published(1, M1, M0);
    w.tick_at(Role::Proposer, COMMIT_END + 7).await;
    assert_eq!(w.sent_of(is_propose).len(), 2);
    // Accepted: task 3 trains on it, proposed once, also across a restart.
    w.accept(M1, 1);
    w.tick_at(Role::Proposer, COMMIT_END + 8).await;
    let w = w.restart();
    w.tick_at(Role::Proposer, COMMIT_END + 9).await;
    assert_eq!(w.sent_of(is_propose).len(), 3);
    assert_eq!(
        proposal(&w, 3).spec_hash,
        task_spec_hash(U256::from(PROJECT), M1)
    );
}

/// Tasks 1 and 2 both trained on the genesis model M0 (pipelined) and finalized.
fn two_finalized_tasks(staleness: u8) -> World {
    let w = coordinator_world();
    w.chain.s().max_staleness = staleness;
    w.add_task(2, OTHER, B256::repeat_byte(2));
    w.chain.s().base_roots.insert(1, M0);
    w.chain.s().base_roots.insert(2, M0);
    w.finalize(1);
    w.finalize(2);
    *w.node.aggregate.lock().unwrap() = Some(model_on(M0));
    w.node.aggregate_of.lock().unwrap().insert(
        2,
        Aggregate {
            root: M2,
            ..model_on(M0)
        },
    );
    w
}

#[tokio::test]
async fn a_pipelined_aggregator_applies_the_later_task_onto_the_earlier_tasks_model() {
    let w = two_finalized_tasks(1);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 1).await;
    assert_eq!(
        w.sent_of(is_publish),
        vec![Tx::Publish {
            task: 1,
            model: model_on(M0)
        }],
        "in task order: task 2 waits for task 1's publication"
    );
    // Task 1's model is pending: a sibling on M0 would leave one of them superseded.
    w.published(1, M1, M0);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 5).await;
    let w = w.restart();
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 6).await;
    assert_eq!(w.sent_of(is_publish).len(), 1);
    assert_eq!(w.state(ActionKey::Publish(2)), None, "still to do");
    // Accepted: task 2's aggregate goes onto M1, once, also across a restart.
    w.accept(M1, 1);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 7).await;
    let w = w.restart();
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 12).await;
    let published = w.sent_of(is_publish);
    assert_eq!(published.len(), 2);
    let Tx::Publish { task: 2, model } = &published[1] else {
        panic!("expected task 2's publication, got {:?}", published[1]);
    };
    assert_eq!(model.parent_root, M1);
    assert_eq!(w.state(ActionKey::Publish(2)), Some(ActionState::Done));
}

#[tokio::test]
async fn an_aggregator_in_sequence_skips_a_task_one_model_behind() {
    let w = two_finalized_tasks(0);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 1).await;
    w.published(1, M1, M0);
    w.accept(M1, 1);
    w.tick_at(Role::Aggregator, VOTE_REVEAL_END + 5).await;
    assert_eq!(w.sent_of(is_publish).len(), 1);
    assert_eq!(w.state(ActionKey::Publish(2)), Some(ActionState::Skipped));
    assert!(
        !w.node
            .aggregated
            .lock()
            .unwrap()
            .iter()
            .any(|(t, _)| *t == 2),
        "nothing aggregated for it"
    );
}

/// Task 2 (base M0) published by another aggregator on `parent`, after M1 (on M0) was accepted
/// (and, when `parent` is M2, M2 on M1 too).
fn stale_publication(staleness: u8, parent: B256) -> (World, ModelRow) {
    let w = two_finalized_tasks(staleness);
    w.chain.at(VOTE_REVEAL_END + 1);
    w.published(1, M1, M0);
    w.accept(M1, 1);
    if parent == M2 {
        w.published(3, M2, M1);
        w.accept(M2, 2);
    }
    let root = B256::repeat_byte(0x99);
    w.node.aggregate_of.lock().unwrap().insert(
        2,
        Aggregate {
            root,
            ..model_on(parent)
        },
    );
    w.chain.land_from(
        OTHER,
        Tx::Publish {
            task: 2,
            model: Aggregate {
                root,
                ..model_on(parent)
            },
        },
    );
    let row = w.published(2, root, parent);
    (w, row)
}

#[tokio::test]
async fn a_coordinator_attests_a_model_one_round_stale_only_when_the_project_pipelines() {
    let attested = |w: &World| w.sent_of(|t| matches!(t, Tx::Attest { .. })).len();
    let (w, row) = stale_publication(1, M1);
    w.tick_at(Role::Coordinator, row.block + 1).await;
    assert_eq!(attested(&w), 1);
    assert!(
        w.node.aggregated.lock().unwrap().contains(&(2, M1)),
        "recomputed on M1"
    );

    let (w, row) = stale_publication(0, M1);
    w.tick_at(Role::Coordinator, row.block + 1).await;
    assert_eq!(attested(&w), 0);
    let key = ActionKey::Attest {
        root: row.root,
        block: row.block,
    };
    assert_eq!(w.state(key), Some(ActionState::Skipped));

    // Two models newer than its base: never, whatever the setting.
    let (w, row) = stale_publication(1, M2);
    w.tick_at(Role::Coordinator, row.block + 1).await;
    assert_eq!(attested(&w), 0);
    assert!(w.node.aggregated.lock().unwrap().is_empty());
}
