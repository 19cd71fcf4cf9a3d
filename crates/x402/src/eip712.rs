//! EIP-712 for EIP-3009 `TransferWithAuthorization`, the message the x402 `exact` EVM scheme
//! signs.
//!
//! This module owns the typed struct, the token's domain (`name`/`version` from the
//! requirement's `extra`, the chain id, `verifyingContract` = the token), the signing digest,
//! signing with a local key and recovering the signer — rejecting malleable high-`s` signatures
//! (EIP-2), which the token (OpenZeppelin `ECDSA`) would reject too. It must not decide whether
//! a payment is acceptable: [`mod@crate::verify`] does.
//!
//! Only EOA signatures (65 bytes) are verified here; ERC-1271 contract wallets, which the token
//! accepts through `SignatureChecker`, are not supported offline.

use alloy::primitives::{Address, B256, Bytes, U256, uint};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

use crate::types::Authorization;

alloy::sol! {
    /// EIP-3009 `TransferWithAuthorization(address from,address to,uint256 value,uint256
    /// validAfter,uint256 validBefore,bytes32 nonce)`.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

impl From<&Authorization> for TransferWithAuthorization {
    fn from(a: &Authorization) -> Self {
        Self {
            from: a.from,
            to: a.to,
            value: a.value,
            validAfter: a.valid_after,
            validBefore: a.valid_before,
            nonce: a.nonce,
        }
    }
}

/// Half the secp256k1 group order: a valid low-`s` signature has `s <= SECP256K1N_HALF`.
pub const SECP256K1N_HALF: U256 =
    uint!(0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0_U256);

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 65 bytes.
    #[error("signature is {0} bytes, expected 65 (r ‖ s ‖ v)")]
    Length(usize),
    /// `v` is not 0, 1, 27 or 28.
    #[error("signature has an invalid recovery byte v = {0}")]
    InvalidV(u8),
    /// `s` is in the upper half of the curve order (a malleated signature).
    #[error("signature has a high s value (not canonical, EIP-2)")]
    HighS,
    /// No public key recovers from it.
    #[error("no signer can be recovered from the signature: {0}")]
    Unrecoverable(String),
    /// It recovers to another address.
    #[error("signature was made by {recovered}, not by the payer {expected}")]
    WrongSigner {
        /// The claimed signer (`authorization.from`).
        expected: Address,
        /// Who actually signed.
        recovered: Address,
    },
}

/// The EIP-712 domain of an EIP-3009 token.
pub fn token_domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    eip712_domain! {
        name: name.to_owned(),
        version: version.to_owned(),
        chain_id: chain_id,
        verifying_contract: token,
    }
}

/// The digest the payer signs: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(authorization))`.
pub fn signing_digest(authorization: &Authorization, domain: &Eip712Domain) -> B256 {
    TransferWithAuthorization::from(authorization).eip712_signing_hash(domain)
}

/// Signs `authorization` for `domain` with `signer`; returns the 65-byte `r ‖ s ‖ v` signature
/// (`v` = 27/28, low `s`), as viem's `signTypedData` does.
pub fn sign_authorization(
    signer: &PrivateKeySigner,
    authorization: &Authorization,
    domain: &Eip712Domain,
) -> Result<Bytes, alloy::signers::Error> {
    let digest = signing_digest(authorization, domain);
    let signature = signer.sign_hash_sync(&digest)?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// Recovers the signer of `digest` from a 65-byte `r ‖ s ‖ v` signature, rejecting high `s`.
///
/// Recovery runs in libsecp256k1 (the `secp256k1` crate): about four times faster than the pure
/// Rust curve on this path, which every paid request takes (`cargo bench -p autonet-x402`).
pub fn recover_signer(digest: &B256, signature: &[u8]) -> Result<Address, SignatureError> {
    use secp256k1::Message;
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let raw: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let v = raw[64];
    let parity = match v {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return Err(SignatureError::InvalidV(v)),
    };
    let s = U256::from_be_slice(&raw[32..64]);
    if s > SECP256K1N_HALF {
        return Err(SignatureError::HighS);
    }
    let recid =
        RecoveryId::try_from(parity).map_err(|e| SignatureError::Unrecoverable(e.to_string()))?;
    let sig = RecoverableSignature::from_compact(&raw[..64], recid)
        .map_err(|e| SignatureError::Unrecoverable(e.to_string()))?;
    let key = sig
        .recover(Message::from_digest(digest.0))
        .map_err(|e| SignatureError::Unrecoverable(e.to_string()))?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_slice(
        &alloy::primitives::keccak256(&uncompressed[1..])[12..],
    ))
}

