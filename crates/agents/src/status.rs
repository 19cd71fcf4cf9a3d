//! The status page of a role agent: the routes, snapshot and metrics of `autonet-status`,
//! re-exported, with the rounds read from the agent's database ([`AgentDb`] as a
//! [`RoundSource`], through its public accessors only). The node's own commitments are its
//! actions ([`ActionKey::Vote`], [`ActionKey::Solve`]); [`disclosure`] decides what of them shows.
//!
//! A running agent serves [`AgentRounds::from_db_file`]: every snapshot opens the file read-only
//! ([`AgentDb::open_read_only`]) beside the agent that writes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::Address;
pub use autonet_status::*;

use crate::db::{AgentDb, DbError};
use crate::roles::ActionKey;

impl From<DbError> for StatusError {
    fn from(e: DbError) -> Self {
        StatusError::Source(Box::new(e))
    }
}

impl RoundSource for AgentDb {
    fn task_ids(&self, project_id: u64) -> Result<Vec<u64>, StatusError> {
        Ok(AgentDb::task_ids(self, project_id)?)
    }

    fn finalized_count(&self, project_id: u64) -> Result<u64, StatusError> {
        Ok(self.finalized_tasks(project_id)?.len() as u64)
    }

    fn task(&self, task_id: u64) -> Result<Option<TaskFacts>, StatusError> {
        let Some(t) = AgentDb::task(self, task_id)? else {
            return Ok(None);
        };
        Ok(Some(TaskFacts {
            proposer: t.proposer,
            block: t.block,
            at: self.task_time(task_id)?,
            reward: self.task_reward(task_id)?,
        }))
    }

    fn outcome(&self, task_id: u64) -> Result<Option<(String, u64)>, StatusError> {
        Ok(AgentDb::outcome(self, task_id)?)
    }

    fn solutions(&self, task_id: u64) -> Result<Vec<RevealedSolution>, StatusError> {
        Ok(AgentDb::solutions(self, task_id)?
            .into_iter()
            .map(|s| RevealedSolution {
                solver: s.solver,
                delta_root: s.delta_root,
                manifest_hash: s.manifest_hash,
                reveal_index: s.reveal_index,
            })
            .collect())
    }

    fn vote_revealed(&self, task_id: u64, coordinator: Address) -> Result<bool, StatusError> {
        Ok(AgentDb::vote_revealed(self, task_id, coordinator)?)
    }

    fn incentives(&self, task_id: u64) -> Result<Vec<IncentiveFacts>, StatusError> {
        Ok(self
            .solver_rewards(task_id)?
            .into_iter()
            .map(|r| IncentiveFacts {
                solver: r.solver,
                consensus: Some(r.consensus),
                incentive: r.incentive,
                amount: r.amount,
            })
            .collect())
    }

    fn payouts(&self, task_id: u64) -> Result<Vec<PayoutFacts>, StatusError> {
        Ok(AgentDb::payouts(self, task_id)?
            .into_iter()
            .map(|(account, kind, amount)| PayoutFacts {
                account,
                kind,
                amount,
            })
            .collect())
    }

    fn models(&self, project_id: u64) -> Result<Vec<ModelFacts>, StatusError> {
        Ok(self
            .published_models(project_id)?
            .into_iter()
            .map(|(m, version)| ModelFacts {
                root: m.root,
                task_ids: m.task_ids,
                version,
            })
            .collect())
    }

