//! `autonet stake`, `autonet unstake` and `autonet withdraw`.
//!
//! This module owns the three commands' arguments ([`StakeArgs`], [`UnstakeArgs`],
//! [`WithdrawArgs`]) and their `run`, and the operator's side of `ParticipantStaking` behind them:
//! approving and staking for a role, requesting an unbond and withdrawing matured unbonds, each
//! confirmed by its event, and turning the contract's custom errors into advice (the minimum for
//! the role, when an unbond matures). It must not decide when to stake: that is the operator's (or
//! a role agent's) choice.

use alloy::primitives::{Address, U256};
use autonet_bindings::enums::Role as RoleName;
use autonet_bindings::staking::IParticipantStaking::Role;
use autonet_bindings::{ATNToken, ParticipantStaking};
use autonet_chain::{TxError, send_and_confirm};
use serde_json::json;

use super::{CommandError, Context, Report};
use crate::amount::{atn, atn_arg, format_atn};
use crate::config::EffectiveConfig;
use crate::format::when;

/// `autonet stake` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example: autonet stake --role solver --amount 50")]
pub struct StakeArgs {
    /// The role to stake for
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// ATN to stake, as a decimal number (e.g. 50 or 50.5; at most 18 decimals)
    #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
    pub amount: U256,
}

impl StakeArgs {
    /// Whether the command unlocks the operator's key: yes, it signs the stake.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet stake`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        stake(&ctx, self.role, self.amount).await
    }
}

/// `autonet unstake` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example: autonet unstake --amount 10")]
pub struct UnstakeArgs {
    /// ATN to unbond, as a decimal number
    #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
    pub amount: U256,
}

impl UnstakeArgs {
    /// Whether the command unlocks the operator's key: yes, it signs the unbond request.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet unstake`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        unstake(&ctx, self.amount).await
    }
}

/// `autonet withdraw` arguments (it takes none of its own).
#[derive(Debug, Clone, clap::Args)]
pub struct WithdrawArgs {}

impl WithdrawArgs {
    /// Whether the command unlocks the operator's key: yes, it signs the withdrawal.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet withdraw`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        withdraw(&ctx).await
    }
}

/// A staked role, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Creates training tasks with a hidden evaluation set (minimum 100 ATN by default).
    Proposer,
    /// Trains the global model and submits weight deltas (minimum 50 ATN by default).
    Solver,
    /// Re-evaluates deltas and votes scores (minimum 500 ATN by default).
    Coordinator,
    /// Merges accepted deltas and publishes models (minimum 1000 ATN by default).
    Aggregator,
}

impl RoleArg {
    /// The contract's `Role` value (as the `uint8` the functions take).
    pub fn role(self) -> u8 {
        match self {
            Self::Proposer => Role::PROPOSER,
            Self::Solver => Role::SOLVER,
            Self::Coordinator => Role::COORDINATOR,
            Self::Aggregator => Role::AGGREGATOR,
        }
        .into_underlying()
    }
}

/// Advice for the staking errors an operator can fix.
async fn stake_hint(
    ctx: &Context,
    err: &TxError,
    me: Address,
    role: u8,
    amount: U256,
) -> Option<String> {
    let staking = ParticipantStaking::new(ctx.contracts.staking, &ctx.provider);
    use ParticipantStaking::ParticipantStakingErrors as E;
    if err
        .reverted_with::<ATNToken::ERC20InsufficientBalance>()
        .is_some()
    {
        let token = ATNToken::new(ctx.contracts.atn_token, &ctx.provider);
        let balance = token.balanceOf(me).call().await.ok()?;
        return Some(format!(
            "{me} holds {}, less than the {} to stake",
            atn(balance),
            atn(amount)
        ));
    }
    match err.reverted_as::<E>()? {
        E::StakingBelowMinimum(_) => {
            let min = staking.minStake(role).call().await.ok()?;
            let bonded = staking.stakeOf(me).call().await.unwrap_or_default();
            Some(format!(
                "the minimum stake for a {} is {}; this account has {} bonded, so stake at least {}",
                RoleName::label_of(role),
                atn(min),
                atn(bonded),
                atn(min.saturating_sub(bonded)),
            ))
        }
        E::StakingRoleMismatch(_) => {
            let current = staking.roleOf(me).call().await.ok()?;
            Some(format!(
                "{me} is already staked as a {}; an address holds one role — unstake and withdraw everything first, or use another key",
                RoleName::label_of(current)
            ))
        }
        E::StakingZeroAmount(_) => Some("give a positive --amount".into()),
        _ => None,
    }
}

