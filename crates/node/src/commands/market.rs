//! Paid inference from the command line: `autonet serve` (the inference node), `autonet infer`
//! (a paying x402 client) and `autonet claim` (rewards, provider revenue, contributor revenue).
//!
//! This module owns the three commands' arguments ([`ServeArgs`], [`InferArgs`], [`ClaimArgs`])
//! and their `run`; the inference node and the x402 client live in `autonet-inference`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use autonet_agents::status::NodeInfo;
use autonet_bindings::{InferenceMarket, Rewards};
use autonet_chain::send_and_confirm;
use autonet_inference::{DraftOptions, ServeOptions, serve as serve_node};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{CommandError, Context, Report};
use crate::amount::{atn_arg, format_atn};
use crate::config::EffectiveConfig;

/// `autonet serve` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:
  autonet serve --account operator --project 1 --state-dir ./inference --listen 0.0.0.0:8080 \\
      --public-url http://my-host:8080")]
pub struct ServeArgs {
    /// The project whose latest model is served (its price applies)
    #[arg(long, env = "AUTONET_PROJECT", default_value_t = 1)]
    pub project: u64,
    /// Where models and the payment nonces are kept
    #[arg(long, env = "AUTONET_STATE_DIR", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Address the HTTP server binds
    #[arg(long, env = "AUTONET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// URL announced in the identity registry and in payment requirements (default:
    /// http://<bound address>)
    #[arg(long, env = "AUTONET_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Seconds between checks for a newly accepted model and a new price
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub follow_secs: u64,
    /// Requests kept in the exact-request cache
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub cache_entries: usize,
    /// Also serve POST /v1/free/generate without payment (to compare; development)
    #[arg(long)]
    pub free_route: bool,
    /// Longest payment authorization window accepted, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub max_timeout_secs: u64,
    /// libtorch threads
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Do not register in the ERC-8004 identity registry
    #[arg(long)]
    pub no_identity: bool,
    /// Do not offer x402 payment channels (batch-settlement), only exact payments
    #[arg(long)]
    pub no_channels: bool,
    /// Claim channel vouchers once the oldest unclaimed charge is this many seconds old (at
    /// most 600: the contract lets a payer withdraw unclaimed funds after 900 s). Also claimed
    /// at shutdown and on `POST /v1/channels/claim` from this machine
    #[arg(long, default_value_t = 300, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub claim_after_secs: u64,
    /// Decode greedy requests speculatively with this project's current model as the draft (a
    /// smaller model trained by the network on the same bytes, such as a `tiny` project beside
    /// a `small` one). The output is exactly the served model's; only the speed changes
    #[arg(long, value_name = "PROJECT")]
    pub draft_project: Option<u64>,
    /// Bytes the draft proposes per round of speculative decoding
    #[arg(long, default_value_t = autonet_ml::speculative::DEFAULT_DRAFT_TOKENS, value_name = "K", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub draft_tokens: usize,
    /// When the draft is used: `auto` (whenever it is measured faster on live requests) or
    /// `always` (every greedy request)
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub speculate: autonet_inference::model::SpeculateMode,
    /// Decode up to N concurrent generations together, one batched forward call per byte for
    /// all of them, on one more copy of the model (0: each generation on its own copy, one copy
    /// per core). Pays under concurrent load with `--threads 2` or more, or on an accelerator;
    /// a lone request is slower (docs/inference.md)
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=64))]
    pub batch_slots: usize,
}

impl ServeArgs {
    /// Whether the command unlocks the operator's key: yes, the node registers and settles with it.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet serve`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        serve(&ctx, &self).await
    }
}

/// `autonet serve`.
pub async fn serve(ctx: &Context, args: &ServeArgs) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let identity = super::integrity::this_build();
    let opts = ServeOptions {
        project_id: args.project,
        listen: args.listen,
        public_url: args.public_url.clone(),
        state_dir: args.state_dir.clone(),
        follow: Duration::from_secs(args.follow_secs.max(1)),
        cache_entries: args.cache_entries,
        free_route: args.free_route,
        max_timeout_secs: args.max_timeout_secs,
        threads: args.threads,
        node: NodeInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            code_hash: Some(identity.fingerprint.to_string()),
            ..NodeInfo::default()
        },
        register_identity: !args.no_identity,
        channels: !args.no_channels,
        claim_after: Duration::from_secs(args.claim_after_secs),
        batch_slots: args.batch_slots,
        draft: args.draft_project.map(|project_id| DraftOptions {
            project_id,
            tokens: args.draft_tokens,
            mode: args.speculate,
        }),
    };
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        super::agent::shutdown_signal().await;
        tracing::info!("signal received: stopping");
        on_signal.cancel();
    });
    serve_node(opts, ctx.provider.clone(), ctx.contracts, me, cancel)
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    Ok(Report {
        text: format!("inference node {me} stopped"),
        json: json!({ "address": me.to_string(), "stopped": true }),
    })
}

/// `autonet infer` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:
  AUTONET_PRIVATE_KEY=0x… autonet infer --url http://127.0.0.1:8080/v1/generate --prompt 'fn main' --max-price 0.1")]
