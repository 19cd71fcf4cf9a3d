//! `autonet gov …`: governance through the Governor and the Timelock.
//!
//! This module owns the governance commands ([`GovCmd`]: their arguments and `run`) and turning
//! an operator's change (a Registry parameter, a minimum stake, a project's reward split or
//! windows, the code hash of a version, a treasury grant, a slash appeal, or raw calldata) into a
//! Governor proposal, and driving a proposal through its lifecycle — delegate, propose, vote,
//! queue, execute — with its state, votes, quorum and ETA in plain words. Proposals are found
//! again from their `ProposalCreated` event, so nothing is stored locally. On a development chain
//! (anvil) [`pass`] runs the whole lifecycle in one command by advancing blocks and time. The
//! rules themselves are the contracts'.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use autonet_bindings::enums::ProposalState;
use autonet_bindings::{ATNToken, AutonetGovernor, Deployment, TimelockController};
use autonet_chain::{ChainProvider, send_and_confirm};
use serde_json::json;

use super::project::{parse_split, parse_windows};
use super::staking::RoleArg;
use super::{CommandError, Context, Report};
use crate::amount::{atn, atn_arg};
use crate::config::{ContractsSource, EffectiveConfig};
use crate::format::{block_deadline, when};

/// `autonet gov …`.
#[derive(Debug, clap::Subcommand)]
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

impl GovCmd {
    /// Whether the command may sign, so that a `--account` keystore is unlocked first: all but
    /// `status` and `list`, which only read, and `advance`, which only asks anvil to move on.
    pub fn uses_key(&self) -> bool {
        !matches!(
            self,
            GovCmd::Status { .. } | GovCmd::List { .. } | GovCmd::Advance { .. }
        )
    }

    /// Runs `autonet gov …`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        match self {
            GovCmd::Delegate { to } => delegate(&ctx, to).await,
            GovCmd::Propose {
                description,
                action,
            } => propose(&ctx, &action, description).await,
            GovCmd::Vote {
                id,
                support,
                reason,
            } => vote(&ctx, id, support, reason).await,
            GovCmd::Queue { id, from_block } => queue(&ctx, id, from_block).await,
            GovCmd::Execute { id, from_block } => execute(&ctx, id, from_block).await,
            GovCmd::Status { id, from_block } => status(&ctx, id, from_block).await,
            GovCmd::List { from_block } => list(&ctx, from_block).await,
            GovCmd::Pass {
                description,
                action,
            } => pass(&ctx, &action, description).await.map(|(r, _)| r),
            GovCmd::Advance { blocks, seconds } => advance(&ctx, blocks, seconds).await,
        }
    }
}