/// Checks that `signature` over `authorization` in `domain` was made by `authorization.from`.
pub fn verify_authorization_signature(
    authorization: &Authorization,
    domain: &Eip712Domain,
    signature: &[u8],
) -> Result<B256, SignatureError> {
    let digest = signing_digest(authorization, domain);
    let recovered = recover_signer(&digest, signature)?;
    if recovered != authorization.from {
        return Err(SignatureError::WrongSigner {
            expected: authorization.from,
            recovered,
        });
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, bytes, keccak256};

    /// anvil's second development key (0x7099…79C8); test-only.
    const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    fn vector() -> (Authorization, Eip712Domain) {
        let authorization = Authorization {
            from: address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            to: address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318"),
            value: U256::from(10u64).pow(U256::from(18)),
            valid_after: U256::ZERO,
            valid_before: U256::from(1_700_000_300u64),
            nonce: B256::repeat_byte(0xab),
        };
        let domain = token_domain(
            "Autonet",
            "1",
            31337,
            address!("5FbDB2315678afecb367f032d93F642f64180aa3"),
        );
        (authorization, domain)
    }

    /// Digest and signature computed with viem 2.57 (`hashTypedData`, `signTypedData`), as the
    /// official x402 client does.
    const VIEM_DIGEST: B256 =
        b256!("11ef0dc0bfcf34c57c012133f3cc1d400a812f8946a59e335081e9543a6fa84a");
    const VIEM_SIGNATURE: Bytes = bytes!(
        "4291bc78a4a18a611aa7a9b333f643ae4805598791376ff1176114a9b8ef53fa551a62da119d84c20a4a6ff9c8d41bb15bd83090c82e01f9f95de250535c88061b"
    );

    #[test]
    fn typehash_is_eip3009() {
        assert_eq!(
            TransferWithAuthorization::eip712_type_hash(&TransferWithAuthorization::from(
                &vector().0
            )),
            keccak256(
                "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
            )
        );
    }

    #[test]
    fn digest_and_signature_match_viem() {
        let (authorization, domain) = vector();
        assert_eq!(signing_digest(&authorization, &domain), VIEM_DIGEST);
        let signer: PrivateKeySigner = PAYER_KEY.parse().unwrap();
        assert_eq!(signer.address(), authorization.from);
        let signature = sign_authorization(&signer, &authorization, &domain).unwrap();
        assert_eq!(signature, VIEM_SIGNATURE);
        assert_eq!(
            verify_authorization_signature(&authorization, &domain, &signature).unwrap(),
            VIEM_DIGEST
        );
    }

    #[test]
    fn another_domain_or_message_recovers_someone_else() {
        let (authorization, domain) = vector();
        let other_chain = token_domain("Autonet", "1", 1, domain.verifying_contract.unwrap());
        assert!(matches!(
            verify_authorization_signature(&authorization, &other_chain, &VIEM_SIGNATURE),
            Err(SignatureError::WrongSigner { .. })
        ));
        let mut more = authorization;
        more.value += U256::from(1);
        assert!(matches!(
            verify_authorization_signature(&more, &domain, &VIEM_SIGNATURE),
            Err(SignatureError::WrongSigner { .. })
        ));
    }

    #[test]
    fn rejects_high_s_bad_v_and_bad_length() {
        let (authorization, domain) = vector();
        // The malleated twin (n - s, flipped parity) recovers the same key but must be refused.
        let sig = alloy::primitives::Signature::from_raw(&VIEM_SIGNATURE).unwrap();
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let twin = alloy::primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
        assert_eq!(
            twin.recover_address_from_prehash(&VIEM_DIGEST).unwrap(),
            authorization.from
        );
        assert_eq!(
            verify_authorization_signature(&authorization, &domain, &twin.as_bytes()),
            Err(SignatureError::HighS)
        );
        let mut bad_v = VIEM_SIGNATURE.to_vec();
        bad_v[64] = 29;
        assert_eq!(
            verify_authorization_signature(&authorization, &domain, &bad_v),
            Err(SignatureError::InvalidV(29))
        );
        assert_eq!(
            verify_authorization_signature(&authorization, &domain, &VIEM_SIGNATURE[..64]),
            Err(SignatureError::Length(64))
        );
        // v in {0, 1} is accepted like {27, 28}.
        let mut v01 = VIEM_SIGNATURE.to_vec();
        v01[64] -= 27;
        assert!(verify_authorization_signature(&authorization, &domain, &v01).is_ok());
    }

    #[test]
    fn half_order_constant_is_n_over_two() {
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        assert_eq!(SECP256K1N_HALF, n >> 1);
    }
}