/// `autonet stake`: approves the staking contract if needed, then stakes `amount` for `role`.
pub async fn stake(ctx: &Context, role_arg: RoleArg, amount: U256) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let role = role_arg.role();
    let c = &ctx.contracts;
    let staking = ParticipantStaking::new(c.staking, &ctx.provider);
    let token = ATNToken::new(c.atn_token, &ctx.provider);
    let action = format!("staking {} as {}", atn(amount), RoleName::label_of(role));

    let allowance = token
        .allowance(me, c.staking)
        .call()
        .await
        .map_err(|e| CommandError::read("the ATN allowance", e))?;
    if allowance < amount {
        // Check the staking rules first (they come before the token transfer in `stake`), so a
        // stake that can never succeed does not leave an approval behind.
        let call = staking.stake(role, amount);
        if let Err(err) = call.call().await
            && let Some(data) = err.as_revert_data()
            && <ParticipantStaking::ParticipantStakingErrors as alloy::sol_types::SolInterface>::abi_decode(&data).is_ok()
            && let Some(revert) = autonet_bindings::decode_revert(&data, Some("ParticipantStaking"))
        {
            let source = TxError::Reverted {
                to: c.staking,
                revert,
                data: err.as_revert_data().unwrap_or_default(),
            };
            let hint = stake_hint(ctx, &source, me, role, amount).await;
            return Err(CommandError::tx_with_hint(action, source, hint));
        }
        let approved = send_and_confirm::<ATNToken::Approval, _, _>(
            &token.approve(c.staking, amount),
            &ctx.tx,
        )
        .await
        .map_err(|e| CommandError::tx(format!("approving {}", atn(amount)), e))?;
        tracing::info!(tx = %approved.receipt.transaction_hash, "approved the staking contract");
    }

    let staked = match send_and_confirm::<ParticipantStaking::Staked, _, _>(
        &staking.stake(role, amount),
        &ctx.tx,
    )
    .await
    {
        Ok(staked) => staked,
        Err(source) => {
            let hint = stake_hint(ctx, &source, me, role, amount).await;
            return Err(CommandError::tx_with_hint(action, source, hint));
        }
    };
    let tx = staked.receipt.transaction_hash;
    let bonded = staked.event.bonded;
    Ok(Report {
        text: format!(
            "staked {} as {} from {me}\nstake now {} (role {})\ntx {tx}",
            atn(amount),
            RoleName::label_of(role),
            atn(bonded),
            RoleName::label_of(role),
        ),
        json: json!({
            "account": me.to_string(),
            "role": RoleName::label_of(role),
            "amount": format_atn(amount),
            "stake": format_atn(bonded),
            "tx": tx,
        }),
    })
}

/// Advice for `StakingLocked`: how much stays locked, by which contract, and what ends the lock.
async fn locked_hint(ctx: &Context, me: Address) -> Option<String> {
    let staking = ParticipantStaking::new(ctx.contracts.staking, &ctx.provider);
    let lock = staking.lockedStake(me).call().await.ok()?;
    let bonded = staking.stakeOf(me).call().await.unwrap_or_default();
    let by = if lock.locker == ctx.contracts.shard_providers {
        "ShardProviders, while this account announces shards or has an open storage challenge; \
         withdraw every announced shard (`ShardProviders.withdrawShards`, possible once no challenge \
         of it is open) to end the lock"
            .to_owned()
    } else {
        format!("the stake locker {}", lock.locker)
    };
    Some(format!(
        "{} must stay bonded (locked by {by}); {me} has {} bonded, so at most {} can be unstaked now",
        atn(lock.locked),
        atn(bonded),
        atn(bonded.saturating_sub(lock.locked)),
    ))
}

