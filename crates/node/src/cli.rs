//! The command line: every subcommand and flag, with the help text operators read.
//!
//! This module owns the clap definitions and the dispatch from a parsed [`Cli`] to the command
//! functions in [`crate::commands`]. It must not talk to the chain itself.

use std::path::PathBuf;

use alloy::primitives::{Address, B256, U256};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::amount::atn_arg;
use crate::commands::agent::RunArgs;
use crate::commands::gov::{GovAction, Support};
use crate::commands::market::{InferArgs, ServeArgs};
use crate::commands::project::{CreateArgs, DEFAULT_SPLIT, DEFAULT_WINDOWS};
use crate::commands::staking::RoleArg;
use crate::commands::{
    CommandError, Context, Report, agent, deploy, gov, integrity, key, market, project, staking,
    status,
};
use crate::config::{EffectiveConfig, GlobalArgs};
use crate::devnet::DevnetArgs;

const LONG_ABOUT: &str = "\
The Autonet operator's command line: deploy the contracts, stake for a role, fund training \
projects and see where this node stands on chain.

Contract addresses are discovered from the Registry (--registry) or a deployments file \
(--deployment); with neither, deployments/<chainId>.json in the current directory is used.

Every setting is taken from, in order: the command-line flag, its environment variable, the \
--config TOML file (keys rpc_url, registry, deployment), the default.

Commands that send transactions sign with an encrypted keystore named by --account (made by \
`autonet key new` or `autonet key import`, or by `cast wallet`; its password comes from \
AUTONET_KEYSTORE_PASSWORD, --password-file or a prompt) or with the hex key in \
AUTONET_PRIVATE_KEY, never both. A raw key is read from the environment only — never from a flag \
or a config file — and no key is ever printed.";

const EXAMPLES: &str = "\
Examples:
  # Deploy to a local anvil (from the repository root, after `make setup`)
  AUTONET_PRIVATE_KEY=0x… autonet deploy

  # Point later commands at that deployment
  export AUTONET_REGISTRY=0x…   # printed by `autonet deploy`

  # Keep the operator's key encrypted (asks for a password; ~/.foundry/keystores, shared with cast)
  autonet key new --name operator
  export AUTONET_ACCOUNT=operator   # or --account operator on each command

  # Stake 50 ATN as a solver, see the result
  autonet stake --role solver --amount 50
  autonet status

  # Create and fund a project, then check it
  autonet project create --spec-hash 0x… --model-uri ipfs://… --dataset-root 0x… \\
      --initial-model-root 0x… --price 0.01
  autonet project fund 1 --amount 1000
  autonet project status 1 --json

  # Leave: request an unbond, withdraw once it has matured
  autonet unstake --amount 50
  autonet withdraw

Environment:
  AUTONET_ACCOUNT            keystore account to sign with (as --account)
  AUTONET_KEYSTORE_PASSWORD  its password (else --password-file, else a prompt)
  AUTONET_KEYSTORE_DIR       keystore directory (as --keystore-dir)
  AUTONET_PRIVATE_KEY        hex private key of the operator's account, instead of --account
                             (never logged)
  AUTONET_RPC_URL, AUTONET_REGISTRY, AUTONET_DEPLOYMENT, AUTONET_CONFIG   as the flags
  RUST_LOG                   log filter (overrides -v)";

