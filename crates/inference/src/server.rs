//! The HTTP routes: `POST /v1/generate` (paid with x402 when the project has a price),
//! optionally `POST /v1/free/generate` (the same route unpaid, for comparison), `GET /v1/model`,
//! and the status page and metrics of every node.
//!
//! Each request on the paid route is quoted its own price ([`AppState::quote`]): the project's
//! price, scaled by the request's alignment with the project's jurisdiction when it has one
//! (`autonet_substrate::align`, `docs/x402.md` "Alignment pricing"). The 402 offers that amount
//! (`exact` and channel alike), only a payment of exactly that amount is accepted, and it is what
//! is settled. A quote of 0 (the project is not for sale, or the request is in the `free` tier)
//! is served without payment. Every answer of the paid route names its alignment, tier and price
//! (the `pricing` field of the JSON, of the 402 body and of the stream's `done` event, and the
//! `x-autonet-alignment`, `x-autonet-alignment-tier` and `x-autonet-price-wei` headers).
//!
//! A paid request goes: parse and validate the body (a bad request never reaches payment) →
//! `402 PAYMENT-REQUIRED` without `PAYMENT-SIGNATURE` → verify the authorization offline →
//! read the payer's balance and the nonce's state on chain → claim the nonce in the persisted
//! store (a replay stops here, also after a restart) → produce the output (cache or model) →
//! send `InferenceMarket.settle` → answer the output with `PAYMENT-RESPONSE`. When the
//! settlement cannot be sent, the output is withheld and the answer is a 402 naming why; when
//! the output cannot be produced, nothing is settled. The offer's `payTo` is this node's payment
//! address for the project (`InferenceMarket.paymentAddress(project, node)`); when a settlement
//! fails because someone executed the authorization straight on the token, the value waiting
//! there is collected for this project and node (`InferenceMarket.collect`).

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, TxHash, U256};
use autonet_chain::{ChainProvider, TxOptions};
use autonet_ml::generate::GenerateParams;
use autonet_status::{Metrics, Payments};
use autonet_substrate::align::{self, Quote};
use autonet_x402::{
    ClaimOutcome, NonceStore, PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER, PaymentError, PaymentRequired, PaymentRequirements, ResourceInfo,
    SettleResponse, check_onchain, codes, collect_uncollected, encode_payment_required,
    encode_payment_response, send_settle, unix_now, verify_header,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lru::LruCache;
use serde_json::{Value, json};
use tracing::{info, warn};

use tokio_stream::wrappers::ReceiverStream;

use crate::model::{Current, Drafting, Generated, flush_text, take_text};
use autonet_x402::channel::{
    ChannelStateExtra, SCHEME_BATCH_SETTLEMENT, decode_channel_payment, payment_scheme,
    verify_channel_payment,
};
use autonet_x402::channel_server::{Channels, Refusal};

/// Largest prompt accepted, in bytes.
pub const MAX_PROMPT_BYTES: usize = 16 * 1024;

/// Largest `user` text accepted, in bytes.
pub const MAX_USER_BYTES: usize = 4 * 1024;

/// The request's alignment with the project's jurisdiction (`0.994615`; absent without one).
pub const ALIGNMENT_HEADER: &str = "x-autonet-alignment";
/// The request's alignment-pricing tier (`free`, `standard`, …; `none` without a jurisdiction).
pub const TIER_HEADER: &str = "x-autonet-alignment-tier";
/// The price quoted for the request, in wei ATN (0: served without payment).
pub const PRICE_HEADER: &str = "x-autonet-price-wei";

/// How payments are taken.
#[derive(Clone, Debug)]
pub struct Payment {
    /// Chain id.
    pub chain_id: u64,
    /// The ATN token.
    pub asset: Address,
    /// ATN's EIP-712 domain name and version.
    pub domain: (String, String),
    /// The InferenceMarket (the contract settled through).
    pub market: Address,
    /// The project whose price applies and whose contributors share the revenue.
    pub project_id: u64,
    /// This node (the wallet that sends `settle`, credited as the provider).
    pub node: Address,
    /// The `payTo` offered: `InferenceMarket.paymentAddress(project_id, node)`, read from the
    /// contract at startup (it never changes). Payments to any other address are refused
    /// offline (`invalid_exact_evm_payload_recipient_mismatch`).
    pub pay_to: Address,
    /// Longest authorization window accepted (seconds).
    pub max_timeout_secs: u64,
}

impl Payment {
    /// The one requirement offered at `price`: `exact` EIP-3009 in ATN, paid to this node's
    /// payTo for the project (never the market itself).
    pub fn requirements(&self, price: u128) -> PaymentRequirements {
        PaymentRequirements::exact_evm(
            self.chain_id,
            self.asset,
            self.pay_to,
            U256::from(price),
            self.max_timeout_secs,
            &self.domain.0,
            &self.domain.1,
        )
    }
}

/// Everything the routes share.
#[derive(Clone)]
pub struct AppState {
    /// The model served.
    pub current: Current,
    /// Exact-request cache: (model root, canonical request) → output.
    pub cache: Arc<Mutex<LruCache<(B256, String), Generated>>>,
    /// The project's price in wei ATN (0: the route is free).
    pub price: Arc<AtomicU128>,
    /// The project's jurisdiction vector (`Project.jurisdictionOf`; `None`: it has none).
    pub jurisdiction: Arc<JurisdictionCell>,
    /// Requests served per alignment-pricing tier (`/metrics`).
    pub tiers: TierCounters,
    /// The premiums this node has settled and not yet spent on free-tier requests.
    pub subsidies: Arc<SubsidyPool>,
    /// The node's witness log (`None` only in tests of the routes alone).
    pub witness: Option<Arc<autonet_witness::Witness>>,
    /// Payment settings.
    pub payment: Payment,
    /// Persisted nonces.
    pub nonces: Arc<NonceStore>,
    /// The provider's wallet (settles, and is credited as provider).
    pub provider: ChainProvider,
    /// The URL this node is reached at (for `resource.url`).
    pub public_url: String,
    /// Metrics.
    pub metrics: Metrics,
    /// Payments shown on the status page.
    pub payments: Payments,
    /// Settlement transactions sent and not yet confirmed.
    pub pending: Arc<AtomicU64>,
    /// Payment channels (`batch-settlement`), offered when the chain has the channel contract.
    pub channels: Option<Arc<Channels>>,
    /// The draft model for speculative decoding of greedy requests (`--draft-project`).
    pub drafting: Option<Arc<Drafting>>,
}

/// A `u128` behind two atomics is overkill; prices fit in 128 bits and change rarely.
#[derive(Debug, Default)]
pub struct AtomicU128(Mutex<u128>);

impl AtomicU128 {
    /// A price of `v` wei.
    pub fn new(v: u128) -> Self {
        Self(Mutex::new(v))
    }
    /// The value.
    pub fn get(&self) -> u128 {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sets the value.
    pub fn set(&self, v: u128) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = v;
    }
}

/// The project's jurisdiction as last read from chain.
#[derive(Debug, Default)]
pub struct JurisdictionCell(Mutex<Option<[i32; 4]>>);

impl JurisdictionCell {
    /// Holding `v`.
    pub fn new(v: Option<[i32; 4]>) -> Self {
        Self(Mutex::new(v))
    }
    /// The value.
    pub fn get(&self) -> Option<[i32; 4]> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sets the value.
    pub fn set(&self, v: Option<[i32; 4]>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = v;
    }
}

/// The subsidies' funding: a free-tier request is served free only while the premiums this node
/// settled (what poorly aligned requests paid beyond the project's price) cover its price, and
/// costs that much of them; otherwise it pays the project's price ([`align::UNFUNDED`]). So
/// however a requester words a prompt to look aligned, the node never gives away more than
/// premiums brought in.
#[derive(Debug, Default)]
pub struct SubsidyPool(Mutex<u128>);

impl SubsidyPool {
    /// Adds the premium of a settled `quote`.
    pub fn credit(&self, quote: &Quote) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g = g.saturating_add(quote.premium());
    }

    /// `quote` as served: a subsidized one funded from the pool (and the pool debited), or at
    /// the project's price when the pool cannot fund it; any other unchanged.
    pub fn fund(&self, quote: Quote) -> Quote {
        if !quote.is_subsidized() {
            return quote;
        }
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if *g >= quote.base {
            *g -= quote.base;
            quote
        } else {
            quote.unfunded()
        }
    }

    /// The premiums not spent yet, in wei ATN.
    pub fn balance(&self) -> u128 {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `autonet_inference_alignment_tier_total{tier}`: requests of the paid route served (paid,
/// or free by their tier), by alignment-pricing tier; `none` counts those of a project
/// without a jurisdiction.
#[derive(Clone, Debug)]
pub struct TierCounters(prometheus::IntCounterVec);

impl TierCounters {
    /// The counters, registered in `metrics`' registry (every tier shown from 0).
    pub fn register(metrics: &Metrics) -> Self {
        let counters = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "inference_alignment_tier_total",
                "Paid-route inference requests served, by alignment-pricing tier (none: the project has no jurisdiction)",
            ),
            &["tier"],
        )
        .expect("a valid static metric definition");
        if let Err(e) = metrics.registry().register(Box::new(counters.clone())) {
            warn!(error = %e, "registering the alignment-tier counters");
        }
        for t in align::TIERS
            .iter()
            .map(|t| t.name)
            .chain([align::NO_JURISDICTION, align::UNFUNDED])
        {
            counters.with_label_values(&[t]);
        }
        Self(counters)
    }

    /// Counts a request served in `tier`.
    pub fn served(&self, tier: &str) {
        self.0.with_label_values(&[tier]).inc();
    }

    /// Requests served in `tier` so far.
    pub fn get(&self, tier: &str) -> u64 {
        self.0.with_label_values(&[tier]).get()
    }
}

impl AppState {
    /// A paid request served at `quote`: counted per tier, its premium credited to the
    /// subsidies, and the payment written in the witness log (`by`: the payer or channel; `tx`:
    /// the settlement, for `exact`).
    fn served_paid(&self, quote: &Quote, scheme: &str, by: String, tx: Option<TxHash>) {
        self.tiers.served(quote.tier);
        self.subsidies.credit(quote);
        if let Some(w) = &self.witness {
            w.record(
                0,
                None,
                "payment",
                scheme,
                &json!({
                    "by": by,
                    "value_wei": quote.price.to_string(),
                    "tier": quote.tier,
                    "tx": tx,
                    "model": self.current.get().root,
                }),
            );
        }
    }

    /// The price of `req` now: the project's price scaled by the request's alignment (the
    /// `user` text, the prompt) with the project's jurisdiction, or unchanged without one.
    pub fn quote(&self, req: &Request) -> Quote {
        align::quote(
            self.price.get(),
            self.jurisdiction.get().as_ref(),
            &req.user,
            &req.prompt,
        )
    }

    /// A cache of `entries` requests (at least one).
    pub fn new_cache(entries: usize) -> Arc<Mutex<LruCache<(B256, String), Generated>>> {
        Arc::new(Mutex::new(LruCache::new(
            NonZeroUsize::new(entries.max(1)).expect("at least one entry"),
        )))
    }

    fn requirements(&self, price: u128) -> PaymentRequirements {
        self.payment.requirements(price)
    }

    /// Every way to pay at `price`: `exact` first, then a channel when offered.
    fn accepts(&self, price: u128) -> Vec<PaymentRequirements> {
        let mut accepts = vec![self.requirements(price)];
        if let Some(c) = &self.channels {
            accepts.push(c.offer.requirements(price));
        }
        accepts
    }
}

/// The inference routes (`free`: also the unpaid comparison route).
pub fn router(state: AppState, free: bool) -> Router {
    let mut r = Router::new()
        .route("/v1/generate", post(paid))
        .route("/v1/model", get(model_info))
        .route("/v1/channels/claim", post(claim_channels));
    if free {
        r = r.route("/v1/free/generate", post(unpaid));
    }
    r.with_state(state)
}

/// A parsed request: the prompt, the sampling parameters, and how the output is sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The prompt.
    pub prompt: String,
    /// Text describing the user (who asks, their history; empty when not given): its
    /// embedding is the user vector of alignment pricing. It does not change the output.
    pub user: String,
    /// Sampling.
    pub params: GenerateParams,
    /// `"stream": true`: the output as server-sent events, byte by byte as it is generated
    /// (a paid stream is settled before its first byte).
    pub stream: bool,
}

