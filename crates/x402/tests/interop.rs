//! Interoperability with the official x402 v2 TypeScript client (`@x402/fetch` + `@x402/evm`
//! 2.27, through `script/x402-pay.mjs`): an axum server built on this crate answers 402 with
//! its `PAYMENT-REQUIRED`, the official client pays, and the server decodes and verifies the
//! `PAYMENT-SIGNATURE` offline with this crate before answering 200 with a `PAYMENT-RESPONSE`.
//!
//! Most tests involve no chain: the token and payTo addresses are arbitrary, the "transaction"
//! in the response is the signed digest. `the_official_client_pays_a_nodes_pay_to_on_chain`
//! runs on anvil with the real contracts: the 402 offers the node's payment address for the
//! project (`InferenceMarket.paymentAddress`), the official client pays it unchanged, the server
//! settles, and the official client's authorization cannot be settled for another project or
//! provider. The npm packages are required (`make setup-node`; found under the repository's
//! `node_modules`, run with `node` from `PATH`): without them these tests fail, they never skip.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256, address};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use anyhow::{Context, Result, ensure};
use autonet_bindings::{ATNToken, InferenceMarket};
use autonet_chain::{ChainProvider, send_and_confirm};
use autonet_test_utils::TestChain;
use autonet_x402::header::{decode_header_json, encode_header};
use autonet_x402::{
    ClaimOutcome, NonceStore, PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER, PaymentError, PaymentRequired, PaymentRequirements, ResourceInfo,
    SettleResponse, VerifiedPayment, check_onchain, codes, collect_uncollected,
    decode_payment_required, decode_payment_response, encode_payment_required,
    encode_payment_response, payment_address, send_settle, unix_now, verify_header,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::{create_project, opts, provider_for};
use serde_json::{Value, json};

/// anvil's second development key; test-only, never funded anywhere real.
const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const CHAIN_ID: u64 = 31337;
const ATN: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const MARKET: Address = address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318");
/// ATN's EIP-712 domain (`ERC20Permit("Autonet")`, OpenZeppelin's version "1").
const ATN_NAME: &str = "Autonet";
const ATN_VERSION: &str = "1";

fn price() -> U256 {
    U256::from(25u64) * U256::from(10u64).pow(U256::from(16)) // 0.25 ATN
}

fn repo_root() -> PathBuf {
    autonet_test_utils::repo_root()
}

/// Fails (never skips) when the official packages are not installed.
fn require_node_packages() -> Result<()> {
    let root = repo_root();
    for package in ["@x402/fetch", "@x402/evm", "@x402/core", "viem"] {
        let dir = root.join("node_modules").join(package);
        ensure!(
            dir.join("package.json").exists(),
            "{} is missing: run `make setup-node` (npm ci installs the pinned x402 client packages)",
            dir.display()
        );
    }
    Ok(())
}

/// What the server saw on a paid request.
#[derive(Debug, Clone)]
struct Seen {
    header: String,
    result: Result<VerifiedPayment, PaymentError>,
}

/// Settlement on anvil (the on-chain test): the node's wallet, the market and the project.
struct OnChain {
    node: ChainProvider,
    market: Address,
    project_id: U256,
    /// Settle verified payments (otherwise they are only verified and claimed).
    settle: std::sync::atomic::AtomicBool,
}

impl OnChain {
    /// Checks and settles `payment`; the transaction hash for `PAYMENT-RESPONSE`.
    async fn settle(&self, payment: &VerifiedPayment) -> Result<B256, PaymentError> {
        check_onchain(&self.node, payment).await?;
        let pending = send_settle(self.node.clone(), self.market, self.project_id, payment)
            .await
            .map_err(|e| PaymentError::Chain(format!("{}: {e}", e.code())))?;
        pending
            .confirm(&opts())
            .await
            .map_err(|e| PaymentError::Chain(format!("{}: {e}", e.code())))?;
        Ok(pending.tx_hash())
    }
}

struct Server {
    /// What the 402 offers.
    offered: PaymentRequirements,
    /// What payments are verified against (the same, unless a test makes them differ).
    expected: PaymentRequirements,
    resource: ResourceInfo,
    store: NonceStore,
    seen: Mutex<Vec<Seen>>,
    /// Settle on anvil instead of answering with the digest.
    chain: Option<OnChain>,
}

impl Server {
    fn payment_required(&self, error: Option<&str>) -> PaymentRequired {
        let required = PaymentRequired::new(self.resource.clone(), vec![self.offered.clone()]);
        match error {
            Some(e) => required.with_error(e),
            None => required.with_error("Payment required"),
        }
    }

    fn refuse(&self, error: Option<&PaymentError>) -> Response {
        let required = self.payment_required(error.map(PaymentError::code));
        let body = match error {
            Some(e) => json!({"error": e.code(), "message": e.to_string()}),
            None => json!({}),
        };
        let mut response = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
        response.headers_mut().insert(
            PAYMENT_REQUIRED_HEADER,
            HeaderValue::from_str(&encode_payment_required(&required)).unwrap(),
        );
        response
    }
}

async fn infer(State(server): State<Arc<Server>>, headers: HeaderMap, body: String) -> Response {
    let Some(header) = headers.get(PAYMENT_SIGNATURE_HEADER) else {
        return server.refuse(None);
    };
    let header = header.to_str().unwrap_or_default().to_owned();
    let now = unix_now();
    let result = verify_header(&header, &server.expected, now).and_then(|payment| {
        match server.store.claim_payment(&payment, now) {
            Ok(ClaimOutcome::Claimed) => Ok(payment),
            Ok(ClaimOutcome::AlreadyUsed(_)) => Err(PaymentError::NonceAlreadyUsed {
                payer: payment.payer,
                nonce: payment.authorization.nonce,
            }),
            Err(e) => Err(PaymentError::Chain(e.to_string())),
        }
    });
    server.seen.lock().unwrap().push(Seen {
        header,
        result: result.clone(),
    });
    match result {
        Ok(payment) => {
            let prompt: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let text = format!("generated for {}", prompt["prompt"].as_str().unwrap_or("?"));
            let tx = match &server.chain {
                Some(chain) if chain.settle.load(std::sync::atomic::Ordering::SeqCst) => {
                    match chain.settle(&payment).await {
                        Ok(tx) => tx,
                        Err(e) => return server.refuse(Some(&e)),
                    }
                }
                // No chain (or not settling): the signed digest stands in for the transaction.
                _ => payment.digest,
            };
            let settled = payment.settle_response(tx);
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                PAYMENT_RESPONSE_HEADER,
                HeaderValue::from_str(&encode_payment_response(&settled)).unwrap(),
            );
            response
        }
        Err(e) => server.refuse(Some(&e)),
    }
}