/// The `autonet` command line.
#[derive(Debug, Parser)]
#[command(
    name = "autonet",
    version,
    about = "Autonet operator CLI: deploy, stake, fund projects, inspect the chain",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Chain id, head block, every contract, this account's balance, role, stake, unbonds and
    /// rewards, and the latest task with its deadlines
    Status,

    /// Stake ATN for a role (approves the staking contract first when needed)
    ///
    /// An address holds one role. The first stake must reach the role's minimum (by default
    /// proposer 100, solver 50, coordinator 500, aggregator 1000 ATN); later stakes add to it.
    #[command(after_help = "Example: autonet stake --role solver --amount 50")]
    Stake {
        /// The role to stake for
        #[arg(long, value_enum)]
        role: RoleArg,
        /// ATN to stake, as a decimal number (e.g. 50 or 50.5; at most 18 decimals)
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },

    /// Request an unbond of part or all of the stake (withdrawable after the role's unbonding
    /// delay; see `autonet withdraw`)
    #[command(after_help = "Example: autonet unstake --amount 10")]
    Unstake {
        /// ATN to unbond, as a decimal number
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },

    /// Withdraw every unbond that has matured back to this account
    Withdraw,

    /// Create, fund and inspect training projects
    #[command(subcommand)]
    Project(ProjectCmd),

    /// Deploy every contract with script/Deploy.s.sol (forge from node_modules/.bin) and print
    /// the addresses
    ///
    /// Runs `forge script script/Deploy.s.sol:Deploy --broadcast` in the repository with the
    /// operator's key (--account or AUTONET_PRIVATE_KEY); the script writes
    /// deployments/<chainId>.json. Parameters such as AUTONET_PROFILE=devnet|network and
    /// INITIAL_SUPPLY are read by the script from the environment (see script/Deploy.s.sol).
    /// Arguments after `--` go to forge unchanged.
    #[command(after_help = "Example: autonet deploy --repo ~/autonet -- --slow")]
    Deploy {
        /// The repository checkout holding script/Deploy.s.sol and node_modules/.bin/forge
        #[arg(long, default_value = ".", value_name = "DIR")]
        repo: PathBuf,
        /// Extra arguments for `forge script` (after `--`)
        #[arg(last = true, value_name = "FORGE_ARGS")]
        forge_args: Vec<String>,
    },

    /// Print the effective configuration (after flags, environment and config file; the key is
    /// shown as its address only)
    Config,

    /// Run a staked role agent (proposer, solver, coordinator or aggregator) until Ctrl-C
    ///
    /// The agent follows the chain's events into <state-dir>/agent.sqlite, trains / scores /
    /// aggregates as its role requires, and stores every salt before the transaction that needs
    /// it, so it can be stopped or killed at any moment and restarted with the same --state-dir.
    /// The project's training spec, dataset and genesis model are read from chain and checked.
    #[command(after_help = "Examples:
  autonet run --account solver-1 --role solver --project 1 --state-dir ./solver-1 --data-shard 0/3
  AUTONET_PRIVATE_KEY=0x… autonet run --role coordinator --project 1 --state-dir ./coord-1 --listen 0.0.0.0:7001 \\
      --public-url http://my-host:7001")]
    Run(Box<RunArgs>),

    /// Start a local network and run training rounds end to end: anvil, the contracts, a
    /// project on the reference corpus, one fresh funded and staked key per agent, and 1
    /// proposer, N solvers, M coordinators and 1 aggregator as separate processes
    ///
    /// Prints per round the global eval loss, every solver's consensus and incentive, what each
    /// agent earned and the gas used; exits non-zero when a round fails, the loss did not fall or
    /// a claimable balance differs from what the contracts paid. Ctrl-C stops everything.
    #[command(after_help = "Examples:
  autonet devnet                         # 3 rounds of the small model
  autonet devnet --preset tiny --rounds 5
  autonet devnet --keep-running          # leave the network up afterwards")]
    Devnet(Box<DevnetArgs>),

    /// Governance: delegate votes, propose changes, vote, queue, execute, inspect
    ///
    /// Every protocol change goes through the Governor and the Timelock. A proposal moves
    /// Pending → Active (voting) → Succeeded → Queued (timelock delay) → Executed; `gov status`
    /// says where it is and what comes next. Votes count only once delegated (`gov delegate`).
    #[command(subcommand)]
    Gov(GovCmd),

    /// This build's code fingerprint and whether governance approved it
    #[command(subcommand)]
    Integrity(IntegrityCmd),

    /// Serve the project's latest model over HTTP with x402 payments until Ctrl-C
    ///
    /// Loads the project's current model (every shard verified against the chain), follows new
    /// publications without downtime and answers POST /v1/generate. Without a PAYMENT-SIGNATURE
    /// the route answers 402 with the x402 requirement (the project's price in ATN, payable to
    /// this node's own receiver for the project, InferenceMarket.paymentAddress); a valid EIP-3009
    /// authorization is verified, the output produced and
    /// the payment settled through InferenceMarket.settle, which credits this account as the
    /// provider. Also serves the status page (/), /api/status and /metrics.
    #[command(after_help = "Example:
  autonet serve --account operator --project 1 --state-dir ./inference --listen 0.0.0.0:8080 \\
      --public-url http://my-host:8080")]
    Serve(Box<ServeArgs>),

    /// Ask a node for a generation, paying with x402 (EIP-3009, signed with the operator's key:
    /// --account or AUTONET_PRIVATE_KEY) when it asks; prints the output and the settlement
    #[command(after_help = "Example:
  AUTONET_PRIVATE_KEY=0x… autonet infer --url http://127.0.0.1:8080/v1/generate --prompt 'fn main' --max-price 0.1")]
    Infer(Box<InferArgs>),

    /// Claim everything this account earned: training rewards, inference revenue as a
    /// provider, and its contributor share of a project's inference revenue
    Claim {
        /// The project whose contributor revenue is claimed
        #[arg(long, env = "AUTONET_PROJECT", default_value_t = 1)]
        project: u64,
    },

    /// Encrypted keystores for the operator's keys: make one, import one, list them
    ///
    /// A keystore is a Web3 Secret Storage v3 file (scrypt, AES-128-CTR) named after its account,
    /// in ~/.foundry/keystores unless --keystore-dir / AUTONET_KEYSTORE_DIR says otherwise: the
    /// directory and format of `cast wallet new/import`, so cast and autonet share accounts.
    /// Every signing command then takes --account <NAME> (or AUTONET_ACCOUNT) instead of
    /// AUTONET_PRIVATE_KEY. Passwords come from --password-file, AUTONET_KEYSTORE_PASSWORD, or a
    /// prompt without echo.
    #[command(subcommand)]
    Key(KeyCmd),
}

