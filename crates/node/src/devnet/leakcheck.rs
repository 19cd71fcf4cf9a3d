//! `autonet devnet --check-no-leaks`: while the rounds run, polls every HTTP route of every agent
//! and fails the devnet when a response shows a secret that the chain has not revealed yet.
//!
//! The rule checked is the one `autonet_agents::status::disclosure` implements, seen from
//! outside and with independent sources:
//!
//! - **what is secret** comes from the agents' own state directories, read-only: every
//!   `vote:<task>` action (score vector, base and per-solver losses, salt), `solve:<task>` action
//!   (delta root, training loss and time, salt), `propose:<n>` action (the evaluation spec hash
//!   and its salt) and a coordinator's `bls.key`;
//! - **what is revealed** comes from the chain's logs: a coordinator's `VoteRevealed`, a solver's
//!   `SolutionRevealed`, the proposer's `GroundTruthRevealed`, the task's end (finalized, closed,
//!   cancelled) or, for votes, a head past the task's `voteRevealEnd`. Salts and BLS keys are
//!   never revealed.
//!
//! Each poll fetches the responses first, then reads the secrets, then the chain: a secret found
//! in a response that the chain had not revealed even after the response was served is a leak
//! (no false alarm from a reveal racing the poll). A value that is also the value of a revealed
//! secret is public (coordinators evaluate deterministically, so one coordinator's revealed
//! losses are the others' too).
//!
//! Polled per agent: `/`, `/api/status`, `/metrics` and `/bls/attestations/{root}` for every root
//! the checker knows (published models and every delta root, revealed or not); on the inference
//! node also `/v1/model`. Not polled: `/shards/{root}/…`, which are content-addressed and public
//! by design — they answer only for a root the asker already has, a delta's root stays secret
//! until its reveal, and there is no listing route.
//!
//! Matching: 32-byte values by their 64 hex digits (any case, with or without `0x`); losses and
//! other floats by any number literal written with at least 6 significant digits that rounds to
//! the value (f32 or widened f64 forms alike); score vectors as their comma-separated integers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use autonet_agents::db::AgentDb;
use autonet_bindings::{ModelShardRegistry, TaskManager};
use autonet_chain::ChainProvider;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::network::Network;
use crate::commands::{CommandError, Report};

/// Pause between two polls of every route.
pub const POLL_INTERVAL: Duration = Duration::from_millis(750);

/// Leaks listed in full (all are counted).
const MAX_LISTED: usize = 20;

/// Significant digits a number literal needs before it is compared with a secret float.
const MIN_DIGITS: usize = 6;

/// One node whose routes are polled.
#[derive(Clone, Debug)]
pub struct Target {
    /// Agent name (`coordinator-1`, ..., `inference`).
    pub name: String,
    /// Its state directory (`ready` file, `agent.sqlite`, `bls.key`).
    pub state_dir: PathBuf,
    /// Its account (`None`: unknown, its secrets are then never revealed).
    pub address: Option<Address>,
}

/// Where the revealed facts come from.
#[derive(Clone)]
pub struct ChainSource {
    /// Read-only provider.
    pub provider: ChainProvider,
    /// `TaskManager`.
    pub task_manager: Address,
    /// `ModelShardRegistry`.
    pub shard_registry: Address,
    /// First block scanned.
    pub from_block: u64,
}

// ---------------------------------------------------------------------- secrets

/// A secret's shape in a response.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// 32 bytes as 64 lowercase hex digits (no `0x`).
    Hex(String),
    /// A float (a loss, a training time).
    Float(f64),
    /// An integer vector of at least two entries (a score vector).
    Ints(Vec<u64>),
}

impl Token {
    fn same(&self, other: &Token) -> bool {
        match (self, other) {
            (Token::Float(a), Token::Float(b)) => (a - b).abs() <= 1.2e-7 * a.abs().max(b.abs()),
            _ => self == other,
        }
    }
}

/// What must be on chain before a secret may be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gate {
    /// Never (salts, keys).
    Never,
    /// `by`'s vote on `task` (or the task's end, or its vote-reveal window's).
    Vote {
        /// Task.
        task: u64,
        /// Coordinator.
        by: Address,
    },
    /// `by`'s solution of `task` (or the task's end).
    Solution {
        /// Task.
        task: u64,
        /// Solver.
        by: Address,
    },
    /// The ground truth of `task` (or the task's end); `None`: the task is not known yet.
    GroundTruth {
        /// Task.
        task: Option<u64>,
    },
}

/// One secret an agent holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Secret {
    /// Who holds it.
    pub owner: String,
    /// What it is (`vote:2 losses`, ...).
    pub what: String,
    /// When it may be shown.
    pub gate: Gate,
    /// How it would appear.
    pub token: Token,
}