/// A change operators make through governance.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GovAction {
    /// Set a uint parameter in the Registry
    SetUint {
        /// Registry key
        #[arg(long)]
        key: String,
        /// New value
        #[arg(long)]
        value: U256,
    },
    /// Set a bytes32 value in the Registry
    SetBytes32 {
        /// Registry key
        #[arg(long)]
        key: String,
        /// New value (32-byte hex)
        #[arg(long)]
        value: B256,
    },
    /// Set an address in the Registry
    SetAddress {
        /// Registry key
        #[arg(long)]
        key: String,
        /// New value
        #[arg(long)]
        value: Address,
    },
    /// Approve the code of a node version: Registry `node.code.hash.<version>` (default: this
    /// build's version and fingerprint, see `autonet integrity show`)
    CodeHash {
        /// Node version (default: this binary's)
        #[arg(long)]
        version: Option<String>,
        /// Code fingerprint (default: this binary's)
        #[arg(long)]
        hash: Option<B256>,
    },
    /// Delegate the consensus computation to a contract, e.g. the Stylus engine
    /// (Rewards.setConsensusEngine; 0x0000000000000000000000000000000000000000 computes in Rewards again)
    ConsensusEngine {
        /// The engine's address (must hold code)
        #[arg(long)]
        address: Address,
    },
    /// Change a role's minimum stake (ParticipantStaking.setMinStake)
    MinStake {
        /// The role
        #[arg(long, value_enum)]
        role: RoleArg,
        /// New minimum in ATN
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },
    /// Change a project's reward split (Project.setRewardSplit)
    RewardSplit {
        /// Project id
        #[arg(long)]
        project: U256,
        /// Basis points summing to 10000: solver,coordinator,proposer,aggregator
        #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "BPS")]
        split: Vec<u16>,
    },
    /// Change a project's phase windows (Project.setWindows)
    Windows {
        /// Project id
        #[arg(long)]
        project: U256,
        /// Blocks: commit,gt-reveal,sol-reveal,vote-commit,vote-reveal,publish
        #[arg(long, value_delimiter = ',', num_args = 1.., value_name = "BLOCKS")]
        windows: Vec<u32>,
    },
    /// Pipeline a project's rounds or run them in sequence (Project.setMaxStaleness)
    Staleness {
        /// Project id
        #[arg(long)]
        project: U256,
        /// 1: the next task trains while the last one is scored and aggregated, its delta
        /// applied to the model that round produced; 0: rounds in sequence
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
        max: u8,
    },
    /// Pay ATN from the treasury (the Timelock) to an account
    Grant {
        /// Recipient
        #[arg(long)]
        to: Address,
        /// ATN to pay
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },
    /// Uphold a slash appeal: return slashed ATN from the treasury (where slashes go) to the
    /// account
    Appeal {
        /// The slashed account
        #[arg(long)]
        account: Address,
        /// ATN to return
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
        /// The transaction that slashed (recorded in the description)
        #[arg(long, value_name = "TX")]
        slash_tx: Option<B256>,
    },
    /// Any call, executed by the Timelock
    Raw {
        /// Contract to call
        #[arg(long)]
        target: Address,
        /// ABI-encoded calldata (hex)
        #[arg(long)]
        calldata: Bytes,
        /// Wei sent with the call
        #[arg(long, default_value_t = U256::ZERO)]
        value: U256,
    },
}

/// One call a proposal makes, with a one-line summary.
#[derive(Debug, Clone)]
pub struct GovCall {
    /// Contract called by the Timelock.
    pub target: Address,
    /// Wei sent.
    pub value: U256,
    /// Calldata.
    pub calldata: Bytes,
    /// What it does, in words (the default proposal description).
    pub summary: String,
}

