//! Autonet paid inference (`autonet serve`, `docs/protocol.md` §7).
//!
//! The node loads the project's current model — the genesis model, or a published one fetched
//! from its shard providers with every shard verified against the chain — and serves text
//! generation over HTTP. A background task follows the project: when a new model is accepted it
//! is fetched and swapped in while requests keep being answered by the old one. Repeated
//! requests (same model, prompt and parameters) are answered from an exact cache. Paid routes
//! take x402 v2 payments (crate `autonet-x402`) settled through `InferenceMarket.settle`, which
//! splits the revenue between this node (provider), the project's contributors and the
//! treasury. When the project has a jurisdiction vector (`Project.jurisdictionOf`), each request
//! is priced by its alignment with it (`autonet_substrate::align`, `docs/x402.md` "Alignment
//! pricing"); the price and the jurisdiction are re-read from chain every `follow`. The node
//! registers in the ERC-8004 identity registry with its inference endpoint
//! and serves the status page and `/metrics` like every other node.
//!
//! Modules: [`model`] (loading and following), [`server`] (routes and the payment flow).
#![warn(missing_docs)]

pub mod client;
pub mod model;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use autonet_bindings::{ATNToken, Contracts, Project};
use autonet_chain::{ChainProvider, TxOptions};
use autonet_identity::{self as identity, AutonetInfo, Registration, endpoints};
use autonet_status::{self as status, Metrics, NodeInfo, Payments, StatusState};
use autonet_x402::{NonceStore, unix_now};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::model::{Current, Drafting, ModelSource};
use crate::server::{AppState, AtomicU128, JurisdictionCell, Payment, TierCounters};

/// Why the inference node failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// A chain read or transaction.
    #[error("chain: {0}")]
    Chain(String),
    /// Shards or the local store.
    #[error("storage: {0}")]
    Storage(String),
    /// The model or generation.
    #[error("model: {0}")]
    Model(String),
    /// Anything else, with what to do.
    #[error("{0}")]
    Other(String),
}

/// How `autonet serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The project whose model is served (and whose price applies).
    pub project_id: u64,
    /// Bind address.
    pub listen: SocketAddr,
    /// URL announced in the identity registry and in `resource.url` (default `http://<bound>`).
    pub public_url: Option<String>,
    /// Where models, the nonce store and the ready file live.
    pub state_dir: PathBuf,
    /// How often the project's model, price and jurisdiction are re-read.
    pub follow: Duration,
    /// Requests kept in the exact cache.
    pub cache_entries: usize,
    /// Also serve `POST /v1/free/generate` (unpaid; for comparison and development).
    pub free_route: bool,
    /// Longest authorization window accepted (seconds).
    pub max_timeout_secs: u64,
    /// libtorch threads.
    pub threads: i32,
    /// This node's software identity for the status page.
    pub node: NodeInfo,
    /// Register in the ERC-8004 identity registry.
    pub register_identity: bool,
    /// Offer payment channels (`batch-settlement`) when the chain has the channel contract.
    pub channels: bool,
    /// Claim channel vouchers once the oldest unclaimed charge is this old (must stay well
    /// below the contract's 15-minute minimum withdraw delay).
    pub claim_after: Duration,
    /// Speculative decoding with another project's model as the draft.
    pub draft: Option<DraftOptions>,
    /// Decode concurrent full-path generations together, up to this many at once, in one
    /// batched forward call per byte (0: each on its own copy of the model).
    pub batch_slots: usize,
}

/// Where the draft model comes from and how it is used.
#[derive(Clone, Debug)]
pub struct DraftOptions {
    /// The project whose current model is the draft (a small model trained by the network on
    /// the same bytes, e.g. the `tiny` preset beside a `small` project), followed like the
    /// served one.
    pub project_id: u64,
    /// Draft bytes per round.
    pub tokens: usize,
    /// When it is used.
    pub mode: model::SpeculateMode,
}

/// File written into the state directory once the server answers (JSON with its URL).
pub const READY_FILE: &str = "ready";