impl Cmd {
    /// Whether the command may sign or show the operator's account, so that a `--account`
    /// keystore is unlocked (and its password asked for) before it runs; read-only commands
    /// never ask.
    pub fn uses_key(&self) -> bool {
        !matches!(
            self,
            Cmd::Key(_)
                | Cmd::Devnet(_)
                | Cmd::Integrity(_)
                | Cmd::Project(ProjectCmd::Status { .. })
                | Cmd::Gov(GovCmd::Status { .. } | GovCmd::List { .. } | GovCmd::Advance { .. })
        )
    }
}

/// `autonet key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Generate a new key and write it encrypted; prints its address and file
    #[command(after_help = "Examples:
  autonet key new --name operator        # asks for the password twice
  AUTONET_KEYSTORE_PASSWORD=… autonet key new --name solver-1 --keystore-dir /etc/autonet/keys")]
    New {
        /// The account's name: its file name, what --account takes [default: its address]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Encrypt an existing hex private key into a keystore; prints its address and file
    #[command(after_help = "Examples:
  autonet key import --name operator     # asks for the key (not shown), then the password twice
  autonet key import --name operator --private-key-env OLD_KEY --password-file ./pw")]
    Import {
        /// The account's name: its file name, what --account takes [default: its address]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Read the key from this environment variable [default: standard input, not echoed]
        #[arg(long, value_name = "VAR")]
        private_key_env: Option<String>,
    },
    /// Every keystore in the directory: name, address (when the file records it) and file
    List,
}