/// Encodes `action` against the deployment's contracts.
pub fn encode(ctx: &Context, action: &GovAction) -> Result<GovCall, CommandError> {
    use autonet_bindings::{ParticipantStaking, Project, Registry, Rewards};
    let c = &ctx.contracts;
    let call = |target: Address, data: Vec<u8>, summary: String| GovCall {
        target,
        value: U256::ZERO,
        calldata: data.into(),
        summary,
    };
    Ok(match action {
        GovAction::SetUint { key, value } => call(
            c.registry,
            Registry::setUintCall {
                key: key.clone(),
                value: *value,
            }
            .abi_encode(),
            format!("Set Registry `{key}` to {value}"),
        ),
        GovAction::SetBytes32 { key, value } => call(
            c.registry,
            Registry::setBytes32Call {
                key: key.clone(),
                value: *value,
            }
            .abi_encode(),
            format!("Set Registry `{key}` to {value}"),
        ),
        GovAction::SetAddress { key, value } => call(
            c.registry,
            Registry::setAddressCall {
                key: key.clone(),
                value: *value,
            }
            .abi_encode(),
            format!("Set Registry `{key}` to {value}"),
        ),
        GovAction::CodeHash { version, hash } => {
            let mut id = super::integrity::this_build();
            if let Some(v) = version {
                if v.trim().is_empty() {
                    return Err(CommandError::Invalid("--version must not be empty".into()));
                }
                id.version = v.clone();
            }
            if let Some(h) = hash {
                id.fingerprint = *h;
            }
            call(
                c.registry,
                Registry::setBytes32Call {
                    key: id.registry_key(),
                    value: id.fingerprint,
                }
                .abi_encode(),
                format!(
                    "Approve autonet {} code: set `{}` to {}",
                    id.version,
                    id.registry_key(),
                    id.fingerprint
                ),
            )
        }
        GovAction::ConsensusEngine { address } => call(
            c.rewards,
            Rewards::setConsensusEngineCall { engine: *address }.abi_encode(),
            if address.is_zero() {
                "Compute the consensus in Rewards (no engine)".to_string()
            } else {
                format!("Delegate the consensus computation to the engine at {address}")
            },
        ),
        GovAction::MinStake { role, amount } => call(
            c.staking,
            ParticipantStaking::setMinStakeCall {
                role: role.role(),
                amount: *amount,
            }
            .abi_encode(),
            format!(
                "Set the minimum {} stake to {}",
                format!("{role:?}").to_lowercase(),
                atn(*amount)
            ),
        ),
        GovAction::RewardSplit { project, split } => {
            let s = parse_split(split)?;
            call(
                c.project,
                Project::setRewardSplitCall {
                    projectId: *project,
                    split: s,
                }
                .abi_encode(),
                format!(
                    "Set project {project}'s reward split to solver {} / coordinator {} / proposer {} / aggregator {} bps",
                    split[0], split[1], split[2], split[3]
                ),
            )
        }
        GovAction::Windows { project, windows } => {
            let w = parse_windows(windows)?;
            call(
                c.project,
                Project::setWindowsCall {
                    projectId: *project,
                    windows: w,
                }
                .abi_encode(),
                format!(
                    "Set project {project}'s windows to commit {} / gt-reveal {} / sol-reveal {} / vote-commit {} / vote-reveal {} / publish {} blocks",
                    windows[0], windows[1], windows[2], windows[3], windows[4], windows[5]
                ),
            )
        }
        GovAction::Staleness { project, max } => call(
            c.project,
            Project::setMaxStalenessCall {
                projectId: *project,
                maxStaleness: *max,
            }
            .abi_encode(),
            format!(
                "Set project {project}'s maxStaleness to {max} ({})",
                if *max == 0 {
                    "rounds in sequence"
                } else {
                    "pipelined rounds"
                }
            ),
        ),
        GovAction::Grant { to, amount } => call(
            c.atn_token,
            ATNToken::transferCall {
                to: *to,
                value: *amount,
            }
            .abi_encode(),
            format!("Treasury grant of {} to {to}", atn(*amount)),
        ),
        GovAction::Appeal {
            account,
            amount,
            slash_tx,
        } => call(
            c.atn_token,
            ATNToken::transferCall {
                to: *account,
                value: *amount,
            }
            .abi_encode(),
            format!(
                "Uphold the slash appeal of {account}: return {} from the treasury{}",
                atn(*amount),
                slash_tx
                    .map(|t| format!(" (slashed in tx {t})"))
                    .unwrap_or_default()
            ),
        ),
        GovAction::Raw {
            target,
            calldata,
            value,
        } => {
            if calldata.len() < 4 {
                return Err(CommandError::Invalid(
                    "--calldata must hold at least a 4-byte function selector".into(),
                ));
            }
            GovCall {
                target: *target,
                value: *value,
                calldata: calldata.clone(),
                summary: format!(
                    "Call {target} with selector {} ({} bytes of calldata)",
                    Bytes::copy_from_slice(&calldata[..4]),
                    calldata.len()
                ),
            }
        }
    })
}

/// A proposal as its `ProposalCreated` event recorded it.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The Governor's id.
    pub id: U256,
    /// Who proposed.
    pub proposer: Address,
    /// Calls.
    pub targets: Vec<Address>,
    /// Wei per call.
    pub values: Vec<U256>,
    /// Calldata per call.
    pub calldatas: Vec<Bytes>,
    /// The full description.
    pub description: String,
    /// Block of the proposal.
    pub block: u64,
}

impl Proposal {
    fn description_hash(&self) -> B256 {
        keccak256(self.description.as_bytes())
    }
}

fn governor(ctx: &Context) -> AutonetGovernor::AutonetGovernorInstance<&ChainProvider> {
    AutonetGovernor::new(ctx.contracts.governor, &ctx.provider)
}

/// The first block to scan for proposals: the deployment's block when known.
fn scan_start(ctx: &Context, from_block: Option<u64>) -> u64 {
    if let Some(b) = from_block {
        return b;
    }
    let d = match &ctx.config.contracts {
        ContractsSource::Deployment(path) => Deployment::load(path).ok(),
        ContractsSource::DefaultDeploymentsDir => {
            Deployment::load_for_chain("deployments", ctx.chain_id).ok()
        }
        ContractsSource::Registry(_) => None,
    };
    d.map(|d| d.deploy_block).unwrap_or(0)
}