impl Request {
    /// Parses `{"prompt": "...", "user": "...", "max_tokens": …, "temperature": …, "top_k": …,
    /// "top_p": …, "seed": …, "stop": …, "stream": …}` (every field but the prompt optional),
    /// naming what is wrong.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the body must be a JSON object: {e}"))?;
        let obj = v.as_object_mut().ok_or("the body must be a JSON object")?;
        let prompt = match obj.remove("prompt") {
            Some(Value::String(p)) => p,
            Some(_) => return Err("`prompt` must be a string".into()),
            None => return Err("missing `prompt`".into()),
        };
        if prompt.len() > MAX_PROMPT_BYTES {
            return Err(format!(
                "`prompt` is {} bytes; at most {MAX_PROMPT_BYTES} are accepted",
                prompt.len()
            ));
        }
        let user = match obj.remove("user") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(u)) if u.len() <= MAX_USER_BYTES => u,
            Some(Value::String(u)) => {
                return Err(format!(
                    "`user` is {} bytes; at most {MAX_USER_BYTES} are accepted",
                    u.len()
                ));
            }
            Some(_) => return Err("`user` must be a string".into()),
        };
        let stream = match obj.remove("stream") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => return Err("`stream` must be true or false".into()),
        };
        let params: GenerateParams =
            serde_json::from_value(v).map_err(|e| format!("invalid parameters: {e}"))?;
        params.validate().map_err(|e| e.to_string())?;
        Ok(Self {
            prompt,
            user,
            params,
            stream,
        })
    }

    /// The output depends on the prompt and parameters only (not on `user`).
    fn cache_key(&self) -> String {
        json!({"prompt": self.prompt, "params": self.params}).to_string()
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(why: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": why }))
}

/// Produces the output of `req` on the current model: from the cache, else by running it.
async fn produce(state: &AppState, req: &Request) -> Result<(B256, Generated, bool), String> {
    let model = state.current.get();
    let key = (model.root, req.cache_key());
    if let Some(hit) = state
        .cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned()
    {
        state.metrics.inference_path("cache", None);
        return Ok((model.root, hit, true));
    }
    let (prompt, params) = (req.prompt.clone(), req.params.clone());
    let (m, drafting) = (model.clone(), state.drafting.clone());
    let out = tokio::task::spawn_blocking(move || {
        let plan = drafting.as_ref().and_then(|d| d.plan(&params));
        let started = Instant::now();
        let out = m.generate_stream(
            prompt.as_bytes(),
            &params,
            plan.as_ref().map(|(d, k)| (d.as_ref(), *k)),
            |_| true,
        );
        if let (Some(d), Ok(g)) = (&drafting, &out) {
            d.record(g.path, g.tokens, started.elapsed());
        }
        out
    })
    .await
    .map_err(|e| format!("generation task: {e}"))?
    .map_err(|e| e.to_string())?;
    record_path(state, &out);
    state
        .cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(key, out.clone());
    Ok((model.root, out, false))
}

fn record_path(state: &AppState, g: &Generated) {
    state.metrics.inference_path(
        g.path.name(),
        g.speculation
            .map(|s| (s.proposed as u64, s.accepted as u64)),
    );
}

/// The JSON answer: `path` says what served it (`cache`, `speculative` or `full`), and a
/// speculative answer carries what the draft did.
fn output_json(root: B256, g: &Generated, cached: bool, elapsed: Duration) -> Value {
    let mut v = json!({
        "model": root.to_string(),
        "output": g.output,
        "tokens": g.tokens,
        "finish": g.finish,
        "cached": cached,
        "path": if cached { "cache" } else { g.path.name() },
        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
    });
    if let (false, Some(spec)) = (cached, g.speculation) {
        v["speculation"] = json!({
            "proposed": spec.proposed,
            "accepted": spec.accepted,
            "acceptance_rate": spec.acceptance_rate(),
            "main_calls": spec.main_calls,
        });
    }
    v
}

/// What a quote says, in answers and 402 bodies: `alignment` (decimal, `null` without a
/// jurisdiction), `tier`, `multiplier_permille`, `base_price_wei`, `price_wei`.
pub fn pricing_json(q: &Quote) -> Value {
    json!({
        "alignment": q.alignment.map(align::format_alignment),
        "tier": q.tier,
        "multiplier_permille": q.multiplier_permille,
        "base_price_wei": q.base.to_string(),
        "price_wei": q.price.to_string(),
    })
}

/// Adds the quote's headers ([`ALIGNMENT_HEADER`], [`TIER_HEADER`], [`PRICE_HEADER`]).
fn with_pricing(mut resp: Response, q: &Quote) -> Response {
    let h = resp.headers_mut();
    if let Some(a) = q.alignment
        && let Ok(v) = HeaderValue::from_str(&align::format_alignment(a))
    {
        h.insert(ALIGNMENT_HEADER, v);
    }
    h.insert(TIER_HEADER, HeaderValue::from_static(q.tier));
    if let Ok(v) = HeaderValue::from_str(&q.price.to_string()) {
        h.insert(PRICE_HEADER, v);
    }
    resp
}

/// [`output_json`] with the quote's `pricing`, when there is one.
fn answer_json(
    root: B256,
    g: &Generated,
    cached: bool,
    elapsed: Duration,
    pricing: Option<&Value>,
) -> Value {
    let mut v = output_json(root, g, cached, elapsed);
    if let Some(p) = pricing {
        v["pricing"] = p.clone();
    }
    v
}

/// The output of `req` as server-sent events: `token` events (`{"text": …}`, the bytes as they
/// are generated, split only between characters) and a last `done` event with what the JSON
/// answer holds (`model`, `output`, `tokens`, `finish`, `cached`, `path`, `pricing` on the paid
/// route, …), or an `error` event. A client that goes away stops the generation (its output is
/// then not cached).
fn stream_output(
    state: &AppState,
    req: Request,
    started: Instant,
    pricing: Option<Value>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(256);
    let model = state.current.get();
    let key = (model.root, req.cache_key());
    let hit = state
        .cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    let token = |text: &str| {
        Event::default()
            .event("token")
            .data(json!({ "text": text }).to_string())
    };
    if let Some(hit) = hit {
        state.metrics.inference_path("cache", None);
        tokio::spawn(async move {
            let _ = tx.send(Ok(token(&hit.output))).await;
            let done = answer_json(model.root, &hit, true, started.elapsed(), pricing.as_ref());
            let _ = tx
                .send(Ok(Event::default().event("done").data(done.to_string())))
                .await;
        });
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let mut pending = Vec::new();
            let plan = state.drafting.as_ref().and_then(|d| d.plan(&req.params));
            let decoding = Instant::now();
            let result = model.generate_stream(
                req.prompt.as_bytes(),
                &req.params,
                plan.as_ref().map(|(d, k)| (d.as_ref(), *k)),
                |b| {
                    pending.push(b);
                    let text = take_text(&mut pending);
                    text.is_empty() || tx.blocking_send(Ok(token(&text))).is_ok()
                },
            );
            let event = match result {
                Ok(g) => {
                    record_path(&state, &g);
                    if let Some(d) = &state.drafting
                        && g.finish != "cancelled"
                    {
                        d.record(g.path, g.tokens, decoding.elapsed());
                    }
                    let rest = flush_text(&mut pending);
                    if !rest.is_empty() && tx.blocking_send(Ok(token(&rest))).is_err() {
                        return;
                    }
                    if g.finish != "cancelled" {
                        state
                            .cache
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .put(key, g.clone());
                    }
                    let done =
                        answer_json(model.root, &g, false, started.elapsed(), pricing.as_ref());
                    Event::default().event("done").data(done.to_string())
                }
                Err(e) => Event::default()
                    .event("error")
                    .data(json!({ "error": e.to_string() }).to_string()),
            };
            let _ = tx.blocking_send(Ok(event));
        });
    }
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn model_info(State(state): State<AppState>) -> Response {
    let m = state.current.get();
    let draft = state.drafting.as_ref().map(|d| {
        json!({
            "model": d.draft().root.to_string(),
            "draft_tokens": d.k,
            "mode": format!("{:?}", d.mode).to_lowercase(),
            "speeds": d.speeds(),
        })
    });
    let jurisdiction = state.jurisdiction.get().map(|coords| {
        json!({
            "axes": autonet_substrate::AXES,
            "coords": coords,
            "scale": autonet_substrate::SCALE,
        })
    });
    let tiers: Vec<Value> = align::TIERS
        .iter()
        .map(|t| {
            json!({
                "tier": t.name,
                "min_alignment": align::format_alignment(t.min_alignment),
                "multiplier_permille": t.multiplier_permille,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "draft": draft,
            "model": m.root.to_string(),
            "project": state.payment.project_id,
            "price_wei": state.price.get().to_string(),
            "jurisdiction": jurisdiction,
            "alignment_tiers": tiers,
            "network": format!("eip155:{}", state.payment.chain_id),
            "asset": state.payment.asset.to_string(),
            "pay_to": state.payment.pay_to.to_string(),
            "market": state.payment.market.to_string(),
        }),
    )
}

async fn unpaid(State(state): State<AppState>, body: Bytes) -> Response {
    let started = Instant::now();
    match Request::parse(&body) {
        Ok(req) => serve_unpaid(&state, req, started, None).await,
        Err(why) => bad_request(why),
    }
}

/// Serves `req` without payment: the free route, and on the paid route a quote of 0 (`quote`,
/// named in the answer and counted in its tier).
async fn serve_unpaid(
    state: &AppState,
    req: Request,
    started: Instant,
    quote: Option<&Quote>,
) -> Response {
    let pricing = quote.map(pricing_json);
    let resp = if req.stream {
        state.metrics.inference_request(false, false);
        stream_output(state, req, started, pricing)
    } else {
        match produce(state, &req).await {
            Ok((root, g, cached)) => {
                state.metrics.inference_request(false, cached);
                state.metrics.inference_latency(started.elapsed());
                json_response(
                    StatusCode::OK,
                    answer_json(root, &g, cached, started.elapsed(), pricing.as_ref()),
                )
            }
            Err(why) => {
                return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": why }));
            }
        }
    };
    match quote {
        Some(q) => {
            state.tiers.served(q.tier);
            with_pricing(resp, q)
        }
        None => resp,
    }
}

/// A 402 carrying the requirement at the quoted price (and `why`, when a payment was refused).
fn payment_required(state: &AppState, quote: &Quote, why: Option<&PaymentError>) -> Response {
    let why = why.map(|e| {
        state.metrics.payment_failed(e.code());
        (e.to_string(), e.code(), e.to_string())
    });
    refusal_402(state, quote, why, None)
}

/// A 402 refusing a channel payment; a corrective one carries the channel's state in the
/// channel requirement's `extra` (`channelState`, `voucherState`), for the client to resync.
fn channel_refused(state: &AppState, quote: &Quote, refusal: &Refusal) -> Response {
    state.metrics.payment_failed(refusal.error.code);
    if refusal.internal {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": refusal.error.message, "code": refusal.error.code, "charged": false }),
        );
    }
    refusal_402(
        state,
        quote,
        // The scheme's clients match the 402's `error` against its codes.
        Some((
            refusal.error.code.to_owned(),
            refusal.error.code,
            refusal.error.message.clone(),
        )),
        refusal.corrective.as_deref(),
    )
}