/// `autonet gov …`.
#[derive(Debug, Subcommand)]
pub enum GovCmd {
    /// Delegate this account's votes (to itself by default); needed before voting power counts
    Delegate {
        /// Delegatee (default: this account)
        #[arg(long)]
        to: Option<Address>,
    },
    /// Propose a change; prints the proposal id
    #[command(after_help = "Examples:
  autonet gov propose code-hash                          # approve this build (autonet integrity show)
  autonet gov propose min-stake --role solver --amount 75
  autonet gov propose windows --project 1 --windows 10,4,4,6,4,20
  autonet gov propose set-uint --key rewards.kappa --value 32768
  autonet gov propose --description \"Grant to the docs team\" grant --to 0x… --amount 1000
  autonet gov propose raw --target 0x… --calldata 0x…")]
    Propose {
        /// The proposal's description (default: a summary of the change)
        #[arg(long)]
        description: Option<String>,
        /// The change
        #[command(subcommand)]
        action: GovAction,
    },
    /// Vote on an active proposal
    Vote {
        /// Proposal id (hex or decimal)
        id: U256,
        /// For, against or abstain
        #[arg(long, value_enum, default_value = "for")]
        support: Support,
        /// Reason recorded on chain
        #[arg(long)]
        reason: Option<String>,
    },
    /// Queue a succeeded proposal in the Timelock
    Queue {
        /// Proposal id
        id: U256,
        /// First block to look for the proposal (default: the deployment's block)
        #[arg(long)]
        from_block: Option<u64>,
    },
    /// Execute a queued proposal once its timelock delay passed
    Execute {
        /// Proposal id
        id: U256,
        /// First block to look for the proposal (default: the deployment's block)
        #[arg(long)]
        from_block: Option<u64>,
    },
    /// A proposal's state, votes, quorum and ETA in plain words
    Status {
        /// Proposal id
        id: U256,
        /// First block to look for the proposal (default: the deployment's block)
        #[arg(long)]
        from_block: Option<u64>,
    },
    /// Every proposal with its state
    List {
        /// First block to look for proposals (default: the deployment's block)
        #[arg(long)]
        from_block: Option<u64>,
    },
    /// Development chains only: propose, vote for, queue and execute in one go, advancing
    /// anvil's blocks and time in between (the signer needs enough delegated votes for quorum)
    #[command(after_help = "Example: autonet gov pass code-hash")]
    Pass {
        /// The proposal's description (default: a summary of the change)
        #[arg(long)]
        description: Option<String>,
        /// The change
        #[command(subcommand)]
        action: GovAction,
    },
    /// Development chains only: mine blocks and move time forward
    Advance {
        /// Blocks to mine
        #[arg(long, default_value_t = 1)]
        blocks: u64,
        /// Seconds to move the clock forward first
        #[arg(long, default_value_t = 0)]
        seconds: u64,
    },
}

