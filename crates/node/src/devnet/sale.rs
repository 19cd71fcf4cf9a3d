//! The end of `autonet devnet`: the inference node serves the trained model and one inference
//! is bought with x402. Optionally the official x402 TypeScript client pays too, refused
//! payments are checked against the running node (also across a restart), and paid, cached and
//! unpaid requests are measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, TxHash, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use autonet_bindings::{InferenceMarket, Project};
use autonet_inference::client;
use autonet_x402::channel::SCHEME_BATCH_SETTLEMENT;
use autonet_x402::{
    PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER, PaymentSigner, codes,
    decode_payment_required, encode_payment_signature, unix_now,
};
use serde_json::{Value, json};

use super::network::{Network, NetworkError};
use crate::amount::format_atn;
use crate::commands::CommandError;
use autonet_protocol::units::display_atn;

fn err(e: impl std::fmt::Display) -> CommandError {
    CommandError::Invalid(e.to_string())
}

/// What the sale showed.
pub struct Sale {
    /// Printed lines.
    pub text: String,
    /// JSON for `--json`.
    pub json: Value,
}

/// The split of one settlement, from its `Settled` event.
async fn split_of(net: &Network, tx: TxHash) -> Result<InferenceMarket::Settled, CommandError> {
    let started = Instant::now();
    loop {
        if let Some(r) = net
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(err)?
        {
            for l in r.inner.logs() {
                if let Ok(e) = l.log_decode::<InferenceMarket::Settled>() {
                    return Ok(e.inner.data);
                }
            }
            return Err(err(format!("settlement {tx} emitted no Settled event")));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(err(format!("settlement {tx} was not mined within 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the node serves the project's current model (it polls every second).
async fn wait_serving_head(net: &Network, base: &str) -> Result<String, CommandError> {
    let project = autonet_bindings::Project::new(net.contracts.project, net.provider.clone());
    let head = project
        .modelRoot(U256::from(net.project_id))
        .call()
        .await
        .map_err(err)?;
    let started = Instant::now();
    loop {
        let r = reqwest::get(format!("{base}/v1/model"))
            .await
            .map_err(err)?;
        let v: Value = serde_json::from_slice(&r.bytes().await.map_err(err)?).unwrap_or_default();
        if v["model"].as_str() == Some(head.to_string().as_str()) {
            let log = std::fs::read_to_string(net.opts.dir.join("inference/agent.log"))
                .unwrap_or_default();
            let swaps = log.matches("now serving the new model").count();
            if swaps == 0 && net.opts.rounds > 1 {
                return Err(err(
                    "the inference node, started after round 1, never swapped in a later model",
                ));
            }
            return Ok(if swaps > 0 {
                format!(" (swapped in live: {swaps} new model(s) followed while serving)")
            } else {
                String::new()
            });
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(err(format!(
                "the inference node serves {} but the project's model is {head}",
                v["model"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Starts the inference node, buys one generation and reports the output and the split.
pub async fn sell(
    net: &mut Network,
    official_client: bool,
    bench: usize,
) -> Result<Sale, CommandError> {
    let base = net
        .start_inference(Duration::from_secs(180))
        .await
        .map_err(|e| err(format!("starting the inference node: {e}")))?;
    let url = format!("{base}/v1/generate");
    let served = wait_serving_head(net, &base).await?;
    let buyer = net.funded_payer(10).await.map_err(net_err)?;
    let body = json!({"prompt": "fn main() {", "max_tokens": 48, "temperature": 0.7, "seed": 7});
    let (chain, atn) = (net.opts.chain_id, net.contracts.atn_token);
    let one_atn = U256::from(10).pow(U256::from(18));
    let a = client::generate(&url, &body, buyer.clone(), chain, atn, one_atn)
        .await
        .map_err(err)?;
    let s = a
        .settlement
        .clone()
        .filter(|s| s.success)
        .ok_or_else(|| err("the paid request returned no successful PAYMENT-RESPONSE"))?;
    let tx: TxHash = s.transaction.parse().map_err(err)?;
    let split = split_of(net, tx).await?;
    let output = a.body["output"].as_str().unwrap_or_default().to_string();
    let mut text = format!(
        "\ninference: {base} serves model {}{served}\n  bought one generation with x402 for {} ATN (payer {}, tx {tx})\n  prompt  {:?}\n  output  {:?}\n  split   provider {} ATN, contributors {} ATN, treasury {} ATN\n",
        a.body["model"].as_str().unwrap_or("?"),
        format_atn(split.value),
        buyer.address(),
        body["prompt"].as_str().unwrap_or_default(),
        output,
        format_atn(split.providerShare),
        format_atn(split.contributorShare),
        format_atn(split.treasuryShare),
    );
    if split.providerShare + split.contributorShare + split.treasuryShare != split.value {
        return Err(err("the settlement's shares do not add up to the price"));
    }
    let mut json = json!({
        "url": url,
        "model": a.body["model"],
        "output": output,
        "tx": tx.to_string(),
        "value": split.value.to_string(),
        "provider": split.providerShare.to_string(),
        "contributors": split.contributorShare.to_string(),
        "treasury": split.treasuryShare.to_string(),
    });
    let mut base = base;
    if official_client {
        let (line, exact_tx) = pay_with_official_client(net, &url).await?;
        text.push_str(&line);
        // A later exact settlement (the first one also deployed the node's payment receiver).
        let exact_gas = gas_of(net, exact_tx).await?;
        let (line, channel) = buy_through_channel(net, &base, &url, split.value, exact_gas).await?;
        text.push_str(&line);
        json["channel"] = channel;
        let (line, restarted) = refused_payments(net, &url, &buyer).await?;
        text.push_str(&line);
        base = restarted;
        text.push_str(&claims(net).await?);
    } else {
        // The same purchase twice more, each way: one more `exact` payment (the first one also
        // deployed the node's payment receiver) and a payment channel for a few requests.
        let b = client::generate(&url, &body, buyer.clone(), chain, atn, one_atn)
            .await
            .map_err(err)?;
        let exact_tx: TxHash = b
            .settlement
            .filter(|s| s.success)
            .ok_or_else(|| err("the second paid request returned no successful PAYMENT-RESPONSE"))?
            .transaction
            .parse()
            .map_err(err)?;
        let exact_gas = gas_of(net, exact_tx).await?;
        let (line, channel) = buy_through_own_channel(net, &base, &url, exact_gas).await?;
        text.push_str(&line);
        json["channel"] = channel;
    }
    if let Some(draft) = net.draft_project {
        let (t, j) = two_speeds(net, &base, draft).await?;
        text.push_str(&t);
        json["speculation"] = j;
    }
    if bench > 0 {
        let (t, j) = measure(net, &base, &buyer, bench).await?;
        text.push_str(&t);
        json["bench"] = j;
    }
    Ok(Sale { text, json })
}

/// Greedy requests the node answers by its two speeds.
const TWO_SPEED_REQUESTS: usize = 24;

/// With a draft project: waits until the node drafts with the draft project's current model,
/// sends [`TWO_SPEED_REQUESTS`] greedy requests (unpaid route; prompts of held-out code) and
/// one repeated, and
/// reports the node's split by path, its acceptance rate and the speeds it measured for both
/// paths (`--speculate auto` uses the faster). Fails unless the draft served some of them and
/// the cache the repeated one.
async fn two_speeds(
    net: &Network,
    base: &str,
    draft_project: u64,
) -> Result<(String, Value), CommandError> {
    let http = reqwest::Client::new();
    let get = |path: &'static str| json_of(http.get(format!("{base}{path}")));
    let want = Project::new(net.contracts.project, net.provider.clone())
        .modelRoot(U256::from(draft_project))
        .call()
        .await
        .map_err(err)?
        .to_string();
    let started = Instant::now();
    loop {
        let info = get("/v1/model").await?;
        if info["draft"]["model"].as_str() == Some(want.as_str()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(err(format!(
                "the inference node drafts with {} after 120 s, not the draft project's model {want}",
                info["draft"]["model"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = get("/api/status").await?["inference"].clone();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    // Prompts of held-out code, as the devnet summary measures speculation with.
    let data = net.dataset().map_err(net_err)?;
    let prompts =
        autonet_ml::speculative::held_out_prompts(&data.eval_chunks(), TWO_SPEED_REQUESTS, 16);
    if prompts.len() != TWO_SPEED_REQUESTS {
        return Err(err("no held-out chunk of 1 KiB to cut prompts from"));
    }
    let ask = |i: usize| json!({"prompt": String::from_utf8_lossy(&prompts[i]), "max_tokens": 64, "temperature": 0});
    let mut paths = BTreeMap::<String, usize>::new();
    for i in 0..=TWO_SPEED_REQUESTS {
        let body = ask(i.min(TWO_SPEED_REQUESTS - 1));
        let r = json_of(
            http.post(format!("{base}/v1/free/generate"))
                .body(body.to_string()),
        )
        .await?;
        let path = r["path"]
            .as_str()
            .ok_or_else(|| err(format!("an answer without `path`: {r}")))?;
        *paths.entry(path.to_string()).or_default() += 1;
    }
    let after = get("/api/status").await?["inference"].clone();
    let model = get("/v1/model").await?;
    let d = |k: &str| n(&after, k) - n(&before, k);
    if paths.get("speculative").copied().unwrap_or(0) == 0 || !paths.contains_key("cache") {
        return Err(err(format!(
            "{} greedy requests and a repeat were served {paths:?}: expected some speculative and the repeat from cache",
            TWO_SPEED_REQUESTS
        )));
    }
    if d("speculative") + d("full") + d("cache") != TWO_SPEED_REQUESTS as u64 + 1 {
        return Err(err(format!(
            "the status page counted {after} after {before}, the answers said {paths:?}"
        )));
    }
    let (proposed, accepted) = (d("draft_proposed"), d("draft_accepted"));
    let speeds = &model["draft"]["speeds"];
    let ms = |k: &str| speeds[k].as_f64().map_or("–".into(), |v| format!("{v:.3}"));
    let text = format!(
        "  two speeds on the node (draft project {draft_project}, `--speculate auto`, {TWO_SPEED_REQUESTS} greedy requests of 64 bytes after held-out code, and one repeat): {} speculative, {} full, {} from cache; draft acceptance {:.2} ({accepted} of {proposed} bytes); the node measured {} ms/byte with the full model, {} ms/byte speculative\n",
        d("speculative"),
        d("full"),
        d("cache"),
        accepted as f64 / proposed.max(1) as f64,
        ms("full_ms_per_byte"),
        ms("speculative_ms_per_byte"),
    );
    Ok((
        text,
        json!({"paths": paths, "status": after, "draft": model["draft"]}),
    ))
}

/// Sends `request` and parses its body as JSON.
async fn json_of(request: reqwest::RequestBuilder) -> Result<Value, CommandError> {
    let body = request
        .send()
        .await
        .map_err(err)?
        .bytes()
        .await
        .map_err(err)?;
    serde_json::from_slice(&body).map_err(err)
}

fn net_err(e: NetworkError) -> CommandError {
    err(e)
}

/// The node's `PAYMENT-REQUIRED` for a request to `url`.
async fn payment_required(url: &str) -> Result<autonet_x402::PaymentRequired, CommandError> {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"prompt": "x"}).to_string())
        .send()
        .await
        .map_err(err)?;
    r.headers()
        .get(PAYMENT_REQUIRED_HEADER)
        .and_then(|h| h.to_str().ok())
        .map(decode_payment_required)
        .transpose()
        .map_err(err)?
        .ok_or_else(|| err("no PAYMENT-REQUIRED header"))
}

/// Has the node at `base` claim its channel vouchers now (`POST /v1/channels/claim`) and checks
/// that it claimed `expected` wei in one or two transactions, which it returns.
async fn claim_through_node(base: &str, expected: u128) -> Result<Vec<TxHash>, CommandError> {
    let claim = json_of(reqwest::Client::new().post(format!("{base}/v1/channels/claim"))).await?;
    let txs: Vec<TxHash> = claim["transactions"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if txs.is_empty() || txs.len() > 2 || claim["claimed_wei"] != expected.to_string() {
        return Err(err(format!(
            "the node did not claim {expected} wei of channel vouchers in one or two transactions: {claim}"
        )));
    }
    Ok(txs)
}

/// Generations bought through the devnet's own payment channel (`autonet devnet` without
/// `--check-payments`, which has the official client buy 1,000).
const OWN_CHANNEL_REQUESTS: usize = 10;

/// Opens a payment channel from Rust (the deposit rides on the first request), buys
/// [`OWN_CHANNEL_REQUESTS`] generations with it, has the node claim them, and prints the cost
/// per request of both schemes.
async fn buy_through_own_channel(
    net: &Network,
    base: &str,
    url: &str,
    exact_gas: u64,
) -> Result<(String, Value), CommandError> {
    let required = payment_required(url).await?;
    let Some(offer) = required
        .accepts
        .iter()
        .find(|a| a.scheme == SCHEME_BATCH_SETTLEMENT)
    else {
        return Ok((
            "  payment channels: not offered (no channel contract on this chain)\n".into(),
            Value::Null,
        ));
    };
    if net.opts.netns {
        // The node runs in its own namespace and takes claim requests from its own machine
        // only: the channel purchase, which ends with one, is left to the loopback devnets.
        return Ok((
            "  payment channel purchase: skipped (the node's claim route answers loopback only, and it runs in its own network namespace)\n".into(),
            Value::Null,
        ));
    }
    let mut channel = open_bench_channel(net, url, offer, OWN_CHANNEL_REQUESTS - 1).await?;
    let body = json!({"prompt": "fn main() {", "max_tokens": 16, "temperature": 0.0});
    for i in 1..OWN_CHANNEL_REQUESTS {
        let header = channel.next_voucher()?;
        let (s, v) = post(url, &body, Some(&header)).await?;
        if s != 200 {
            return Err(err(format!("channel request {i}: {s} {v}")));
        }
    }
    let txs = claim_through_node(base, channel.charged).await?;
    let mut gas = gas_of(net, channel.deposit_tx).await?;
    for tx in &txs {
        gas += gas_of(net, *tx).await?;
    }
    let per_request = gas as f64 / OWN_CHANNEL_REQUESTS as f64;
    let text = format!(
        "  bought {OWN_CHANNEL_REQUESTS} generations through a payment channel (batch-settlement) for {} ATN: deposit tx {}, claimed in {} transaction(s)\n  cost: exact {exact_gas} gas per request (one settlement each); channel {gas} gas for {OWN_CHANNEL_REQUESTS} requests = {per_request:.0} gas per request (deposit + claim + collect; 1,000 requests through one channel cost 328 gas each, `--check-payments`)\n",
        display_atn(U256::from(channel.charged)),
        channel.deposit_tx,
        txs.len(),
    );
    let json = json!({
        "requests": OWN_CHANNEL_REQUESTS,
        "deposit_tx": channel.deposit_tx.to_string(),
        "claim_transactions": txs.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "exact_gas_per_request": exact_gas,
        "gas_total": gas,
        "gas_per_request": per_request,
    });
    Ok((text, json))
}

/// Runs the official x402 client (`@x402/fetch` + `@x402/evm`, script/x402-pay.mjs) as a
/// freshly funded payer: POSTs `body` to `url` with `extra` arguments; returns its report and
/// the payer. Fails unless the client was served.
async fn official_client(
    net: &Network,
    url: &str,
    body: &Value,
    extra: &[&str],
) -> Result<(Value, Address), CommandError> {
    let payer = net.funded_payer(5).await.map_err(net_err)?;
    let repo = net.opts.repo.clone();
    let script = repo.join("script/x402-pay.mjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(url)
        .args(["--method", "POST", "--body"])
        .arg(body.to_string())
        .args(["--network", &format!("eip155:{}", net.opts.chain_id)])
        .args(extra)
        .current_dir(&repo)
        .env("X402_PAYER_KEY", payer.to_bytes().to_string())
        .output()
        .await
        .map_err(|e| err(format!("running node {}: {e}", script.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(err(format!(
            "the official x402 client failed ({}): {stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        err(format!(
            "the official client printed no JSON ({e}): {stdout}"
        ))
    })?;
    if v["status"] != 200 || v["paymentResponse"]["success"] != true {
        return Err(err(format!("the official client was not served: {v}")));
    }
    Ok((v, payer.address()))
}

/// The settlement transaction of an official client's report, and its split on chain.
async fn settled_split(
    net: &Network,
    report: &Value,
) -> Result<(TxHash, InferenceMarket::Settled), CommandError> {
    let tx: TxHash = report["paymentResponse"]["transaction"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(err)?;
    Ok((tx, split_of(net, tx).await?))
}

/// Pays the node with `@x402/fetch` + `@x402/evm` (script/x402-pay.mjs): one JSON answer, one
/// streamed answer (settled before its first byte, its bytes joined equal to its `done`
/// event's output), and one stream the client leaves after its first byte (paid all the same).
async fn pay_with_official_client(
    net: &Network,
    url: &str,
) -> Result<(String, TxHash), CommandError> {
    let body = json!({"prompt": "pub fn", "max_tokens": 24, "temperature": 0.7, "seed": 3});
    let (v, payer) = official_client(net, url, &body, &[]).await?;
    let (tx, split) = settled_split(net, &v).await?;
    let exact_tx = tx;
    let served: Value = v["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let Some(output) = served["output"].as_str() else {
        return Err(err(format!(
            "the official client's answer has no output: {v}"
        )));
    };
    let mut text = format!(
        "  the official x402 client (@x402/fetch + @x402/evm) paid {} ATN as {payer} and got {output:?} (tx {tx})\n",
        format_atn(split.value),
    );

    let body =
        json!({"prompt": "impl Default for", "max_tokens": 32, "temperature": 0, "stream": true});
    let (v, payer) = official_client(net, url, &body, &["--stream"]).await?;
    let (tx, split) = settled_split(net, &v).await?;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    let Some((done, tokens)) = events.split_last() else {
        return Err(err(format!("the streamed answer had no events: {v}")));
    };
    let joined: String = tokens
        .iter()
        .filter(|e| e["event"] == "token")
        .filter_map(|e| e["data"]["text"].as_str())
        .collect();
    if done["event"] != "done" || tokens.len() < 2 || done["data"]["output"] != joined.as_str() {
        return Err(err(format!(
            "the streamed answer is not token events joining to its done event's output: {v}"
        )));
    }
    text.push_str(&format!(
        "  streamed (\"stream\": true) to the official client as {payer}: settled for {} ATN before the first byte (tx {tx}); {} token events, the first after {:.0} ms, done after {:.0} ms, joined {joined:?}\n",
        format_atn(split.value),
        tokens.len(),
        tokens[0]["ms"].as_f64().unwrap_or_default(),
        done["ms"].as_f64().unwrap_or_default(),
    ));

    let body =
        json!({"prompt": "struct Node {", "max_tokens": 512, "temperature": 0, "stream": true});
    let (v, payer) = official_client(net, url, &body, &["--disconnect-after", "1"]).await?;
    if v["disconnected"] != true {
        return Err(err(format!(
            "the client was to disconnect after one token event: {v}"
        )));
    }
    let (tx, split) = settled_split(net, &v).await?;
    text.push_str(&format!(
        "  a client that left its stream after the first byte ({payer}) paid {} ATN all the same (tx {tx})\n",
        format_atn(split.value),
    ));
    Ok((text, exact_tx))
}

/// Gas used by `tx`.
async fn gas_of(net: &Network, tx: TxHash) -> Result<u64, CommandError> {
    let started = Instant::now();
    loop {
        if let Some(r) = net
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(err)?
        {
            return Ok(r.gas_used);
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(err(format!("{tx} was not mined within 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Requests bought through one payment channel by the official client.
const CHANNEL_REQUESTS: u64 = 1000;

/// The official client opens a payment channel (`batch-settlement`) and makes
/// [`CHANNEL_REQUESTS`] paid requests; its last voucher replayed and a voucher above the deposit
/// are refused with their codes; the node claims everything in at most two transactions and the
/// InferenceMarket splits it like `exact`. Prints both schemes' costs.
async fn buy_through_channel(
    net: &Network,
    base: &str,
    url: &str,
    price: U256,
    exact_gas: u64,
) -> Result<(String, Value), CommandError> {
    use autonet_x402::channel::{
        ChannelPayload, ChannelPaymentPayload, WireChannelConfig, channel_codes, sign_voucher,
    };
    let price_u128: u128 = price.to();
    let deposit_atn =
        (price_u128 * u128::from(CHANNEL_REQUESTS)).div_ceil(10u128.pow(18)) as u64 + 1;
    let payer = net.funded_payer(deposit_atn).await.map_err(net_err)?;
    let repo = net.opts.repo.clone();
    let script = repo.join("script/x402-pay.mjs");
    let body = json!({"prompt": "fn add(a: u32, b: u32)", "max_tokens": 8, "temperature": 0});
    let started = Instant::now();
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(url)
        .args(["--method", "POST", "--body"])
        .arg(body.to_string())
        .args(["--network", &format!("eip155:{}", net.opts.chain_id)])
        .args(["--scheme", SCHEME_BATCH_SETTLEMENT])
        .args(["--requests", &CHANNEL_REQUESTS.to_string()])
        .args(["--deposit-multiplier", &CHANNEL_REQUESTS.to_string()])
        .arg("--replay-last")
        .current_dir(&repo)
        .env("X402_PAYER_KEY", payer.to_bytes().to_string())
        .output()
        .await
        .map_err(|e| err(format!("running node {}: {e}", script.display())))?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        err(format!(
            "the official client printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    if !out.status.success() || v["ok"] != CHANNEL_REQUESTS {
        return Err(err(format!(
            "the official client's {CHANNEL_REQUESTS} channel requests were not all served: {v}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let first = &v["first"]["paymentResponse"];
    let deposit_tx: TxHash = first["transaction"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| {
            err(format!(
                "the first channel request carried no deposit transaction ({e}): {first}"
            ))
        })?;
    let last_state = &v["last"]["paymentResponse"]["extra"]["channelState"];
    let charged: u128 = last_state["chargedCumulativeAmount"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    if charged != price_u128 * u128::from(CHANNEL_REQUESTS) {
        return Err(err(format!(
            "the channel was charged {charged} wei for {CHANNEL_REQUESTS} requests at {price} wei: {last_state}"
        )));
    }
    let replay = &v["replay"];
    if replay["status"] != 402
        || replay["paymentRequired"]["error"] != channel_codes::AMOUNT_MISMATCH
    {
        return Err(err(format!(
            "the replayed last voucher was not refused as a stale voucher: {replay}"
        )));
    }
    // A voucher above what the channel holds (the deposit is exactly spent).
    let required = payment_required(url).await?;
    let offer = required
        .accepts
        .iter()
        .find(|a| a.scheme == SCHEME_BATCH_SETTLEMENT)
        .cloned()
        .ok_or_else(|| err("the node offers no batch-settlement requirement"))?;
    let config = WireChannelConfig::for_offer(payer.address(), &offer).ok_or_else(|| {
        err(format!(
            "the node's batch-settlement offer is incomplete: {offer:?}"
        ))
    })?;
    let voucher =
        sign_voucher(&payer, &config, charged + price_u128, net.opts.chain_id).map_err(err)?;
    let header = autonet_x402::header::encode_header(&ChannelPaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: offer,
        payload: ChannelPayload::Voucher {
            channel_config: config,
            voucher,
        },
    })
    .map_err(err)?;
    let (status, refused) = post(url, &body, Some(&header)).await?;
    if status != 402 || refused["code"] != channel_codes::EXCEEDS_BALANCE {
        return Err(err(format!(
            "a voucher above the deposit was not refused: {status} {refused}"
        )));
    }
    // The claim: one multicall(claim, settle), then InferenceMarket.collect.
    let txs = claim_through_node(base, charged).await?;
    let collect_tx = *txs.last().unwrap_or(&txs[0]);
    let collected = {
        let r = net
            .provider
            .get_transaction_receipt(collect_tx)
            .await
            .map_err(err)?
            .ok_or_else(|| err("the collect transaction has no receipt"))?;
        r.inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<InferenceMarket::Collected>().ok())
            .map(|e| e.inner.data)
            .ok_or_else(|| err(format!("{collect_tx} emitted no Collected event")))?
    };
    let sum = collected.providerShare + collected.contributorShare + collected.treasuryShare;
    if collected.value != U256::from(charged) || sum != collected.value {
        return Err(err(format!(
            "the market split {} of the {charged} wei claimed (shares sum {sum})",
            collected.value
        )));
    }
    let mut gas = gas_of(net, deposit_tx).await?;
    for tx in &txs {
        gas += gas_of(net, *tx).await?;
    }
    let per_request = gas as f64 / CHANNEL_REQUESTS as f64;
    let text = format!(
        "  payment channel (batch-settlement) by the official client as {}: {CHANNEL_REQUESTS} paid requests in {:.1} s (p50 {:.1} ms per request incl. its 402), one deposit of {} ATN (tx {deposit_tx}); the replayed last voucher refused ({}), a voucher above the deposit refused ({})\n  claimed {} ATN for {CHANNEL_REQUESTS} requests in {} transaction(s) ({}), split provider {} / contributors {} / treasury {} ATN\n  cost: exact {exact_gas} gas per request (one settle each); channel {gas} gas for {CHANNEL_REQUESTS} requests = {per_request:.0} gas per request (deposit + claim + collect), {:.0}x less\n",
        payer.address(),
        elapsed.as_secs_f64(),
        v["ms"]["p50"].as_f64().unwrap_or_default(),
        display_atn(
            first["amount"]
                .as_str()
                .and_then(|a| a.parse::<U256>().ok())
                .unwrap_or_default()
        ),
        channel_codes::AMOUNT_MISMATCH,
        channel_codes::EXCEEDS_BALANCE,
        display_atn(collected.value),
        txs.len(),
        txs.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        display_atn(collected.providerShare),
        display_atn(collected.contributorShare),
        display_atn(collected.treasuryShare),
        exact_gas as f64 / per_request,
    );
    let json = json!({
        "requests": CHANNEL_REQUESTS,
        "exact_gas_per_request": exact_gas,
        "deposit_tx": deposit_tx.to_string(),
        "claim_transactions": txs.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "claimed": charged.to_string(),
        "gas_total": gas,
        "gas_per_request": per_request,
        "seconds": elapsed.as_secs_f64(),
    });
    Ok((text, json))
}

async fn post(
    url: &str,
    body: &Value,
    payment: Option<&str>,
) -> Result<(u16, Value), CommandError> {
    let http = reqwest::Client::new();
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(p) = payment {
        req = req.header(PAYMENT_SIGNATURE_HEADER, p);
    }
    let r = req.send().await.map_err(err)?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await.map_err(err)?;
    let v = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
    Ok((status, v))
}

/// Bad payments against the running node: each is refused with its x402 code and nothing is
/// settled; a replay stays refused after the node restarts.
async fn refused_payments(
    net: &mut Network,
    url: &str,
    buyer: &PrivateKeySigner,
) -> Result<(String, String), CommandError> {
    let body = json!({"prompt": "let x", "max_tokens": 4, "temperature": 0.0});
    let http = reqwest::Client::new();
    let first = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(err)?;
    let required_header = first
        .headers()
        .get(PAYMENT_REQUIRED_HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| err("no PAYMENT-REQUIRED header"))?
        .to_string();
    let required = decode_payment_required(&required_header).map_err(err)?;
    let signer = PaymentSigner::new(buyer.clone());
    let now = unix_now();
    let good = signer.sign(&required, now).map_err(err)?;
    let market = InferenceMarket::new(net.contracts.market, net.provider.clone());
    let settled_before = market.accountedBalance().call().await.map_err(err)?;

    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    // Underpaid: one wei less than the price (the signature then no longer matters).
    let mut under = good.clone();
    under.payload.authorization.value -= U256::from(1);
    cases.push((
        "underpaid",
        encode_payment_signature(&under),
        codes::VALUE_MISMATCH,
    ));
    // Expired: signed long ago.
    let expired = signer.sign(&required, now - 3_600).map_err(err)?;
    cases.push((
        "expired",
        encode_payment_signature(&expired),
        codes::VALID_BEFORE,
    ));
    // Wrong asset: a valid signature for another token.
    let mut other = required.clone();
    other.accepts[0].asset = Address::repeat_byte(0x42).to_checksum(None);
    let wrong_asset = signer.sign(&other, now).map_err(err)?;
    cases.push((
        "wrong asset",
        encode_payment_signature(&wrong_asset),
        codes::INVALID_PAYMENT_REQUIREMENTS,
    ));
    // Forged: the signature of another key.
    let forged = PaymentSigner::new(PrivateKeySigner::random())
        .sign(&required, now)
        .map_err(err)?;
    let mut forged_from = good.clone();
    forged_from.payload.signature = forged.payload.signature.clone();
    cases.push((
        "forged signature",
        encode_payment_signature(&forged_from),
        codes::SIGNATURE,
    ));
    cases.push((
        "malformed",
        "not-base64-json".into(),
        codes::INVALID_PAYLOAD,
    ));

    let mut lines = String::from("  refused payments (402, nothing settled):");
    for (what, header, code) in &cases {
        let (status, v) = post(url, &body, Some(header)).await?;
        if status != 402 || v["code"] != *code {
            return Err(err(format!(
                "a {what} payment was answered {status} {v} (expected 402 with {code})"
            )));
        }
        lines.push_str(&format!(" {what} → {code};"));
    }
    // The good one is served once, and a replay is refused — also after a restart.
    let good_header = encode_payment_signature(&good);
    let (status, v) = post(url, &body, Some(&good_header)).await?;
    if status != 200 {
        return Err(err(format!("a valid payment was answered {status} {v}")));
    }
    let (status, v) = post(url, &body, Some(&good_header)).await?;
    if status != 402 || v["code"] != codes::NONCE_ALREADY_USED {
        return Err(err(format!("a replayed payment was answered {status} {v}")));
    }
    net.kill("inference").map_err(net_err)?;
    let base = net
        .start_inference(Duration::from_secs(180))
        .await
        .map_err(net_err)?;
    let url = format!("{base}/v1/generate");
    let (status, v) = post(&url, &body, Some(&good_header)).await?;
    if status != 402 || v["code"] != codes::NONCE_ALREADY_USED {
        return Err(err(format!(
            "after a restart a replayed payment was answered {status} {v}"
        )));
    }
    lines.push_str(" replay → refused, also after a restart\n");
    // Exactly one more settlement than before the bad ones: the valid payment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled_after = market.accountedBalance().call().await.map_err(err)?;
    let price = required.accepts[0].amount_value().unwrap_or_default();
    if settled_after != settled_before + price {
        return Err(err(format!(
            "the market accounted {} ATN during the bad payments, expected exactly one price ({})",
            format_atn(settled_after - settled_before),
            format_atn(price)
        )));
    }
    Ok((lines, base))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Requests per second and latency of four request kinds, one at a time on loopback:
/// unpaid uncached, paid uncached, unpaid cached and paid cached.
async fn measure(
    net: &Network,
    base: &str,
    buyer: &PrivateKeySigner,
    n: usize,
) -> Result<(String, Value), CommandError> {
    let paid_url = format!("{base}/v1/generate");
    let free_url = format!("{base}/v1/free/generate");
    let required = payment_required(&paid_url).await?;
    let signer = PaymentSigner::new(buyer.clone());
    // A payment channel, when offered: one deposit covering every channel request, then one
    // voucher per request (signed ahead, like the exact authorizations).
    let channel = match required
        .accepts
        .iter()
        .find(|a| a.scheme == SCHEME_BATCH_SETTLEMENT)
    {
        Some(offer) => Some(open_bench_channel(net, &paid_url, offer, 2 * n + 2).await?),
        None => None,
    };
    let mut text = format!(
        "  inference load ({n} sequential requests each, loopback; 32 bytes generated by the {} model):\n    kind                 req/s     p50 ms    p90 ms\n",
        net.opts.spec.preset
    );
    let mut out = serde_json::Map::new();
    let mut kinds = vec![
        ("unpaid uncached", Pay::Free, false),
        ("paid uncached", Pay::Exact, false),
    ];
    if channel.is_some() {
        kinds.push(("channel uncached", Pay::Channel, false));
    }
    kinds.extend([
        ("unpaid cached", Pay::Free, true),
        ("paid cached", Pay::Exact, true),
    ]);
    if channel.is_some() {
        kinds.push(("channel cached", Pay::Channel, true));
    }
    let mut channel = channel;
    for (kind, pay, cached) in kinds {
        // Distinct prompts miss the cache; the cached runs repeat one warmed prompt.
        let tag = kind.split(' ').next().unwrap_or(kind);
        let prompt = |i: usize| {
            if cached {
                format!("cached-{tag}")
            } else {
                format!("fn f{i}_{tag}(")
            }
        };
        let body = |i: usize| json!({"prompt": prompt(i), "max_tokens": 32, "temperature": 0.0});
        let count = if cached { n + 1 } else { n };
        let headers: Vec<Option<String>> = match pay {
            Pay::Free => vec![None; count],
            Pay::Exact => (0..count)
                .map(|_| {
                    signer
                        .sign(&required, unix_now())
                        .map(|p| Some(encode_payment_signature(&p)))
                })
                .collect::<Result<_, _>>()
                .map_err(err)?,
            Pay::Channel => {
                let c = channel.as_mut().ok_or_else(|| err("no channel"))?;
                (0..count)
                    .map(|_| c.next_voucher().map(Some))
                    .collect::<Result<_, _>>()?
            }
        };
        let url = if matches!(pay, Pay::Free) {
            &free_url
        } else {
            &paid_url
        };
        // Channel vouchers are cumulative: they are spent in order (the warm-up takes the first).
        let timed = if cached {
            let (s, v) = post(url, &body(0), headers[0].as_deref()).await?;
            if s != 200 {
                return Err(err(format!("warming the cache: {s} {v}")));
            }
            &headers[1..]
        } else {
            &headers[..n]
        };
        let mut lat = Vec::with_capacity(n);
        let started = Instant::now();
        for (i, h) in timed.iter().enumerate() {
            let t = Instant::now();
            let (s, v) = post(url, &body(i + 1), h.as_deref()).await?;
            if s != 200 || v["cached"] != cached {
                return Err(err(format!("{kind} request {i}: {s} {v}")));
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let rps = n as f64 / started.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let (p50, p90) = (percentile(&lat, 0.5), percentile(&lat, 0.9));
        text.push_str(&format!(
            "    {kind:<18} {rps:>7.1}  {p50:>9.2} {p90:>9.2}\n"
        ));
        out.insert(
            kind.into(),
            json!({"rps": rps, "p50_ms": p50, "p90_ms": p90}),
        );
    }
    Ok((text, Value::Object(out)))
}

/// How a measured request pays.
#[derive(Clone, Copy)]
enum Pay {
    Free,
    Exact,
    Channel,
}

/// A channel opened for the benchmark: the payer, its config and the charged total so far.
struct BenchChannel {
    payer: PrivateKeySigner,
    offer: autonet_x402::PaymentRequirements,
    config: autonet_x402::channel::WireChannelConfig,
    chain_id: u64,
    charged: u128,
    price: u128,
    deposit_tx: TxHash,
}

impl BenchChannel {
    /// The `PAYMENT-SIGNATURE` of the next request (the ceiling one price higher).
    fn next_voucher(&mut self) -> Result<String, CommandError> {
        use autonet_x402::channel::{ChannelPayload, ChannelPaymentPayload, sign_voucher};
        self.charged += self.price;
        let voucher =
            sign_voucher(&self.payer, &self.config, self.charged, self.chain_id).map_err(err)?;
        autonet_x402::header::encode_header(&ChannelPaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: self.offer.clone(),
            payload: ChannelPayload::Voucher {
                channel_config: self.config.clone(),
                voucher,
            },
        })
        .map_err(err)
    }
}

/// Opens a channel on the node at `url` funded for `requests` more requests (one paid request
/// carries the deposit).
async fn open_bench_channel(
    net: &Network,
    url: &str,
    offer: &autonet_x402::PaymentRequirements,
    requests: usize,
) -> Result<BenchChannel, CommandError> {
    use autonet_x402::channel::{
        ChannelPayload, ChannelPaymentPayload, WireChannelConfig, sign_deposit, sign_voucher,
    };
    let price: u128 = offer.amount_value().unwrap_or_default().to();
    let amount = price * (requests as u128 + 1);
    let payer = net
        .funded_payer((amount / 10u128.pow(18)) as u64 + 1)
        .await
        .map_err(net_err)?;
    let config = WireChannelConfig::for_offer(payer.address(), offer).ok_or_else(|| {
        err(format!(
            "the node's batch-settlement offer is incomplete: {offer:?}"
        ))
    })?;
    let chain_id = net.opts.chain_id;
    let (name, version) = offer.eip712_name_version().unwrap_or(("Autonet", "1"));
    let deposit = sign_deposit(
        &payer,
        &config,
        amount,
        (name, version),
        chain_id,
        unix_now() + 120,
        U256::from(unix_now()),
    )
    .map_err(err)?;
    let header = autonet_x402::header::encode_header(&ChannelPaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: offer.clone(),
        payload: ChannelPayload::Deposit {
            channel_config: config.clone(),
            voucher: sign_voucher(&payer, &config, price, chain_id).map_err(err)?,
            deposit,
        },
    })
    .map_err(err)?;
    let body = json!({"prompt": "open", "max_tokens": 1, "temperature": 0.0});
    let opened = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(PAYMENT_SIGNATURE_HEADER, &header)
        .body(body.to_string())
        .send()
        .await
        .map_err(err)?;
    let status = opened.status();
    let deposit_tx = opened
        .headers()
        .get(autonet_x402::PAYMENT_RESPONSE_HEADER)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| autonet_x402::decode_payment_response(h).ok())
        .and_then(|r| r.transaction.parse::<TxHash>().ok());
    let Some(deposit_tx) = deposit_tx.filter(|_| status.is_success()) else {
        let v = opened.text().await.unwrap_or_default();
        return Err(err(format!("opening a payment channel: {status} {v}")));
    };
    Ok(BenchChannel {
        payer,
        offer: offer.clone(),
        config,
        chain_id,
        charged: price,
        price,
        deposit_tx,
    })
}

/// Loads a coordinator's status page in headless Chromium (script/check-status-page.sh) and
/// checks that its loss chart shows one point per round, against wall-clock time (anvil's logs
/// carry each block's timestamp, which the agents record with each proposal).
pub async fn check_status_page(net: &Network, rounds: u64) -> Result<String, CommandError> {
    let url = format!("{}/", coordinator_endpoint(net)?);
    let script = net.opts.repo.join("script/check-status-page.sh");
    // Ψ needs a round before it (velocity): one point per round after the first.
    let psi_points = rounds.saturating_sub(1);
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&url)
        .arg(rounds.to_string())
        .arg(psi_points.to_string())
        .output()
        .await
        .map_err(|e| err(format!("running {}: {e}", script.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(err(format!("the status page check failed: {text}")));
    }
    if !text.contains("(x axis: time,") {
        return Err(err(format!(
            "the status page plots loss by round, not against wall-clock time (a round's \
             proposal time was not recorded): {text}"
        )));
    }
    Ok(format!(
        "  status page {url}: headless Chromium rendered the loss chart with {rounds} points \
         against wall-clock time and the colony-health chart with at least {psi_points}\n"
    ))
}

/// coordinator-1's HTTP endpoint (from its ready file).
fn coordinator_endpoint(net: &Network) -> Result<String, CommandError> {
    let agent = net
        .agents
        .get("coordinator-1")
        .ok_or_else(|| err("no coordinator-1"))?;
    let ready: Value = serde_json::from_str(
        &std::fs::read_to_string(agent.state_dir.join(autonet_agents::READY_FILE)).map_err(err)?,
    )
    .map_err(err)?;
    Ok(ready["endpoint"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string())
}

/// Colony health Ψ and its factors per round, as coordinator-1's status (`/api/status`) computes
/// them (docs/agents.md "Colony health Ψ").
pub async fn colony_health(net: &Network) -> Result<String, CommandError> {
    let url = format!("{}/api/status", coordinator_endpoint(net)?);
    let body = reqwest::get(&url)
        .await
        .map_err(err)?
        .bytes()
        .await
        .map_err(err)?;
    let status: Value = serde_json::from_slice(&body).map_err(err)?;
    let f = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.3}"));
    let mut text = String::from(
        "\n  colony health Ψ = (intelligence × sync × diversity × velocity)^¼, coordinator-1's view:\n    round      Ψ  intelligence   sync  diversity  velocity\n",
    );
    for p in status["psi"].as_array().cloned().unwrap_or_default() {
        text.push_str(&format!(
            "    {:>5} {:>6} {:>13} {:>6} {:>10} {:>9}\n",
            p["round"],
            f(&p["psi"]),
            f(&p["intelligence"]),
            f(&p["sync"]),
            f(&p["diversity"]),
            f(&p["velocity"]),
        ));
    }
    Ok(text)
}

/// `autonet claim` for the inference provider and a contributor (solver-1): each receives
/// exactly what the market (and Rewards) held for it.
async fn claims(net: &Network) -> Result<String, CommandError> {
    use autonet_bindings::{ATNToken, Rewards};
    let market = InferenceMarket::new(net.contracts.market, net.provider.clone());
    let rewards = Rewards::new(net.contracts.rewards, net.provider.clone());
    let token = ATNToken::new(net.contracts.atn_token, net.provider.clone());
    let project = U256::from(net.project_id);
    let mut text = String::from("  autonet claim:");
    for name in ["inference", "solver-1"] {
        let key = net.agents[name].key.clone();
        let me = key.address();
        let provider_share = market.claimable(me).call().await.map_err(err)?;
        let contributor = market
            .pendingContributorRevenue(project, me)
            .call()
            .await
            .map_err(err)?;
        let reward = rewards.claimable(me).call().await.map_err(err)?;
        let before = token.balanceOf(me).call().await.map_err(err)?;
        let ctx = super::network::context(&net.rpc_url, net.contracts.registry, &key)
            .await
            .map_err(net_err)?;
        crate::commands::market::claim(&ctx, net.project_id).await?;
        let after = token.balanceOf(me).call().await.map_err(err)?;
        let want = provider_share + contributor + reward;
        if after - before != want {
            return Err(err(format!(
                "{name} claimed {} ATN, expected {} ATN",
                format_atn(after - before),
                format_atn(want)
            )));
        }
        if name == "inference" && provider_share.is_zero() {
            return Err(err("the inference provider had no revenue to claim"));
        }
        if name == "solver-1" && contributor.is_zero() {
            return Err(err("solver-1 had no contributor revenue to claim"));
        }
        text.push_str(&format!(
            " {name} received {} ATN (inference revenue {}, contributor share {}, rewards {});",
            format_atn(want),
            format_atn(provider_share),
            format_atn(contributor),
            format_atn(reward)
        ));
    }
    text.push('\n');
    Ok(text)
}
