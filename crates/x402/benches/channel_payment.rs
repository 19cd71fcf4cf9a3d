//! What a payment-channel request costs the server, per request, against nothing else in the
//! same run: decoding and verifying the voucher (`verify_channel_payment`: base64, JSON, the
//! channel id and one signature recovery) and recording it (`ChannelStore::commit` on a file in
//! WAL mode, the durable write every answered request makes). `autonet devnet
//! --bench-inference N` measures the same path end to end over HTTP (the `channel` rows).
//! Env: `AUTONET_BENCH_REPS` (default 5), `AUTONET_BENCH_N` (vouchers per run, default 2000).

use std::hint::black_box;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use autonet_test_utils::bench::median;
use autonet_x402::channel::{
    ChannelOffer, ChannelPayload, ChannelPaymentPayload, MIN_WITHDRAW_DELAY, WireChannelConfig,
    decode_channel_payment, sign_voucher, verify_channel_payment, voucher_digest,
};
use autonet_x402::channel_store::{ChannelRecord, ChannelStore, OnchainChannel};
use autonet_x402::eip712::recover_signer;
use autonet_x402::header::encode_header;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let reps = env("AUTONET_BENCH_REPS", 5);
    let n = env("AUTONET_BENCH_N", 2000);
    let payer = PrivateKeySigner::random();
    let offer = ChannelOffer {
        chain_id: 31337,
        asset: Address::repeat_byte(1),
        domain: ("Autonet".into(), "1".into()),
        pay_to: Address::repeat_byte(2),
        receiver_authorizer: Address::repeat_byte(3),
        withdraw_delay: MIN_WITHDRAW_DELAY,
        max_timeout_secs: 300,
    };
    let config = WireChannelConfig {
        payer: payer.address(),
        payer_authorizer: payer.address(),
        receiver: offer.pay_to,
        receiver_authorizer: offer.receiver_authorizer,
        token: offer.asset,
        withdraw_delay: MIN_WITHDRAW_DELAY,
        salt: B256::ZERO,
    };
    let price = 10u128.pow(16);
    let headers: Vec<String> = (1..=n as u128)
        .map(|i| {
            let voucher = sign_voucher(&payer, &config, i * price, offer.chain_id).unwrap();
            encode_header(&ChannelPaymentPayload {
                x402_version: 2,
                resource: None,
                accepted: offer.requirements(price),
                payload: ChannelPayload::Voucher {
                    channel_config: config.clone(),
                    voucher,
                },
            })
            .unwrap()
        })
        .collect();

    let verify = median(reps, || {
        for h in &headers {
            let p = decode_channel_payment(h).unwrap();
            black_box(verify_channel_payment(&p, &offer, price, 1_800_000_000).unwrap());
        }
    });

    let parsed: Vec<ChannelPaymentPayload> = headers
        .iter()
        .map(|h| decode_channel_payment(h).unwrap())
        .collect();
    let decode = median(reps, || {
        for h in &headers {
            black_box(decode_channel_payment(h).unwrap());
        }
    });
    let recover = median(reps, || {
        for p in &parsed {
            let v = p.payload.voucher();
            let digest = voucher_digest(v.channel_id, v.max_claimable_amount, offer.chain_id);
            black_box(recover_signer(&digest, &v.signature).unwrap());
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let mut round = 0u128;
    let store_cost = median(reps, || {
        let store = ChannelStore::open(dir.path().join(format!("c{round}.sqlite"))).unwrap();
        round += 1;
        for (i, h) in headers.iter().enumerate() {
            let p = decode_channel_payment(h).unwrap();
            let v = p.payload.voucher();
            let id = v.channel_id;
            black_box(store.get(&id).unwrap());
            store
                .commit(&ChannelRecord {
                    channel_id: id,
                    config: config.clone(),
                    charged: v.max_claimable_amount,
                    signed_max: v.max_claimable_amount,
                    signature: v.signature.clone(),
                    onchain: OnchainChannel {
                        balance: u128::MAX,
                        refund_nonce: "0".into(),
                        ..Default::default()
                    },
                    first_unclaimed_at: Some(1),
                    updated_at: i as u64,
                })
                .unwrap();
        }
    });
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!("channel payment, per voucher (median of {reps} runs of {n}):");
    println!("  decode + verify          {:>8.1} µs", per(verify));
    println!("    of which decode        {:>8.1} µs", per(decode));
    println!("    of which recovery      {:>8.1} µs", per(recover));
    println!("  store get + commit       {:>8.1} µs", per(store_cost));
    println!(
        "RESULT channel_server_overhead_us {:.1}",
        per(verify) + per(store_cost)
    );
}
