//! The shared BLS vectors `test/vectors/bls/*.json`, which `test/BN254.t.sol` checks against the
//! on-chain library. This test regenerates them from fixed seeds and fails if the committed
//! files differ; `AUTONET_WRITE_VECTORS=1 cargo test -p autonet-bls --test vectors` rewrites them.
//! Every case also states the verdict this crate reaches, so the two sides agree case by case.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, U256, keccak256};
use ark_ec::{AffineRepr, CurveGroup};
use ark_std::rand::SeedableRng;
use ark_std::rand::rngs::StdRng;
use autonet_bls::*;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/bls")
}

fn w(x: U256) -> Value {
    Value::String(x.to_string())
}

fn g1(p: &ark_bn254::G1Affine) -> Value {
    Value::Array(g1_words(p).iter().map(|x| w(*x)).collect())
}

/// G2 flattened as `[X0, X1, Y0, Y1]` (imaginary parts first).
fn g2(p: &ark_bn254::G2Affine) -> Value {
    let [x, y] = g2_words(p);
    Value::Array([x[0], x[1], y[0], y[1]].iter().map(|v| w(*v)).collect())
}

fn check(name: &str, message: B256, key: &PublicKey, sig: &Signature) -> Value {
    json!({
        "name": name,
        "message": message.to_string(),
        "apkG1": g1(&key.g1),
        "apkG2": g2(&key.g2),
        "sigma": g1(&sig.0),
        "valid": verify(message, key, sig),
    })
}

fn verification_cases() -> Value {
    let mut rng = StdRng::seed_from_u64(0xb15);
    let chain_id = 31337u64;
    let contract = Address::repeat_byte(0x42);
    let mut cases = Vec::new();
    let mut messages = Vec::new();
    for n in [1usize, 3, 10, 32] {
        let sks: Vec<_> = (0..n).map(|_| SecretKey::random(&mut rng)).collect();
        let pks: Vec<_> = sks.iter().map(SecretKey::public_key).collect();
        let tasks: Vec<U256> = (1..=n as u64).map(U256::from).collect();
        let parent = keccak256(format!("parent {n}"));
        let new = keccak256(format!("new {n}"));
        let manifest = keccak256(format!("manifest {n}"));
        let publisher = Address::repeat_byte(0x60 + n as u8);
        let published_block = 1_000 + n as u64;
        let m = attestation_message(&ModelAttestation {
            chain_id,
            registry: contract,
            project_id: U256::from(n),
            parent_root: parent,
            root: new,
            manifest_hash: manifest,
            publisher,
            published_block,
            task_ids: &tasks,
        });
        messages.push(json!({
            "chainId": chain_id.to_string(),
            "contract": contract.to_string(),
            "projectId": n.to_string(),
            "parentRoot": parent.to_string(),
            "newRoot": new.to_string(),
            "manifestHash": manifest.to_string(),
            "publisher": publisher.to_string(),
            "publishedBlock": published_block.to_string(),
            "taskIds": tasks.iter().map(|t| w(*t)).collect::<Vec<_>>(),
            "message": m.to_string(),
            "hashToG1": g1(&hash_to_g1(m)),
        }));
        let sigs: Vec<_> = sks.iter().map(|s| s.sign(m)).collect();
        let apk = aggregate_keys(&pks);
        let agg = aggregate_signatures(&sigs);
        cases.push(check(&format!("aggregate of {n}"), m, &apk, &agg));
        cases.push(check(
            &format!("aggregate of {n}, wrong message"),
            keccak256(m),
            &apk,
            &agg,
        ));
        if n > 1 {
            cases.push(check(
                &format!("aggregate of {n} claimed, one signature missing"),
                m,
                &apk,
                &aggregate_signatures(&sigs[1..]),
            ));
            let mut mismatched = apk;
            mismatched.g1 = aggregate_keys(&pks[1..]).g1;
            cases.push(check(
                &format!("aggregate of {n}, G1 key without its G2 twin"),
                m,
                &mismatched,
                &agg,
            ));
        }
    }
    json!({ "count": cases.len(), "cases": cases, "messages": messages, "messageCount": messages.len() })
}

