//! BLS signatures on BN254 exactly as the Autonet contracts check them
//! (`contracts/libraries/BN254.sol`).
//!
//! - A secret key is `sk ∈ Fr`; its public key is the pair `(sk·G1, sk·G2)`. The contract sums
//!   G1 keys of the signers (cheap point additions) and binds the sum to the G2 key the
//!   submitter supplies with one random-linear-combination pairing check, as EigenLayer's
//!   `BLSSignatureChecker` does.
//! - A signature is `σ = sk·H(m) ∈ G1` where `H` is [`hash_to_g1`] (try-and-increment on
//!   `x = uint256(m) mod p`, `y = β^((p+1)/4)`), aggregation is point addition.
//! - [`verify`] computes `γ = keccak256(m ‖ apk ‖ apkG2 ‖ σ) mod r` and checks
//!   `e(σ + γ·apk, −G2) · e(H(m) + γ·G1, apkG2) = 1`, which holds (except with negligible
//!   probability) iff `e(σ, G2) = e(H(m), apkG2)` and `e(apk, G2) = e(G1, apkG2)`.
//! - Rogue keys are stopped by a proof of possession: at registration a coordinator signs
//!   [`pop_message`], which binds the chain, the registering contract, the operator's address
//!   and both halves of the key.
//!
//! Points cross the ABI as `uint256` words: G1 as `(x, y)`, G2 as `X = [x.c1, x.c0]`,
//! `Y = [y.c1, y.c0]` (imaginary part first, the precompile's order); the point at infinity is
//! all zeros.

#![deny(missing_docs)]

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use ark_bn254::{Bn254, Fq, Fq2, Fq12, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInteger, Field, One, PrimeField, UniformRand, Zero};
use ark_std::rand::{CryptoRng, RngCore};

/// Domain of proof-of-possession messages: `keccak256("autonet.bls.pop.v1")`.
pub fn pop_domain() -> B256 {
    keccak256(b"autonet.bls.pop.v1")
}

/// Domain of model attestation messages: `keccak256("autonet.bls.attestation.v2")` (v2 names the
/// manifest hash, the publisher and the publication block).
pub fn attestation_domain() -> B256 {
    keccak256(b"autonet.bls.attestation.v2")
}

/// What can be wrong with key material or points received from outside.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlsError {
    /// A secret key of zero (or a multiple of the group order) has no public key worth having.
    #[error("the BLS secret key is zero modulo the group order; generate a new one")]
    ZeroSecretKey,
    /// A coordinate is not below the field modulus.
    #[error("{0}: a coordinate is not below the BN254 field modulus")]
    NotInField(&'static str),
    /// The words do not describe a point on the curve.
    #[error("{0}: the point is not on the BN254 curve")]
    NotOnCurve(&'static str),
    /// A G2 point outside the prime-order subgroup.
    #[error("{0}: the point is not in the prime-order subgroup")]
    NotInSubgroup(&'static str),
    /// The secret key file does not hold 32 bytes of hex.
    #[error("a BLS secret key is 32 bytes of hex (0x + 64 digits)")]
    BadSecretKeyEncoding,
}

/// A BLS secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Fr);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let s = Fr::rand(rng);
            if !s.is_zero() {
                return Self(s);
            }
        }
    }

    /// The key from 32 big-endian bytes (reduced modulo the group order).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, BlsError> {
        let s = Fr::from_be_bytes_mod_order(bytes);
        if s.is_zero() {
            return Err(BlsError::ZeroSecretKey);
        }
        Ok(Self(s))
    }

    /// The key from `0x`-prefixed hex.
    pub fn from_hex(text: &str) -> Result<Self, BlsError> {
        let b: B256 = text
            .trim()
            .parse()
            .map_err(|_| BlsError::BadSecretKeyEncoding)?;
        Self::from_bytes(&b.0)
    }

    /// 32 big-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let v = self.0.into_bigint().to_bytes_be();
        let mut out = [0u8; 32];
        out[32 - v.len()..].copy_from_slice(&v);
        out
    }

    /// The public key `(sk·G1, sk·G2)`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            g1: (G1Projective::generator() * self.0).into_affine(),
            g2: (G2Projective::generator() * self.0).into_affine(),
        }
    }

    /// `sk·H(message)`.
    pub fn sign(&self, message: B256) -> Signature {
        Signature((hash_to_g1(message) * self.0).into_affine())
    }

    /// The proof of possession the contract checks at registration.
    pub fn proof_of_possession(
        &self,
        chain_id: u64,
        contract: Address,
        operator: Address,
    ) -> Signature {
        self.sign(pop_message(
            chain_id,
            contract,
            operator,
            &self.public_key(),
        ))
    }
}