/// The secrets in one stored action (`key`, `data` as in `actions`) of `owner` at `address`.
pub fn secrets_of_action(owner: &str, address: Address, key: &str, data: &Value) -> Vec<Secret> {
    let Some((kind, rest)) = key.split_once(':') else {
        return Vec::new();
    };
    let (gate, public): (Gate, &[&str]) = match (kind, rest.parse::<u64>()) {
        ("vote", Ok(task)) => (Gate::Vote { task, by: address }, &[]),
        ("solve", Ok(task)) => (Gate::Solution { task, by: address }, &[]),
        // The commitment and the spec hash are in `TaskProposed`.
        ("propose", _) => (
            Gate::GroundTruth {
                task: data.get("task_id").and_then(Value::as_u64),
            },
            &["gt_commit", "spec_hash", "task_id"],
        ),
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    collect(data, "", gate, &mut found);
    found
        .into_iter()
        .filter(|(field, _, _)| !public.contains(&field.as_str()))
        .map(|(field, gate, token)| Secret {
            owner: owner.to_string(),
            what: format!("{key} {field}"),
            gate,
            token,
        })
        .collect()
}

fn collect(v: &Value, field: &str, gate: Gate, out: &mut Vec<(String, Gate, Token)>) {
    let gate = if field.contains("salt") {
        Gate::Never
    } else {
        gate
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                collect(x, k, gate, out);
            }
        }
        Value::Array(xs) => {
            let ints: Option<Vec<u64>> = xs.iter().map(Value::as_u64).collect();
            match ints {
                Some(ints) if ints.len() >= 2 && ints.iter().any(|&i| i != 0) => {
                    out.push((field.to_string(), gate, Token::Ints(ints)));
                }
                Some(_) => {}
                None => {
                    for x in xs {
                        collect(x, field, gate, out);
                    }
                }
            }
        }
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f != 0.0) {
                out.push((field.to_string(), gate, Token::Float(f)));
            }
        }
        Value::String(s) => {
            if let Ok(b) = s.trim().parse::<B256>()
                && !b.is_zero()
            {
                out.push((field.to_string(), gate, Token::Hex(hex64(b))));
            }
        }
        _ => {}
    }
}

fn hex64(b: B256) -> String {
    b.to_string()[2..].to_ascii_lowercase()
}

