//! The development network's faucet: a small HTTP endpoint on 127.0.0.1 that hands a new node
//! the ETH for its gas and the ATN for its stake, so that `autonet join --faucet <URL>` can fund
//! itself.
//!
//! `POST /faucet` with `{"address": "0x…", "atn": "50"}` (`atn` optional: at most the cap, the
//! cap when absent) raises the address's ETH balance by a fixed grant (`anvil_setBalance`: local
//! anvil chains only) and transfers the ATN from the funder (the deployer, who holds the supply).
//! Every grant is bounded ([`FaucetLimits`]): a fixed ETH amount, at most `max_atn` ATN, one
//! grant per address per `per_address` window and at most `per_minute` grants a minute in all,
//! so that no caller can drain the funder. `GET /faucet` describes the limits. This module must
//! not be used on a public network: it signs with the deployer's key.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use autonet_bindings::ATNToken;
use autonet_chain::{ChainProvider, ProviderConfig, TxOptions, connect, send_and_confirm};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::network::NetworkError;
use crate::amount::{format_atn, parse_atn};

/// The file in the devnet directory holding the faucet's URL (for operators and scripts).
pub const URL_FILE: &str = "faucet.url";

/// What one grant may give and how often.
#[derive(Debug, Clone, Copy)]
pub struct FaucetLimits {
    /// ETH (wei) added to a caller's balance per grant.
    pub eth: U256,
    /// Most ATN (base units) one grant transfers.
    pub max_atn: U256,
    /// One grant per address within this window.
    pub per_address: Duration,
    /// Most grants a minute, all addresses together.
    pub per_minute: usize,
}

impl Default for FaucetLimits {
    /// 10 ETH and up to 1000 ATN (the aggregator's default minimum stake) per grant, once an
    /// hour per address, 60 grants a minute in all.
    fn default() -> Self {
        let unit = U256::from(10).pow(U256::from(18));
        Self {
            eth: U256::from(10) * unit,
            max_atn: U256::from(1000) * unit,
            per_address: Duration::from_secs(3600),
            per_minute: 60,
        }
    }
}

struct Shared {
    provider: ChainProvider,
    token: Address,
    limits: FaucetLimits,
    /// Last grant per address, and the recent grants (for the global rate).
    book: std::sync::Mutex<(HashMap<Address, Instant>, VecDeque<Instant>)>,
    /// One grant's transactions at a time (one funder account).
    sending: tokio::sync::Mutex<()>,
}

/// A running faucet; stops when dropped.
pub struct Faucet {
    /// `http://127.0.0.1:<port>/faucet`.
    pub url: String,
    cancel: CancellationToken,
}

impl Drop for Faucet {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn other(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Other(format!("faucet: {e}"))
}

impl Faucet {
    /// Serves the faucet on 127.0.0.1 (a free port), paying from `funder` on the chain at
    /// `rpc_url` in ATN token `token`.
    pub async fn start(
        rpc_url: &str,
        token: Address,
        funder: PrivateKeySigner,
        limits: FaucetLimits,
    ) -> Result<Self, NetworkError> {
        let provider = connect(&ProviderConfig::new(rpc_url), funder)
            .await
            .map_err(other)?;
        let shared = Arc::new(Shared {
            provider,
            token,
            limits,
            book: std::sync::Mutex::new((HashMap::new(), VecDeque::new())),
            sending: tokio::sync::Mutex::new(()),
        });
        let app = Router::new()
            .route("/faucet", post(grant).get(describe))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(other)?;
        let url = format!("http://{}/faucet", listener.local_addr().map_err(other)?);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the faucet stopped");
            }
        });
        Ok(Self { url, cancel })
    }
}

type Reply = (StatusCode, Json<Value>);

fn refuse(status: StatusCode, error: impl Into<String>) -> Reply {
    (status, Json(json!({ "error": error.into() })))
}

async fn describe(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "request": "POST {\"address\": \"0x…\", \"atn\": \"<optional ATN, at most max_atn>\"}",
        "eth_per_grant": format_atn(s.limits.eth),
        "max_atn_per_grant": format_atn(s.limits.max_atn),
        "per_address_secs": s.limits.per_address.as_secs(),
        "grants_per_minute": s.limits.per_minute,
    }))
}

