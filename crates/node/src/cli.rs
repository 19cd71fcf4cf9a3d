//! The command line: the `autonet` command and the list of its subcommands.
//!
//! This module owns the top-level [`Cli`] (the settings every subcommand shares, the long help
//! and the examples) and the [`Cmd`] list that names each subcommand, says what it is for and
//! wraps that subcommand's own arguments type. Each subcommand owns its arguments, their help and
//! examples, whether it unlocks the operator's key, and its `run`, in [`crate::commands`] (and
//! [`crate::devnet`]); this module only assembles them and dispatches a parsed command to its
//! `run`. It must not talk to the chain itself.

use clap::{Parser, Subcommand};

use crate::commands::agent::RunArgs;
use crate::commands::config::ConfigArgs;
use crate::commands::deploy::DeployArgs;
use crate::commands::gov::GovCmd;
use crate::commands::integrity::IntegrityCmd;
use crate::commands::join::JoinArgs;
use crate::commands::key::KeyCmd;
use crate::commands::market::{ClaimArgs, InferArgs, ServeArgs};
use crate::commands::project::ProjectCmd;
use crate::commands::staking::{StakeArgs, UnstakeArgs, WithdrawArgs};
use crate::commands::status::StatusArgs;
use crate::commands::witness::WitnessCmd;
use crate::commands::{CommandError, Report};
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

  # Or let one command do it all: key, funds (a devnet's --faucet), stake, identity, integrity,
  # then the agent (a re-run is a no-op)
  autonet join --role solver --state-dir ./solver-1 --faucet http://127.0.0.1:PORT/faucet

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

/// The subcommands: what each is for, around the arguments type its module owns.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Chain id, head block, every contract, this account's balance, role, stake, unbonds and
    /// rewards, and the latest task with its deadlines
    Status(StatusArgs),

    /// Stake ATN for a role (approves the staking contract first when needed)
    ///
    /// An address holds one role. The first stake must reach the role's minimum (by default
    /// proposer 100, solver 50, coordinator 500, aggregator 1000 ATN); later stakes add to it.
    Stake(StakeArgs),

    /// Request an unbond of part or all of the stake (withdrawable after the role's unbonding
    /// delay; see `autonet withdraw`)
    Unstake(UnstakeArgs),

    /// Withdraw every unbond that has matured back to this account
    Withdraw(WithdrawArgs),

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
    Deploy(DeployArgs),

    /// Print the effective configuration (after flags, environment and config file; the key is
    /// shown as its address only)
    Config(ConfigArgs),

    /// Run a staked role agent (proposer, solver, coordinator or aggregator) until Ctrl-C
    ///
    /// The agent follows the chain's events into <state-dir>/agent.sqlite, trains / scores /
    /// aggregates as its role requires, and stores every salt before the transaction that needs
    /// it, so it can be stopped or killed at any moment and restarted with the same --state-dir.
    /// The project's training spec, dataset and genesis model are read from chain and checked.
    Run(Box<RunArgs>),

    /// Bootstrap a node in one command: key, funds, stake, identity, integrity, then the agent
    ///
    /// Creates (first run) or unlocks the keystore, says what the role needs (ETH for gas, ATN
    /// for its minimum stake) and what the account has, funds it from a development --faucet or
    /// prints where to send the funds (waiting up to --wait-funds), stakes, registers the
    /// ERC-8004 identity, checks the code fingerprint against governance, then runs the agent as
    /// `autonet run` does. Every step already done is skipped: a re-run is a no-op, and says
    /// "already running" when an agent holds --state-dir.
    Join(Box<JoinArgs>),

    /// Start a local network and run training rounds end to end: anvil, the contracts, a
    /// project on the reference corpus, one fresh funded and staked key per agent, and 1
    /// proposer, N solvers, M coordinators and 1 aggregator as separate processes
    ///
    /// Prints per round the global eval loss, every solver's consensus and incentive, what each
    /// agent earned and the gas used; exits non-zero when a round fails, the loss did not fall or
    /// a claimable balance differs from what the contracts paid. Ctrl-C stops everything.
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
    /// Re-check a node's witness log (hash chain, seals, anchors on chain) or print a task's story
    #[command(subcommand)]
    Witness(WitnessCmd),

    /// Serve the project's latest model over HTTP with x402 payments until Ctrl-C
    ///
    /// Loads the project's current model (every shard verified against the chain), follows new
    /// publications without downtime and answers POST /v1/generate. Without a PAYMENT-SIGNATURE
    /// the route answers 402 with the x402 requirement (the project's price in ATN, payable to
    /// this node's own receiver for the project, InferenceMarket.paymentAddress); a valid EIP-3009
    /// authorization is verified, the output produced and
    /// the payment settled through InferenceMarket.settle, which credits this account as the
    /// provider. Also serves the status page (/), /api/status and /metrics.
    Serve(Box<ServeArgs>),

    /// Ask a node for a generation, paying with x402 (EIP-3009, signed with the operator's key:
    /// --account or AUTONET_PRIVATE_KEY) when it asks; prints the output and the settlement
    Infer(Box<InferArgs>),

    /// Claim everything this account earned: training rewards, inference revenue as a
    /// provider, and its contributor share of a project's inference revenue
    Claim(ClaimArgs),

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
    /// never ask. Each subcommand decides for itself.
    pub fn uses_key(&self) -> bool {
        match self {
            Cmd::Status(args) => args.uses_key(),
            Cmd::Stake(args) => args.uses_key(),
            Cmd::Unstake(args) => args.uses_key(),
            Cmd::Withdraw(args) => args.uses_key(),
            Cmd::Project(cmd) => cmd.uses_key(),
            Cmd::Deploy(args) => args.uses_key(),
            Cmd::Config(args) => args.uses_key(),
            Cmd::Run(args) => args.uses_key(),
            Cmd::Join(args) => args.uses_key(),
            Cmd::Devnet(args) => args.uses_key(),
            Cmd::Gov(cmd) => cmd.uses_key(),
            Cmd::Integrity(cmd) => cmd.uses_key(),
            Cmd::Witness(cmd) => cmd.uses_key(),
            Cmd::Serve(args) => args.uses_key(),
            Cmd::Infer(args) => args.uses_key(),
            Cmd::Claim(args) => args.uses_key(),
            Cmd::Key(cmd) => cmd.uses_key(),
        }
    }
}