/// Every secret in `target`'s state directory now (nothing when it has none yet).
pub fn read_secrets(target: &Target) -> Vec<Secret> {
    let mut out = Vec::new();
    let address = target.address.unwrap_or(Address::ZERO);
    let db_path = target.state_dir.join("agent.sqlite");
    if db_path.exists()
        && let Ok(db) = AgentDb::open_read_only(&db_path)
    {
        for prefix in ["vote:", "solve:", "propose:"] {
            for (key, action) in db.actions(prefix).unwrap_or_default() {
                out.extend(secrets_of_action(&target.name, address, &key, &action.data));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(target.state_dir.join(autonet_agents::bls::KEY_FILE))
        && let Ok(key) = text.trim().parse::<B256>()
    {
        out.push(Secret {
            owner: target.name.clone(),
            what: "BLS secret key".into(),
            gate: Gate::Never,
            token: Token::Hex(hex64(key)),
        });
    }
    out
}

// ---------------------------------------------------------------------- chain

/// What the chain has revealed as of block `head`.
#[derive(Clone, Debug, Default)]
pub struct ChainFacts {
    /// The block the facts hold at.
    pub head: u64,
    /// `voteRevealEnd` of each task.
    pub vote_reveal_end: HashMap<u64, u64>,
    /// Tasks finalized, closed or cancelled.
    pub ended: HashSet<u64>,
    /// Tasks whose ground truth was revealed.
    pub ground_truth: HashSet<u64>,
    /// `(task, solver)` reveals.
    pub solutions: HashSet<(u64, Address)>,
    /// `(task, coordinator)` reveals.
    pub votes: HashSet<(u64, Address)>,
    /// Published model roots.
    pub models: BTreeSet<B256>,
}

impl ChainFacts {
    /// Whether a secret behind `gate` may be shown.
    pub fn opens(&self, gate: Gate) -> bool {
        match gate {
            Gate::Never => false,
            Gate::Vote { task, by } => {
                self.ended.contains(&task)
                    || self.votes.contains(&(task, by))
                    || self
                        .vote_reveal_end
                        .get(&task)
                        .is_some_and(|end| self.head > *end)
            }
            Gate::Solution { task, by } => {
                self.ended.contains(&task) || self.solutions.contains(&(task, by))
            }
            Gate::GroundTruth { task: Some(task) } => {
                self.ended.contains(&task) || self.ground_truth.contains(&task)
            }
            Gate::GroundTruth { task: None } => false,
        }
    }

    /// Reads the facts up to the current head.
    pub async fn read(chain: &ChainSource) -> Result<Self, String> {
        let head = chain
            .provider
            .get_block_number()
            .await
            .map_err(|e| e.to_string())?;
        let logs = |address: Address| {
            let filter = Filter::new()
                .address(address)
                .from_block(chain.from_block)
                .to_block(head);
            let provider = chain.provider.clone();
            async move { provider.get_logs(&filter).await.map_err(|e| e.to_string()) }
        };
        let mut r = ChainFacts {
            head,
            ..ChainFacts::default()
        };
        for log in logs(chain.task_manager).await? {
            r.record(&log);
        }
        for log in logs(chain.shard_registry).await? {
            if let Ok(e) = ModelShardRegistry::ModelPublished::decode_log(&log.inner) {
                r.models.insert(e.data.root);
            }
        }
        Ok(r)
    }

    fn record(&mut self, log: &Log) {
        let task = |v: alloy::primitives::U256| u64::try_from(v).unwrap_or(u64::MAX);
        let inner = &log.inner;
        let Some(topic0) = log.topic0().copied() else {
            return;
        };
        match topic0 {
            TaskManager::TaskProposed::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::TaskProposed::decode_log(inner) {
                    self.vote_reveal_end
                        .insert(task(e.taskId), e.deadlines.voteRevealEnd);
                }
            }
            TaskManager::PhaseClosedEarly::SIGNATURE_HASH => {
                // Every early close moves the last deadline earlier (logs are read in order).
                if let Ok(e) = TaskManager::PhaseClosedEarly::decode_log(inner)
                    && let Some(end) = self.vote_reveal_end.get_mut(&task(e.taskId))
                {
                    *end = end.saturating_sub(e.blocksSaved);
                }
            }
            TaskManager::GroundTruthRevealed::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::GroundTruthRevealed::decode_log(inner) {
                    self.ground_truth.insert(task(e.taskId));
                }
            }
            TaskManager::SolutionRevealed::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::SolutionRevealed::decode_log(inner) {
                    self.solutions.insert((task(e.taskId), e.solver));
                }
            }
            TaskManager::VoteRevealed::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::VoteRevealed::decode_log(inner) {
                    self.votes.insert((task(e.taskId), e.coordinator));
                }
            }
            TaskManager::TaskFinalized::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::TaskFinalized::decode_log(inner) {
                    self.ended.insert(task(e.taskId));
                }
            }
            TaskManager::TaskClosed::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::TaskClosed::decode_log(inner) {
                    self.ended.insert(task(e.taskId));
                }
            }
            TaskManager::TaskCancelled::SIGNATURE_HASH => {
                if let Ok(e) = TaskManager::TaskCancelled::decode_log(inner) {
                    self.ended.insert(task(e.taskId));
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------- matching

/// A number literal of a response: its value, the half unit of its last digit, its significant
/// digits.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Literal {
    value: f64,
    half_ulp: f64,
    digits: usize,
}

/// The decimal literals (`12.345`, `1.2e-3`) of `text` that do not start inside a word or a hex
/// string (integers are left out: no secret float is written as one).
fn literals(text: &str) -> Vec<Literal> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let (mut digits, mut seen_nonzero, mut decimals) = (0usize, false, 0i32);
        let mut dot = false;
        while i < b.len() && (b[i].is_ascii_digit() || (b[i] == b'.' && !dot)) {
            if b[i] == b'.' {
                dot = true;
            } else {
                seen_nonzero |= b[i] != b'0';
                if seen_nonzero {
                    digits += 1;
                }
                if dot {
                    decimals += 1;
                }
            }
            i += 1;
        }
        let mut exponent = 0i32;
        let mut end = i;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            let exp_start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > exp_start {
                exponent = text[i + 1..j].parse().unwrap_or(0);
                end = j;
            }
        }
        if (dot || end > i)
            && let Ok(value) = text[start..end].trim_end_matches('.').parse::<f64>()
        {
            out.push(Literal {
                value,
                half_ulp: 0.5 * 10f64.powi(exponent - decimals),
                digits,
            });
        }
        i = end.max(start + 1);
    }
    out
}

fn shows_float(lits: &[Literal], v: f64) -> bool {
    lits.iter().any(|l| {
        l.digits >= MIN_DIGITS
            && ((l.value - v).abs() <= l.half_ulp + 1.2e-7 * v.abs()
                || (l.value + v).abs() <= l.half_ulp + 1.2e-7 * v.abs())
    })
}