/// Starts the server on 127.0.0.1:0; returns its URL.
async fn start(server: Arc<Server>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/infer", post(infer))
        .with_state(server);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/infer"))
}

fn server(offered_version: &str) -> Arc<Server> {
    let expected =
        PaymentRequirements::exact_evm(CHAIN_ID, ATN, MARKET, price(), 120, ATN_NAME, ATN_VERSION);
    let mut offered = expected.clone();
    offered
        .extra
        .insert("version".into(), offered_version.into());
    Arc::new(Server {
        offered,
        expected,
        resource: ResourceInfo {
            url: "http://127.0.0.1/infer".into(),
            description: Some("Autonet text generation".into()),
            mime_type: Some("text/plain".into()),
        },
        store: NonceStore::open_in_memory().unwrap(),
        seen: Mutex::new(Vec::new()),
        chain: None,
    })
}

/// What `script/x402-pay.mjs` reported.
struct Paid {
    success: bool,
    stdout: Value,
    stderr: String,
}

async fn pay(url: &str, extra_args: &[&str]) -> Result<Paid> {
    pay_on(url, CHAIN_ID, extra_args).await
}

/// Runs the official client against `url`, accepting only `eip155:<chain_id>`.
async fn pay_on(url: &str, chain_id: u64, extra_args: &[&str]) -> Result<Paid> {
    require_node_packages()?;
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(repo_root())
        .arg("script/x402-pay.mjs")
        .arg(url)
        .args(["--method", "POST", "--body", r#"{"prompt":"hello"}"#])
        .args(["--network", &format!("eip155:{chain_id}")])
        .args(extra_args)
        .env("X402_PAYER_KEY", PAYER_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .context("running `node` (is Node.js installed? `make setup-node` needs it)")?;
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("script/x402-pay.mjs did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(stdout.trim())
            .with_context(|| format!("x402-pay.mjs printed non-JSON: {stdout}\nstderr: {stderr}"))?
    };
    Ok(Paid {
        success: output.status.success(),
        stdout,
        stderr,
    })
}

fn payer() -> Address {
    PAYER_KEY.parse::<PrivateKeySigner>().unwrap().address()
}

#[tokio::test]
async fn the_official_client_pays_and_the_server_verifies() -> Result<()> {
    let server = server(ATN_VERSION);
    let url = start(server.clone()).await?;
    let paid = pay(&url, &["--max-amount", &price().to_string()]).await?;
    ensure!(
        paid.success,
        "x402-pay.mjs failed: {}\nstderr: {}",
        paid.stdout,
        paid.stderr
    );

    // The client got the paid answer and our PAYMENT-RESPONSE.
    let out = &paid.stdout;
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], "generated for hello");
    let response: SettleResponse = serde_json::from_value(out["paymentResponse"].clone())?;
    assert!(response.success);
    assert_eq!(response.payer, Some(payer()));
    assert_eq!(response.network, format!("eip155:{CHAIN_ID}"));

    // The server saw exactly one payment, and it verified.
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let payment = seen[0]
        .result
        .clone()
        .expect("the official payment verifies");
    assert_eq!(payment.payer, payer());
    assert_eq!(payment.pay_to, MARKET);
    assert_eq!(payment.asset, ATN);
    assert_eq!(payment.chain_id, CHAIN_ID);
    assert_eq!(payment.value(), price());
    assert_eq!(payment.authorization.valid_after, U256::ZERO);
    let now = U256::from(unix_now());
    assert!(payment.authorization.valid_before > now);
    assert!(payment.authorization.valid_before <= now + U256::from(120));
    assert_eq!(response.transaction_hash(), Some(payment.digest));

    // The wire shape the official client sent: exactly the v2 fields, `accepted` echoing our
    // offer field for field, `resource` echoing ours.
    let sent: Value = serde_json::from_str(&decode_header_json(&seen[0].header)?)?;
    let mut keys: Vec<_> = sent.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["accepted", "payload", "resource", "x402Version"]);
    assert_eq!(sent["x402Version"], 2);
    assert_eq!(sent["accepted"], serde_json::to_value(&server.offered)?);
    assert_eq!(sent["resource"], serde_json::to_value(&server.resource)?);
    let authorization = &sent["payload"]["authorization"];
    assert_eq!(authorization["value"], price().to_string());
    assert_eq!(authorization["validAfter"], "0");
    assert_eq!(authorization["to"], MARKET.to_checksum(None));
    assert!(sent["payload"]["signature"].as_str().unwrap().len() == 132);
    Ok(())
}