/// `autonet integrity …`.
#[derive(Debug, Subcommand)]
pub enum IntegrityCmd {
    /// Print this build's code fingerprint and the Registry key governance approves it under
    Show {
        /// Also recompute the fingerprint from this checkout and compare
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Compare this build's fingerprint with `node.code.hash.<version>` in the Registry; exits
    /// non-zero unless they are equal
    Check,
}

/// `autonet project …`.
#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Create a training project owned by this account
    #[command(after_help = "Example:
  autonet project create --spec-hash 0x11…11 --model-uri ipfs://spec --dataset-root 0x22…22 \\
      --initial-model-root 0x33…33 --price 0.01 --windows 8,8,8,8,8,200 --split 7000,1500,500,1000")]
    Create {
        /// keccak256 of the model specification (32-byte hex)
        #[arg(long, value_name = "HASH")]
        spec_hash: B256,
        /// Where the model specification can be fetched
        #[arg(long, value_name = "URI")]
        model_uri: String,
        /// Merkle root of the dataset manifest (32-byte hex)
        #[arg(long, value_name = "HASH")]
        dataset_root: B256,
        /// Merkle root of the initial global model (32-byte hex)
        #[arg(long, value_name = "HASH")]
        initial_model_root: B256,
        /// Inference price in ATN per request (decimal)
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        price: U256,
        /// Phase lengths in blocks: commit,gt-reveal,sol-reveal,vote-commit,vote-reveal,publish
        #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = DEFAULT_WINDOWS, value_name = "BLOCKS")]
        windows: Vec<u32>,
        /// Reward split in basis points summing to 10000: solver,coordinator,proposer,aggregator
        #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = DEFAULT_SPLIT, value_name = "BPS")]
        split: Vec<u16>,
        /// Most solvers per task (1..=16)
        #[arg(long, default_value_t = 16)]
        max_solvers: u8,
        /// Revealed coordinator votes a task needs to settle (1..=16)
        #[arg(long, default_value_t = 2)]
        min_votes: u8,
    },
    /// Add ATN to a project's budget (approves the Project contract first when needed)
    #[command(after_help = "Example: autonet project fund 1 --amount 1000")]
    Fund {
        /// Project id (from `project create`)
        id: U256,
        /// ATN to add, as a decimal number
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },
    /// Owner only: let a staked proposer spend this project's budget, holding at most a cap reserved
    /// across its open tasks (`--max-reward 0` revokes it). Only approved proposers can propose
    /// tasks on a project.
    #[command(
        after_help = "Example: autonet project approve-proposer 1 0xabc…def --max-reward 100"
    )]
    ApproveProposer {
        /// Project id
        id: U256,
        /// The proposer's address
        proposer: Address,
        /// Most this proposer may hold reserved across its open tasks at once (so also the
        /// largest reward of one task), in ATN (0 revokes the approval)
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        max_reward: U256,
    },
    /// Show a project's owner, accounts in ATN, model root, price, split and windows
    Status {
        /// Project id
        id: U256,
    },
}