fn shows_ints(text: &str, ints: &[u64]) -> bool {
    let b = text.as_bytes();
    [",", ", "].iter().any(|sep| {
        let needle = ints
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(sep);
        text.match_indices(&needle).any(|(at, m)| {
            let before = at.checked_sub(1).map(|j| b[j]);
            let after = b.get(at + m.len()).copied();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// The secrets of `forbidden` that `text` shows.
pub fn find<'a>(text: &str, forbidden: &[&'a Secret]) -> Vec<&'a Secret> {
    let lower = text.to_ascii_lowercase();
    let lits = literals(text);
    forbidden
        .iter()
        .copied()
        .filter(|s| match &s.token {
            Token::Hex(h) => lower.contains(h.as_str()),
            Token::Float(v) => shows_float(&lits, *v),
            Token::Ints(ints) => shows_ints(text, ints),
        })
        .collect()
}

/// The secrets that may not be shown as of `revealed`: closed gates, less every value that a
/// revealed secret also has.
pub fn forbidden<'a>(secrets: &'a [Secret], revealed: &ChainFacts) -> Vec<&'a Secret> {
    let public: Vec<&Token> = secrets
        .iter()
        .filter(|s| revealed.opens(s.gate))
        .map(|s| &s.token)
        .collect();
    secrets
        .iter()
        .filter(|s| !revealed.opens(s.gate) && !public.iter().any(|p| p.same(&s.token)))
        .collect()
}

// ---------------------------------------------------------------------- polling

/// One response of one route.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The node.
    pub node: String,
    /// The route pattern (`/bls/attestations/{root}` for every root).
    pub route: String,
    /// The path asked.
    pub path: String,
    /// Status line, headers and body.
    pub text: String,
}

/// What the checker saw.
#[derive(Clone, Debug, Default)]
pub struct LeakReport {
    /// Polls of every route.
    pub polls: u64,
    /// `node route` pairs polled at least once.
    pub routes: BTreeSet<String>,
    /// Responses checked.
    pub responses: u64,
    /// Requests not answered (node not up yet, stopped, restarting).
    pub unanswered: u64,
    /// Responses checked while at least one vote or solution of the network was sealed.
    pub sealed_checks: u64,
    /// Distinct votes `(task, coordinator)` seen committed and unrevealed.
    pub sealed_votes: BTreeSet<(u64, Address)>,
    /// Distinct solutions `(task, solver)` seen committed and unrevealed.
    pub sealed_solutions: BTreeSet<(u64, Address)>,
    /// Distinct secrets tracked.
    pub secrets: usize,
    /// Polls whose chain read failed (their responses were not checked).
    pub chain_errors: u64,
    /// Leaks found (counted per response).
    pub leaks: u64,
    /// The first leaks, described.
    pub listed: Vec<String>,
}

impl LeakReport {
    /// The one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "leak check: {} routes polled {} times, {} responses checked ({} while a vote or solution \
             was sealed: {} votes and {} solutions seen sealed; {} secrets tracked; {} unanswered), \
             leaks found = {}",
            self.routes.len(),
            self.polls,
            self.responses,
            self.sealed_checks,
            self.sealed_votes.len(),
            self.sealed_solutions.len(),
            self.secrets,
            self.unanswered,
            self.leaks
        )
    }

    /// `Err` with what went wrong: a leak, or a check that never saw a sealed secret (so it
    /// verified nothing).
    pub fn verdict(&self) -> Result<(), String> {
        if self.leaks > 0 {
            return Err(format!(
                "{} responses showed a secret not revealed on chain:\n  {}",
                self.leaks,
                self.listed.join("\n  ")
            ));
        }
        if self.sealed_votes.is_empty() || self.sealed_solutions.is_empty() {
            return Err(format!(
                "the leak check never polled while a vote and a solution were committed and \
                 unrevealed ({} votes, {} solutions seen sealed): it verified nothing",
                self.sealed_votes.len(),
                self.sealed_solutions.len()
            ));
        }
        Ok(())
    }
}

/// The checker's state between polls.
pub struct Checker {
    targets: Vec<Target>,
    client: reqwest::Client,
    secrets: Vec<Secret>,
    models: BTreeSet<B256>,
    /// What it saw.
    pub report: LeakReport,
}