/// A public key: the same scalar on both groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// `sk·G1` (the contract stores and sums these).
    pub g1: G1Affine,
    /// `sk·G2` (supplied with a registration or an aggregate).
    pub g2: G2Affine,
}

/// A signature (or an aggregate of signatures) in G1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(pub G1Affine);

/// Sum of signatures (the aggregate of the signers' signatures on one message).
pub fn aggregate_signatures<'a>(sigs: impl IntoIterator<Item = &'a Signature>) -> Signature {
    let sum: G1Projective = sigs.into_iter().map(|s| s.0.into_group()).sum();
    Signature(sum.into_affine())
}

/// Sum of public keys on both groups.
pub fn aggregate_keys<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> PublicKey {
    let (g1, g2) = keys
        .into_iter()
        .fold((G1Projective::zero(), G2Projective::zero()), |(a, b), k| {
            (a + k.g1, b + k.g2)
        });
    PublicKey {
        g1: g1.into_affine(),
        g2: g2.into_affine(),
    }
}

/// The BN254 base field modulus `p`.
pub fn field_modulus() -> U256 {
    U256::from_be_slice(&Fq::MODULUS.to_bytes_be())
}

/// The BN254 group order `r`.
pub fn group_order() -> U256 {
    U256::from_be_slice(&Fr::MODULUS.to_bytes_be())
}

/// Hash a 32-byte message to G1 as the contract does: `x = uint256(m) mod p`; loop
/// `{ β = x³ + 3; y = β^((p+1)/4); if y² = β return (x, y); x += 1 }`.
pub fn hash_to_g1(message: B256) -> G1Affine {
    let mut exp = Fq::MODULUS;
    exp.add_with_carry(&ark_ff::BigInt::from(1u64));
    exp.div2();
    exp.div2();
    let three = Fq::from(3u64);
    let mut x = Fq::from_be_bytes_mod_order(message.as_slice());
    loop {
        let beta = x.square() * x + three;
        let y = beta.pow(exp);
        if y.square() == beta {
            return G1Affine::new_unchecked(x, y);
        }
        x += Fq::one();
    }
}

/// `γ = keccak256(abi.encodePacked(m, apk.x, apk.y, apkG2.X[0], apkG2.X[1], apkG2.Y[0],
/// apkG2.Y[1], σ.x, σ.y)) mod r`.
pub fn gamma(message: B256, key: &PublicKey, sig: &Signature) -> Fr {
    let mut packed = Vec::with_capacity(32 * 9);
    packed.extend_from_slice(message.as_slice());
    for w in g1_words(&key.g1) {
        packed.extend_from_slice(&w.to_be_bytes::<32>());
    }
    let [xs, ys] = g2_words(&key.g2);
    for w in xs.into_iter().chain(ys) {
        packed.extend_from_slice(&w.to_be_bytes::<32>());
    }
    for w in g1_words(&sig.0) {
        packed.extend_from_slice(&w.to_be_bytes::<32>());
    }
    Fr::from_be_bytes_mod_order(keccak256(&packed).as_slice())
}

/// The contract's check: does `sig` sign `message` under `key`, with `key.g1` and `key.g2`
/// the same scalar? An aggregate verifies under the aggregate key.
pub fn verify(message: B256, key: &PublicKey, sig: &Signature) -> bool {
    let g = gamma(message, key, sig);
    let left = sig.0.into_group() + key.g1 * g;
    let right = hash_to_g1(message).into_group() + G1Projective::generator() * g;
    let out = Bn254::multi_pairing(
        [left.into_affine(), right.into_affine()],
        [(-G2Projective::generator()).into_affine(), key.g2],
    );
    out.0 == Fq12::one()
}

/// The message a coordinator signs to prove it holds the secret key of `key`:
/// `keccak256(abi.encode(POP_DOMAIN, chainId, contract, operator, pkG1.x, pkG1.y, pkG2.X[0],
/// pkG2.X[1], pkG2.Y[0], pkG2.Y[1]))`.
pub fn pop_message(chain_id: u64, contract: Address, operator: Address, key: &PublicKey) -> B256 {
    let [x, y] = g1_words(&key.g1);
    let [gx, gy] = g2_words(&key.g2);
    keccak256(
        (
            pop_domain(),
            U256::from(chain_id),
            contract,
            operator,
            x,
            y,
            gx,
            gy,
        )
            .abi_encode_params(),
    )
}

