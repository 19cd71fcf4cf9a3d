//! The header encoding: standard base64 (with padding) of the JSON text, as `@x402/core`'s
//! `encodePaymentSignatureHeader` / `encodePaymentRequiredHeader` / `encodePaymentResponseHeader`
//! write it.
//!
//! This module owns encoding any wire type into a header value and decoding one back, with an
//! error that says which step failed. It must not interpret the decoded values: version, scheme
//! and signature checks live in [`mod@crate::verify`].

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{PaymentPayload, PaymentRequired, SettleResponse};

/// The longest header value accepted (a v2 payment is about 1.5 KiB).
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Standard alphabet; padding written, and accepted or not on input.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a header value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The value is longer than [`MAX_HEADER_LEN`].
    #[error("header value is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is not standard base64.
    #[error("header value is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded bytes are not UTF-8 text.
    #[error("header value is not base64 of UTF-8 text: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    /// The text is not the expected JSON object.
    #[error("header value is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes `value` as base64 of its JSON.
pub fn encode_header<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(BASE64.encode(serde_json::to_vec(value)?))
}

/// Encodes one of this crate's wire types, whose fields are strings, numbers, booleans and
/// string-keyed maps: serializing them to JSON cannot fail.
fn encode_wire<T: Serialize>(value: &T) -> String {
    encode_header(value).expect("x402 wire types always serialize to JSON")
}

/// Decodes a header value into its JSON text.
pub fn decode_header_json(value: &str) -> Result<String, HeaderError> {
    let value = value.trim();
    if value.len() > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong {
            len: value.len(),
            max: MAX_HEADER_LEN,
        });
    }
    Ok(String::from_utf8(BASE64.decode(value)?)?)
}

/// Decodes a header value into `T`.
pub fn decode_header<T: DeserializeOwned>(value: &str) -> Result<T, HeaderError> {
    Ok(serde_json::from_str(&decode_header_json(value)?)?)
}

/// Encodes a `PAYMENT-REQUIRED` value.
pub fn encode_payment_required(value: &PaymentRequired) -> String {
    encode_wire(value)
}

/// Decodes a `PAYMENT-REQUIRED` value.
pub fn decode_payment_required(value: &str) -> Result<PaymentRequired, HeaderError> {
    decode_header(value)
}

/// Encodes a `PAYMENT-SIGNATURE` value.
pub fn encode_payment_signature(value: &PaymentPayload) -> String {
    encode_wire(value)
}

/// Encodes a `PAYMENT-RESPONSE` value.
pub fn encode_payment_response(value: &SettleResponse) -> String {
    encode_wire(value)
}

/// Decodes a `PAYMENT-RESPONSE` value.
pub fn decode_payment_response(value: &str) -> Result<SettleResponse, HeaderError> {
    decode_header(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SettleResponse;
    use alloy::primitives::{Address, TxHash};

    #[test]
    fn round_trips_and_matches_the_official_encoding() {
        let response = SettleResponse::success(Address::ZERO, TxHash::ZERO, "eip155:31337");
        let header = encode_payment_response(&response);
        // btoa(JSON.stringify(x)): standard alphabet with padding.
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            header,
            base64::engine::general_purpose::STANDARD.encode(json.as_bytes())
        );
        assert_eq!(decode_payment_response(&header).unwrap(), response);
        // Unpadded and surrounding whitespace are accepted.
        let unpadded = header.trim_end_matches('=');
        assert_eq!(
            decode_payment_response(&format!(" {unpadded} ")).unwrap(),
            response
        );
    }

    #[test]
    fn errors_name_the_failed_step() {
        assert!(matches!(
            decode_payment_response("not base64!"),
            Err(HeaderError::Base64(_))
        ));
        let not_utf8 = BASE64.encode([0xff, 0xfe]);
        assert!(matches!(
            decode_payment_response(&not_utf8),
            Err(HeaderError::Utf8(_))
        ));
        let not_json = BASE64.encode("{\"success\":");
        assert!(matches!(
            decode_payment_response(&not_json),
            Err(HeaderError::Json(_))
        ));
        let wrong_shape = BASE64.encode("{\"success\":\"yes\"}");
        let err = decode_payment_response(&wrong_shape).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        let long = "A".repeat(MAX_HEADER_LEN + 4);
        assert!(matches!(
            decode_payment_response(&long),
            Err(HeaderError::TooLong { .. })
        ));
    }
}
