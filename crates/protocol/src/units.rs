//! ATN amounts: the token's 18-decimal base units as exact decimal strings (`50`, `50.25`,
//! `0.000000000000000001`). Shared by the operator CLI and every node's status page. It never
//! rounds: an amount that does not fit exactly in base units is an error.

use alloy_primitives::U256;

/// Decimals of the ATN token.
pub const ATN_DECIMALS: usize = 18;

/// Why an amount string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was given.
    #[error("empty amount: give ATN as a decimal number, e.g. 50 or 50.5")]
    Empty,
    /// A minus sign.
    #[error("negative amount {0:?}: amounts are positive ATN")]
    Negative(String),
    /// More fractional digits than the token has.
    #[error("amount {0:?} has more than 18 decimals (1 ATN = 10^18 base units)")]
    TooManyDecimals(String),
    /// Not a plain decimal number.
    #[error("invalid amount {0:?}: give ATN as a decimal number, e.g. 50 or 50.5")]
    Invalid(String),
    /// Does not fit in 256 bits.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// Parses a decimal ATN amount (`50`, `50.5`, `.5`, `1_000`) into base units (wei).
pub fn parse_atn(text: &str) -> Result<U256, AmountError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AmountError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(AmountError::Negative(text.to_owned()));
    }
    let cleaned: String = trimmed
        .strip_prefix('+')
        .unwrap_or(trimmed)
        .chars()
        .filter(|c| *c != '_')
        .collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    let digits_only = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
        return Err(AmountError::Invalid(text.to_owned()));
    }
    if frac.len() > ATN_DECIMALS {
        return Err(AmountError::TooManyDecimals(text.to_owned()));
    }
    let padded = format!("{whole}{frac:0<width$}", width = ATN_DECIMALS);
    U256::from_str_radix(&padded, 10).map_err(|_| AmountError::Overflow(text.to_owned()))
}

/// Formats base units as decimal ATN without trailing zeros (`50`, `50.5`).
pub fn format_atn(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(ATN_DECIMALS));
    let (whole, frac) = wei.div_rem(unit);
    if frac.is_zero() {
        return whole.to_string();
    }
    let frac = format!("{frac:0>width$}", width = ATN_DECIMALS);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// An amount for people to read: ATN rounded half-up to at most 4 decimals, trailing zeros
/// dropped (`70`, `35.1610`→`35.161`), and `<0.0001` for a non-zero amount below that. Never
/// for anything that is checked or paid: use [`format_atn`], which is exact.
pub fn display_atn(wei: U256) -> String {
    let step = U256::from(10u64).pow(U256::from(ATN_DECIMALS - 4));
    if !wei.is_zero() && wei < step {
        return "<0.0001".into();
    }
    let rounded = (wei + step / U256::from(2u64)) / step * step;
    format_atn(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wei(s: &str) -> U256 {
        U256::from_str_radix(s, 10).unwrap()
    }

    #[test]
    fn amounts_for_people_are_rounded_to_four_decimals() {
        assert_eq!(display_atn(wei("69999999999999999993")), "70");
        assert_eq!(display_atn(wei("35160956541733731870")), "35.161");
        assert_eq!(display_atn(wei("35160940000000000000")), "35.1609");
        assert_eq!(display_atn(wei("100000000000000")), "0.0001");
        assert_eq!(display_atn(wei("149999999999999")), "0.0001");
        assert_eq!(display_atn(wei("49999999999999")), "<0.0001");
        assert_eq!(display_atn(U256::ZERO), "0");
        assert_eq!(display_atn(wei("100000000000000000000")), "100");
    }

    #[test]
    fn parses_whole_and_fractional_amounts() {
        assert_eq!(parse_atn("50").unwrap(), wei("50000000000000000000"));
        assert_eq!(parse_atn("50.25").unwrap(), wei("50250000000000000000"));
        assert_eq!(parse_atn(" 0.5 ").unwrap(), wei("500000000000000000"));
        assert_eq!(parse_atn(".5").unwrap(), wei("500000000000000000"));
        assert_eq!(parse_atn("5.").unwrap(), wei("5000000000000000000"));
        assert_eq!(parse_atn("1_000").unwrap(), wei("1000000000000000000000"));
        assert_eq!(parse_atn("0.000000000000000001").unwrap(), U256::from(1));
        assert_eq!(parse_atn("0").unwrap(), U256::ZERO);
        assert_eq!(parse_atn("+2").unwrap(), wei("2000000000000000000"));
    }

    #[test]
    fn rejects_what_is_not_an_exact_amount() {
        assert_eq!(parse_atn(""), Err(AmountError::Empty));
        assert_eq!(parse_atn("  "), Err(AmountError::Empty));
        assert!(matches!(parse_atn("-1"), Err(AmountError::Negative(_))));
        assert!(matches!(
            parse_atn("0.0000000000000000001"),
            Err(AmountError::TooManyDecimals(_))
        ));
        for bad in ["abc", "1.2.3", "1e18", ".", "0x10", "1,5", "5 ATN"] {
            assert!(
                matches!(parse_atn(bad), Err(AmountError::Invalid(_))),
                "{bad}"
            );
        }
        let huge = "9".repeat(80);
        assert!(matches!(parse_atn(&huge), Err(AmountError::Overflow(_))));
        assert!(
            parse_atn("-1")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            parse_atn("1.0000000000000000001")
                .unwrap_err()
                .to_string()
                .contains("more than 18 decimals")
        );
    }

    #[test]
    fn formats_without_trailing_zeros_and_round_trips() {
        assert_eq!(format_atn(wei("50000000000000000000")), "50");
        assert_eq!(format_atn(wei("50250000000000000000")), "50.25");
        assert_eq!(format_atn(U256::from(1)), "0.000000000000000001");
        assert_eq!(format_atn(U256::ZERO), "0");
        for s in ["1", "0.1", "123456.789", "0.000000000000000001", "1000000"] {
            assert_eq!(format_atn(parse_atn(s).unwrap()), s);
        }
    }
}