/// Every proposal since `from_block`, oldest first.
pub async fn proposals(ctx: &Context, from_block: u64) -> Result<Vec<Proposal>, CommandError> {
    let head = ctx.head().await?.0;
    let filter = Filter::new()
        .address(ctx.contracts.governor)
        .event_signature(AutonetGovernor::ProposalCreated::SIGNATURE_HASH);
    let logs = autonet_chain::scan_logs(&ctx.provider, &filter, from_block, head)
        .await
        .map_err(|source| CommandError::Rpc {
            what: "ProposalCreated events",
            source,
        })?;
    let mut out = Vec::new();
    for log in logs {
        let e = AutonetGovernor::ProposalCreated::decode_log(&log.inner)
            .map_err(|e| CommandError::Invalid(format!("undecodable ProposalCreated: {e}")))?
            .data;
        out.push(Proposal {
            id: e.proposalId,
            proposer: e.proposer,
            targets: e.targets,
            values: e.values,
            calldatas: e.calldatas,
            description: e.description,
            block: log.block_number.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The proposal `id`, from its event.
pub async fn find(ctx: &Context, id: U256, from_block: u64) -> Result<Proposal, CommandError> {
    proposals(ctx, from_block)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| {
            CommandError::Invalid(format!(
                "no proposal {id:#x} on governor {} since block {from_block} (see `autonet gov list`; \
                 pass --from-block when the deployment is older)",
                ctx.contracts.governor
            ))
        })
}

/// `autonet gov delegate [--to ADDR]`: votes only count once delegated (to oneself or another).
pub async fn delegate(ctx: &Context, to: Option<Address>) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let to = to.unwrap_or(me);
    let token = ATNToken::new(ctx.contracts.atn_token, &ctx.provider);
    let c = send_and_confirm::<ATNToken::DelegateChanged, _, _>(&token.delegate(to), &ctx.tx)
        .await
        .map_err(|e| CommandError::tx(format!("delegating the votes of {me} to {to}"), e))?;
    let votes = token
        .getVotes(to)
        .call()
        .await
        .map_err(|e| CommandError::read("votes", e))?;
    Ok(Report {
        text: format!(
            "delegated the votes of {me} to {to}; {to} now has {} of votes\ntx {}",
            atn(votes),
            c.receipt.transaction_hash
        ),
        json: json!({ "from": me.to_string(), "to": to.to_string(), "votes": votes.to_string(), "tx": c.receipt.transaction_hash }),
    })
}

/// Sends the proposal; returns its id and block.
pub async fn submit(
    ctx: &Context,
    call: &GovCall,
    description: &str,
) -> Result<(U256, u64), CommandError> {
    let g = governor(ctx);
    let c = send_and_confirm::<AutonetGovernor::ProposalCreated, _, _>(
        &g.propose(
            vec![call.target],
            vec![call.value],
            vec![call.calldata.clone()],
            description.to_string(),
        ),
        &ctx.tx,
    )
    .await
    .map_err(|e| {
        use AutonetGovernor::AutonetGovernorErrors as G;
        let hint = match e.reverted_as::<G>() {
            Some(G::GovernorUnexpectedProposalState(_)) => Some(
                "a proposal with exactly these calls and description already exists: change --description"
                    .to_string(),
            ),
            Some(G::GovernorInsufficientProposerVotes(_)) => Some(
                "this account's delegated votes (as of the previous block) are below the proposal threshold: \
                 `autonet gov delegate`, or ask holders to delegate to you; votes delegated in the latest block \
                 count from the next one"
                    .to_string(),
            ),
            _ => None,
        };
        CommandError::tx_with_hint(format!("proposing \"{description}\""), e, hint)
    })?;
    Ok((
        c.event.proposalId,
        c.receipt.block_number.unwrap_or_default(),
    ))
}

/// `autonet gov propose`.
pub async fn propose(
    ctx: &Context,
    action: &GovAction,
    description: Option<String>,
) -> Result<Report, CommandError> {
    let call = encode(ctx, action)?;
    let description = description.unwrap_or_else(|| call.summary.clone());
    let (id, block) = submit(ctx, &call, &description).await?;
    let g = governor(ctx);
    let start = g
        .proposalSnapshot(id)
        .call()
        .await
        .map_err(|e| CommandError::read("the proposal snapshot", e))?;
    Ok(Report {
        text: format!(
            "proposed {id:#x} at block {block}: {description}\nvoting opens after block {start}; then `autonet gov vote {id:#x} --support for`"
        ),
        json: json!({ "id": format!("{id:#x}"), "block": block, "description": description, "target": call.target.to_string(), "calldata": call.calldata }),
    })
}

/// How to vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Support {
    /// Against the proposal.
    Against,
    /// For the proposal.
    For,
    /// Counted for quorum only.
    Abstain,
}

/// `autonet gov vote`.
pub async fn vote(
    ctx: &Context,
    id: U256,
    support: Support,
    reason: Option<String>,
) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let g = governor(ctx);
    let s = match support {
        Support::Against => 0u8,
        Support::For => 1,
        Support::Abstain => 2,
    };
    let c = send_and_confirm::<AutonetGovernor::VoteCast, _, _>(
        &g.castVoteWithReason(id, s, reason.unwrap_or_default()),
        &ctx.tx,
    )
    .await
    .map_err(|e| {
        use AutonetGovernor::AutonetGovernorErrors as G;
        let hint = match e.reverted_as::<G>() {
            Some(G::GovernorUnexpectedProposalState(_)) => Some(format!(
                "the proposal is not in its voting period: `autonet gov status {id:#x}`"
            )),
            Some(G::GovernorAlreadyCastVote(_)) => Some("this account already voted".to_string()),
            _ => None,
        };
        CommandError::tx_with_hint(format!("voting {support:?} on {id:#x}"), e, hint)
    })?;
    let weight = c.event.weight;
    Ok(Report {
        text: format!(
            "{me} voted {support:?} on {id:#x} with {}{}\ntx {}",
            atn(weight),
            if weight.is_zero() {
                " (no delegated votes at the proposal's snapshot: delegate before proposals are made)"
            } else {
                ""
            },
            c.receipt.transaction_hash
        ),
        json: json!({ "id": format!("{id:#x}"), "voter": me.to_string(), "support": format!("{support:?}").to_lowercase(), "weight": weight.to_string(), "tx": c.receipt.transaction_hash }),
    })
}