/// One publication of a model as `ModelShardRegistry` records it: everything a coordinator's
/// attestation vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelAttestation<'a> {
    /// The chain.
    pub chain_id: u64,
    /// The `ModelShardRegistry` contract.
    pub registry: Address,
    /// The training project.
    pub project_id: U256,
    /// The model it was trained from.
    pub parent_root: B256,
    /// The new model's Merkle root.
    pub root: B256,
    /// keccak256 of the manifest JSON the coordinator checked.
    pub manifest_hash: B256,
    /// The aggregator that published it (paid the aggregator fees on acceptance).
    pub publisher: Address,
    /// The block of this publication (a root published again after its record expired is a new
    /// publication, with another message).
    pub published_block: u64,
    /// The training tasks merged into it.
    pub task_ids: &'a [U256],
}

impl ModelAttestation<'_> {
    /// What the coordinators sign: `keccak256(abi.encode(ATTESTATION_DOMAIN, chainId, registry,
    /// projectId, parentRoot, root, manifestHash, publisher, publishedBlock, taskIds))`, exactly
    /// `ModelShardRegistry.blsAttestationMessage(root)` for this publication.
    pub fn message(&self) -> B256 {
        keccak256(
            (
                attestation_domain(),
                U256::from(self.chain_id),
                self.registry,
                self.project_id,
                self.parent_root,
                self.root,
                self.manifest_hash,
                self.publisher,
                U256::from(self.published_block),
                self.task_ids.to_vec(),
            )
                .abi_encode_params(),
        )
    }
}

/// What the coordinators sign for a published model ([`ModelAttestation::message`]).
pub fn attestation_message(model: &ModelAttestation<'_>) -> B256 {
    model.message()
}

fn fq_word(f: &Fq) -> U256 {
    U256::from_be_slice(&f.into_bigint().to_bytes_be())
}

/// G1 as ABI words `[x, y]` (infinity = zeros).
pub fn g1_words(p: &G1Affine) -> [U256; 2] {
    match p.xy() {
        Some((x, y)) => [fq_word(&x), fq_word(&y)],
        None => [U256::ZERO; 2],
    }
}

/// G2 as ABI words `[[x.c1, x.c0], [y.c1, y.c0]]` (infinity = zeros).
pub fn g2_words(p: &G2Affine) -> [[U256; 2]; 2] {
    match p.xy() {
        Some((x, y)) => [
            [fq_word(&x.c1), fq_word(&x.c0)],
            [fq_word(&y.c1), fq_word(&y.c0)],
        ],
        None => [[U256::ZERO; 2]; 2],
    }
}

fn word_fq(w: U256, what: &'static str) -> Result<Fq, BlsError> {
    if w >= field_modulus() {
        return Err(BlsError::NotInField(what));
    }
    Ok(Fq::from_be_bytes_mod_order(&w.to_be_bytes::<32>()))
}

/// G1 from ABI words, checked to be on the curve (G1 has cofactor 1).
pub fn g1_from_words(w: [U256; 2], what: &'static str) -> Result<G1Affine, BlsError> {
    if w == [U256::ZERO; 2] {
        return Ok(G1Affine::identity());
    }
    let p = G1Affine::new_unchecked(word_fq(w[0], what)?, word_fq(w[1], what)?);
    if !p.is_on_curve() {
        return Err(BlsError::NotOnCurve(what));
    }
    Ok(p)
}