fn refusal_402(
    state: &AppState,
    quote: &Quote,
    why: Option<(String, &'static str, String)>,
    corrective: Option<&(ChannelStateExtra, Value)>,
) -> Response {
    let priced = match quote.alignment {
        Some(a) => format!(
            " (alignment {}, tier {}: {}‰ of the price)",
            align::format_alignment(a),
            quote.tier,
            quote.multiplier_permille
        ),
        None => String::new(),
    };
    let resource = ResourceInfo {
        url: format!("{}/v1/generate", state.public_url.trim_end_matches('/')),
        description: Some(format!(
            "text generation by project {}'s latest model{priced}",
            state.payment.project_id
        )),
        mime_type: Some("application/json".into()),
    };
    let mut accepts = state.accepts(quote.price);
    if let Some((channel_state, voucher_state)) = corrective
        && let Some(offer) = accepts
            .iter_mut()
            .find(|a| a.scheme == SCHEME_BATCH_SETTLEMENT)
    {
        offer.extra.insert(
            "channelState".into(),
            serde_json::to_value(channel_state).unwrap_or(Value::Null),
        );
        offer
            .extra
            .insert("voucherState".into(), voucher_state.clone());
    }
    let mut required = PaymentRequired::new(resource, accepts);
    let mut body = json!({ "pricing": pricing_json(quote) });
    if let Some((error, code, message)) = why {
        required = required.with_error(error);
        body["error"] = json!(message);
        body["code"] = json!(code);
    }
    let header = encode_payment_required(&required);
    if let Value::Object(m) = &mut body
        && let Ok(Value::Object(r)) = serde_json::to_value(&required)
    {
        m.extend(r);
    }
    let mut resp = json_response(StatusCode::PAYMENT_REQUIRED, body);
    if let Ok(v) = HeaderValue::from_str(&header) {
        resp.headers_mut().insert(PAYMENT_REQUIRED_HEADER, v);
    }
    with_pricing(resp, quote)
}

async fn paid(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let req = match Request::parse(&body) {
        Ok(r) => r,
        Err(why) => return bad_request(why),
    };
    // Quoted once, from the body alone: the 402 offers this amount, and a payment is checked
    // against (and settled at) the same amount.
    // A free-tier request is funded by the premiums settled so far, or pays the price.
    let quote = state.subsidies.fund(state.quote(&req));
    let price = quote.price;
    if price == 0 {
        // Not for sale, or in the free tier: served without payment (a payment header, if
        // any, is ignored and nothing is charged).
        return serve_unpaid(&state, req, started, Some(&quote)).await;
    }
    let Some(header) = headers.get(PAYMENT_SIGNATURE_HEADER) else {
        return payment_required(&state, &quote, None);
    };
    let Ok(header) = header.to_str() else {
        let e = PaymentError::Malformed("the PAYMENT-SIGNATURE header is not ASCII".into());
        return payment_required(&state, &quote, Some(&e));
    };
    if let Some(channels) = state.channels.clone()
        && payment_scheme(header).as_deref() == Some(SCHEME_BATCH_SETTLEMENT)
    {
        return channel_paid(&state, &channels, req, header, &quote, started).await;
    }
    let requirements = state.requirements(price);
    let now = unix_now();
    let payment = match verify_header(header, &requirements, now) {
        Ok(p) => p,
        Err(e) => return payment_required(&state, &quote, Some(&e)),
    };
    // The nonce is claimed first (persisted: a replay stops here, also after a restart); the
    // on-chain checks then run while the output is produced, and both must pass before settling.
    let key = payment.nonce_key();
    let t_verified = started.elapsed();
    match state.nonces.claim_payment(&payment, now) {
        Ok(ClaimOutcome::Claimed) => {}
        Ok(ClaimOutcome::AlreadyUsed(_)) => {
            let e = PaymentError::NonceAlreadyUsed {
                payer: payment.payer,
                nonce: payment.authorization.nonce,
            };
            return payment_required(&state, &quote, Some(&e));
        }
        Err(e) => {
            warn!(error = %e, "the nonce store failed: refusing the payment");
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "the payment could not be recorded; nothing was charged" }),
            );
        }
    }
    let t_claimed = started.elapsed();
    if req.stream {
        // Streamed: settled before the first byte, so a client that disconnects has paid for
        // what it asked.
        if let Err(e) = check_onchain(&state.provider, &payment).await {
            let _ = state.nonces.mark_failed(&key, e.code(), unix_now());
            return payment_required(&state, &quote, Some(&e));
        }
        let tx = match settle(&state, &payment, key).await {
            Ok(tx) => tx,
            Err(resp) => return resp,
        };
        state.metrics.inference_request(true, false);
        state.served_paid(&quote, "exact", payment.payer.to_string(), Some(tx));
        info!(payer = %payment.payer, value = %payment.authorization.value, tier = quote.tier, %tx, "paid stream settled; streaming");
        let mut resp = stream_output(&state, req, started, Some(pricing_json(&quote)));
        if let Ok(v) = HeaderValue::from_str(&encode_payment_response(&payment.settle_response(tx)))
        {
            resp.headers_mut().insert(PAYMENT_RESPONSE_HEADER, v);
        }
        return with_pricing(resp, &quote);
    }
    let (checked, produced) = tokio::join!(
        check_onchain(&state.provider, &payment),
        produce(&state, &req)
    );
    if let Err(e) = checked {
        let _ = state.nonces.mark_failed(&key, e.code(), unix_now());
        return payment_required(&state, &quote, Some(&e));
    }
    // The output first: a payment is never settled for an answer that cannot be given.
    let (root, out, cached) = match produced {
        Ok(x) => x,
        Err(why) => {
            let _ =
                state
                    .nonces
                    .mark_failed(&key, &format!("generation failed: {why}"), unix_now());
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": why, "charged": false }),
            );
        }
    };
    let t_produced = started.elapsed();
    let tx = match settle(&state, &payment, key).await {
        Ok(tx) => tx,
        Err(resp) => return resp,
    };
    state.metrics.inference_request(true, cached);
    state.metrics.inference_latency(started.elapsed());
    state.served_paid(&quote, "exact", payment.payer.to_string(), Some(tx));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    info!(
        payer = %payment.payer, value = %payment.authorization.value, %tx, cached, tier = quote.tier,
        verify_ms = ms(t_verified), claim_ms = ms(t_claimed - t_verified),
        check_and_output_ms = ms(t_produced - t_claimed), settle_ms = ms(started.elapsed() - t_produced),
        "paid inference served"
    );
    let settle = payment.settle_response(tx);
    let pricing = pricing_json(&quote);
    let mut resp = json_response(
        StatusCode::OK,
        answer_json(root, &out, cached, started.elapsed(), Some(&pricing)),
    );
    if let Ok(v) = HeaderValue::from_str(&encode_payment_response(&settle)) {
        resp.headers_mut().insert(PAYMENT_RESPONSE_HEADER, v);
    }
    with_pricing(resp, &quote)
}