/// `autonet gov queue`.
pub async fn queue(
    ctx: &Context,
    id: U256,
    from_block: Option<u64>,
) -> Result<Report, CommandError> {
    let p = find(ctx, id, scan_start(ctx, from_block)).await?;
    let g = governor(ctx);
    let c = send_and_confirm::<AutonetGovernor::ProposalQueued, _, _>(
        &g.queue(
            p.targets.clone(),
            p.values.clone(),
            p.calldatas.clone(),
            p.description_hash(),
        ),
        &ctx.tx,
    )
    .await
    .map_err(|e| {
        let hint = e
            .reverted_with::<AutonetGovernor::GovernorUnexpectedProposalState>()
            .is_some()
            .then(|| {
                format!("only a Succeeded proposal can be queued: `autonet gov status {id:#x}`")
            });
        CommandError::tx_with_hint(format!("queueing {id:#x}"), e, hint)
    })?;
    let eta = u64::try_from(c.event.etaSeconds).unwrap_or(u64::MAX);
    let now = ctx.head().await?.1;
    Ok(Report {
        text: format!(
            "queued {id:#x} in the timelock; executable {}; then `autonet gov execute {id:#x}`\ntx {}",
            when(eta, now),
            c.receipt.transaction_hash
        ),
        json: json!({ "id": format!("{id:#x}"), "eta": eta, "tx": c.receipt.transaction_hash }),
    })
}