/// G2 from ABI words, checked to be on the curve and in the prime-order subgroup.
pub fn g2_from_words(w: [[U256; 2]; 2], what: &'static str) -> Result<G2Affine, BlsError> {
    if w == [[U256::ZERO; 2]; 2] {
        return Ok(G2Affine::identity());
    }
    let x = Fq2::new(word_fq(w[0][1], what)?, word_fq(w[0][0], what)?);
    let y = Fq2::new(word_fq(w[1][1], what)?, word_fq(w[1][0], what)?);
    let p = G2Affine::new_unchecked(x, y);
    if !p.is_on_curve() {
        return Err(BlsError::NotOnCurve(what));
    }
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(BlsError::NotInSubgroup(what));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_std::rand::SeedableRng;
    use ark_std::rand::rngs::StdRng;

    fn keys(n: usize, seed: u64) -> Vec<SecretKey> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| SecretKey::random(&mut rng)).collect()
    }

    #[test]
    fn hash_to_g1_lands_on_the_curve_and_depends_on_the_message() {
        let a = hash_to_g1(B256::repeat_byte(1));
        let b = hash_to_g1(B256::repeat_byte(2));
        assert!(a.is_on_curve() && b.is_on_curve());
        assert_ne!(a, b);
        // x starts at m mod p and only ever moves up by the number of tries.
        let m = B256::from(U256::from(5u64));
        let x = g1_words(&hash_to_g1(m))[0];
        assert!(x >= U256::from(5u64) && x < U256::from(5u64 + 64));
    }

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let k = keys(2, 1);
        let m = keccak256(b"model");
        let sig = k[0].sign(m);
        assert!(verify(m, &k[0].public_key(), &sig));
        assert!(!verify(keccak256(b"other"), &k[0].public_key(), &sig));
        assert!(!verify(m, &k[1].public_key(), &sig));
    }

    #[test]
    fn aggregates_verify_under_the_aggregate_key_and_not_with_a_missing_signer() {
        let k = keys(5, 2);
        let m = keccak256(b"round 7");
        let sigs: Vec<_> = k.iter().map(|s| s.sign(m)).collect();
        let pks: Vec<_> = k.iter().map(SecretKey::public_key).collect();
        let agg = aggregate_signatures(&sigs);
        assert!(verify(m, &aggregate_keys(&pks), &agg));
        // Claiming all five signed when only four did fails.
        let four = aggregate_signatures(&sigs[..4]);
        assert!(!verify(m, &aggregate_keys(&pks), &four));
        assert!(verify(m, &aggregate_keys(&pks[..4]), &four));
    }

    #[test]
    fn a_g1_key_that_does_not_match_its_g2_twin_is_rejected() {
        let k = keys(2, 3);
        let m = keccak256(b"x");
        let mut pk = k[0].public_key();
        pk.g1 = k[1].public_key().g1;
        assert!(!verify(m, &pk, &k[0].sign(m)));
    }

    #[test]
    fn a_rogue_key_forges_an_aggregate_but_cannot_prove_possession() {
        // The attacker publishes pk_r = pk_a − pk_v; then pk_v + pk_r = pk_a, which the attacker
        // signs for alone. The proof of possession is what stops it.
        let k = keys(2, 4);
        let (victim, attacker) = (k[0].public_key(), &k[1]);
        let pa = attacker.public_key();
        let rogue = PublicKey {
            g1: (pa.g1.into_group() - victim.g1).into_affine(),
            g2: (pa.g2.into_group() - victim.g2).into_affine(),
        };
        let m = keccak256(b"forged model");
        let forged = attacker.sign(m);
        assert!(verify(m, &aggregate_keys([&victim, &rogue]), &forged));
        let (chain, contract, op) = (31337, Address::repeat_byte(7), Address::repeat_byte(9));
        let claimed = pop_message(chain, contract, op, &rogue);
        // The attacker can only sign with keys it has; none of them gives a valid PoP for rogue.
        assert!(!verify(claimed, &rogue, &attacker.sign(claimed)));
        // A genuine PoP verifies and is bound to the operator.
        let pop = attacker.proof_of_possession(chain, contract, op);
        assert!(verify(pop_message(chain, contract, op, &pa), &pa, &pop));
        assert!(!verify(
            pop_message(chain, contract, Address::repeat_byte(8), &pa),
            &pa,
            &pop
        ));
    }

    #[test]
    fn words_round_trip_and_bad_points_are_refused() {
        let pk = keys(1, 5)[0].public_key();
        assert_eq!(g1_from_words(g1_words(&pk.g1), "pk").unwrap(), pk.g1);
        assert_eq!(g2_from_words(g2_words(&pk.g2), "pk").unwrap(), pk.g2);
        let mut w = g1_words(&pk.g1);
        w[1] += U256::from(1u64);
        assert_eq!(g1_from_words(w, "pk"), Err(BlsError::NotOnCurve("pk")));
        let w = [field_modulus(), U256::from(2u64)];
        assert_eq!(g1_from_words(w, "pk"), Err(BlsError::NotInField("pk")));
        let mut w2 = g2_words(&pk.g2);
        w2[1][0] ^= U256::from(1u64);
        assert!(g2_from_words(w2, "pk").is_err());
    }

    #[test]
    fn secret_keys_round_trip_through_bytes_and_zero_is_refused() {
        let k = keys(1, 6).remove(0);
        assert_eq!(SecretKey::from_bytes(&k.to_bytes()).unwrap(), k);
        assert_eq!(
            SecretKey::from_bytes(&[0; 32]),
            Err(BlsError::ZeroSecretKey)
        );
        assert_eq!(format!("{k:?}"), "SecretKey(<redacted>)");
    }
}