/// Runs the parsed command with the effective configuration.
pub async fn run(command: Cmd, config: EffectiveConfig) -> Result<Report, CommandError> {
    match command {
        Cmd::Status(args) => args.run(config).await,
        Cmd::Stake(args) => args.run(config).await,
        Cmd::Unstake(args) => args.run(config).await,
        Cmd::Withdraw(args) => args.run(config).await,
        Cmd::Project(cmd) => cmd.run(config).await,
        Cmd::Deploy(args) => args.run(config).await,
        Cmd::Config(args) => args.run(config).await,
        Cmd::Run(args) => args.run(config).await,
        Cmd::Join(args) => args.run(config).await,
        Cmd::Devnet(args) => args.run(config).await,
        Cmd::Gov(cmd) => cmd.run(config).await,
        Cmd::Integrity(cmd) => cmd.run(config).await,
        Cmd::Witness(cmd) => cmd.run(config).await,
        Cmd::Serve(args) => args.run(config).await,
        Cmd::Infer(args) => args.run(config).await,
        Cmd::Claim(args) => args.run(config).await,
        Cmd::Key(cmd) => cmd.run(config).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::B256;
    use clap::CommandFactory;

    use crate::commands::project::{CreateArgs, DEFAULT_WINDOWS};
    use crate::commands::staking::RoleArg;

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
            &["join", "--role", "solver", "--state-dir", "s"],
        ] {
            assert!(!uses(reads), "{reads:?}");
        }
    }

    #[test]
    fn parses_amounts_and_lists() {
        let cli = Cli::try_parse_from(["autonet", "stake", "--role", "solver", "--amount", "50.5"])
            .unwrap();
        match cli.command {
            Cmd::Stake(StakeArgs { role, amount }) => {
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
            Cmd::Project(ProjectCmd::Create(CreateArgs { windows, split, .. })) => {
                assert_eq!(windows, DEFAULT_WINDOWS.to_vec());
                assert_eq!(split, vec![6000, 2000, 1000, 1000]);
            }
            other => panic!("{other:?}"),
        }
    }
}