/// Runs the inference node until `cancel`.
pub async fn serve(
    opts: ServeOptions,
    provider: ChainProvider,
    contracts: Contracts,
    me: Address,
    cancel: CancellationToken,
) -> Result<(), InferenceError> {
    let other = |what: &str, e: String| InferenceError::Other(format!("{what}: {e}"));
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| {
        other(
            &format!("creating {}", opts.state_dir.display()),
            e.to_string(),
        )
    })?;
    let _ = std::fs::remove_file(opts.state_dir.join(READY_FILE));
    tch::set_num_threads(opts.threads.max(1));
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| InferenceError::Chain(e.to_string()))?;

    // The model.
    let source = ModelSource::open(
        provider.clone(),
        contracts,
        opts.project_id,
        &opts.state_dir,
    )
    .await?;
    let root = source.head().await?;
    info!(project = opts.project_id, model = %root, preset = source.preset(), "loading the project's model");
    let current = Current::new(source.load(root, opts.batch_slots).await?);
    info!(model = %root, genesis = source.is_genesis(root), "model loaded and verified");
    let draft = match &opts.draft {
        Some(d) => Some(open_draft(d, &provider, contracts, &opts, &source).await?),
        None => None,
    };

    // Payments.
    let token = ATNToken::new(contracts.atn_token, provider.clone());
    let domain = token
        .eip712Domain()
        .call()
        .await
        .map_err(|e| InferenceError::Chain(format!("reading ATN's EIP-712 domain: {e}")))?;
    let price = read_price(&provider, &contracts, opts.project_id).await?;
    let jurisdiction = read_jurisdiction(&provider, &contracts, opts.project_id).await?;
    // One payTo per (project, node): an authorization to it can only be settled by this node for
    // this project. It never changes, so it is read once.
    let pay_to =
        autonet_x402::payment_address(&provider, contracts.market, U256::from(opts.project_id), me)
            .await
            .map_err(|e| {
                InferenceError::Chain(format!("reading this node's payment address: {e}"))
            })?;
    let nonces = NonceStore::open(opts.state_dir.join("payments.sqlite"))
        .map_err(|e| other("opening the payment store", e.to_string()))?;
    reconcile(&provider, &nonces).await;

    // HTTP.
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| {
            other(
                &format!("binding {} (choose another --listen)", opts.listen),
                e.to_string(),
            )
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| other("reading the bound address", e.to_string()))?;
    let public_url = opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let metrics = Metrics::new();
    let payments = Payments::new();
    // The witness log: refuses to go on after a history that does not check.
    let witness = Arc::new(
        autonet_witness::Witness::open(&opts.state_dir).map_err(|e| {
            other(
                "opening the witness log",
                format!("{e} (move the file aside to start a new log)"),
            )
        })?,
    );
    let state = AppState {
        current: current.clone(),
        cache: AppState::new_cache(opts.cache_entries),
        price: Arc::new(AtomicU128::new(price)),
        jurisdiction: Arc::new(JurisdictionCell::new(jurisdiction)),
        tiers: TierCounters::register(&metrics),
        subsidies: Arc::default(),
        witness: Some(witness.clone()),
        payment: Payment {
            chain_id,
            asset: contracts.atn_token,
            domain: (domain.name.clone(), domain.version.clone()),
            market: contracts.market,
            project_id: opts.project_id,
            node: me,
            pay_to,
            max_timeout_secs: opts.max_timeout_secs,
        },
        nonces: Arc::new(nonces),
        provider: provider.clone(),
        public_url: public_url.clone(),
        metrics: metrics.clone(),
        payments: payments.clone(),
        pending: Arc::new(AtomicU64::new(0)),
        channels: None,
        drafting: draft.as_ref().map(|(_, d)| d.clone()),
    };
    let mut state = state;
    if opts.channels {
        state.channels = open_channels(&opts, &provider, &state.payment).await?;
    }
    let mut node = opts.node.clone();
    node.role = "inference".into();
    node.address = me.to_string();
    node.chain_id = chain_id;
    node.project_id = opts.project_id;
    // Payments executed straight on the token while this node was down wait at its payTo.
    {
        let (provider, payment) = (provider.clone(), state.payment.clone());
        tokio::spawn(async move { server::collect_own(&provider, &payment).await });
    }
    let status_state = StatusState::fixed(node, Vec::new())
        .with_metrics(metrics.clone())
        .with_payments(payments);
    let app = server::router(state.clone(), opts.free_route).merge(status::router(status_state));
    let app = status::track_requests(app, metrics);
    let server_cancel = cancel.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(server_cancel.cancelled_owned())
        .await
    });
    let claimer = state.channels.clone().map(|channels| {
        let (provider, payment, cancel) = (provider.clone(), state.payment.clone(), cancel.clone());
        tokio::spawn(async move { claim_loop(channels, provider, payment, cancel).await })
    });

    let mut agent_id = None;
    if opts.register_identity {
        let registration = Registration::new(
            AutonetInfo {
                role: "inference".into(),
                project_id: opts.project_id,
                chain_id,
            },
            me,
            &public_url,
            &[endpoints::INFERENCE, endpoints::STATUS, endpoints::METRICS],
        );
        agent_id = Some(
            identity::ensure_registered(
                &provider,
                contracts.identity,
                me,
                0,
                &registration,
                &TxOptions::default(),
            )
            .await
            .map_err(|e| InferenceError::Chain(e.to_string()))?,
        );
    }
    witness.record(
        provider.get_block_number().await.unwrap_or_default(),
        None,
        "start",
        "inference",
        &serde_json::json!({"address": me, "project": opts.project_id, "agent_id": agent_id, "model": root}),
    );
    let ready = serde_json::json!({ "url": public_url, "model": root.to_string(), "address": me.to_string() });
    std::fs::write(opts.state_dir.join(READY_FILE), ready.to_string())
        .map_err(|e| other("writing the ready file", e.to_string()))?;
    info!(url = %public_url, model = %root, price_wei = price, ?jurisdiction, %pay_to, "inference node serving");

    // Follow the project.
    while !cancel.is_cancelled() {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(opts.follow) => {}
        }
        match read_price(&provider, &contracts, opts.project_id).await {
            Ok(p) => state.price.set(p),
            Err(e) => warn!(error = %e, "reading the project's price"),
        }
        match read_jurisdiction(&provider, &contracts, opts.project_id).await {
            Ok(j) => {
                if j != state.jurisdiction.get() {
                    info!(jurisdiction = ?j, "the project's jurisdiction changed");
                }
                state.jurisdiction.set(j);
            }
            Err(e) => {
                warn!(error = %e, "reading the project's jurisdiction (the last one read applies)")
            }
        }
        if let Some((draft_source, drafting)) = &draft {
            follow(draft_source, drafting.current(), 0, "draft model").await;
        }
        let before = current.get().root;
        follow(&source, &current, opts.batch_slots, "model").await;
        let now = current.get().root;
        if now != before {
            // A new model served: its start is witnessed, and the log's head (the payments
            // for the previous model included) anchored in the node's registration.
            witness.record(
                provider.get_block_number().await.unwrap_or_default(),
                None,
                "model",
                "serving",
                &serde_json::json!({"model": now, "previous": before}),
            );
            if let Some(id) = agent_id
                && let Err(e) = autonet_witness::anchor_in_identity(
                    &witness,
                    &provider,
                    contracts.identity,
                    id,
                    None,
                    &TxOptions::default(),
                )
                .await
            {
                warn!(error = %e, "anchoring the witness log; the next model anchors it");
            }
        }
    }
    if let Some(claimer) = claimer {
        let _ = claimer.await;
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "the HTTP server failed"),
        Err(e) => warn!(error = %e, "the HTTP server task"),
    }
    info!("inference node stopped");
    Ok(())
}