/// `autonet gov execute`.
pub async fn execute(
    ctx: &Context,
    id: U256,
    from_block: Option<u64>,
) -> Result<Report, CommandError> {
    let p = find(ctx, id, scan_start(ctx, from_block)).await?;
    let g = governor(ctx);
    let total: U256 = p.values.iter().copied().sum();
    let c = send_and_confirm::<AutonetGovernor::ProposalExecuted, _, _>(
        &g.execute(
            p.targets.clone(),
            p.values.clone(),
            p.calldatas.clone(),
            p.description_hash(),
        )
        .value(total),
        &ctx.tx,
    )
    .await
    .map_err(|e| {
        let hint = if e
            .reverted_with::<TimelockController::TimelockUnexpectedOperationState>()
            .is_some()
        {
            Some(format!(
                "the timelock delay has not passed yet: `autonet gov status {id:#x}` shows the ETA"
            ))
        } else if e
            .reverted_with::<AutonetGovernor::GovernorUnexpectedProposalState>()
            .is_some()
        {
            Some(format!(
                "only a Queued proposal can be executed: `autonet gov status {id:#x}`"
            ))
        } else {
            None
        };
        CommandError::tx_with_hint(format!("executing {id:#x}"), e, hint)
    })?;
    Ok(Report {
        text: format!(
            "executed {id:#x}: {}\ntx {} (block {})",
            p.description,
            c.receipt.transaction_hash,
            c.receipt.block_number.unwrap_or_default()
        ),
        json: json!({ "id": format!("{id:#x}"), "description": p.description, "tx": c.receipt.transaction_hash, "block": c.receipt.block_number }),
    })
}

/// A proposal's state, votes, quorum and ETA.
#[derive(Debug, Clone)]
pub struct ProposalStatus {
    /// Governor state.
    pub state: u8,
    /// Votes against, for, abstain.
    pub against: U256,
    /// For.
    pub for_votes: U256,
    /// Abstain.
    pub abstain: U256,
    /// Quorum at the snapshot (or now, before the snapshot).
    pub quorum: U256,
    /// Snapshot block (votes counted as of it).
    pub snapshot: u64,
    /// Last voting block.
    pub deadline: u64,
    /// Executable from (seconds), 0 before queueing.
    pub eta: u64,
}

/// Reads a proposal's status.
pub async fn read_status(ctx: &Context, id: U256) -> Result<ProposalStatus, CommandError> {
    let g = governor(ctx);
    let read = |what: &'static str| move |e| CommandError::read(what, e);
    let state = g
        .state(id)
        .call()
        .await
        .map_err(read("the proposal state"))?;
    let votes = g
        .proposalVotes(id)
        .call()
        .await
        .map_err(read("the votes"))?;
    let snapshot = g
        .proposalSnapshot(id)
        .call()
        .await
        .map_err(read("the snapshot"))?;
    let deadline = g
        .proposalDeadline(id)
        .call()
        .await
        .map_err(read("the deadline"))?;
    let eta = g.proposalEta(id).call().await.map_err(read("the ETA"))?;
    let clock: u64 = g.clock().call().await.map_err(read("the clock"))?.to();
    let snapshot = u64::try_from(snapshot).unwrap_or(u64::MAX);
    // `quorum` only answers for past timepoints.
    let at = snapshot.min(clock.saturating_sub(1));
    let quorum = g
        .quorum(U256::from(at))
        .call()
        .await
        .map_err(read("the quorum"))?;
    Ok(ProposalStatus {
        state,
        against: votes.againstVotes,
        for_votes: votes.forVotes,
        abstain: votes.abstainVotes,
        quorum,
        snapshot,
        deadline: u64::try_from(deadline).unwrap_or(u64::MAX),
        eta: u64::try_from(eta).unwrap_or(u64::MAX),
    })
}

/// What happens next, in words.
fn next_step(id: U256, s: &ProposalStatus, block: u64, now: u64) -> String {
    let reached = s.for_votes + s.abstain >= s.quorum;
    match ProposalState::from_u8(s.state) {
        Some(ProposalState::Pending) => format!(
            "voting opens after block {} ({})",
            s.snapshot,
            block_deadline(s.snapshot + 1, block)
        ),
        Some(ProposalState::Active) => format!(
            "voting until block {} ({}); quorum {}",
            s.deadline,
            block_deadline(s.deadline, block),
            if reached {
                "reached"
            } else {
                "not reached yet"
            }
        ),
        Some(ProposalState::Canceled) => "canceled".into(),
        Some(ProposalState::Defeated) => {
            if !reached {
                "defeated: quorum not reached".into()
            } else {
                "defeated: not more votes for than against".into()
            }
        }
        Some(ProposalState::Succeeded) => format!("passed; next: `autonet gov queue {id:#x}`"),
        Some(ProposalState::Queued) => format!(
            "queued; executable {}; then `autonet gov execute {id:#x}`",
            when(s.eta, now)
        ),
        Some(ProposalState::Expired) => "expired".into(),
        Some(ProposalState::Executed) => "executed".into(),
        None => "unknown state".into(),
    }
}