/// Books a grant for `who` now, or says why not (and when to retry).
fn book(s: &Shared, who: Address) -> Result<(), Reply> {
    let now = Instant::now();
    let mut book = s.book.lock().unwrap_or_else(|p| p.into_inner());
    let (last, recent) = &mut *book;
    if let Some(at) = last.get(&who) {
        let since = now.duration_since(*at);
        if since < s.limits.per_address {
            let wait = (s.limits.per_address - since).as_secs().max(1);
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "error": format!("{who} was funded {}s ago: one grant per address every {}s; retry in {wait}s", since.as_secs(), s.limits.per_address.as_secs()),
                    "retry_after_secs": wait,
                })),
            ));
        }
    }
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        recent.pop_front();
    }
    if recent.len() >= s.limits.per_minute {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "error": format!("the faucet gives at most {} grants a minute; retry shortly", s.limits.per_minute),
                "retry_after_secs": 60,
            })),
        ));
    }
    last.insert(who, now);
    recent.push_back(now);
    Ok(())
}

/// Forgets `who`'s booking (its grant failed before anything was sent).
fn unbook(s: &Shared, who: Address) {
    let mut book = s.book.lock().unwrap_or_else(|p| p.into_inner());
    book.0.remove(&who);
}

async fn grant(State(s): State<Arc<Shared>>, body: Option<Json<Value>>) -> Reply {
    let Some(Json(body)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"address\": \"0x…\"}",
        );
    };
    let Some(who) = body["address"]
        .as_str()
        .and_then(|a| a.parse::<Address>().ok())
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`address` must be a 0x-prefixed 20-byte address",
        );
    };
    if who == Address::ZERO {
        return refuse(StatusCode::BAD_REQUEST, "refusing the zero address");
    }
    let asked = match body.get("atn") {
        None | Some(Value::Null) => s.limits.max_atn,
        Some(v) => match v.as_str().map(parse_atn).or_else(|| {
            v.as_u64()
                .map(|n| Ok(U256::from(n) * U256::from(10).pow(U256::from(18))))
        }) {
            Some(Ok(amount)) => amount,
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "`atn` must be a decimal amount such as \"50\"",
                );
            }
        },
    };
    let atn = asked.min(s.limits.max_atn);
    if let Err(refused) = book(&s, who) {
        return refused;
    }
    let _one_at_a_time = s.sending.lock().await;
    let balance = match s.provider.get_balance(who).await {
        Ok(b) => b,
        Err(e) => {
            unbook(&s, who);
            return refuse(
                StatusCode::BAD_GATEWAY,
                format!("reading the balance of {who}: {e}"),
            );
        }
    };
    let raised: Result<(), _> = s
        .provider
        .raw_request(
            "anvil_setBalance".into(),
            (who, balance.saturating_add(s.limits.eth)),
        )
        .await;
    if let Err(e) = raised {
        unbook(&s, who);
        return refuse(
            StatusCode::BAD_GATEWAY,
            format!("anvil_setBalance failed (the faucet needs a local anvil): {e}"),
        );
    }
    let mut tx = None;
    if !atn.is_zero() {
        let token = ATNToken::new(s.token, &s.provider);
        match send_and_confirm::<ATNToken::Transfer, _, _>(
            &token.transfer(who, atn),
            &TxOptions::default().with_timeout(Duration::from_secs(60)),
        )
        .await
        {
            Ok(sent) => tx = Some(sent.receipt.transaction_hash),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    format!("transferring {} ATN: {e}", format_atn(atn)),
                );
            }
        }
    }
    tracing::debug!(%who, eth = %format_atn(s.limits.eth), atn = %format_atn(atn), "faucet grant");
    (
        StatusCode::OK,
        Json(json!({
            "address": who.to_string(),
            "eth": format_atn(s.limits.eth),
            "atn": format_atn(atn),
            "tx": tx,
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(limits: FaucetLimits) -> Shared {
        let provider = alloy::providers::ProviderBuilder::new()
            .wallet(PrivateKeySigner::random())
            .connect_http("http://127.0.0.1:1".parse().unwrap())
            .erased();
        Shared {
            provider,
            token: Address::ZERO,
            limits,
            book: std::sync::Mutex::new((HashMap::new(), VecDeque::new())),
            sending: tokio::sync::Mutex::new(()),
        }
    }

    #[test]
    fn one_grant_per_address_and_a_global_rate() {
        let s = shared(FaucetLimits {
            per_minute: 2,
            ..FaucetLimits::default()
        });
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        book(&s, a).unwrap();
        let (status, Json(body)) = book(&s, a).unwrap_err();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("one grant per address")
        );
        book(&s, b).unwrap();
        let (status, Json(body)) = book(&s, c).unwrap_err();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            body["error"].as_str().unwrap().contains("a minute"),
            "{body}"
        );
        unbook(&s, a);
    }
}