pub struct InferArgs {
    /// The node's generation route, e.g. http://host:8080/v1/generate
    #[arg(long, env = "AUTONET_INFER_URL", value_name = "URL")]
    pub url: String,
    /// The prompt
    #[arg(long)]
    pub prompt: String,
    /// Text describing who asks (role, purpose): with a project that sets a jurisdiction, the
    /// request is priced by its alignment (free, the price, or up to 3 times it)
    #[arg(long, value_name = "TEXT")]
    pub user: Option<String>,
    /// Bytes to generate
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sampling temperature (0: greedy)
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep only the k most likely bytes
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Sampling seed (same seed, same output)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Refuse to pay more than this (ATN)
    #[arg(long, value_parser = atn_arg, default_value = "1", value_name = "ATN")]
    pub max_price: U256,
}

impl InferArgs {
    /// Whether the command unlocks the operator's key: yes, it signs the payment.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet infer`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        infer(&ctx, &self).await
    }
}

/// `autonet infer`: one request, paid with x402 when the node asks.
pub async fn infer(ctx: &Context, args: &InferArgs) -> Result<Report, CommandError> {
    let signer = ctx.config.require_signer()?.clone();
    let mut body = json!({
        "prompt": args.prompt,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "seed": args.seed,
    });
    if let Some(u) = &args.user {
        body["user"] = json!(u);
    }
    if let Some(k) = args.top_k {
        body["top_k"] = json!(k);
    }
    if let Some(p) = args.top_p {
        body["top_p"] = json!(p);
    }
    let a = autonet_inference::client::generate(
        &args.url,
        &body,
        signer,
        ctx.chain_id,
        ctx.contracts.atn_token,
        args.max_price,
    )
    .await
    .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let output = a.body["output"].as_str().unwrap_or_default().to_string();
    let mut text = format!("{}{}\n", args.prompt, output);
    match (&a.settlement, a.paid) {
        (Some(s), Some(v)) => text.push_str(&format!(
            "paid {} ATN, settled in tx {} ({}); model {}",
            format_atn(v),
            s.transaction,
            s.network,
            a.body["model"].as_str().unwrap_or("?")
        )),
        _ => text.push_str(&format!(
            "free request; model {}",
            a.body["model"].as_str().unwrap_or("?")
        )),
    }
    Ok(Report {
        text,
        json: json!({
            "response": a.body,
            "paid_wei": a.paid.map(|v| v.to_string()),
            "settlement": a.settlement,
        }),
    })
}

/// `autonet claim` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ClaimArgs {
    /// The project whose contributor revenue is claimed
    #[arg(long, env = "AUTONET_PROJECT", default_value_t = 1)]
    pub project: u64,
}

impl ClaimArgs {
    /// Whether the command unlocks the operator's key: yes, it signs the claims.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet claim`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        claim(&ctx, self.project).await
    }
}

/// `autonet claim`: everything this account can claim — training rewards, inference revenue
/// as provider, and its share of project `project`'s inference revenue as a contributor.
pub async fn claim(ctx: &Context, project: u64) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let rewards = Rewards::new(ctx.contracts.rewards, &ctx.provider);
    let market = InferenceMarket::new(ctx.contracts.market, &ctx.provider);
    let read = |what: &'static str| move |e| CommandError::read(what, e);
    let reward = rewards
        .claimable(me)
        .call()
        .await
        .map_err(read("claimable rewards"))?;
    let provider = market
        .claimable(me)
        .call()
        .await
        .map_err(read("claimable inference revenue"))?;
    let contributor = market
        .pendingContributorRevenue(U256::from(project), me)
        .call()
        .await
        .map_err(read("pending contributor revenue"))?;
    let mut lines = Vec::new();
    let mut claimed = serde_json::Map::new();
    if !reward.is_zero() {
        let c = send_and_confirm::<Rewards::Claimed, _, _>(&rewards.claim(), &ctx.tx)
            .await
            .map_err(|e| CommandError::tx("claiming training rewards", e))?;
        lines.push(format!(
            "training rewards   {} ATN (tx {})",
            format_atn(c.event.amount),
            c.receipt.transaction_hash
        ));
        claimed.insert("rewards".into(), json!(c.event.amount.to_string()));
    }
    if !provider.is_zero() {
        let c = send_and_confirm::<InferenceMarket::Claimed, _, _>(&market.claim(), &ctx.tx)
            .await
            .map_err(|e| CommandError::tx("claiming inference revenue", e))?;
        lines.push(format!(
            "inference revenue  {} ATN (tx {})",
            format_atn(c.event.amount),
            c.receipt.transaction_hash
        ));
        claimed.insert("provider".into(), json!(c.event.amount.to_string()));
    }
    // Revenue below one wei cannot be paid yet (it stays accrued).
    if !contributor.is_zero() {
        let c = send_and_confirm::<InferenceMarket::ContributorRevenueClaimed, _, _>(
            &market.claimContributorRevenue(U256::from(project)),
            &ctx.tx,
        )
        .await
        .map_err(|e| CommandError::tx("claiming contributor revenue", e))?;
        lines.push(format!(
            "contributor share  {} ATN of project {project} (tx {})",
            format_atn(c.event.amount),
            c.receipt.transaction_hash
        ));
        claimed.insert("contributor".into(), json!(c.event.amount.to_string()));
    }
    let text = if lines.is_empty() {
        format!(
            "{me} has nothing to claim (rewards, inference revenue, project {project} contributor revenue)"
        )
    } else {
        format!("claimed for {me}:\n  {}", lines.join("\n  "))
    };
    Ok(Report {
        text,
        json: json!({ "account": me.to_string(), "project": project, "claimed": claimed }),
    })
}
