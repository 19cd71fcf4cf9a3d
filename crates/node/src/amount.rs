//! ATN amounts as operators type and read them.
//!
//! This module owns the conversion between decimal ATN strings (`50`, `50.25`, `0.000000000000000001`)
//! and the token's 18-decimal base units ([`parse_atn`], [`format_atn`], whose home is
//! `autonet_protocol::units`). It must not round: an
//! amount that does not fit exactly in base units is an error, never a silently different number.

use alloy::primitives::U256;
pub use autonet_protocol::units::{ATN_DECIMALS, AmountError, format_atn, parse_atn};

/// [`format_atn`] followed by ` ATN`.
pub fn atn(wei: U256) -> String {
    format!("{} ATN", format_atn(wei))
}

/// A clap value parser for ATN amounts.
pub fn atn_arg(text: &str) -> Result<U256, String> {
    parse_atn(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atn_appends_the_unit_and_atn_arg_explains_a_refusal() {
        assert_eq!(atn(U256::from(1_500_000_000_000_000_000u64)), "1.5 ATN");
        assert!(atn_arg("-1").unwrap_err().contains("negative"));
        assert_eq!(
            atn_arg("2").unwrap(),
            U256::from(2_000_000_000_000_000_000u64)
        );
    }
}
