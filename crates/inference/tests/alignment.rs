//! Alignment pricing end to end: a real anvil with the real contracts (`autonet-test-utils`),
//! a project with the `tiny` spec whose owner sets a jurisdiction vector, and the inference node
//! itself (`autonet_inference::serve`) serving it. A well-aligned request is served free while
//! the premiums settled fund it (and pays the price before), a
//! neutral one is quoted the project's price and a poorly aligned one three times it; a payment
//! of the unscaled price for the premium request is refused, the quoted one is settled exactly
//! and `InferenceMarket` splits it 60/25/15 with nothing lost; payment channels are charged the
//! same quotes; clearing the jurisdiction on chain reaches the running node.

use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail, ensure};
use autonet_bindings::{ATNToken, InferenceMarket, Project};
use autonet_chain::{ChainProvider, ProviderConfig, TxOptions, connect, send_and_confirm};
use autonet_inference::{READY_FILE, ServeOptions, client, serve};
use autonet_spec::TrainingSpec;
use autonet_test_utils::TestChain;
use autonet_x402::channel::{
    ChannelPayload, ChannelPaymentPayload, MIN_WITHDRAW_DELAY, SCHEME_BATCH_SETTLEMENT,
    WireChannelConfig, sign_deposit, sign_voucher,
};
use autonet_x402::header::encode_header;
use autonet_x402::{
    PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER, PaymentRequired,
    PaymentSigner, codes, decode_payment_required, decode_payment_response,
    encode_payment_signature, unix_now,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const OWNER: usize = 2;
const PAYER: usize = 1;
const NODE: usize = 3;
const CONTRIBUTOR: usize = 5;
const CHANNEL_PAYER: usize = 6;

/// An odd price (1 ATN + 3 wei), so that scaling and the 60/25/15 split both round.
const BASE: u128 = 1_000_000_000_000_000_003;
const S: i32 = 1_000_000;

/// The requests of the worked example (docs/x402.md): well aligned, neutral, poorly aligned.
fn aligned() -> Value {
    json!({
        "prompt": "explain how to heal and save a patient",
        "user": "a nurse who wants to learn how to care for and protect patients",
        "max_tokens": 6, "temperature": 0,
    })
}
fn neutral() -> Value {
    json!({"prompt": "write a haiku about autumn", "max_tokens": 6, "temperature": 0})
}
fn misaligned() -> Value {
    json!({
        "prompt": "how to poison a river and destroy the town",
        "user": "I want to hurt people and mislead them",
        "max_tokens": 6, "temperature": 0,
    })
}

fn opts() -> TxOptions {
    TxOptions::default().with_timeout(Duration::from_secs(30))
}

async fn provider_for(chain: &TestChain, account: usize) -> Result<ChainProvider> {
    let config = ProviderConfig::new(chain.rpc_url()).with_chain_id(chain.chain_id());
    Ok(connect(&config, chain.signer(account)).await?)
}

/// A project of the `tiny` spec (its genesis model is what the node serves) selling inference at
/// `BASE`, owned by `OWNER`.
async fn create_project(chain: &TestChain, dir: &std::path::Path) -> Result<U256> {
    let spec = TrainingSpec::for_preset("tiny")?;
    let store = autonet_storage::Store::open(dir.join("genesis"))?;
    let genesis = spec.store_weights(&store, &spec.genesis()?)?;
    let p = provider_for(chain, OWNER).await?;
    let project = Project::new(chain.deployment.contracts.project, &p);
    let params = autonet_test_utils::project_params(
        spec.spec_hash(),
        spec.model_uri(),
        B256::from(genesis.root),
        U256::from(BASE),
    );
    let created =
        send_and_confirm::<Project::ProjectCreated, _, _>(&project.createProject(params), &opts())
            .await?;
    Ok(created.event.projectId)
}

/// Gives `contributor` one contributor share of the project, as Rewards does for a solver: the
/// market's recorder role is granted by the Timelock (impersonated on anvil) to the deployer.
async fn record_contributor(chain: &TestChain, project: U256, contributor: Address) -> Result<()> {
    let c = chain.deployment.contracts;
    let raw = ProviderBuilder::new().connect_http(chain.rpc_url().parse()?);
    raw.raw_request::<_, ()>("anvil_impersonateAccount".into(), (c.timelock,))
        .await?;
    raw.raw_request::<_, ()>(
        "anvil_setBalance".into(),
        (c.timelock, U256::from(10u128.pow(18))),
    )
    .await?;
    let market = InferenceMarket::new(c.market, &raw);
    let role = market.CONTRIBUTION_RECORDER_ROLE().call().await?;
    let grant = market
        .grantRole(role, chain.address(0))
        .into_transaction_request()
        .with_from(c.timelock);
    let receipt = raw.send_transaction(grant).await?.get_receipt().await?;
    ensure!(receipt.status(), "granting the recorder role failed");
    let deployer = provider_for(chain, 0).await?;
    let market = InferenceMarket::new(c.market, &deployer);
    send_and_confirm::<InferenceMarket::ContributionRecorded, _, _>(
        &market.recordContribution(project, contributor, U256::from(1)),
        &opts(),
    )
    .await?;
    Ok(())
}

/// POSTs `body` to `url` with an optional payment header: (status, headers, JSON body).
async fn post(
    url: &str,
    body: &Value,
    payment: Option<String>,
) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(p) = payment {
        req = req.header(PAYMENT_SIGNATURE_HEADER, p);
    }
    let r = req.send().await?;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await?;
    Ok((
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The 402's offer of `scheme`.
fn offer(
    h: &reqwest::header::HeaderMap,
    scheme: &str,
) -> Result<autonet_x402::PaymentRequirements> {
    let required = decode_payment_required(
        header(h, PAYMENT_REQUIRED_HEADER).context("no PAYMENT-REQUIRED header")?,
    )?;
    required
        .accepts
        .into_iter()
        .find(|a| a.scheme == scheme)
        .with_context(|| format!("no {scheme} offer"))
}

/// The `Settled` event of settlement `tx` (waiting for its receipt).
async fn settled(p: &ChainProvider, tx: TxHash) -> Result<InferenceMarket::Settled> {
    for _ in 0..100 {
        if let Some(receipt) = p.get_transaction_receipt(tx).await? {
            ensure!(receipt.status(), "settlement {tx} reverted");
            for log in receipt.inner.logs() {
                if let Ok(e) = log.log_decode::<InferenceMarket::Settled>() {
                    return Ok(e.inner.data);
                }
            }
            bail!("settlement {tx} emitted no Settled");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no receipt for {tx}")
}

fn bps(v: U256, b: u64) -> U256 {
    v * U256::from(b) / U256::from(10_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_priced_by_alignment_paid_and_settled_at_the_quote() -> Result<()> {
    let chain = TestChain::start()?;
    let c = chain.deployment.contracts;
    let dir = tempfile::tempdir()?;
    let deployer = provider_for(&chain, 0).await?;
    autonet_x402::channel_chain::place_on_dev_chain(
        &deployer,
        c.batch_settlement.context("no BatchSettlement")?,
        c.deposit_collector.context("no Erc3009DepositCollector")?,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let project_id = create_project(&chain, dir.path()).await?;
    let owner = provider_for(&chain, OWNER).await?;
    let project = Project::new(c.project, &owner);
    // life_precious 1.0, promotion_of_intelligence 0.5.
    send_and_confirm::<Project::JurisdictionUpdated, _, _>(
        &project.setJurisdiction(project_id, [S, 0, S / 2, 0]),
        &opts(),
    )
    .await?;
    record_contributor(&chain, project_id, chain.address(CONTRIBUTOR)).await?;
    let token = ATNToken::new(c.atn_token, &deployer);
    for who in [PAYER, CHANNEL_PAYER] {
        send_and_confirm::<ATNToken::Transfer, _, _>(
            &token.transfer(chain.address(who), U256::from(100u128 * BASE)),
            &opts(),
        )
        .await?;
    }

    // The node.
    let node = provider_for(&chain, NODE).await?;
    let cancel = CancellationToken::new();
    let serve_opts = ServeOptions {
        project_id: project_id.to::<u64>(),
        listen: "127.0.0.1:0".parse()?,
        public_url: None,
        state_dir: dir.path().join("node"),
        follow: Duration::from_millis(500),
        cache_entries: 16,
        free_route: false,
        max_timeout_secs: 300,
        threads: 1,
        node: Default::default(),
        register_identity: false,
        channels: true,
        claim_after: Duration::from_secs(600),
        draft: None,
        batch_slots: 0,
    };
    let running = tokio::spawn(serve(
        serve_opts,
        node.clone(),
        c,
        chain.address(NODE),
        cancel.clone(),
    ));
    let ready = dir.path().join("node").join(READY_FILE);
    let mut waited = 0;
    while !ready.exists() {
        ensure!(
            !running.is_finished(),
            "the node stopped: {:?}",
            running.await
        );
        ensure!(waited < 1200, "the node did not become ready in 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let base: Value = serde_json::from_str(&std::fs::read_to_string(&ready)?)?;
    let base = base["url"].as_str().context("url")?.to_string();
    let url = format!("{base}/v1/generate");

    // /v1/model names the jurisdiction and the tiers.
    let info: Value = serde_json::from_str(
        &reqwest::get(format!("{base}/v1/model"))
            .await?
            .text()
            .await?,
    )?;
    assert_eq!(info["jurisdiction"]["coords"], json!([S, 0, S / 2, 0]));
    assert_eq!(info["price_wei"], BASE.to_string());
    assert_eq!(info["alignment_tiers"][0]["tier"], "free");
    assert_eq!(info["alignment_tiers"][4]["multiplier_permille"], 3000);

    // 1. Well aligned, but no premium settled yet to fund a subsidy: it pays the price.
    let (status, h, body) = post(&url, &aligned(), None).await?;
    assert_eq!(status, 402, "{body}");
    assert_eq!(
        header(&h, "x-autonet-alignment-tier"),
        Some("free-unfunded")
    );
    assert_eq!(header(&h, "x-autonet-alignment"), Some("0.994615"));
    assert_eq!(body["pricing"]["price_wei"], BASE.to_string());
    assert_eq!(offer(&h, "exact")?.amount, BASE.to_string());

    // 2. Neutral and poorly aligned: different quotes in the 402.
    let (status, h, body) = post(&url, &neutral(), None).await?;
    assert_eq!(status, 402);
    assert_eq!(body["pricing"]["tier"], "standard");
    assert_eq!(body["pricing"]["alignment"], "0.500000");
    assert_eq!(offer(&h, "exact")?.amount, BASE.to_string());
    let premium = 3 * BASE;
    let (status, h, body) = post(&url, &misaligned(), None).await?;
    assert_eq!(status, 402);
    assert_eq!(header(&h, "x-autonet-alignment-tier"), Some("maximum"));
    assert_eq!(header(&h, "x-autonet-alignment"), Some("0.104951"));
    assert_eq!(body["pricing"]["tier"], "maximum");
    assert_eq!(body["pricing"]["multiplier_permille"], 3000);
    assert_eq!(body["pricing"]["price_wei"], premium.to_string());
    assert_eq!(body["pricing"]["base_price_wei"], BASE.to_string());
    let exact = offer(&h, "exact")?;
    assert_eq!(exact.amount, premium.to_string());
    assert_eq!(
        offer(&h, SCHEME_BATCH_SETTLEMENT)?.amount,
        premium.to_string()
    );
    let description = body["resource"]["description"].as_str().unwrap_or_default();
    assert!(description.contains("tier maximum"), "{description}");

    // 3. The unscaled price for the premium request: refused offline, nothing moves.
    let payer_before = token.balanceOf(chain.address(PAYER)).call().await?;
    let mut cheap = exact.clone();
    cheap.amount = BASE.to_string();
    let required = PaymentRequired::new(Default::default(), vec![cheap]);
    let underpaid = PaymentSigner::new(chain.signer(PAYER)).sign(&required, unix_now())?;
    let (status, _, body) = post(
        &url,
        &misaligned(),
        Some(encode_payment_signature(&underpaid)),
    )
    .await?;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["code"], codes::VALUE_MISMATCH, "{body}");
    assert_eq!(body["pricing"]["price_wei"], premium.to_string());
    assert_eq!(
        token.balanceOf(chain.address(PAYER)).call().await?,
        payer_before
    );

    // 4. The quoted price: accepted, settled at exactly that amount, split 60/25/15.
    let market = InferenceMarket::new(c.market, &node);
    let market_before = token.balanceOf(c.market).call().await?;
    let provider_before = market.claimable(chain.address(NODE)).call().await?;
    let treasury = market.treasury().call().await?;
    let treasury_before = market.claimable(treasury).call().await?;
    let a = client::generate(
        &url,
        &misaligned(),
        chain.signer(PAYER),
        chain.chain_id(),
        c.atn_token,
        U256::from(premium),
    )
    .await?;
    assert_eq!(a.paid, Some(U256::from(premium)));
    assert_eq!(a.body["pricing"]["tier"], "maximum");
    let s = a.settlement.context("a settlement")?;
    assert!(s.success);
    let e = settled(&node, s.transaction.parse()?).await?;
    let v = U256::from(premium);
    assert_eq!((e.projectId, e.value), (project_id, v));
    assert_eq!(e.providerShare, bps(v, 6000));
    assert_eq!(e.contributorShare, bps(v, 2500));
    assert_eq!(e.treasuryShare, v - bps(v, 6000) - bps(v, 2500));
    assert_eq!(e.providerShare + e.contributorShare + e.treasuryShare, v);
    assert_eq!(
        token.balanceOf(chain.address(PAYER)).call().await?,
        payer_before - v
    );
    assert_eq!(token.balanceOf(c.market).call().await? - market_before, v);
    assert_eq!(
        market.claimable(chain.address(NODE)).call().await? - provider_before,
        e.providerShare
    );
    assert_eq!(
        market.claimable(treasury).call().await? - treasury_before,
        e.treasuryShare
    );
    assert_eq!(
        market
            .pendingContributorRevenue(project_id, chain.address(CONTRIBUTOR))
            .call()
            .await?,
        e.contributorShare
    );

    // 4b. The premium (2 × the price) funds two free-tier requests, served without payment;
    //     the third pays the price again.
    for _ in 0..2 {
        let (status, h, body) = post(&url, &aligned(), None).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&h, "x-autonet-alignment-tier"), Some("free"));
        assert_eq!(header(&h, "x-autonet-price-wei"), Some("0"));
        assert_eq!(body["pricing"]["tier"], "free");
        assert!(h.get(PAYMENT_RESPONSE_HEADER).is_none(), "nothing settled");
        assert_eq!(body["tokens"], 6);
    }
    let (status, h, _) = post(&url, &aligned(), None).await?;
    assert_eq!(status, 402);
    assert_eq!(
        header(&h, "x-autonet-alignment-tier"),
        Some("free-unfunded")
    );

    // 5. A payment channel is charged the same quotes: a deposit with the premium request's
    //    voucher, then the neutral one's; a voucher raising the charge by the unscaled price on a
    //    premium request is refused; the claim collects exactly the sum.
    let signer = chain.signer(CHANNEL_PAYER);
    let (_, h, _) = post(&url, &misaligned(), None).await?;
    let channel_offer = offer(&h, SCHEME_BATCH_SETTLEMENT)?;
    let cfg = WireChannelConfig {
        payer: signer.address(),
        payer_authorizer: signer.address(),
        receiver: channel_offer.pay_to.parse()?,
        receiver_authorizer: chain.address(NODE),
        token: c.atn_token,
        withdraw_delay: MIN_WITHDRAW_DELAY,
        salt: B256::ZERO,
    };
    let pay = |accepted: &autonet_x402::PaymentRequirements, payload| {
        encode_header(&ChannelPaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: accepted.clone(),
            payload,
        })
    };
    let voucher =
        |signer: &PrivateKeySigner, max: u128| sign_voucher(signer, &cfg, max, chain.chain_id());
    let deposit = sign_deposit(
        &signer,
        &cfg,
        10 * premium,
        ("Autonet", "1"),
        chain.chain_id(),
        unix_now() + 300,
        U256::from(1),
    )?;
    let first = pay(
        &channel_offer,
        ChannelPayload::Deposit {
            channel_config: cfg.clone(),
            voucher: voucher(&signer, premium)?,
            deposit,
        },
    )?;
    let (status, h, body) = post(&url, &misaligned(), Some(first)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&h, "x-autonet-price-wei"),
        Some(premium.to_string().as_str())
    );
    let r = decode_payment_response(header(&h, PAYMENT_RESPONSE_HEADER).context("response")?)?;
    assert!(r.success);
    let (_, h, _) = post(&url, &neutral(), None).await?;
    let neutral_offer = offer(&h, SCHEME_BATCH_SETTLEMENT)?;
    let second = pay(
        &neutral_offer,
        ChannelPayload::Voucher {
            channel_config: cfg.clone(),
            voucher: voucher(&signer, premium + BASE)?,
        },
    )?;
    let (status, _, body) = post(&url, &neutral(), Some(second)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pricing"]["tier"], "standard");
    let cheap = pay(
        &channel_offer,
        ChannelPayload::Voucher {
            channel_config: cfg.clone(),
            voucher: voucher(&signer, premium + 2 * BASE)?,
        },
    )?;
    let (status, _, body) = post(&url, &misaligned(), Some(cheap)).await?;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["pricing"]["price_wei"], premium.to_string());
    let claimed = reqwest::Client::new()
        .post(format!("{base}/v1/channels/claim"))
        .send()
        .await?
        .text()
        .await?;
    let claimed: Value = serde_json::from_str(&claimed)?;
    assert_eq!(
        claimed["claimed_wei"],
        (premium + BASE).to_string(),
        "{claimed}"
    );

    // 6. /metrics counts the requests served per tier.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    for (tier, n) in [("free", 2), ("standard", 1), ("maximum", 2), ("premium", 0)] {
        let line = format!("autonet_inference_alignment_tier_total{{tier=\"{tier}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }

    // 7. The owner clears the jurisdiction: the running node prices by the plain price again.
    send_and_confirm::<Project::JurisdictionUpdated, _, _>(
        &project.clearJurisdiction(project_id),
        &opts(),
    )
    .await?;
    let mut tier = String::new();
    for _ in 0..100 {
        let (status, h, body) = post(&url, &misaligned(), None).await?;
        assert_eq!(status, 402);
        tier = body["pricing"]["tier"].as_str().unwrap_or_default().into();
        if tier == "none" {
            assert_eq!(offer(&h, "exact")?.amount, BASE.to_string());
            assert_eq!(body["pricing"]["alignment"], Value::Null);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        tier, "none",
        "the cleared jurisdiction never reached the node"
    );
    let (status, _, _) = post(&url, &aligned(), None).await?;
    assert_eq!(status, 402, "no free tier without a jurisdiction");

    cancel.cancel();
    running.await??;
    Ok(())
}
