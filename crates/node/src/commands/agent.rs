//! `autonet run --role …`: runs one staked role agent until Ctrl-C / SIGTERM.
//!
//! This module owns the command's arguments ([`RunArgs`]) and `run`: turning the command line
//! into [`autonet_agents::AgentOptions`] and the process's signal handling; the agent's behaviour
//! lives in `autonet-agents`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::U256;
use autonet_agents::{AgentOptions, Faults, IntegrityPolicy, Role};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::staking::RoleArg;
use super::{CommandError, Context, Report};
use crate::amount::atn_arg;
use crate::config::EffectiveConfig;

/// Faults the end-to-end tests inject (hidden from `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultArg {
    /// Proposer: never reveal the ground truth.
    SkipGtReveal,
    /// Solver: commit but never reveal.
    SkipSolutionReveal,
    /// Serve every shard with a flipped byte.
    CorruptShards,
}

/// `autonet run` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  autonet run --account solver-1 --role solver --project 1 --state-dir ./solver-1 --data-shard 0/3
  AUTONET_PRIVATE_KEY=0x… autonet run --role coordinator --project 1 --state-dir ./coord-1 --listen 0.0.0.0:7001 \\
      --public-url http://my-host:7001")]
pub struct RunArgs {
    /// The role to play (`run`: this account must hold an active stake for it; `join` stakes
    /// for it)
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The project to work on
    #[arg(long, env = "AUTONET_PROJECT", default_value_t = 1)]
    pub project: u64,
    /// Where the agent keeps its database and shard store (one directory per agent)
    #[arg(long, env = "AUTONET_STATE_DIR", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Address the shard server binds (solver, coordinator, aggregator)
    #[arg(long, env = "AUTONET_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// URL announced on chain for the shard server (default: http://<bound address>)
    #[arg(long, env = "AUTONET_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Solver: which part of the training data to train on, as INDEX/COUNT
    #[arg(long, default_value = "0/1", value_parser = parse_shard, value_name = "INDEX/COUNT")]
    pub data_shard: (usize, usize),
    /// Proposer: stop proposing after this many tasks (default: keep proposing)
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// Proposer: reward of each task in ATN
    #[arg(long, value_parser = atn_arg, default_value = "100", value_name = "ATN")]
    pub reward: U256,
    /// Blocks deep this agent's transactions must be before they count as done (the reorg depth
    /// expected; one that a reorg removes is sent again while its window is open)
    #[arg(long, default_value_t = 2)]
    pub confirmations: u64,
    /// First block to scan for events on a fresh state directory (the deployment block)
    #[arg(long, default_value_t = 0)]
    pub from_block: u64,
    /// Milliseconds between ticks
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub poll_ms: u64,
    /// Repository whose Cargo.lock names the reference corpus (default: the one this binary was
    /// built from)
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// A cartridge task kind: a local copy of the module the project's spec pins (refused unless
    /// its keccak256 is the spec's); used when this agent's store lacks it
    #[arg(long, value_name = "FILE")]
    pub cartridge: Option<PathBuf>,
    /// A cartridge task kind: shard server to fetch the module from (every shard checked against
    /// the spec's root); repeat for several
    #[arg(long = "cartridge-peer", value_name = "URL")]
    pub cartridge_peers: Vec<String>,
    /// libtorch threads for training and evaluation
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Seconds between re-checks of the approved code hash while running (on a mismatch the
    /// agent takes no new work until governance approves this build again)
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub integrity_recheck_secs: u64,
    /// Coordinator: blocks after a model's publication to wait for the aggregator's BLS
    /// aggregate (this node's signature is served meanwhile) before attesting alone
    #[arg(long, default_value_t = 30, value_name = "BLOCKS")]
    pub bls_grace_blocks: u64,
    /// DEVELOPMENT ONLY: run even when the Registry does not approve this build's code
    /// fingerprint (`autonet integrity check`); every start and re-check logs a loud warning
    #[arg(long, env = "AUTONET_DEV_SKIP_INTEGRITY")]
    pub dev_skip_integrity: bool,
    /// Inject a fault (tests only)
    #[arg(long = "fault", value_enum, hide = true)]
    pub faults: Vec<FaultArg>,
    /// TEST NETWORKS ONLY (solver): behave as a Byzantine solver and send a crafted delta
    /// instead of the honest one: sign-flip[:k], scale[:k], alie[:z], ipm[:eps], noise[:sigma],
    /// lazy[:fraction], copier[:noise] (see docs/learning.md "Under attack"). It loses rewards
    /// and can be slashed; it exists to test the network's defences
    #[arg(long, value_name = "MODE")]
    pub attack: Option<autonet_ml::Attack>,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, e.g. 0/3"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("`{i}` is not an index"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a count"))?;
    if n == 0 || i >= n {
        return Err(format!(
            "`{s}`: INDEX must be below COUNT and COUNT above 0"
        ));
    }
    Ok((i, n))
}

/// The agent role of a staking role.
pub fn agent_role(role: RoleArg) -> Role {
    match role {
        RoleArg::Proposer => Role::Proposer,
        RoleArg::Solver => Role::Solver,
        RoleArg::Coordinator => Role::Coordinator,
        RoleArg::Aggregator => Role::Aggregator,
    }
}