    fn own_vote(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError> {
        let key = ActionKey::Vote(task_id).to_string();
        Ok(self.action::<serde_json::Value>(&key)?.map(|a| a.data))
    }

    fn own_solution(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError> {
        let key = ActionKey::Solve(task_id).to_string();
        Ok(self.action::<serde_json::Value>(&key)?.map(|a| a.data))
    }
}

/// The snapshot of `node`'s project from the agent database (no stakes, no payments).
pub fn snapshot_from_db(db: &AgentDb, node: NodeInfo) -> Result<StatusSnapshot, StatusError> {
    snapshot_from_source(db, node, Vec::new(), &Payments::default())
}

/// The snapshot of `node`'s project, read through a read-only view of the agent database file
/// (`<state_dir>/agent.sqlite`) while the agent keeps writing it.
pub fn snapshot_from_file(path: &Path, node: NodeInfo) -> Result<StatusSnapshot, StatusError> {
    snapshot_from_db(&open_file(path)?, node)
}

fn open_file(path: &Path) -> Result<AgentDb, StatusError> {
    AgentDb::open_read_only(path).map_err(|e| StatusError::Open {
        path: path.to_path_buf(),
        error: Box::new(e),
    })
}

/// Status states whose rounds come from an agent database.
pub trait AgentRounds {
    /// Rounds from the agent's database handle.
    fn from_db(node: NodeInfo, db: Arc<AgentDb>) -> Self;
    /// Rounds from the agent's database file, opened read-only for every snapshot (see
    /// [`snapshot_from_file`]).
    fn from_db_file(node: NodeInfo, path: impl Into<PathBuf>) -> Self;
}

impl AgentRounds for StatusState {
    fn from_db(node: NodeInfo, db: Arc<AgentDb>) -> Self {
        StatusState::from_source(node, move || Ok(db.clone()))
    }

    fn from_db_file(node: NodeInfo, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        StatusState::from_source(node, move || open_file(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, LogData, U256};
    use alloy::rpc::types::Log;
    use alloy::sol_types::SolEvent;
    use autonet_bindings::shards::ModelShardRegistry;
    use autonet_bindings::training::{ITaskManager, Rewards, TaskManager};
    use autonet_chain::watcher::LogHandler;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{StatusCode, header};
    use tower::ServiceExt;

    use crate::db::ActionState;
    use crate::events::Recorder;

    const E18: u64 = 1_000_000_000_000_000_000;
    const COORDINATOR: Address = Address::repeat_byte(0xc0);

    fn atn(n: u64) -> U256 {
        U256::from(n) * U256::from(E18)
    }

    fn solver(i: u8) -> Address {
        Address::repeat_byte(0x10 + i)
    }

    /// The timestamp of block `n` in these tests' logs.
    fn block_time(n: u64) -> u64 {
        1_700_000_000 + 2 * n
    }

    /// Feeds events to the agents' recorder as the watcher would.
    struct Chain {
        recorder: Recorder,
        n: u64,
    }

    impl Chain {
        async fn emit(&mut self, data: LogData) {
            self.n += 1;
            let log = Log {
                inner: alloy::primitives::Log {
                    address: Address::repeat_byte(0xcc),
                    data,
                },
                block_number: Some(100 + self.n),
                block_timestamp: Some(block_time(100 + self.n)),
                transaction_hash: Some(B256::with_last_byte(self.n as u8)),
                log_index: Some(self.n),
                ..Default::default()
            };
            self.recorder.handle(&log).await.unwrap();
        }

        async fn propose(&mut self, task: u64, project: u64) {
            self.emit(
                TaskManager::TaskProposed {
                    taskId: U256::from(task),
                    projectId: U256::from(project),
                    proposer: Address::repeat_byte(1),
                    specHash: B256::repeat_byte(2),
                    gtCommit: B256::with_last_byte(task as u8),
                    reward: atn(10),
                    deadlines: ITaskManager::Deadlines {
                        commitEnd: 1,
                        solRevealEnd: 2,
                        gtRevealEnd: 3,
                        voteCommitEnd: 4,
                        voteRevealEnd: 5,
                    },
                }
                .encode_log_data(),
            )
            .await;
        }

        async fn reveal(&mut self, task: u64, s: u8) {
            self.emit(
                TaskManager::SolutionRevealed {
                    taskId: U256::from(task),
                    solver: solver(s),
                    deltaRoot: B256::repeat_byte(0x40 + s),
                    manifestHash: B256::repeat_byte(0x4d),
                    revealIndex: s,
                }
                .encode_log_data(),
            )
            .await;
        }

        async fn finalize(&mut self, task: u64, project: u64, rewards: &[(u8, u64, u64)]) {
            self.emit(
                TaskManager::TaskFinalized {
                    taskId: U256::from(task),
                    projectId: U256::from(project),
                    spent: atn(10),
                    aggregatorFee: U256::ZERO,
                    released: U256::ZERO,
                }
                .encode_log_data(),
            )
            .await;
            for &(s, consensus_pct, amount) in rewards {
                self.emit(
                    Rewards::SolverRewarded {
                        taskId: U256::from(task),
                        solver: solver(s),
                        consensus: U256::from(consensus_pct) * U256::from(E18 / 100),
                        incentive: U256::from(E18 / 2),
                        amount: atn(amount),
                    }
                    .encode_log_data(),
                )
                .await;
            }
        }

        async fn dividend(&mut self, task: u64, coordinator: Address, amount: u64) {
            self.emit(
                Rewards::CoordinatorRewarded {
                    taskId: U256::from(task),
                    coordinator,
                    dividend: U256::from(E18 / 2),
                    amount: atn(amount),
                }
                .encode_log_data(),
            )
            .await;
        }

        async fn vote_reveal(&mut self, task: u64, coordinator: Address) {
            self.emit(
                TaskManager::VoteRevealed {
                    taskId: U256::from(task),
                    coordinator,
                    scores: SCORES.to_vec(),
                }
                .encode_log_data(),
            )
            .await;
        }

        async fn publish(&mut self, task: u64, project: u64, root: u8, accept: Option<u64>) {
            self.emit(
                ModelShardRegistry::ModelPublished {
                    projectId: U256::from(project),
                    root: B256::repeat_byte(root),
                    publisher: Address::repeat_byte(3),
                    parentRoot: B256::ZERO,
                    manifestHash: B256::repeat_byte(4),
                    taskIds: vec![U256::from(task)],
                }
                .encode_log_data(),
            )
            .await;
            if let Some(version) = accept {
                self.emit(
                    ModelShardRegistry::ModelAccepted {
                        projectId: U256::from(project),
                        root: B256::repeat_byte(root),
                        parentRoot: B256::ZERO,
                        version: U256::from(version),
                    }
                    .encode_log_data(),
                )
                .await;
            }
        }
    }

    fn node(address: Address) -> NodeInfo {
        NodeInfo {
            role: "coordinator".into(),
            address: address.to_string(),
            chain_id: 31337,
            project_id: 1,
            version: "0.1.0".into(),
            code_hash: None,
        }
    }

    /// Three rounds of project 1 (finalized + accepted, finalized + pending, open) and one of
    /// project 2, recorded through the agents' recorder, plus this coordinator's votes.
    async fn populated(path: &Path) -> Arc<AgentDb> {
        let db = Arc::new(AgentDb::open(path).unwrap());
        let mut chain = Chain {
            recorder: Recorder::new(db.clone()),
            n: 0,
        };
        chain.propose(1, 1).await;
        chain.reveal(1, 0).await;
        chain.reveal(1, 1).await;
        chain.finalize(1, 1, &[(0, 75, 6), (1, 25, 2)]).await;
        chain.dividend(1, COORDINATOR, 3).await;
        chain.publish(1, 1, 0xa1, Some(1)).await;
        chain.propose(2, 2).await; // another project: not shown
        chain.propose(3, 1).await;
        chain.reveal(3, 0).await;
        chain.finalize(3, 1, &[(0, 100, 8)]).await;
        chain.publish(3, 1, 0xa3, None).await;
        chain.propose(4, 1).await;
        for (task, base, losses) in [
            (1u64, 5.5f32, vec![5.0f32, f32::INFINITY]),
            (3, 5.0, vec![4.5]),
        ] {
            // The coordinator's action as roles.rs stores it (`Vote`).
            let vote = serde_json::json!({
                "scores": [1, 0], "salt": B256::ZERO, "base_loss": base,
                "losses": losses.iter().map(|l| l.is_finite().then_some(*l)).collect::<Vec<_>>(),
            });
            db.put_action(
                &crate::roles::ActionKey::Vote(task).to_string(),
                Some(task),
                ActionState::Done,
                &vote,
                9,
                None,
            )
            .unwrap();
        }
        db
    }

    #[tokio::test]
    async fn the_snapshot_shows_what_the_recorder_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let db = populated(&path).await;
        let me = solver(0);

        let full = snapshot_from_file(&path, node(me)).unwrap();
        assert_eq!((full.rounds_total, full.tasks_finalized), (3, 2));
        let ids: Vec<u64> = full.rounds.iter().map(|r| r.task_id).collect();
        assert_eq!(ids, [1, 3, 4]);
        let r1 = &full.rounds[0];
        assert_eq!(r1.status, "finalized");
        assert_eq!(r1.reward_atn.as_deref(), Some("10"));
        assert_eq!(r1.base_loss, Some(5.5));
        assert_eq!(r1.published_root, Some(B256::repeat_byte(0xa1).to_string()));
        assert_eq!(r1.model_version, Some(1));
        assert_eq!(r1.solvers.len(), 2);
        assert_eq!(r1.solvers[0].address, solver(0).to_string());
        assert_eq!(r1.solvers[0].consensus, Some(0.75));
        assert_eq!(r1.solvers[0].incentive, Some(0.5));
        assert_eq!(r1.solvers[0].reward_atn.as_deref(), Some("6"));
        assert_eq!(r1.solvers[0].loss, Some(5.0));
        assert_eq!(r1.solvers[1].loss, None, "an unevaluable delta has no loss");
        let r3 = &full.rounds[1];
        assert_eq!(
            (r3.published_root.is_some(), r3.model_version),
            (true, None)
        );
        let r4 = &full.rounds[2];
        assert_eq!((r4.status.as_str(), r4.solvers.len()), ("open", 0));
        // Each round carries its proposal block's timestamp, from the log.
        for r in &full.rounds {
            assert_eq!(r.proposed_at, Some(block_time(r.proposed_block)), "{r:?}");
        }
        assert_eq!(full.loss_kind, LossKind::Eval);
        assert_eq!(
            full.loss_per_round,
            [
                LossPoint {
                    round: 1,
                    loss: 5.5,
                    at: r1.proposed_at,
                },
                LossPoint {
                    round: 3,
                    loss: 5.0,
                    at: r3.proposed_at,
                }
            ]
        );
        assert_eq!(full.rewards_total_atn, "19");
        assert_eq!(full.node_rewards_atn, "14");
        assert_eq!(
            r1.payouts,
            [Payout {
                address: COORDINATOR.to_string(),
                kind: "coordinator".into(),
                amount_atn: "3".into(),
            }]
        );
        // A coordinator's own rewards are its dividends.
        let coordinator = snapshot_from_file(&path, node(COORDINATOR)).unwrap();
        assert_eq!(coordinator.node_rewards_atn, "3");
        let mut expected = vec![
            RewardTotal {
                address: COORDINATOR.to_string(),
                rounds: 1,
                total_atn: "3".into(),
            },
            RewardTotal {
                address: solver(0).to_string(),
                rounds: 2,
                total_atn: "14".into(),
            },
            RewardTotal {
                address: solver(1).to_string(),
                rounds: 1,
                total_atn: "2".into(),
            },
        ];
        expected.sort_by(|a, b| a.address.cmp(&b.address));
        assert_eq!(full.rewards, expected);
        assert_eq!(
            full.rewards
                .iter()
                .filter(|r| r.address != COORDINATOR.to_string())
                .cloned()
                .collect::<Vec<_>>(),
            [
                RewardTotal {
                    address: solver(0).to_string(),
                    rounds: 2,
                    total_atn: "14".into()
                },
                RewardTotal {
                    address: solver(1).to_string(),
                    rounds: 1,
                    total_atn: "2".into()
                },
            ]
        );

        // Through the agent's own handle: the same snapshot.
        let shared = snapshot_from_db(&db, node(me)).unwrap();
        assert_eq!((shared.rounds_total, shared.tasks_finalized), (3, 2));
        assert_eq!(shared.rounds, full.rounds);
        assert_eq!(shared.rewards, full.rewards);
        assert_eq!(shared.loss_per_round, full.loss_per_round);
    }

    #[test]
    fn an_empty_database_gives_an_empty_snapshot() {
        let db = AgentDb::open_in_memory().unwrap();
        let s = snapshot_from_db(&db, node(solver(0))).unwrap();
        assert!(s.rounds.is_empty() && s.loss_per_round.is_empty());
        assert_eq!(
            (s.rounds_total, s.loss_kind, s.rewards_total_atn.as_str()),
            (0, LossKind::None, "0")
        );
    }

    /// The value of the sample `name` (with its labels, as written) in a text exposition.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let res = app
            .clone()
            .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let status = res.status();
        let body = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_router_answers_the_three_routes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let _db = populated(&path).await;
        let state = StatusState::from_db_file(node(solver(0)), &path);
        state.set_stakes(vec![Stake::new(solver(0), "coordinator", atn(100))]);
        state
            .payments()
            .record(Address::repeat_byte(9), atn(2), B256::repeat_byte(8));
        let app = router(state.clone());

        let (status, ct, html) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/html"), "{ct}");
        assert!(html.contains("id=\"loss-chart\"") && html.contains("api/status"));

        let (status, ct, body) = get(&app, "/api/status").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
        let s: StatusSnapshot = serde_json::from_str(&body).unwrap();
        assert_eq!(s.rounds.len(), 3);
        assert_eq!(s.loss_per_round.len(), 2);
        assert_eq!((s.payments_count, s.payments_total_atn.as_str()), (1, "2"));
        assert_eq!(s.stakes[0].stake_atn, "100");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["rounds"][0]["solvers"][0]["consensus"], 0.75);
        assert_eq!(json["node"]["chain_id"], 31337);

        let (status, ct, text) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert_eq!(sample(&text, "autonet_rounds_seen"), Some(3.0));
        assert_eq!(sample(&text, "autonet_last_eval_loss"), Some(5.0));
        assert_eq!(
            sample(&text, "autonet_stake_atn{role=\"coordinator\"}"),
            Some(100.0)
        );
        // The two requests before this one were counted by route pattern.
        assert_eq!(
            sample(
                &text,
                "autonet_http_requests_total{route=\"/api/status\",status=\"200\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "autonet_http_requests_total{route=\"/\",status=\"200\"}"
            ),
            Some(1.0)
        );

        let (status, _, _) = get(&app, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn an_unreadable_database_is_a_500_but_metrics_still_serve() {
        let dir = tempfile::tempdir().unwrap();
        let state = StatusState::from_db_file(node(solver(0)), dir.path().join("missing.sqlite"));
        let app = router(state);
        let (status, _, body) = get(&app, "/api/status").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("missing.sqlite"), "{body}");
        let (status, _, text) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("# TYPE autonet_rounds_seen gauge"));
    }

    // ------------------------------------------------------------------ disclosure

    /// A coordinator's committed vote (the values nothing else in a snapshot has).
    const BASE_LOSS: f64 = 5.432198;
    const LOSSES: [f64; 2] = [4.123457, 3.987654];
    const SCORES: [u16; 2] = [65535, 12345];
    /// A solver's committed solution.
    const TRAIN_LOSS: f64 = 2.461937;

    fn coordinator(i: u8) -> Address {
        Address::repeat_byte(0xc0 + i)
    }

    /// How the vote would be written: each loss by its first five significant digits (neither
    /// the f32 nor the widened f64 form escapes), the score vector as a JSON array's body.
    fn needles_of_vote() -> Vec<String> {
        vec![
            "5.4321".into(),
            "4.1234".into(),
            "3.9876".into(),
            scores_text(),
        ]
    }

    fn scores_text() -> String {
        format!("{},{}", SCORES[0], SCORES[1])
    }

    fn salt(b: u8) -> String {
        B256::repeat_byte(b).to_string()[2..].to_string()
    }

    /// The coordinator's `vote:<task>` action as roles.rs stores it, committed (`done`).
    fn commit_vote(db: &AgentDb, task: u64) {
        let vote = serde_json::json!({
            "scores": SCORES, "salt": B256::repeat_byte(0x5a), "base_loss": BASE_LOSS,
            "losses": LOSSES,
        });
        db.put_action(
            &crate::roles::ActionKey::Vote(task).to_string(),
            Some(task),
            ActionState::Done,
            &vote,
            9,
            None,
        )
        .unwrap();
    }

    /// The solver's `solve:<task>` action as roles.rs stores it, committed (`done`).
    fn commit_solution(db: &AgentDb, task: u64, s: u8) {
        let solution = serde_json::json!({
            "delta_root": B256::repeat_byte(0x40 + s), "manifest_hash": B256::repeat_byte(0x4d),
            "salt": B256::repeat_byte(0x5b), "train_loss": TRAIN_LOSS, "train_secs": 1.25,
        });
        db.put_action(
            &crate::roles::ActionKey::Solve(task).to_string(),
            Some(task),
            ActionState::Done,
            &solution,
            9,
            None,
        )
        .unwrap();
    }

    /// `(route, body)` of every route of the status router.
    async fn every_route(app: &Router) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for route in ["/", "/api/status", "/metrics"] {
            let (status, _, body) = get(app, route).await;
            assert_eq!(status, StatusCode::OK, "{route}: {body}");
            out.push((route, body));
        }
        out
    }

    fn assert_nowhere(bodies: &[(&str, String)], needles: &[String], when: &str) {
        for (route, body) in bodies {
            let lower = body.to_ascii_lowercase();
            for n in needles {
                assert!(
                    !lower.contains(&n.to_ascii_lowercase()),
                    "{when}: {route} shows `{n}`:\n{body}"
                );
            }
        }
    }

    fn json_of(bodies: &[(&str, String)]) -> serde_json::Value {
        serde_json::from_str(&bodies[1].1).unwrap()
    }

    fn close(v: &serde_json::Value, want: f64) -> bool {
        v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
    }

    /// Both ways a node reads its database (a read-only view of the file, the agent's handle).
    fn states(path: &Path, db: &Arc<AgentDb>, me: Address) -> [(&'static str, Router); 2] {
        [
            (
                "file",
                router(StatusState::from_db_file(node(me), path.to_path_buf())),
            ),
            ("db", router(StatusState::from_db(node(me), db.clone()))),
        ]
    }

    #[tokio::test]
    async fn a_committed_vote_is_on_no_route_until_it_is_revealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let db = Arc::new(AgentDb::open(&path).unwrap());
        let mut chain = Chain {
            recorder: Recorder::new(db.clone()),
            n: 0,
        };
        let me = coordinator(1);
        chain.propose(5, 1).await;
        chain.reveal(5, 0).await;
        chain.reveal(5, 1).await;
        commit_vote(&db, 5);
        let mut secrets = needles_of_vote();
        secrets.push(salt(0x5a));

        // Vote-commit window, then another coordinator's reveal: nothing of this vote shows.
        for step in ["committed", "another coordinator revealed"] {
            if step != "committed" {
                chain.vote_reveal(5, coordinator(2)).await;
            }
            for (how, app) in states(&path, &db, me) {
                let bodies = every_route(&app).await;
                let when = format!("{step} ({how})");
                assert_nowhere(&bodies, &secrets, &when);
                let json = json_of(&bodies);
                let round = &json["rounds"][0];
                assert_eq!(round["task_id"], 5, "{when}");
                assert!(round["base_loss"].is_null(), "{when}: {round}");
                assert_eq!(round["sealed"], true, "{when}");
                assert_eq!(round["solvers"].as_array().unwrap().len(), 2, "{when}");
                for s in round["solvers"].as_array().unwrap() {
                    assert!(s["loss"].is_null(), "{when}: {s}");
                    // Revealed solutions are public.
                    assert!(s["delta_root"].is_string(), "{when}: {s}");
                }
                assert_eq!(json["loss_kind"], "none", "{when}");
                assert!(json["loss_per_round"].as_array().unwrap().is_empty());
                assert!(
                    sample(&bodies[2].1, "autonet_last_eval_loss").is_some_and(f64::is_nan),
                    "{when}: {}",
                    bodies[2].1
                );
            }
        }

        // Its own reveal is recorded: the evaluation is public; salt and scores never show.
        chain.vote_reveal(5, me).await;
        for (how, app) in states(&path, &db, me) {
            let bodies = every_route(&app).await;
            assert_nowhere(&bodies, &[salt(0x5a), scores_text()], how);
            let json = json_of(&bodies);
            let round = &json["rounds"][0];
            assert!(close(&round["base_loss"], BASE_LOSS), "{how}: {round}");
            assert_eq!(round["sealed"], false, "{how}");
            for (i, want) in LOSSES.iter().enumerate() {
                assert!(close(&round["solvers"][i]["loss"], *want), "{how}: {round}");
            }
            assert_eq!(json["loss_kind"], "eval");
            let metric = sample(&bodies[2].1, "autonet_last_eval_loss").unwrap();
            assert!((metric - BASE_LOSS).abs() < 1e-6, "{how}: {metric}");
        }
    }

    #[tokio::test]
    async fn a_solvers_training_results_wait_for_its_own_reveal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let db = Arc::new(AgentDb::open(&path).unwrap());
        let mut chain = Chain {
            recorder: Recorder::new(db.clone()),
            n: 0,
        };
        let me = solver(0);
        chain.propose(6, 1).await;
        commit_solution(&db, 6, 0);
        let own_root = salt(0x40);
        let secrets = vec!["2.4619".to_string(), own_root.clone(), salt(0x5b)];
        chain.reveal(6, 1).await; // another solver's reveal
        for (how, app) in states(&path, &db, me) {
            let bodies = every_route(&app).await;
            assert_nowhere(&bodies, &secrets, how);
            let json = json_of(&bodies);
            let round = &json["rounds"][0];
            assert!(round["train_loss"].is_null(), "{how}: {round}");
            assert_eq!(round["sealed"], true);
            assert_eq!(json["loss_kind"], "none");
        }

        chain.reveal(6, 0).await;
        for (how, app) in states(&path, &db, me) {
            let bodies = every_route(&app).await;
            assert_nowhere(&bodies, &[salt(0x5b)], how);
            let json = json_of(&bodies);
            let round = &json["rounds"][0];
            assert!(close(&round["train_loss"], TRAIN_LOSS), "{how}: {round}");
            assert_eq!(round["sealed"], false);
            assert_eq!(json["loss_kind"], "train");
            assert!(
                bodies[1].1.contains(&own_root),
                "{how}: the revealed root is public"
            );
        }
    }