#[tokio::test]
async fn tampered_replayed_and_refused_payments_get_precise_codes() -> Result<()> {
    let server = server(ATN_VERSION);
    let url = start(server.clone()).await?;
    let paid = pay(&url, &[]).await?;
    ensure!(
        paid.success,
        "x402-pay.mjs failed: {}\n{}",
        paid.stdout,
        paid.stderr
    );
    let official = server.seen.lock().unwrap()[0].header.clone();
    let original: Value = serde_json::from_str(&decode_header_json(&official)?)?;
    let now = unix_now();

    // Tampering with the official client's payload, field by field.
    let tampered = |edit: &dyn Fn(&mut Value)| -> Result<&'static str> {
        let mut value = original.clone();
        edit(&mut value);
        let header = encode_header(&value)?;
        Ok(verify_header(&header, &server.expected, now)
            .expect_err("a tampered payment must not verify")
            .code())
    };
    let more = (price() + U256::from(1)).to_string();
    assert_eq!(
        tampered(&|v| v["payload"]["authorization"]["value"] = more.clone().into())?,
        codes::VALUE_MISMATCH
    );
    assert_eq!(
        tampered(&|v| {
            let sig = v["payload"]["signature"].as_str().unwrap();
            // Flip one nibble of r.
            let flipped = if &sig[10..11] == "0" { "1" } else { "0" };
            v["payload"]["signature"] = format!("{}{}{}", &sig[..10], flipped, &sig[11..]).into();
        })?,
        codes::SIGNATURE
    );
    assert_eq!(
        tampered(&|v| {
            v["payload"]["authorization"]["to"] = Address::repeat_byte(0x42).to_string().into()
        })?,
        codes::RECIPIENT_MISMATCH
    );
    assert_eq!(
        tampered(&|v| {
            v["payload"]["authorization"]["nonce"] = format!("0x{}", "11".repeat(32)).into()
        })?,
        codes::SIGNATURE
    );
    assert_eq!(
        tampered(&|v| v["accepted"]["network"] = "eip155:8453".into())?,
        codes::INVALID_NETWORK
    );
    assert_eq!(
        tampered(&|v| v["accepted"]["scheme"] = "upto".into())?,
        codes::INVALID_SCHEME
    );
    assert_eq!(
        tampered(&|v| v["x402Version"] = 1.into())?,
        codes::INVALID_X402_VERSION
    );
    assert_eq!(
        tampered(&|v| v["payload"]["authorization"]["validBefore"] = "soon".into())?,
        codes::INVALID_PAYLOAD
    );
    // Expired: the same payment verified after its validBefore.
    let valid_before: u64 = original["payload"]["authorization"]["validBefore"]
        .as_str()
        .unwrap()
        .parse()?;
    assert_eq!(
        verify_header(&official, &server.expected, valid_before)
            .unwrap_err()
            .code(),
        codes::VALID_BEFORE
    );

    // Replaying the official payment over HTTP: refused by the nonce store, with the code in
    // the 402's PAYMENT-REQUIRED.
    let replay = reqwest::Client::new()
        .post(&url)
        .header(PAYMENT_SIGNATURE_HEADER, &official)
        .body(r#"{"prompt":"again"}"#)
        .send()
        .await?;
    assert_eq!(replay.status().as_u16(), 402);
    let required = decode_payment_required(
        replay
            .headers()
            .get(PAYMENT_REQUIRED_HEADER)
            .context("402 without PAYMENT-REQUIRED")?
            .to_str()?,
    )?;
    assert_eq!(required.error.as_deref(), Some(codes::NONCE_ALREADY_USED));
    assert!(replay.headers().get(PAYMENT_RESPONSE_HEADER).is_none());
    assert_eq!(server.seen.lock().unwrap().len(), 2);

    // The script's spending cap stops a payment before anything is signed.
    let capped = pay(
        &url,
        &["--max-amount", &(price() - U256::from(1)).to_string()],
    )
    .await?;
    assert!(!capped.success);
    assert!(
        capped.stderr.contains("above --max-amount"),
        "{}",
        capped.stderr
    );
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_refused_official_payment_reports_the_code_to_the_client() -> Result<()> {
    // The 402 advertises EIP-712 version "2" but the server verifies against ATN's real
    // version "1": the official client signs a payment that cannot verify.
    let server = server("2");
    let url = start(server.clone()).await?;
    let paid = pay(&url, &[]).await?;
    assert!(!paid.success, "{}", paid.stdout);
    assert_eq!(paid.stdout["status"], 402);
    assert_eq!(paid.stdout["paymentResponse"], Value::Null);
    assert_eq!(paid.stdout["paymentRequired"]["error"], codes::SIGNATURE);
    let body: Value = serde_json::from_str(paid.stdout["body"].as_str().unwrap())?;
    assert_eq!(body["error"], codes::SIGNATURE);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(matches!(
        seen[0].result,
        Err(PaymentError::InvalidSignature(_))
    ));
    // The refused payment did not consume its nonce: only verified payments are claimed.
    let payment = nonce_key_of(&seen[0].header)?;
    assert!(server.store.get(&payment)?.is_none());
    Ok(())
}

/// The nonce key the header's authorization would be claimed under (without verifying it).
fn nonce_key_of(header: &str) -> Result<autonet_x402::NonceKey> {
    let payload = autonet_x402::decode_payment_signature(header)?;
    Ok(autonet_x402::NonceKey {
        chain_id: CHAIN_ID,
        asset: ATN,
        payer: payload.payload.authorization.from,
        nonce: payload.payload.authorization.nonce,
    })
}

#[test]
fn decode_payment_response_reads_what_the_server_writes() {
    let response = SettleResponse::success(payer(), Default::default(), "eip155:31337");
    assert_eq!(
        decode_payment_response(&encode_payment_response(&response)).unwrap(),
        response
    );
}

/// The official client pays an Autonet node's 402 on anvil without any change on its side: the
/// offer's payTo is the node's payment address for the project, the client signs it as `to`, and
/// the settlement credits exactly that project and node. An authorization the official client
/// signed cannot be settled for another project or by another provider (M-2), and one submitted
/// straight to the token is collected for the offered pair.
#[tokio::test]
async fn the_official_client_pays_a_nodes_pay_to_on_chain() -> Result<()> {
    const NODE: usize = 3;
    const STRANGER: usize = 4;
    require_node_packages()?;
    let chain = TestChain::start()?;
    let c = chain.deployment.contracts;
    let project_id = create_project(&chain, price()).await?;
    let other_project = create_project(&chain, U256::from(1)).await?;
    let deployer = provider_for(&chain, 0).await?;
    let token = ATNToken::new(c.atn_token, &deployer);
    send_and_confirm::<ATNToken::Transfer, _, _>(
        &token.transfer(payer(), price() * U256::from(10)),
        &opts(),
    )
    .await?;
    let node = provider_for(&chain, NODE).await?;
    let node_address = chain.address(NODE);
    let pay_to = payment_address(&node, c.market, project_id, node_address).await?;
    let domain = token.eip712Domain().call().await?;
    let offered = PaymentRequirements::exact_evm(
        chain.chain_id(),
        c.atn_token,
        pay_to,
        price(),
        120,
        &domain.name,
        &domain.version,
    );
    let server = Arc::new(Server {
        offered: offered.clone(),
        expected: offered,
        resource: ResourceInfo {
            url: "http://127.0.0.1/infer".into(),
            description: Some("Autonet text generation".into()),
            mime_type: Some("text/plain".into()),
        },
        store: NonceStore::open_in_memory()?,
        seen: Mutex::new(Vec::new()),
        chain: Some(OnChain {
            node: node.clone(),
            market: c.market,
            project_id,
            settle: true.into(),
        }),
    });
    let url = start(server.clone()).await?;
    let market = InferenceMarket::new(c.market, &node);

    // 1. Paid and settled for the offered project and node.
    let paid = pay_on(
        &url,
        chain.chain_id(),
        &["--max-amount", &price().to_string()],
    )
    .await?;
    ensure!(
        paid.success,
        "x402-pay.mjs failed: {}\nstderr: {}",
        paid.stdout,
        paid.stderr
    );
    let response: SettleResponse = serde_json::from_value(paid.stdout["paymentResponse"].clone())?;
    assert!(response.success);
    let tx = response.transaction_hash().context("a transaction hash")?;
    let receipt = node
        .get_transaction_receipt(tx)
        .await?
        .context("the settlement is mined")?;
    let settled = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<InferenceMarket::Settled>().ok())
        .context("Settled")?
        .inner
        .data;
    assert_eq!(settled.projectId, project_id);
    assert_eq!(settled.provider, node_address);
    assert_eq!(settled.payer, payer());
    assert_eq!(settled.value, price());
    let sent: Value =
        serde_json::from_str(&decode_header_json(&server.seen.lock().unwrap()[0].header)?)?;
    assert_eq!(
        sent["payload"]["authorization"]["to"],
        pay_to.to_checksum(None)
    );
    assert_eq!(
        market.claimable(node_address).call().await?,
        price() * U256::from(6000) / U256::from(10_000)
    );
    assert!(!node.get_code_at(pay_to).await?.is_empty());
    assert_eq!(token.balanceOf(pay_to).call().await?, U256::ZERO);

    // 2. The next official payment is only verified and held; whoever holds it cannot settle
    //    it into another (1-wei) project or as another provider.
    server
        .chain
        .as_ref()
        .unwrap()
        .settle
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let held = pay_on(&url, chain.chain_id(), &[]).await?;
    ensure!(held.success, "{}\n{}", held.stdout, held.stderr);
    let payment = server.seen.lock().unwrap()[1]
        .result
        .clone()
        .expect("the official payment verifies");
    let stranger = provider_for(&chain, STRANGER).await?;
    for (who, project) in [
        (&stranger, other_project),
        (&stranger, project_id),
        (&node, other_project),
    ] {
        let err = send_settle(who.clone(), c.market, project, &payment)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::SIGNATURE, "{err}");
    }

    // 3. Submitted straight to the token, it lands at the node's payTo: the node's settle fails
    //    on the used nonce and the value is collected for the offered project and node.
    let a = &payment.authorization;
    send_and_confirm::<ATNToken::AuthorizationUsed, _, _>(
        &ATNToken::new(c.atn_token, &stranger).transferWithAuthorization_0(
            a.from,
            a.to,
            a.value,
            a.valid_after,
            a.valid_before,
            a.nonce,
            payment.signature.clone(),
        ),
        &opts(),
    )
    .await?;
    let err = send_settle(node.clone(), c.market, project_id, &payment)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NONCE_ALREADY_USED, "{err}");
    let collected = collect_uncollected(
        stranger.clone(),
        c.market,
        project_id,
        node_address,
        &opts(),
    )
    .await?
    .context("the payment waits at the node's payTo")?;
    assert_eq!(collected.event.projectId, project_id);
    assert_eq!(collected.event.provider, node_address);
    assert_eq!(collected.event.value, price());
    assert_eq!(
        market.claimable(node_address).call().await?,
        price() * U256::from(2 * 6000) / U256::from(10_000)
    );
    assert_eq!(
        market.claimable(chain.address(STRANGER)).call().await?,
        U256::ZERO
    );
    assert_eq!(
        market
            .pendingContributorRevenue(other_project, chain.address(STRANGER))
            .call()
            .await?,
        U256::ZERO
    );
    Ok(())
}