/// Loads the draft project's current model, checked against the served project's architecture.
async fn open_draft(
    d: &DraftOptions,
    provider: &ChainProvider,
    contracts: Contracts,
    opts: &ServeOptions,
    main: &ModelSource,
) -> Result<(ModelSource, Arc<Drafting>), InferenceError> {
    if d.project_id == opts.project_id {
        return Err(InferenceError::Other(format!(
            "--draft-project {} is the served project: the draft must be a smaller model",
            d.project_id
        )));
    }
    let source = ModelSource::open(
        provider.clone(),
        contracts,
        d.project_id,
        &opts.state_dir.join("draft"),
    )
    .await
    .map_err(|e| InferenceError::Other(format!("the draft project {}: {e}", d.project_id)))?;
    let root = source.head().await?;
    let drafting = Drafting::new(
        main.config(),
        source.config(),
        source.load(root, 0).await?,
        d.tokens,
        d.mode,
    )?;
    info!(draft_project = d.project_id, draft = %root, preset = source.preset(), k = d.tokens, mode = ?d.mode, "speculative decoding with the draft project's model");
    Ok((source, Arc::new(drafting)))
}

/// Swaps the project's newly accepted model into `current`, if there is one (`what` names it in
/// the log); requests in flight finish on the model they started with.
async fn follow(source: &ModelSource, current: &Current, batch_slots: usize, what: &str) {
    let head = match source.head().await {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "reading the project's {what}");
            return;
        }
    };
    if head == current.get().root {
        return;
    }
    info!(model = %head, "a new {what} was accepted: loading it");
    match source.load(head, batch_slots).await {
        Ok(m) => {
            current.replace(m);
            info!(model = %head, "now serving the new {what}");
        }
        Err(e) => {
            warn!(model = %head, error = %e, "could not load the new {what}; still serving the previous one")
        }
    }
}

async fn read_price(
    provider: &ChainProvider,
    contracts: &Contracts,
    project_id: u64,
) -> Result<u128, InferenceError> {
    let p = Project::new(contracts.project, provider.clone())
        .inferencePrice(U256::from(project_id))
        .call()
        .await
        .map_err(|e| InferenceError::Chain(format!("reading the inference price: {e}")))?;
    u128::try_from(p).map_err(|_| InferenceError::Chain(format!("price {p} does not fit 128 bits")))
}