impl Checker {
    /// A checker of `targets`.
    pub fn new(targets: Vec<Target>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            targets,
            client,
            secrets: Vec::new(),
            models: BTreeSet::new(),
            report: LeakReport::default(),
        }
    }

    /// The roots whose BLS route is asked: published models and every delta root known.
    fn roots(&self) -> BTreeSet<String> {
        let mut roots: BTreeSet<String> = self.models.iter().map(|r| r.to_string()).collect();
        for s in &self.secrets {
            if let (Gate::Solution { .. }, Token::Hex(h)) = (&s.gate, &s.token) {
                roots.insert(format!("0x{h}"));
            }
        }
        roots
    }

    /// Asks every route of every node that wrote its ready file.
    pub async fn fetch_all(&mut self) -> Vec<Fetched> {
        let roots = self.roots();
        let mut out = Vec::new();
        for t in &self.targets {
            let Some((base, inference)) = endpoint(&t.state_dir) else {
                continue;
            };
            let mut routes: Vec<(String, String)> = ["/", "/api/status", "/metrics"]
                .iter()
                .map(|r| (r.to_string(), r.to_string()))
                .collect();
            if inference {
                routes.push(("/v1/model".into(), "/v1/model".into()));
            } else {
                routes.extend(roots.iter().map(|r| {
                    (
                        "/bls/attestations/{root}".to_string(),
                        autonet_agents::bls::attestation_path(r.parse().unwrap_or_default()),
                    )
                }));
            }
            for (route, path) in routes {
                self.report.routes.insert(format!("{} {route}", t.name));
                let url = format!("{}{path}", base.trim_end_matches('/'));
                match self.client.get(&url).send().await {
                    Ok(r) => {
                        let mut text = format!("{}\n", r.status());
                        for (k, v) in r.headers() {
                            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
                        }
                        match r.text().await {
                            Ok(body) => {
                                text.push_str(&body);
                                out.push(Fetched {
                                    node: t.name.clone(),
                                    route,
                                    path,
                                    text,
                                });
                            }
                            Err(_) => self.report.unanswered += 1,
                        }
                    }
                    Err(_) => self.report.unanswered += 1,
                }
            }
        }
        out
    }

    /// Adds the secrets now in the state directories (read after the responses: whatever a
    /// response could show is already stored).
    pub async fn refresh_secrets(&mut self) {
        let targets = self.targets.clone();
        let found = tokio::task::spawn_blocking(move || {
            targets.iter().flat_map(read_secrets).collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for s in found {
            if !self.secrets.contains(&s) {
                self.secrets.push(s);
            }
        }
        self.report.secrets = self.secrets.len();
    }

    /// Checks `responses` against the secrets not revealed as of `revealed` (read after them).
    pub fn check(&mut self, responses: &[Fetched], revealed: &ChainFacts) {
        self.models.extend(revealed.models.iter().copied());
        let forbidden = forbidden(&self.secrets, revealed);
        let mut sealed = false;
        for s in &forbidden {
            match s.gate {
                Gate::Vote { task, by } => {
                    sealed = true;
                    self.report.sealed_votes.insert((task, by));
                }
                Gate::Solution { task, by } => {
                    sealed = true;
                    self.report.sealed_solutions.insert((task, by));
                }
                _ => {}
            }
        }
        for f in responses {
            self.report.responses += 1;
            if sealed {
                self.report.sealed_checks += 1;
            }
            let shown = find(&f.text, &forbidden);
            if shown.is_empty() {
                continue;
            }
            self.report.leaks += 1;
            if self.report.listed.len() < MAX_LISTED {
                let what: Vec<String> = shown
                    .iter()
                    .map(|s| format!("{}'s {}", s.owner, s.what))
                    .collect();
                let line = format!(
                    "{} {} showed {} (not revealed as of block {})",
                    f.node,
                    f.path,
                    what.join(", "),
                    revealed.head
                );
                eprintln!("leak check: LEAK: {line}");
                self.report.listed.push(line);
            }
        }
    }

    /// One poll: responses, then secrets, then the chain, then the check.
    pub async fn poll(&mut self, chain: &ChainSource) {
        self.report.polls += 1;
        let responses = self.fetch_all().await;
        self.refresh_secrets().await;
        match ChainFacts::read(chain).await {
            Ok(revealed) => self.check(&responses, &revealed),
            Err(e) => {
                self.report.chain_errors += 1;
                tracing::debug!(error = %e, "leak check: reading the chain failed; poll skipped");
            }
        }
    }
}

/// The base URL in a node's ready file and whether it is the inference node.
fn endpoint(state_dir: &Path) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(state_dir.join(autonet_agents::READY_FILE)).ok()?;
    let ready: Value = serde_json::from_str(&text).ok()?;
    if let Some(e) = ready["endpoint"].as_str() {
        return Some((e.to_string(), false));
    }
    ready["url"].as_str().map(|u| (u.to_string(), true))
}