/// `autonet unstake`: requests an unbond of `amount`.
pub async fn unstake(ctx: &Context, amount: U256) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let staking = ParticipantStaking::new(ctx.contracts.staking, &ctx.provider);
    let action = format!("unstaking {}", atn(amount));
    let requested = match send_and_confirm::<ParticipantStaking::UnbondRequested, _, _>(
        &staking.requestUnbond(amount),
        &ctx.tx,
    )
    .await
    {
        Ok(r) => r,
        Err(source) => {
            use ParticipantStaking::ParticipantStakingErrors as E;
            let hint = match source.reverted_as::<E>() {
                Some(E::StakingInsufficientStake(_)) => {
                    let bonded = staking.stakeOf(me).call().await.unwrap_or_default();
                    Some(format!("{me} has {} bonded", atn(bonded)))
                }
                Some(E::StakingTooManyUnbonds(_)) => {
                    Some("withdraw matured unbonds first (`autonet withdraw`)".into())
                }
                Some(E::StakingLocked(_)) => locked_hint(ctx, me).await,
                Some(E::StakingInsufficientGas(_)) => Some(
                    "the transaction had too little gas to ask the stake lockers; retry with a higher gas limit"
                        .into(),
                ),
                _ => None,
            };
            return Err(CommandError::tx_with_hint(action, source, hint));
        }
    };
    let (_, now) = ctx.head().await?;
    let matures = requested.event.maturesAt;
    let remaining = staking
        .stakeOf(me)
        .call()
        .await
        .map_err(|e| CommandError::read("the remaining stake", e))?;
    let tx = requested.receipt.transaction_hash;
    Ok(Report {
        text: format!(
            "unbonding {} (role {})\nwithdrawable from {} — run `autonet withdraw` then\nstake still bonded {}\ntx {tx}",
            atn(requested.event.amount),
            RoleName::label_of(requested.event.role),
            when(matures, now),
            atn(remaining),
        ),
        json: json!({
            "account": me.to_string(),
            "amount": format_atn(requested.event.amount),
            "matures_at": matures,
            "stake": format_atn(remaining),
            "tx": tx,
        }),
    })
}

/// `autonet withdraw`: withdraws every matured unbond.
pub async fn withdraw(ctx: &Context) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let staking = ParticipantStaking::new(ctx.contracts.staking, &ctx.provider);
    let withdrawn = match send_and_confirm::<ParticipantStaking::Withdrawn, _, _>(
        &staking.withdrawUnbonded(),
        &ctx.tx,
    )
    .await
    {
        Ok(w) => w,
        Err(source) => {
            let mut hint = None;
            if source
                .reverted_with::<ParticipantStaking::StakingNothingToWithdraw>()
                .is_some()
            {
                let pending = staking.pendingUnbonds(me).call().await.unwrap_or_default();
                let (_, now) = ctx.head().await?;
                hint = Some(match pending.iter().map(|u| u.maturesAt).min() {
                    Some(first) => {
                        let total: U256 = pending.iter().map(|u| U256::from(u.amount)).sum();
                        format!(
                            "nothing has matured yet: {} is unbonding; the first part becomes withdrawable {}",
                            atn(total),
                            when(first, now)
                        )
                    }
                    None => "no pending unbonds: request one with `autonet unstake --amount <ATN>`"
                        .into(),
                });
            }
            return Err(CommandError::tx_with_hint(
                "withdrawing unbonded stake",
                source,
                hint,
            ));
        }
    };
    let tx = withdrawn.receipt.transaction_hash;
    Ok(Report {
        text: format!("withdrew {} to {me}\ntx {tx}", atn(withdrawn.event.amount)),
        json: json!({
            "account": me.to_string(),
            "amount": format_atn(withdrawn.event.amount),
            "tx": tx,
        }),
    })
}