/// `autonet gov status`.
pub async fn status(
    ctx: &Context,
    id: U256,
    from_block: Option<u64>,
) -> Result<Report, CommandError> {
    let p = find(ctx, id, scan_start(ctx, from_block)).await?;
    let s = read_status(ctx, id).await?;
    let (block, now) = ctx.head().await?;
    let next = next_step(id, &s, block, now);
    let text = format!(
        "proposal {id:#x}\n  {}\n  proposed by {} at block {}\n  state     {} — {next}\n  votes     for {}, against {}, abstain {}\n  quorum    {} (for + abstain count towards it)\n  snapshot  block {}, voting ends at block {}{}",
        p.description,
        p.proposer,
        p.block,
        ProposalState::label_of(s.state),
        atn(s.for_votes),
        atn(s.against),
        atn(s.abstain),
        atn(s.quorum),
        s.snapshot,
        s.deadline,
        if s.eta > 0 {
            format!("\n  eta       {}", when(s.eta, now))
        } else {
            String::new()
        }
    );
    Ok(Report {
        text,
        json: json!({
            "id": format!("{id:#x}"),
            "description": p.description,
            "proposer": p.proposer.to_string(),
            "state": ProposalState::label_of(s.state),
            "next": next,
            "votes": { "for": s.for_votes.to_string(), "against": s.against.to_string(), "abstain": s.abstain.to_string() },
            "quorum": s.quorum.to_string(),
            "snapshot": s.snapshot,
            "deadline": s.deadline,
            "eta": s.eta,
        }),
    })
}

/// `autonet gov list`.
pub async fn list(ctx: &Context, from_block: Option<u64>) -> Result<Report, CommandError> {
    let all = proposals(ctx, scan_start(ctx, from_block)).await?;
    let mut text = String::new();
    let mut rows = Vec::new();
    let g = governor(ctx);
    for p in &all {
        let state = g
            .state(p.id)
            .call()
            .await
            .map_err(|e| CommandError::read("a proposal state", e))?;
        let first_line = p.description.lines().next().unwrap_or("");
        text.push_str(&format!(
            "{:#x}  {:<9}  block {:<8}  {first_line}\n",
            p.id,
            ProposalState::label_of(state),
            p.block
        ));
        rows.push(json!({ "id": format!("{:#x}", p.id), "state": ProposalState::label_of(state), "block": p.block, "description": p.description }));
    }
    if all.is_empty() {
        text.push_str("no proposals yet");
    }
    Ok(Report {
        text,
        json: json!(rows),
    })
}

/// `autonet gov advance` (development chains): mines `blocks` blocks after moving time forward
/// by `seconds`.
pub async fn advance(ctx: &Context, blocks: u64, seconds: u64) -> Result<Report, CommandError> {
    if seconds > 0 {
        let _: serde_json::Value = ctx
            .provider
            .raw_request("evm_increaseTime".into(), (U256::from(seconds),))
            .await
            .map_err(|e| dev_only("evm_increaseTime", e))?;
    }
    let n = blocks.max(u64::from(seconds > 0));
    if n > 0 {
        let _: serde_json::Value = ctx
            .provider
            .raw_request("anvil_mine".into(), (U256::from(n), U256::ZERO))
            .await
            .map_err(|e| dev_only("anvil_mine", e))?;
    }
    let (block, ts) = ctx.head().await?;
    Ok(Report {
        text: format!(
            "advanced {n} blocks and {seconds} s: now block {block}, {}",
            crate::format::utc(ts)
        ),
        json: json!({ "block": block, "timestamp": ts }),
    })
}

fn dev_only(method: &str, e: alloy::transports::TransportError) -> CommandError {
    CommandError::Invalid(format!(
        "{method} failed ({e}): advancing blocks and time needs a development chain (anvil); on a \
         public chain run `gov vote`, `gov queue` and `gov execute` as the periods pass"
    ))
}

