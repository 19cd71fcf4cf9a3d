//! Decoding revert data into custom error names.
//!
//! This module owns the mapping from raw revert bytes to a readable `ErrorName { field: value }`
//! string, tried against the generated error enum of every contract (and the standard
//! `Error(string)` / `Panic(uint256)`). It must not fetch revert data itself: callers get it from
//! `eth_call` (see `autonet-chain`'s transaction helper).

use alloy::sol_types::{GenericContractError, SolInterface};

use crate::contracts::*;

/// A revert decoded against one of the contracts' error enums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRevert {
    /// The contract whose ABI declares the error (`None` for `Error(string)` / `Panic(uint256)`).
    pub contract: Option<&'static str>,
    /// The error name, e.g. `StakingBelowMinimum`.
    pub name: String,
    /// The error with its arguments, e.g. `StakingBelowMinimum { have: 1, need: 100 }`.
    pub display: String,
}

impl std::fmt::Display for DecodedRevert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.contract {
            Some(contract) => write!(f, "{contract}.{}", self.display),
            None => f.write_str(&self.display),
        }
    }
}

/// The enum `Debug` output is `Variant(Variant { .. })`; keep the inner error only.
fn strip_variant(debug: String) -> String {
    match debug.find('(') {
        Some(open) if debug.ends_with(')') => debug[open + 1..debug.len() - 1].to_owned(),
        _ => debug,
    }
}

fn error_name(display: &str) -> String {
    display
        .split([' ', '{', '('])
        .next()
        .unwrap_or(display)
        .to_owned()
}

fn decoded(contract: &'static str, debug: String) -> DecodedRevert {
    let display = strip_variant(debug);
    DecodedRevert {
        contract: Some(contract),
        name: error_name(&display),
        display,
    }
}

type Decoder = fn(&[u8]) -> Option<DecodedRevert>;

macro_rules! decoders {
    ($($name:literal => $errors:ty),* $(,)?) => {
        &[$(($name, (|data: &[u8]| {
            <$errors as SolInterface>::abi_decode(data)
                .ok()
                .map(|e| decoded($name, format!("{e:?}")))
        }) as Decoder)),*]
    };
}

/// Every contract's error decoder, by contract name.
const DECODERS: &[(&str, Decoder)] = decoders![
    "ATNToken" => ATNToken::ATNTokenErrors,
    "Registry" => Registry::RegistryErrors,
    "TimelockController" => TimelockController::TimelockControllerErrors,
    "AutonetGovernor" => AutonetGovernor::AutonetGovernorErrors,
    "ParticipantStaking" => ParticipantStaking::ParticipantStakingErrors,
    "AgentIdentity" => AgentIdentity::AgentIdentityErrors,
    "Project" => Project::ProjectErrors,
    "InferenceMarket" => InferenceMarket::InferenceMarketErrors,
    "Rewards" => Rewards::RewardsErrors,
    "TaskManager" => TaskManager::TaskManagerErrors,
    "BlsSignerRegistry" => BlsSignerRegistry::BlsSignerRegistryErrors,
    "ModelShardRegistry" => ModelShardRegistry::ModelShardRegistryErrors,
    "ShardProviders" => ShardProviders::ShardProvidersErrors,
];

/// Decodes revert data against every contract's errors, trying `preferred` (the contract that
/// was called) first so that shared errors (`AccessControlUnauthorizedAccount`, ...) are
/// attributed to it. Falls back to `Error(string)` and `Panic(uint256)`. Returns `None` for empty
/// or unknown data.
pub fn decode_revert(data: &[u8], preferred: Option<&str>) -> Option<DecodedRevert> {
    if data.len() < 4 {
        return None;
    }
    let preferred_first = DECODERS
        .iter()
        .filter(|(name, _)| Some(*name) == preferred)
        .chain(DECODERS.iter().filter(|(name, _)| Some(*name) != preferred));
    for (_, decode) in preferred_first {
        if let Some(d) = decode(data) {
            return Some(d);
        }
    }
    match GenericContractError::abi_decode(data).ok()? {
        GenericContractError::Revert(r) => Some(DecodedRevert {
            contract: None,
            name: "Error".to_owned(),
            display: format!("Error({:?})", r.reason),
        }),
        GenericContractError::Panic(p) => Some(DecodedRevert {
            contract: None,
            name: "Panic".to_owned(),
            display: format!("Panic({})", p.code),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use alloy::sol_types::{Revert, SolError};

    #[test]
    fn decodes_a_custom_error_with_its_fields() {
        let data = ParticipantStaking::StakingBelowMinimum {
            have: U256::from(1),
            need: U256::from(100),
        }
        .abi_encode();
        let d = decode_revert(&data, None).unwrap();
        assert_eq!(d.contract, Some("ParticipantStaking"));
        assert_eq!(d.name, "StakingBelowMinimum");
        assert_eq!(d.display, "StakingBelowMinimum { have: 1, need: 100 }");
        assert_eq!(
            d.to_string(),
            "ParticipantStaking.StakingBelowMinimum { have: 1, need: 100 }"
        );
    }

    #[test]
    fn decodes_errors_without_arguments_and_prefers_the_called_contract() {
        let data = ParticipantStaking::StakingZeroAmount {}.abi_encode();
        assert_eq!(
            decode_revert(&data, None).unwrap().display,
            "StakingZeroAmount"
        );
        let data = Registry::AccessControlBadConfirmation {}.abi_encode();
        assert_eq!(
            decode_revert(&data, Some("Rewards")).unwrap().contract,
            Some("Rewards")
        );
    }

    #[test]
    fn decodes_the_stake_lock_with_account_locker_and_amounts() {
        let account = alloy::primitives::Address::repeat_byte(0x11);
        let locker = alloy::primitives::Address::repeat_byte(0x22);
        let data = ParticipantStaking::StakingLocked {
            account,
            locker,
            locked: U256::from(10),
            remaining: U256::from(9),
        }
        .abi_encode();
        let d = decode_revert(&data, Some("ParticipantStaking")).unwrap();
        assert_eq!(d.contract, Some("ParticipantStaking"));
        assert_eq!(d.name, "StakingLocked");
        assert_eq!(
            d.display,
            format!(
                "StakingLocked {{ account: {account}, locker: {locker}, locked: 10, remaining: 9 }}"
            )
        );
    }

    #[test]
    fn decodes_revert_strings_and_rejects_garbage() {
        let data = Revert::from("boom").abi_encode();
        let d = decode_revert(&data, None).unwrap();
        assert_eq!(d.display, "Error(\"boom\")");
        assert!(decode_revert(&[1, 2, 3, 4, 5], None).is_none());
        assert!(decode_revert(&[], None).is_none());
    }
}