/// Runs the parsed command with the effective configuration.
pub async fn run(command: Cmd, config: EffectiveConfig) -> Result<Report, CommandError> {
    match command {
        Cmd::Config => Ok(Report {
            text: format!("{config:#?}"),
            json: json!(config),
        }),
        Cmd::Deploy { repo, forge_args } => deploy::deploy(&config, &repo, &forge_args).await,
        Cmd::Devnet(args) => crate::devnet::devnet(&args).await,
        Cmd::Integrity(IntegrityCmd::Show { repo }) => integrity::show(repo.as_deref()),
        Cmd::Key(KeyCmd::New { name }) => key::new(&config, name.as_deref()),
        Cmd::Key(KeyCmd::Import {
            name,
            private_key_env,
        }) => key::import(&config, name.as_deref(), private_key_env.as_deref()),
        Cmd::Key(KeyCmd::List) => key::list(&config),
        command => {
            let ctx = Context::connect(config).await?;
            match command {
                Cmd::Status => status::status(&ctx).await,
                Cmd::Stake { role, amount } => staking::stake(&ctx, role, amount).await,
                Cmd::Unstake { amount } => staking::unstake(&ctx, amount).await,
                Cmd::Withdraw => staking::withdraw(&ctx).await,
                Cmd::Project(ProjectCmd::Create {
                    spec_hash,
                    model_uri,
                    dataset_root,
                    initial_model_root,
                    price,
                    windows,
                    split,
                    max_solvers,
                    min_votes,
                }) => {
                    let args = CreateArgs {
                        spec_hash,
                        model_uri,
                        dataset_root,
                        initial_model_root,
                        price,
                        windows,
                        split,
                        max_solvers,
                        min_votes,
                    };
                    project::create(&ctx, &args).await
                }
                Cmd::Project(ProjectCmd::Fund { id, amount }) => {
                    project::fund(&ctx, id, amount).await
                }
                Cmd::Project(ProjectCmd::ApproveProposer {
                    id,
                    proposer,
                    max_reward,
                }) => project::approve_proposer(&ctx, id, proposer, max_reward).await,
                Cmd::Project(ProjectCmd::Status { id }) => project::status(&ctx, id).await,
                Cmd::Run(args) => agent::run(&ctx, &args).await,
                Cmd::Serve(args) => market::serve(&ctx, &args).await,
                Cmd::Infer(args) => market::infer(&ctx, &args).await,
                Cmd::Claim { project } => market::claim(&ctx, project).await,
                Cmd::Integrity(IntegrityCmd::Check) => integrity::check(&ctx).await,
                Cmd::Gov(cmd) => match cmd {
                    GovCmd::Delegate { to } => gov::delegate(&ctx, to).await,
                    GovCmd::Propose {
                        description,
                        action,
                    } => gov::propose(&ctx, &action, description).await,
                    GovCmd::Vote {
                        id,
                        support,
                        reason,
                    } => gov::vote(&ctx, id, support, reason).await,
                    GovCmd::Queue { id, from_block } => gov::queue(&ctx, id, from_block).await,
                    GovCmd::Execute { id, from_block } => gov::execute(&ctx, id, from_block).await,
                    GovCmd::Status { id, from_block } => gov::status(&ctx, id, from_block).await,
                    GovCmd::List { from_block } => gov::list(&ctx, from_block).await,
                    GovCmd::Pass {
                        description,
                        action,
                    } => gov::pass(&ctx, &action, description).await.map(|(r, _)| r),
                    GovCmd::Advance { blocks, seconds } => {
                        gov::advance(&ctx, blocks, seconds).await
                    }
                },
                Cmd::Config
                | Cmd::Deploy { .. }
                | Cmd::Devnet(_)
                | Cmd::Key(_)
                | Cmd::Integrity(IntegrityCmd::Show { .. }) => unreachable!("handled above"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn only_commands_that_sign_or_show_the_account_unlock_it() {
        let uses = |args: &[&str]| {
            let mut all = vec!["autonet"];
            all.extend(args);
            Cli::try_parse_from(all).unwrap().command.uses_key()
        };
        for signs in [
            &["stake", "--role", "solver", "--amount", "1"][..],
            &["withdraw"],
            &["status"],
            &["config"],
            &["gov", "vote", "1"],
            &["project", "fund", "1", "--amount", "1"],
        ] {
            assert!(uses(signs), "{signs:?}");
        }
        for reads in [
            &["key", "list"][..],
            &["key", "new"],
            &["integrity", "check"],
            &["project", "status", "1"],
            &["gov", "list"],
            &["devnet"],
        ] {
            assert!(!uses(reads), "{reads:?}");
        }
    }

    #[test]
    fn parses_amounts_and_lists() {
        let cli = Cli::try_parse_from(["autonet", "stake", "--role", "solver", "--amount", "50.5"])
            .unwrap();
        match cli.command {
            Cmd::Stake { role, amount } => {
                assert_eq!(role, RoleArg::Solver);
                assert_eq!(amount, crate::amount::parse_atn("50.5").unwrap());
            }
            other => panic!("{other:?}"),
        }
        let err = Cli::try_parse_from(["autonet", "unstake", "--amount", "-1"]).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        let cli = Cli::try_parse_from([
            "autonet",
            "project",
            "create",
            "--spec-hash",
            &format!("{}", B256::repeat_byte(1)),
            "--model-uri",
            "u",
            "--dataset-root",
            &format!("{}", B256::repeat_byte(2)),
            "--initial-model-root",
            &format!("{}", B256::repeat_byte(3)),
            "--price",
            "1",
            "--split",
            "6000,2000,1000,1000",
        ])
        .unwrap();
        match cli.command {
            Cmd::Project(ProjectCmd::Create { windows, split, .. }) => {
                assert_eq!(windows, DEFAULT_WINDOWS.to_vec());
                assert_eq!(split, vec![6000, 2000, 1000, 1000]);
            }
            other => panic!("{other:?}"),
        }
    }
}