/// `autonet gov pass` (development chains): delegate when needed, propose, vote for, queue and
/// execute, advancing blocks and time in between. Returns the report and the proposal id.
pub async fn pass(
    ctx: &Context,
    action: &GovAction,
    description: Option<String>,
) -> Result<(Report, U256), CommandError> {
    let me = ctx.me()?;
    let call = encode(ctx, action)?;
    let description = description.unwrap_or_else(|| call.summary.clone());
    let token = ATNToken::new(ctx.contracts.atn_token, &ctx.provider);
    let g = governor(ctx);
    let mut steps = Vec::new();

    if token
        .delegates(me)
        .call()
        .await
        .map_err(|e| CommandError::read("the delegate", e))?
        == Address::ZERO
    {
        delegate(ctx, None).await?;
        // Votes count as of the previous block.
        advance(ctx, 1, 0).await?;
        steps.push(format!("delegated the votes of {me} to itself"));
    }
    let (id, block) = submit(ctx, &call, &description).await?;
    steps.push(format!("proposed {id:#x} at block {block}"));

    let delay = g
        .votingDelay()
        .call()
        .await
        .map_err(|e| CommandError::read("the voting delay", e))?;
    advance(ctx, u64::try_from(delay).unwrap_or(1) + 1, 0).await?;
    let voted = vote(ctx, id, Support::For, Some("autonet gov pass".into())).await?;
    steps.push(format!(
        "voted for with {}",
        atn(voted.json["weight"]
            .as_str()
            .and_then(|w| w.parse().ok())
            .unwrap_or_default())
    ));

    let s = read_status(ctx, id).await?;
    let head = ctx.head().await?.0;
    advance(ctx, s.deadline.saturating_sub(head) + 1, 0).await?;
    let s = read_status(ctx, id).await?;
    if ProposalState::from_u8(s.state) != Some(ProposalState::Succeeded) {
        let (b, now) = ctx.head().await?;
        return Err(CommandError::Invalid(format!(
            "proposal {id:#x} did not pass: {} — {} (votes for {}, quorum {})",
            ProposalState::label_of(s.state),
            next_step(id, &s, b, now),
            atn(s.for_votes),
            atn(s.quorum)
        )));
    }
    queue(ctx, id, Some(block)).await?;
    let s = read_status(ctx, id).await?;
    steps.push(format!(
        "queued in the timelock (executable from {})",
        crate::format::utc(s.eta)
    ));

    let delay = TimelockController::new(ctx.contracts.timelock, &ctx.provider)
        .getMinDelay()
        .call()
        .await
        .map_err(|e| CommandError::read("the timelock delay", e))?;
    let now = ctx.head().await?.1;
    let wait = s
        .eta
        .saturating_sub(now)
        .max(u64::try_from(delay).unwrap_or(0))
        + 1;
    advance(ctx, 1, wait).await?;
    let executed = execute(ctx, id, Some(block)).await?;
    let exec_block = executed.json["block"].as_u64().unwrap_or_default();
    steps.push(format!("executed at block {exec_block}"));

    let (latest, _) = ctx.head().await?;
    Ok((
        Report {
            text: format!(
                "passed {id:#x}: {description}\n  {}\n  (now block {latest})",
                steps.join("\n  ")
            ),
            json: json!({
                "id": format!("{id:#x}"),
                "description": description,
                "proposed_block": block,
                "executed_block": exec_block,
                "steps": steps,
            }),
        },
        id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_name() {
        let names: Vec<_> = (0..=7).map(ProposalState::label_of).collect();
        assert_eq!(
            names,
            [
                "Pending",
                "Active",
                "Canceled",
                "Defeated",
                "Succeeded",
                "Queued",
                "Expired",
                "Executed"
            ]
        );
        assert_eq!(ProposalState::label_of(8), "unknown");
    }

    #[test]
    fn defeat_is_explained() {
        let mut s = ProposalStatus {
            state: ProposalState::Defeated as u8,
            against: U256::ZERO,
            for_votes: U256::from(1),
            abstain: U256::ZERO,
            quorum: U256::from(10),
            snapshot: 5,
            deadline: 25,
            eta: 0,
        };
        assert!(next_step(U256::from(1), &s, 30, 0).contains("quorum not reached"));
        s.for_votes = U256::from(10);
        s.against = U256::from(20);
        assert!(next_step(U256::from(1), &s, 30, 0).contains("not more votes for"));
        s.state = ProposalState::Succeeded as u8;
        assert!(next_step(U256::from(1), &s, 30, 0).contains("autonet gov queue 0x1"));
    }
}