/// The checker running beside a devnet.
pub struct LeakCheck {
    stop: CancellationToken,
    task: JoinHandle<LeakReport>,
}

impl LeakCheck {
    /// Starts polling every agent of `net` (and the inference node once it runs).
    pub fn start(net: &Network) -> Self {
        let mut targets: Vec<Target> = net
            .agents
            .values()
            .map(|a| Target {
                name: a.name.clone(),
                state_dir: a.state_dir.clone(),
                address: Some(a.address()),
            })
            .collect();
        if !net.agents.contains_key("inference") {
            targets.push(Target {
                name: "inference".into(),
                state_dir: net.opts.dir.join("inference"),
                address: None,
            });
        }
        let chain = ChainSource {
            provider: net.provider.clone(),
            task_manager: net.contracts.task_manager,
            shard_registry: net.contracts.shard_registry,
            from_block: net.start_block,
        };
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut checker = Checker::new(targets);
            loop {
                checker.poll(&chain).await;
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            // One last look at the final state.
            checker.poll(&chain).await;
            checker.report
        });
        Self { stop, task }
    }

    /// Stops polling and returns what was seen.
    pub async fn finish(self) -> LeakReport {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|e| LeakReport {
            leaks: 1,
            listed: vec![format!("the leak checker failed: {e}")],
            ..LeakReport::default()
        })
    }
}

/// Per-node counts of the secrets tracked (for the JSON report).
pub fn json(report: &LeakReport) -> Value {
    let per_route: BTreeMap<&str, usize> =
        report.routes.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.split(' ').next().unwrap_or("")).or_default() += 1;
            m
        });
    serde_json::json!({
        "routes": report.routes.len(),
        "routes_per_node": per_route,
        "polls": report.polls,
        "responses": report.responses,
        "sealed_checks": report.sealed_checks,
        "sealed_votes": report.sealed_votes.len(),
        "sealed_solutions": report.sealed_solutions.len(),
        "secrets": report.secrets,
        "unanswered": report.unanswered,
        "chain_errors": report.chain_errors,
        "leaks": report.leaks,
        "listed": report.listed,
    })
}