/// The project's jurisdiction vector (`None`: it has none), whose alignment with each request
/// scales the price.
async fn read_jurisdiction(
    provider: &ChainProvider,
    contracts: &Contracts,
    project_id: u64,
) -> Result<Option<[i32; 4]>, InferenceError> {
    let j = Project::new(contracts.project, provider.clone())
        .jurisdictionOf(U256::from(project_id))
        .call()
        .await
        .map_err(|e| InferenceError::Chain(format!("reading the project's jurisdiction: {e}")))?;
    Ok(j.set.then_some(j.coords))
}

/// After a restart: payments claimed or sent but not known to be settled are looked up on
/// chain (the token's `authorizationState`); used ones are settled, expired unused ones failed.
async fn reconcile(provider: &ChainProvider, nonces: &NonceStore) {
    let records = match nonces.unfinished() {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "reading unfinished payments");
            return;
        }
    };
    let now = unix_now();
    for r in records {
        let token = ATNToken::new(r.key.asset, provider.clone());
        let used = match token
            .authorizationState(r.key.payer, r.key.nonce)
            .call()
            .await
        {
            Ok(u) => u,
            Err(e) => {
                warn!(error = %e, "checking an unfinished payment");
                continue;
            }
        };
        let tx = match &r.state {
            autonet_x402::PaymentState::Submitted { tx_hash } => Some(*tx_hash),
            _ => None,
        };
        if used {
            if let Some(tx) = tx {
                let _ = nonces.mark_settled(&r.key, tx, now);
            } else {
                let _ = nonces.mark_failed(
                    &r.key,
                    "used on chain by a transaction this node did not record",
                    now,
                );
            }
        } else if U256::from(now) >= r.valid_before {
            let _ = nonces.mark_failed(&r.key, "expired before settlement", now);
        }
    }
}

/// Opens the channel side when the chain has the channel contract at its canonical address.
async fn open_channels(
    opts: &ServeOptions,
    provider: &ChainProvider,
    payment: &server::Payment,
) -> Result<Option<Arc<autonet_x402::channel_server::Channels>>, InferenceError> {
    match autonet_x402::channel_chain::settlement_deployed(provider).await {
        Ok(true) => {}
        Ok(false) => {
            info!(
                contract = %autonet_x402::channel::BATCH_SETTLEMENT_ADDRESS,
                "no x402 channel contract on this chain: payment channels are not offered (exact only)"
            );
            return Ok(None);
        }
        Err(e) => return Err(InferenceError::Chain(e.to_string())),
    }
    let store =
        autonet_x402::channel_store::ChannelStore::open(opts.state_dir.join("channels.sqlite"))
            .map_err(|e| InferenceError::Other(format!("opening the channel store: {e}")))?;
    let offer = autonet_x402::channel::ChannelOffer {
        chain_id: payment.chain_id,
        asset: payment.asset,
        domain: payment.domain.clone(),
        pay_to: payment.pay_to,
        receiver_authorizer: payment.node,
        withdraw_delay: autonet_x402::channel::MIN_WITHDRAW_DELAY,
        max_timeout_secs: payment.max_timeout_secs,
    };
    info!(
        claim_after_s = opts.claim_after.as_secs(),
        "payment channels offered (batch-settlement)"
    );
    Ok(Some(Arc::new(autonet_x402::channel_server::Channels::new(
        offer,
        store,
        opts.claim_after,
    ))))
}

/// Refreshes the on-chain state of channels with unclaimed charges and claims when due; claims
/// everything once more at shutdown.
async fn claim_loop(
    channels: Arc<autonet_x402::channel_server::Channels>,
    provider: ChainProvider,
    payment: server::Payment,
    cancel: CancellationToken,
) {
    let tick = (channels.claim_after / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let claim = || channels.claim(&provider, payment.market, payment.project_id, payment.node);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = autonet_x402::unix_now();
        if let Ok(rows) = channels.store.unclaimed() {
            for r in rows {
                if let Ok(onchain) =
                    autonet_x402::channel_chain::read_channel(&provider, r.channel_id).await
                {
                    if onchain.withdraw_requested_at != 0 && r.onchain.withdraw_requested_at == 0 {
                        warn!(channel = %r.channel_id, "a payer started a withdrawal: claiming now");
                    }
                    let _ = channels.store.set_onchain(&r.channel_id, &onchain, now);
                }
            }
        }
        if channels.claim_due(now)
            && let Err(e) = claim().await
        {
            warn!(error = %e, "claiming channel vouchers (retried at the next tick)");
        }
    }
    match claim().await {
        Ok(r) if r.channels > 0 => info!(
            claimed = r.claimed,
            "unclaimed vouchers claimed at shutdown"
        ),
        Ok(_) => {}
        Err(e) => {
            warn!(error = %e, "claiming channel vouchers at shutdown: they stay stored and are claimed at the next start")
        }
    }
}
