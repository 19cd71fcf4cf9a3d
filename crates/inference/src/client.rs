//! The paying side of `POST /v1/generate` (`autonet infer`, and the devnet's final purchase):
//! send the request, and on `402` sign the offered x402 requirement with EIP-3009 and retry.

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use autonet_x402::{
    PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER, PaymentSigner,
    SettleResponse, decode_payment_response, unix_now,
};
use serde_json::Value;

use crate::InferenceError;

/// What a (paid) request returned.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The response body (`model`, `output`, `tokens`, `cached`, …).
    pub body: Value,
    /// The settlement, when the route was paid.
    pub settlement: Option<SettleResponse>,
    /// The amount authorized (wei ATN), when paid.
    pub paid: Option<U256>,
}

/// Sends `body` to `url` (a `…/v1/generate` route); pays with `signer` when asked, refusing to
/// pay more than `max_amount` or anything but `asset` on `chain_id`.
pub async fn generate(
    url: &str,
    body: &Value,
    signer: PrivateKeySigner,
    chain_id: u64,
    asset: Address,
    max_amount: U256,
) -> Result<Answer, InferenceError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| InferenceError::Other(e.to_string()))?;
    let send = |extra: Option<(String, String)>| {
        let mut req = http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let first = send(None)
        .await
        .map_err(|e| InferenceError::Other(format!("POST {url}: {e}")))?;
    if first.status().as_u16() != 402 {
        return finish(url, first, None).await;
    }
    let required = first
        .headers()
        .get(PAYMENT_REQUIRED_HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| {
            InferenceError::Other(format!(
                "{url} answered 402 without a PAYMENT-REQUIRED header"
            ))
        })?
        .to_string();
    let payer = PaymentSigner::new(signer)
        .with_chain_id(chain_id)
        .with_asset(asset)
        .with_max_amount(max_amount);
    let (header, payload) = payer
        .payment_header(&required, unix_now())
        .map_err(|e| InferenceError::Other(format!("cannot pay {url}: {e}")))?;
    let second = send(Some((PAYMENT_SIGNATURE_HEADER.to_string(), header)))
        .await
        .map_err(|e| InferenceError::Other(format!("POST {url} with the payment: {e}")))?;
    finish(url, second, Some(payload.payload.authorization.value)).await
}

async fn finish(
    url: &str,
    resp: reqwest::Response,
    paid: Option<U256>,
) -> Result<Answer, InferenceError> {
    let status = resp.status();
    let settlement = resp
        .headers()
        .get(PAYMENT_RESPONSE_HEADER)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| decode_payment_response(h).ok());
    let text = resp
        .text()
        .await
        .map_err(|e| InferenceError::Other(format!("reading the answer of {url}: {e}")))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let why = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string());
        return Err(InferenceError::Other(format!(
            "{url} answered {status}: {why}"
        )));
    }
    Ok(Answer {
        body,
        settlement,
        paid,
    })
}