/// Stops `check` and folds its verdict into the devnet's `result`: the summary line is added to
/// the report, and a leak (or a check that saw nothing sealed) fails the devnet.
pub async fn conclude(
    check: LeakCheck,
    result: Result<Report, CommandError>,
) -> Result<Report, CommandError> {
    let report = check.finish().await;
    let summary = report.summary();
    match (result, report.verdict()) {
        (Ok(mut r), Ok(())) => {
            r.text.push_str(&format!("\n{summary}"));
            r.json["leak_check"] = json(&report);
            Ok(r)
        }
        (Ok(r), Err(e)) => {
            println!("{}\n{summary}", r.text);
            Err(CommandError::Invalid(format!("leak check: {e}")))
        }
        (Err(e), Err(v)) if report.leaks > 0 => {
            println!("{summary}");
            Err(CommandError::Invalid(format!("{e}\nleak check: {v}")))
        }
        (Err(e), _) => {
            println!("{summary}");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alloy::primitives::U256;
    use autonet_agents::db::{ActionState, AgentDb, LogId, SolutionRow, TaskRow};
    use autonet_agents::status::{AgentRounds, NodeInfo, Round, SolverResult, StatusState, router};
    use tokio_util::sync::CancellationToken;

    use super::*;

    const BASE_LOSS: f64 = 5.432198;
    const LOSSES: [f64; 2] = [4.123457, 3.987654];

    fn vote(base_loss: f64) -> Value {
        serde_json::json!({
            "scores": [65535, 12345], "salt": B256::repeat_byte(0x5a),
            "base_loss": base_loss, "losses": [LOSSES[0], LOSSES[1], null],
        })
    }

    fn coordinator(i: u8) -> Address {
        Address::repeat_byte(0xc0 + i)
    }

    #[test]
    fn number_literals_match_a_value_at_six_significant_digits() {
        let shows = |text: &str| shows_float(&literals(text), BASE_LOSS);
        for yes in [
            "autonet_last_eval_loss 5.432198\n",
            "{\"base_loss\":5.432198041534424}",
            "5.43220",
            "[-5.432198]",
            "loss 5432198e-6",
        ] {
            assert!(shows(yes), "{yes}");
        }
        for no in [
            "5.4322",
            "15.432198",
            "5.432188",
            "0xab5.432198",
            "v5.432198",
            "5432198",
            "1712345678",
        ] {
            assert!(!shows(no), "{no}");
        }
        assert_eq!(literals("a 0.00123 b").first().map(|l| l.digits), Some(3));
    }

    #[test]
    fn score_vectors_match_as_whole_comma_lists() {
        for yes in ["[65535,12345]", "scores: [65535, 12345]"] {
            assert!(shows_ints(yes, &[65535, 12345]), "{yes}");
        }
        for no in ["165535,12345", "65535,123456", "65535;12345"] {
            assert!(!shows_ints(no, &[65535, 12345]), "{no}");
        }
    }

    #[test]
    fn actions_yield_their_secrets_behind_the_right_gate() {
        let c = coordinator(1);
        let got = secrets_of_action("coordinator-1", c, "vote:5", &vote(BASE_LOSS));
        let gate = Gate::Vote { task: 5, by: c };
        let of = |field: &str| {
            got.iter()
                .filter(|s| s.what == format!("vote:5 {field}"))
                .map(|s| (s.gate, s.token.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of("salt"),
            [(Gate::Never, Token::Hex("5a".repeat(32)))],
            "salts are never revealed"
        );
        assert_eq!(of("scores"), [(gate, Token::Ints(vec![65535, 12345]))]);
        assert_eq!(of("base_loss"), [(gate, Token::Float(BASE_LOSS))]);
        assert_eq!(
            of("losses"),
            [
                (gate, Token::Float(LOSSES[0])),
                (gate, Token::Float(LOSSES[1]))
            ]
        );

        let proposal = serde_json::json!({
            "eval_spec_hash": B256::repeat_byte(1), "salt": B256::repeat_byte(2),
            "gt_commit": B256::repeat_byte(3), "spec_hash": B256::repeat_byte(4), "task_id": 3,
        });
        let got = secrets_of_action("proposer", c, "propose:000001", &proposal);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].gate, Gate::GroundTruth { task: Some(3) });
        assert_eq!(got[1].gate, Gate::Never);
        assert!(secrets_of_action("x", c, "vote-reveal:5", &Value::Null).is_empty());
        assert!(
            secrets_of_action(
                "x",
                c,
                "publish:5",
                &serde_json::json!(B256::repeat_byte(9))
            )
            .is_empty()
        );
    }

    #[test]
    fn a_value_a_revealed_secret_also_has_is_public() {
        let (a, b) = (coordinator(1), coordinator(2));
        let mut secrets = secrets_of_action("coordinator-1", a, "vote:5", &vote(BASE_LOSS));
        secrets.extend(secrets_of_action(
            "coordinator-2",
            b,
            "vote:5",
            &vote(BASE_LOSS + 1.0),
        ));
        let mut facts = ChainFacts::default();
        facts.vote_reveal_end.insert(5, 100);
        facts.head = 90;
        let names = |facts: &ChainFacts| {
            forbidden(&secrets, facts)
                .iter()
                .map(|s| format!("{} {}", s.owner, s.what))
                .collect::<BTreeSet<_>>()
        };
        // Salt, scores, base loss and two losses each.
        assert_eq!(forbidden(&secrets, &facts).len(), 2 * 5);
        assert_eq!(names(&facts).len(), 2 * 4, "{:?}", names(&facts));
        // coordinator-1 revealed: its values are public, and so are coordinator-2's equal ones.
        facts.votes.insert((5, a));
        let left = names(&facts);
        assert!(left.contains("coordinator-1 vote:5 salt"));
        assert!(left.contains("coordinator-2 vote:5 base_loss"));
        assert!(left.contains("coordinator-2 vote:5 salt"));
        assert!(!left.contains("coordinator-2 vote:5 losses"), "{left:?}");
        assert!(!left.contains("coordinator-2 vote:5 scores"), "{left:?}");
        // Past the vote-reveal window everything but the salts is public.
        facts.head = 101;
        assert_eq!(names(&facts).len(), 2);
        facts.head = 0;
        facts.ended.insert(5);
        assert_eq!(names(&facts).len(), 2);
    }

    /// A node serving the agents' status router (and BLS routes) with a ready file in `dir`.
    async fn serve(dir: &Path, status: StatusState, cancel: &CancellationToken) {
        let store = autonet_storage::Store::open(dir.join("store")).unwrap();
        let extra = autonet_agents::bls::routes(Default::default()).merge(router(status));
        let (addr, _) = autonet_agents::serve::start(
            "127.0.0.1:0".parse().unwrap(),
            store,
            false,
            extra,
            cancel.child_token(),
        )
        .await
        .unwrap();
        let ready = serde_json::json!({ "endpoint": format!("http://{addr}") });
        std::fs::write(dir.join(autonet_agents::READY_FILE), ready.to_string()).unwrap();
    }

    fn node(address: Address) -> NodeInfo {
        NodeInfo {
            role: "coordinator".into(),
            address: address.to_string(),
            project_id: 1,
            ..NodeInfo::default()
        }
    }

    /// A state directory whose database holds a committed vote on task 5 (and the task).
    fn state_dir(root: &Path, name: &str) -> (PathBuf, Arc<AgentDb>) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Arc::new(AgentDb::open(dir.join("agent.sqlite")).unwrap());
        let id = |n: u64| LogId {
            tx: B256::with_last_byte(n as u8),
            log_index: n,
            block: 10 + n,
            at: None,
        };
        let task = TaskRow {
            task_id: 5,
            project_id: 1,
            proposer: Address::repeat_byte(1),
            spec_hash: B256::repeat_byte(2),
            gt_commit: B256::repeat_byte(3),
            block: 10,
            commit_end: 20,
            sol_reveal_end: 30,
            gt_reveal_end: 40,
            vote_commit_end: 50,
            vote_reveal_end: 100,
        };
        db.insert_task(&task, U256::from(1), id(1)).unwrap();
        for i in 0..2u8 {
            let s = SolutionRow {
                solver: Address::repeat_byte(0x10 + i),
                delta_root: B256::repeat_byte(0x40 + i),
                manifest_hash: B256::repeat_byte(0x4d),
                reveal_index: i,
            };
            db.insert_solution(5, &s, id(2 + u64::from(i))).unwrap();
        }
        db.put_action(
            "vote:5",
            Some(5),
            ActionState::Done,
            &vote(BASE_LOSS),
            9,
            None,
        )
        .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn over_http_the_agents_status_routes_pass_and_a_leaky_node_is_caught() {
        let root = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let (honest, leaky) = (coordinator(1), coordinator(2));
        // The agents' own status routes over a database holding a committed vote.
        let (dir, _db) = state_dir(root.path(), "coordinator-1");
        serve(
            &dir,
            StatusState::from_db_file(node(honest), dir.join("agent.sqlite")),
            &cancel,
        )
        .await;
        // A node that shows its vote's losses before revealing it.
        let (leaky_dir, _leaky_db) = state_dir(root.path(), "leaky-1");
        let shown = vec![Round {
            task_id: 5,
            status: "open".into(),
            base_loss: Some(BASE_LOSS),
            solvers: vec![SolverResult {
                loss: Some(LOSSES[0]),
                ..SolverResult::default()
            }],
            ..Round::default()
        }];
        serve(&leaky_dir, StatusState::fixed(node(leaky), shown), &cancel).await;
        let target = |name: &str, dir: &Path, address| Target {
            name: name.into(),
            state_dir: dir.to_path_buf(),
            address: Some(address),
        };
        let mut checker = Checker::new(vec![
            target("coordinator-1", &dir, honest),
            target("leaky-1", &leaky_dir, leaky),
            target("inference", &root.path().join("inference"), Address::ZERO),
        ]);
        let mut facts = ChainFacts::default();
        facts.vote_reveal_end.insert(5, 100);

        let responses = checker.fetch_all().await;
        checker.refresh_secrets().await;
        checker.check(&responses, &facts);
        let honest_routes = responses.iter().filter(|f| f.node == "coordinator-1");
        assert_eq!(honest_routes.count(), 3, "no BLS root known yet");
        let r = &checker.report;
        assert_eq!(r.responses, 6);
        // The JSON and the metrics gauge derived from it; the page itself is static.
        assert_eq!(r.leaks, 2, "{:?}", r.listed);
        for (line, path) in r.listed.iter().zip(["/api/status", "/metrics"]) {
            assert!(
                line.starts_with(&format!("leaky-1 {path} showed")),
                "{line}"
            );
            assert!(line.contains("leaky-1's vote:5 base_loss"), "{line}");
        }
        assert!(
            r.listed[0].contains("leaky-1's vote:5 losses"),
            "{:?}",
            r.listed
        );
        assert_eq!(r.sealed_votes.len(), 2);
        assert!(checker.report.verdict().is_err());
        let honest_json = &responses
            .iter()
            .find(|f| f.node == "coordinator-1" && f.route == "/api/status")
            .unwrap()
            .text;
        assert!(
            honest_json.contains("\"sealed\":true") && honest_json.contains("\"task_id\":5"),
            "{honest_json}"
        );

        // The leaky node's own reveal makes its values public: no new leak.
        facts.votes.insert((5, leaky));
        let responses = checker.fetch_all().await;
        checker.check(&responses, &facts);
        assert_eq!(checker.report.leaks, 2);
        assert!(checker.report.summary().ends_with("leaks found = 2"));
        cancel.cancel();
    }
}