/// A request paid through a payment channel (see `autonet_x402::channel_server`) at its quoted
/// price: the voucher is stored before the output is produced and the charge after; a stream is
/// charged before its first byte.
async fn channel_paid(
    state: &AppState,
    channels: &Channels,
    req: Request,
    header: &str,
    quote: &Quote,
    started: Instant,
) -> Response {
    let price = quote.price;
    let payment = match decode_channel_payment(header)
        .and_then(|p| verify_channel_payment(&p, &channels.offer, price, unix_now()))
    {
        Ok(p) => p,
        Err(e) => return channel_refused(state, quote, &e.into()),
    };
    let admitted = match channels.admit(&state.provider, &payment, price).await {
        Ok(a) => a,
        Err(refusal) => return channel_refused(state, quote, &refusal),
    };
    let network = format!("eip155:{}", state.payment.chain_id);
    let channel = admitted.channel_id();
    if req.stream {
        let settle = match channels.commit(admitted, &network) {
            Ok(s) => s,
            Err(refusal) => return channel_refused(state, quote, &refusal),
        };
        state.metrics.inference_request(true, false);
        state.served_paid(quote, SCHEME_BATCH_SETTLEMENT, channel.to_string(), None);
        let mut resp = stream_output(state, req, started, Some(pricing_json(quote)));
        if let Ok(v) = HeaderValue::from_str(&encode_payment_response(&settle)) {
            resp.headers_mut().insert(PAYMENT_RESPONSE_HEADER, v);
        }
        return with_pricing(resp, quote);
    }
    let (root, out, cached) = match produce(state, &req).await {
        Ok(x) => x,
        Err(why) => {
            // Dropping `admitted` leaves the charge as it was: the same voucher pays a retry.
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": why, "charged": false }),
            );
        }
    };
    let settle = match channels.commit(admitted, &network) {
        Ok(s) => s,
        Err(refusal) => return channel_refused(state, quote, &refusal),
    };
    state.metrics.inference_request(true, cached);
    state.metrics.inference_latency(started.elapsed());
    state.served_paid(quote, SCHEME_BATCH_SETTLEMENT, channel.to_string(), None);
    tracing::debug!(%channel, cached, tier = quote.tier, "paid by channel voucher");
    let pricing = pricing_json(quote);
    let mut resp = json_response(
        StatusCode::OK,
        answer_json(root, &out, cached, started.elapsed(), Some(&pricing)),
    );
    if let Ok(v) = HeaderValue::from_str(&encode_payment_response(&settle)) {
        resp.headers_mut().insert(PAYMENT_RESPONSE_HEADER, v);
    }
    with_pricing(resp, quote)
}