impl RunArgs {
    /// Whether the command unlocks the operator's key: yes, the agent signs with it.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Refuses option combinations that cannot run (`--attack` on a role other than solver).
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.attack.is_some() && !matches!(self.role, RoleArg::Solver) {
            return Err(CommandError::Invalid(format!(
                "--attack is a solver behaviour; this agent runs as {:?}",
                self.role
            )));
        }
        Ok(())
    }

    /// Runs `autonet run`: connects, takes the state directory's lock (one agent per
    /// directory), then runs the agent until a signal stops it.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        self.validate()?;
        let ctx = Context::connect(config).await?;
        let lock = match lock_state_dir(&self.state_dir)? {
            StateDirLock::Held(lock) => lock,
            StateDirLock::Busy { pid } => {
                return Err(CommandError::Invalid(format!(
                    "another agent{} is running with state directory {}: stop it first, or give this one its own --state-dir",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    self.state_dir.display()
                )));
            }
        };
        self.run_agent(ctx, lock).await
    }

    /// Runs the agent with `ctx`'s key until a signal stops it, holding the state directory's
    /// `lock` meanwhile (`autonet run` and `autonet join` both end here).
    pub async fn run_agent(self, ctx: Context, lock: HeldLock) -> Result<Report, CommandError> {
        let _lock = lock;
        let me = ctx.me()?;
        let opts = AgentOptions {
            role: agent_role(self.role),
            project_id: self.project,
            state_dir: self.state_dir.clone(),
            listen: self.listen,
            public_url: self.public_url.clone(),
            data_shard: self.data_shard,
            max_tasks: self.max_tasks,
            reward: self.reward,
            confirmations: self.confirmations,
            from_block: self.from_block,
            poll: Duration::from_millis(self.poll_ms.max(50)),
            workspace: self
                .workspace
                .clone()
                .unwrap_or_else(autonet_agents::spec::default_workspace),
            cartridge: self.cartridge.clone(),
            cartridge_peers: self.cartridge_peers.clone(),
            threads: self.threads,
            faults: Faults {
                skip_gt_reveal: self.faults.contains(&FaultArg::SkipGtReveal),
                skip_solution_reveal: self.faults.contains(&FaultArg::SkipSolutionReveal),
                corrupt_shards: self.faults.contains(&FaultArg::CorruptShards),
                attack: self.attack,
            },
            integrity: IntegrityPolicy {
                identity: super::integrity::this_build(),
                enforce: !self.dev_skip_integrity,
                recheck: Duration::from_secs(self.integrity_recheck_secs.max(1)),
            },
            bls_grace_blocks: self.bls_grace_blocks,
        };
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("signal received: stopping");
            on_signal.cancel();
        });
        autonet_agents::run(opts, ctx.provider.clone(), ctx.contracts, me, cancel)
            .await
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        Ok(Report {
            text: format!("{} agent {me} stopped", agent_role(self.role).name()),
            json: json!({ "role": agent_role(self.role).name(), "address": me.to_string(), "stopped": true }),
        })
    }
}

/// The file in an agent's state directory that its running process holds locked (an advisory
/// `flock`, released when the process ends, even by SIGKILL); it holds that process's id.
pub const LOCK_FILE: &str = "agent.lock";

/// The state directory's lock, held by this process while its agent runs.
#[derive(Debug)]
pub struct HeldLock {
    _file: std::fs::File,
}

/// Whether this process got the state directory's lock.
#[derive(Debug)]
pub enum StateDirLock {
    /// This process holds it now.
    Held(HeldLock),
    /// Another process holds it: an agent is running with this directory (its pid, when the
    /// file says).
    Busy {
        /// The running agent's process id.
        pid: Option<u32>,
    },
}

/// Takes `dir`'s [`LOCK_FILE`] (creating the directory) and records this process's id in it,
/// or says which process holds it.
pub fn lock_state_dir(dir: &Path) -> Result<StateDirLock, CommandError> {
    use std::io::{Read as _, Seek as _, Write as _};
    let io = |what: &str, e: std::io::Error| {
        CommandError::Invalid(format!("{what} {}: {e}", dir.join(LOCK_FILE).display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| io("opening", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(StateDirLock::Busy {
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", e)),
    }
    file.set_len(0).map_err(|e| io("writing", e))?;
    file.rewind().map_err(|e| io("writing", e))?;
    writeln!(file, "{}", std::process::id()).map_err(|e| io("writing", e))?;
    Ok(StateDirLock::Held(HeldLock { _file: file }))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_holds_a_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let held = match lock_state_dir(dir.path()).unwrap() {
            StateDirLock::Held(lock) => lock,
            busy => panic!("{busy:?}"),
        };
        // A second open file description is refused while the first holds the lock.
        match lock_state_dir(dir.path()).unwrap() {
            StateDirLock::Busy { pid } => assert_eq!(pid, Some(std::process::id())),
            held => panic!("{held:?}"),
        }
        drop(held);
        assert!(matches!(
            lock_state_dir(dir.path()).unwrap(),
            StateDirLock::Held(_)
        ));
    }

    #[test]
    fn data_shards_parse_and_reject_nonsense() {
        assert_eq!(parse_shard("1/3").unwrap(), (1, 3));
        assert!(parse_shard("3/3").unwrap_err().contains("below"));
        assert!(parse_shard("1").unwrap_err().contains("INDEX/COUNT"));
        assert!(parse_shard("a/2").is_err());
    }
}