    #[tokio::test]
    async fn a_task_that_ended_discloses_what_was_never_revealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sqlite");
        let db = Arc::new(AgentDb::open(&path).unwrap());
        let mut chain = Chain {
            recorder: Recorder::new(db.clone()),
            n: 0,
        };
        // One database holding both a vote and a solution of this account, neither revealed.
        let me = coordinator(1);
        chain.propose(7, 1).await;
        chain.reveal(7, 0).await;
        chain.reveal(7, 1).await;
        commit_vote(&db, 7);
        commit_solution(&db, 7, 5);
        for (_, app) in states(&path, &db, me) {
            let bodies = every_route(&app).await;
            assert_nowhere(&bodies, &["5.4321".into(), "2.4619".into()], "open");
        }
        chain.finalize(7, 1, &[]).await;
        for (how, app) in states(&path, &db, me) {
            let bodies = every_route(&app).await;
            assert_nowhere(&bodies, &[salt(0x5a), salt(0x5b)], how);
            let round = &json_of(&bodies)["rounds"][0];
            assert_eq!(round["status"], "finalized");
            assert!(close(&round["base_loss"], BASE_LOSS), "{how}: {round}");
            assert!(close(&round["train_loss"], TRAIN_LOSS), "{how}: {round}");
            assert!(close(&round["solvers"][1]["loss"], LOSSES[1]), "{how}");
            assert_eq!(round["sealed"], false);
        }
    }
}