fn pop_cases() -> Value {
    let mut rng = StdRng::seed_from_u64(0x909);
    let chain_id = 31337u64;
    let contract = Address::repeat_byte(0x51);
    let operator = Address::repeat_byte(0x0a);
    let honest = SecretKey::random(&mut rng);
    let victim = SecretKey::random(&mut rng).public_key();
    let pk = honest.public_key();
    let pop = honest.proof_of_possession(chain_id, contract, operator);
    let rogue = PublicKey {
        g1: (pk.g1.into_group() - victim.g1).into_affine(),
        g2: (pk.g2.into_group() - victim.g2).into_affine(),
    };
    let case = |name: &str, op: Address, key: &PublicKey, sig: &Signature| {
        let m = pop_message(chain_id, contract, op, key);
        json!({
            "name": name,
            "chainId": chain_id.to_string(),
            "contract": contract.to_string(),
            "operator": op.to_string(),
            "pkG1": g1(&key.g1),
            "pkG2": g2(&key.g2),
            "pop": g1(&sig.0),
            "message": m.to_string(),
            "valid": verify(m, key, sig),
        })
    };
    let rogue_msg = pop_message(chain_id, contract, operator, &rogue);
    let cases = vec![
        case("honest key", operator, &pk, &pop),
        case(
            "proof replayed by another operator",
            Address::repeat_byte(0x0b),
            &pk,
            &pop,
        ),
        case(
            "rogue key pk − pk_victim",
            operator,
            &rogue,
            &honest.sign(rogue_msg),
        ),
    ];
    json!({
        "count": cases.len(),
        "cases": cases,
        // The rogue-key attacker's own secret (test data), so a contract test can make the
        // attacker's best attempt at a proof for the rogue key on its own message.
        "attackerSecret": w(U256::from_be_bytes(honest.to_bytes())),
        "rogueKey": { "pkG1": g1(&rogue.g1), "pkG2": g2(&rogue.g2) },
    })
}

/// `k·G2` for `k = 1..=528` (the sums of secret keys 1..=32 that contract tests use: the EVM has
/// no G2 arithmetic, so tests take aggregate G2 keys from this table).
fn g2_multiples() -> Value {
    use ark_ec::PrimeGroup;
    let g = ark_bn254::G2Projective::generator();
    let mut acc = ark_bn254::G2Projective::default();
    let mut table = Vec::new();
    for _ in 1..=528u32 {
        acc += g;
        table.push(g2(&acc.into_affine()));
    }
    json!({ "count": table.len(), "g2": table })
}

fn generator() -> Value {
    json!({
        "g2": g2(&ark_bn254::G2Affine::generator()),
        "fieldModulus": w(field_modulus()),
        "groupOrder": w(group_order()),
        "popDomain": pop_domain().to_string(),
        "attestationDomain": attestation_domain().to_string(),
    })
}

#[test]
fn committed_vectors_are_what_this_crate_computes() {
    let files = [
        ("verify.json", verification_cases()),
        ("pop.json", pop_cases()),
        ("constants.json", generator()),
        ("g2_multiples.json", g2_multiples()),
    ];
    let write = std::env::var("AUTONET_WRITE_VECTORS").is_ok_and(|v| v == "1");
    for (name, value) in files {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir().join(name);
        if write {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with AUTONET_WRITE_VECTORS=1)",
                path.display()
            )
        });
        assert_eq!(
            committed,
            text,
            "{} is stale: regenerate with AUTONET_WRITE_VECTORS=1 cargo test -p autonet-bls --test vectors",
            path.display()
        );
    }
}

#[test]
fn the_cases_cover_both_verdicts() {
    let v = verification_cases();
    let verdicts: Vec<bool> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(
        verdicts.iter().filter(|b| **b).count(),
        4,
        "one valid aggregate per size"
    );
    assert_eq!(verdicts.len(), 4 + 4 + 3 + 3);
    let p = pop_cases();
    let pv: Vec<bool> = p["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(pv, vec![true, false, false]);
}