/// `POST /v1/channels/claim`: claims every unclaimed voucher now (loopback callers only).
async fn claim_channels(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({ "error": "claims are triggered from this machine only (loopback)" }),
        );
    }
    let Some(channels) = state.channels.clone() else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({ "error": "this node offers no payment channels" }),
        );
    };
    match channels
        .claim(
            &state.provider,
            state.payment.market,
            state.payment.project_id,
            state.payment.node,
        )
        .await
    {
        Ok(report) => json_response(
            StatusCode::OK,
            json!({
                "channels": report.channels,
                "claimed_wei": report.claimed.to_string(),
                "transactions": report.transactions.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => json_response(StatusCode::BAD_GATEWAY, json!({ "error": e })),
    }
}

/// Sends `InferenceMarket.settle` for `payment` and follows it to its receipt in the background
/// ([`track_settlement`]); returns the transaction. When it cannot be sent: the 402 to answer
/// (the output withheld) with the reason, and whatever waits at this node's payTo collected
/// when the authorization was executed elsewhere.
async fn settle(
    state: &AppState,
    payment: &autonet_x402::VerifiedPayment,
    key: autonet_x402::NonceKey,
) -> Result<TxHash, Response> {
    let pending = send_or_refuse(state, payment, &key).await?;
    let tx = pending.tx_hash();
    track_settlement(state, key, payment, pending);
    Ok(tx)
}

async fn send_or_refuse(
    state: &AppState,
    payment: &autonet_x402::VerifiedPayment,
    key: &autonet_x402::NonceKey,
) -> Result<autonet_x402::PendingSettlement<ChainProvider>, Response> {
    let network = format!("eip155:{}", state.payment.chain_id);
    match send_settle(
        state.provider.clone(),
        state.payment.market,
        U256::from(state.payment.project_id),
        payment,
    )
    .await
    {
        Ok(p) => Ok(p),
        Err(e) => {
            let reason = e.to_string();
            warn!(payer = %payment.payer, error = %reason, "settlement refused: output withheld");
            let _ = state.nonces.mark_failed(key, &reason, unix_now());
            state.metrics.payment_failed(e.code());
            if e.code() == codes::NONCE_ALREADY_USED {
                // Executed straight on the token meanwhile: the value is at this node's payTo.
                let (provider, payment) = (state.provider.clone(), state.payment.clone());
                tokio::spawn(async move { collect_own(&provider, &payment).await });
            }
            let settle = SettleResponse::failure(e.code(), Some(payment.payer), network);
            let mut resp = json_response(
                StatusCode::PAYMENT_REQUIRED,
                json!({ "error": format!("the payment could not be settled: {reason}"), "code": e.code() }),
            );
            if let Ok(v) = HeaderValue::from_str(&encode_payment_response(&settle)) {
                resp.headers_mut().insert(PAYMENT_RESPONSE_HEADER, v);
            }
            Err(resp)
        }
    }
}

/// Records a sent settlement and follows it to its receipt off the response path (after a crash
/// before the receipt, the restart reconciles the claimed payment with the token's
/// authorizationState).
fn track_settlement(
    state: &AppState,
    key: autonet_x402::NonceKey,
    payment: &autonet_x402::VerifiedPayment,
    pending: autonet_x402::PendingSettlement<ChainProvider>,
) {
    let tx = pending.tx_hash();
    state
        .payments
        .record(payment.payer, payment.authorization.value, tx);
    state.pending.fetch_add(1, Ordering::Relaxed);
    let (nonces, metrics, pending_count) = (
        state.nonces.clone(),
        state.metrics.clone(),
        state.pending.clone(),
    );
    let (provider, payment_settings) = (state.provider.clone(), state.payment.clone());
    tokio::spawn(async move {
        let _ = nonces.mark_submitted(&key, tx, unix_now());
        let options = TxOptions::default().with_timeout(Duration::from_secs(120));
        match pending.confirm(&options).await {
            Ok(_) => {
                let _ = nonces.mark_settled(&key, tx, unix_now());
                metrics.payment_settled();
            }
            Err(e) => {
                warn!(%tx, error = %e, "a settlement transaction failed on chain");
                let _ = nonces.mark_failed(&key, &e.to_string(), unix_now());
                metrics.payment_failed(e.code());
                if e.code() == codes::NONCE_ALREADY_USED {
                    // Someone executed the authorization straight on the token first: the
                    // value waits at this node's payTo, and only this project and node can be
                    // credited with it.
                    collect_own(&provider, &payment_settings).await;
                }
            }
        }
        pending_count.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Collects whatever waits at this node's payTo (see `autonet_x402::collect_uncollected`),
/// logging instead of failing.
pub async fn collect_own(provider: &ChainProvider, payment: &Payment) {
    let options = TxOptions::default().with_timeout(Duration::from_secs(120));
    if let Err(e) = collect_uncollected(
        provider.clone(),
        payment.market,
        U256::from(payment.project_id),
        payment.node,
        &options,
    )
    .await
    {
        warn!(error = %e, "collecting payments made straight to this node's payTo");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LoadedModel;
    use alloy::providers::Provider;

    /// The routes over a random `tiny` model, unpaid (no chain is reached), on 127.0.0.1.
    async fn serve_tiny() -> String {
        serve_tiny_with(None).await.0
    }

    /// [`serve_tiny_with`], decoding full-path generations in a batch of `slots`.
    async fn serve_tiny_batched(slots: usize) -> String {
        serve_tiny_model(None, slots).await.0
    }

    /// [`serve_tiny`], drafting (when `draft`) with another random `tiny` model; also returns
    /// the state.
    async fn serve_tiny_with(draft: Option<crate::model::SpeculateMode>) -> (String, AppState) {
        serve_tiny_model(draft, 0).await
    }

    async fn serve_tiny_model(
        draft: Option<crate::model::SpeculateMode>,
        batch_slots: usize,
    ) -> (String, AppState) {
        let cfg = autonet_ml::ModelConfig::tiny();
        let weights = autonet_ml::init_weights(&cfg, 3).unwrap();
        let lm = autonet_ml::Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let mut model = LoadedModel::new(B256::repeat_byte(7), lm);
        if batch_slots > 0 {
            let lm = autonet_ml::Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
            model = model.with_batchers(vec![lm], batch_slots);
        }
        let drafting = draft.map(|mode| {
            let w = autonet_ml::init_weights(&cfg, 5).unwrap();
            let d = autonet_ml::Lm::new(&cfg, &w, tch::Device::Cpu).unwrap();
            Arc::new(
                Drafting::new(
                    &cfg,
                    &cfg,
                    LoadedModel::new(B256::repeat_byte(9), d),
                    2,
                    mode,
                )
                .unwrap(),
            )
        });
        let provider = alloy::providers::ProviderBuilder::new()
            .connect_http("http://127.0.0.1:9".parse().unwrap())
            .erased();
        let metrics = Metrics::new();
        let state = AppState {
            current: Current::new(model),
            cache: AppState::new_cache(8),
            price: Arc::new(AtomicU128::new(0)),
            jurisdiction: Arc::new(JurisdictionCell::default()),
            tiers: TierCounters::register(&metrics),
            subsidies: Arc::default(),
            witness: None,
            payment: Payment {
                chain_id: 1,
                asset: Address::repeat_byte(1),
                domain: ("ATN".into(), "1".into()),
                market: Address::repeat_byte(2),
                project_id: 1,
                node: Address::repeat_byte(3),
                pay_to: Address::repeat_byte(4),
                max_timeout_secs: 60,
            },
            nonces: Arc::new(NonceStore::open_in_memory().unwrap()),
            provider,
            public_url: "http://127.0.0.1".into(),
            metrics,
            payments: Payments::new(),
            pending: Arc::new(AtomicU64::new(0)),
            channels: None,
            drafting,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone(), true);
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, state)
    }

    /// `POST {url}/v1/free/generate` with `body`: the answer's body (it must be 200).
    async fn post_free(http: reqwest::Client, url: String, body: Value) -> String {
        let r = http
            .post(format!("{url}/v1/free/generate"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_decoded_in_a_batch_get_their_own_answers() {
        let plain = serve_tiny().await;
        let batched = serve_tiny_batched(4).await;
        let http = reqwest::Client::new();
        let post = |url: String, body: Value| post_free(http.clone(), url, body);
        // 10 requests at once (more than the 4 slots: the rest join as others end), greedy and
        // sampled, of different lengths (past the tiny model's window), some streamed.
        let asks: Vec<Value> = (0..10)
            .map(|i| {
                json!({
                    "prompt": format!("fn f{i}() {{"),
                    "max_tokens": 20 + 9 * i,
                    "temperature": if i % 3 == 0 { 0.0 } else { 0.9 },
                    "seed": i,
                    "stream": i % 4 == 1,
                })
            })
            .collect();
        let tasks: Vec<_> = asks
            .iter()
            .map(|a| tokio::spawn(post(batched.clone(), a.clone())))
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        for (ask, body) in asks.iter().zip(answers) {
            let got = if ask["stream"] == true {
                events(&body).last().unwrap().1.clone()
            } else {
                serde_json::from_str::<Value>(&body).unwrap()
            };
            let mut alone = ask.clone();
            alone["stream"] = json!(false);
            let want: Value = serde_json::from_str(&post(plain.clone(), alone).await).unwrap();
            assert_eq!(got["output"], want["output"], "{ask}");
            assert_eq!(got["tokens"], ask["max_tokens"]);
            assert_eq!(
                (got["path"].as_str(), got["cached"].as_bool()),
                (Some("full"), Some(false))
            );
        }
    }

    #[tokio::test]
    async fn a_draft_serves_greedy_requests_with_the_full_models_bytes_and_says_so() {
        let (plain, plain_state) = serve_tiny_with(None).await;
        let (drafted, state) = serve_tiny_with(Some(crate::model::SpeculateMode::Always)).await;
        let http = reqwest::Client::new();
        let post = |url: String, body: Value| post_free(http.clone(), url, body);
        let prompts = ["fn main", "impl Default for", "let x = ", "}\n"];
        let mut proposed = 0;
        for p in prompts {
            let ask = json!({"prompt": p, "max_tokens": 48, "temperature": 0});
            let full: Value =
                serde_json::from_str(&post(plain.clone(), ask.clone()).await).unwrap();
            let spec: Value =
                serde_json::from_str(&post(drafted.clone(), ask.clone()).await).unwrap();
            assert_eq!(full["path"], "full");
            assert_eq!(spec["path"], "speculative", "{spec}");
            assert_eq!(spec["output"], full["output"], "prompt {p:?}");
            assert_eq!(spec["tokens"], 48);
            proposed += spec["speculation"]["proposed"].as_u64().unwrap();
            // Streamed (not cached: the stream asks for more bytes), the same bytes again.
            let mut streamed =
                json!({"prompt": p, "max_tokens": 49, "temperature": 0, "stream": true});
            let body = post(drafted.clone(), streamed.clone()).await;
            let ev = events(&body);
            let done = &ev.last().unwrap().1;
            assert_eq!(done["path"], "speculative", "{body}");
            streamed["stream"] = json!(false);
            let full: Value = serde_json::from_str(&post(plain.clone(), streamed).await).unwrap();
            assert_eq!(done["output"], full["output"]);
            // Repeated: from the cache.
            let again: Value = serde_json::from_str(&post(drafted.clone(), ask).await).unwrap();
            assert_eq!(
                (again["path"].as_str(), again.get("speculation")),
                (Some("cache"), None)
            );
        }
        // Sampling is not speculated.
        let sampled: Value = serde_json::from_str(
            &post(
                drafted.clone(),
                json!({"prompt": "fn", "max_tokens": 16, "temperature": 0.8, "seed": 1}),
            )
            .await,
        )
        .unwrap();
        assert_eq!(sampled["path"], "full");
        // The split and the acceptance rate, as the status page and /metrics show them.
        let split = state.metrics.inference_split();
        assert_eq!((split.speculative, split.full, split.cache), (8, 1, 4));
        assert!(
            split.draft_proposed > proposed,
            "the streamed requests drafted too"
        );
        let rate = split.acceptance_rate.unwrap();
        assert!((0.0..=1.0).contains(&rate), "{rate}");
        assert_eq!(plain_state.metrics.inference_split().speculative, 0);
        let text = state.metrics.render().unwrap();
        assert!(
            text.contains("autonet_inference_path_total{path=\"speculative\"} 8"),
            "{text}"
        );
        // The model route names the draft.
        let info: Value = serde_json::from_str(
            &http
                .get(format!("{drafted}/v1/model"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(info["draft"]["model"], B256::repeat_byte(9).to_string());
        assert_eq!(info["draft"]["draft_tokens"], 2);
    }

    /// `(event, data)` pairs of a server-sent-events body.
    fn events(body: &str) -> Vec<(String, Value)> {
        body.split("\n\n")
            .filter_map(|block| {
                let mut event = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = Some(e.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).ok();
                    }
                }
                Some((event?, data?))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_streamed_answer_is_the_json_answer_byte_by_byte() {
        let url = format!("{}/v1/free/generate", serve_tiny().await);
        let http = reqwest::Client::new();
        let post = |body: Value| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = http.post(&url).body(body.to_string()).send().await.unwrap();
                let ct = r
                    .headers()
                    .get(CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status(), ct, r.text().await.unwrap())
            }
        };
        let ask = json!({"prompt": "fn main", "max_tokens": 40, "temperature": 0});
        let mut streamed = ask.clone();
        streamed["stream"] = json!(true);
        // Streamed first (so it is generated, not cached), then the JSON answer from the cache.
        let (status, ct, body) = post(streamed.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("text/event-stream"));
        let ev = events(&body);
        let (last, tokens) = ev.split_last().expect("events");
        assert_eq!(last.0, "done", "{body}");
        assert_eq!(last.1["cached"], false);
        assert!(
            tokens.len() > 1,
            "generated bytes arrive one by one: {body}"
        );
        assert!(tokens.iter().all(|(e, _)| e == "token"));
        let text: String = tokens
            .iter()
            .map(|(_, d)| d["text"].as_str().unwrap())
            .collect();
        assert_eq!(text, last.1["output"].as_str().unwrap());
        assert_eq!(last.1["tokens"], 40);
        let (status, _, body) = post(ask.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["output"], last.1["output"]);
        assert_eq!(answer["cached"], true, "the stream filled the cache");
        // From the cache, streamed: the whole output in one event.
        let (_, _, body) = post(streamed).await;
        let ev = events(&body);
        assert_eq!(ev.len(), 2, "{body}");
        assert_eq!(ev[0].1["text"], answer["output"]);
        assert_eq!(ev[1].1["cached"], true);
        // A bad `stream` is named.
        let mut bad = ask;
        bad["stream"] = json!("yes");
        let (status, _, body) = post(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("`stream` must be true or false"), "{body}");
    }

    #[test]
    fn requests_are_parsed_and_bad_ones_named() {
        let r = Request::parse(br#"{"prompt":"fn main","max_tokens":8,"temperature":0}"#).unwrap();
        assert_eq!(r.prompt, "fn main");
        assert_eq!(r.params.max_tokens, 8);
        assert_eq!(r.params.temperature, 0.0);
        let e = Request::parse(br#"{"max_tokens":8}"#).unwrap_err();
        assert!(e.contains("missing `prompt`"), "{e}");
        let e = Request::parse(br#"{"prompt":1}"#).unwrap_err();
        assert!(e.contains("`prompt` must be a string"), "{e}");
        let e = Request::parse(br#"{"prompt":"x","max_tokenz":8}"#).unwrap_err();
        assert!(e.contains("max_tokenz"), "{e}");
        let e = Request::parse(br#"{"prompt":"x","max_tokens":0}"#).unwrap_err();
        assert!(e.contains("max_tokens"), "{e}");
        let e = Request::parse(b"[1]").unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
        // `user` (alignment pricing): optional, a string, bounded, not part of the cache key.
        let u = Request::parse(br#"{"prompt":"fn main","user":"a nurse"}"#).unwrap();
        assert_eq!(u.user, "a nurse");
        assert_eq!(r.user, "");
        assert_eq!(
            Request::parse(br#"{"prompt":"fn main","user":null}"#)
                .unwrap()
                .user,
            ""
        );
        assert_eq!(
            u.cache_key(),
            Request::parse(br#"{"prompt":"fn main"}"#)
                .unwrap()
                .cache_key()
        );
        let e = Request::parse(br#"{"prompt":"x","user":7}"#).unwrap_err();
        assert!(e.contains("`user` must be a string"), "{e}");
        let long = format!(
            r#"{{"prompt":"x","user":"{}"}}"#,
            "a".repeat(MAX_USER_BYTES + 1)
        );
        let e = Request::parse(long.as_bytes()).unwrap_err();
        assert!(e.contains("`user` is"), "{e}");
        let long = format!(r#"{{"prompt":"{}"}}"#, "a".repeat(MAX_PROMPT_BYTES + 1));
        assert!(
            Request::parse(long.as_bytes())
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn the_offer_pays_this_nodes_pay_to_and_refuses_the_market() {
        let payment = Payment {
            chain_id: 31337,
            asset: Address::repeat_byte(1),
            domain: ("Autonet".into(), "1".into()),
            market: Address::repeat_byte(2),
            project_id: 7,
            node: Address::repeat_byte(3),
            pay_to: Address::repeat_byte(4),
            max_timeout_secs: 120,
        };
        let offer = payment.requirements(250);
        assert_eq!(offer.pay_to_address(), Some(payment.pay_to));
        assert_eq!(offer.amount_value(), Some(U256::from(250)));
        // An authorization to the market (or anything but the node's payTo) is refused offline.
        let signer = alloy::signers::local::PrivateKeySigner::random();
        let mut to_market = offer.clone();
        to_market.pay_to = payment.market.to_checksum(None);
        let required = PaymentRequired::new(ResourceInfo::default(), vec![to_market]);
        let header = autonet_x402::encode_payment_signature(
            &autonet_x402::PaymentSigner::new(signer)
                .sign(&required, unix_now())
                .unwrap(),
        );
        let err = verify_header(&header, &offer, unix_now()).unwrap_err();
        assert_eq!(err.code(), codes::RECIPIENT_MISMATCH, "{err}");
    }

    #[test]
    fn the_cache_key_separates_prompts_and_parameters() {
        let a = Request::parse(br#"{"prompt":"a","seed":1}"#).unwrap();
        let b = Request::parse(br#"{"prompt":"a","seed":2}"#).unwrap();
        let c = Request::parse(br#"{"prompt":"b","seed":1}"#).unwrap();
        let a2 = Request::parse(br#"{"seed":1,"prompt":"a"}"#).unwrap();
        assert_ne!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), c.cache_key());
        assert_eq!(a.cache_key(), a2.cache_key());
    }
}
