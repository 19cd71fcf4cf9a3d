//! Commitments against an independent oracle: the expected preimages and hashes below were
//! computed once with Foundry's `cast` 1.7.1 (`node_modules/.bin/cast`), i.e. Solidity's own
//! `abi.encode` rules, and hard-coded. The exact commands are given above each vector.

use autonet_protocol::commitments::{
    gt_commit, solution_commit, vote_commit, vote_commit_preimage,
};
use autonet_protocol::{Address, B256, U256};

fn addr(s: &str) -> Address {
    s.parse().expect("address")
}

fn b256(s: &str) -> B256 {
    s.parse().expect("bytes32")
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// cast keccak $(cast abi-encode "f(address,uint256,bytes32,bytes32)" \
///   0x70997970C51812dc3A010C7d01b50e0d17dc79C8 7 \
///   0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8 \
///   0xabababababababababababababababababababababababababababababababab)
#[test]
fn gt_commit_matches_cast() {
    let h = gt_commit(
        addr("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        U256::from(7u64),
        b256("0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"),
        b256("0xabababababababababababababababababababababababababababababababab"),
    );
    assert_eq!(
        h,
        b256("0x1967f4b3433686a66482376e42e5e5c0224fd03ea8f5295b2392b040e7796f4d")
    );
}

/// cast keccak $(cast abi-encode "f(uint256,address,bytes32,bytes32,bytes32)" \
///   42 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC \
///   0x0102030405060708091011121314151617181920212223242526272829303132 \
///   0xabababababababababababababababababababababababababababababababab \
///   0x00000000000000000000000000000000000000000000000000000000000000ff)
#[test]
fn solution_commit_matches_cast() {
    let h = solution_commit(
        U256::from(42u64),
        addr("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        b256("0x0102030405060708091011121314151617181920212223242526272829303132"),
        B256::repeat_byte(0xab),
        b256("0x00000000000000000000000000000000000000000000000000000000000000ff"),
    );
    assert_eq!(
        h,
        b256("0xa23596398867ee58342d53304f61bf428071d7a445d570e4a222d106d99c41c5")
    );
}

/// cast abi-encode "f(uint256,address,uint16[],bytes32)" \
///   42 0x90F79bf6EB2c4f870365E785982E1f101E93b906 "[0,65535,1000]" \
///   0x5a17000000000000000000000000000000000000000000000000000000000001
/// and `cast keccak` of it.
#[test]
fn vote_commit_matches_cast() {
    let coordinator = addr("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
    let salt = b256("0x5a17000000000000000000000000000000000000000000000000000000000001");
    let scores = [0u16, 65535, 1000];
    let expected_preimage = hex_bytes(concat!(
        "000000000000000000000000000000000000000000000000000000000000002a",
        "00000000000000000000000090f79bf6eb2c4f870365e785982e1f101e93b906",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "5a17000000000000000000000000000000000000000000000000000000000001",
        "0000000000000000000000000000000000000000000000000000000000000003",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000ffff",
        "00000000000000000000000000000000000000000000000000000000000003e8",
    ));
    assert_eq!(
        vote_commit_preimage(U256::from(42u64), coordinator, &scores, salt),
        expected_preimage
    );
    assert_eq!(
        vote_commit(U256::from(42u64), coordinator, &scores, salt),
        b256("0x5868592a5c19b41bea846df6aa43eec7864f3200c336214bf47673947259d731")
    );
}

/// cast keccak $(cast abi-encode "f(uint256,address,uint16[],bytes32)" \
///   1 0x90F79bf6EB2c4f870365E785982E1f101E93b906 "[7]" \
///   0x0000000000000000000000000000000000000000000000000000000000000000)
#[test]
fn vote_commit_single_score_zero_salt_matches_cast() {
    let h = vote_commit(
        U256::from(1u64),
        addr("0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
        &[7],
        B256::ZERO,
    );
    assert_eq!(
        h,
        b256("0x261a59e86ce4ea2d7b198f455128f208c763fa8e357e4b4ada5a1e0a8cc26649")
    );
}

#[test]
fn every_field_is_bound() {
    let (task, who, salt) = (
        U256::from(1u64),
        addr("0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
        B256::ZERO,
    );
    let base = vote_commit(task, who, &[1, 2], salt);
    assert_ne!(base, vote_commit(task, who, &[2, 1], salt));
    assert_ne!(base, vote_commit(task, who, &[1, 2, 0], salt));
    assert_ne!(base, vote_commit(U256::from(2u64), who, &[1, 2], salt));
    assert_ne!(base, vote_commit(task, Address::ZERO, &[1, 2], salt));
    assert_ne!(
        base,
        vote_commit(task, who, &[1, 2], B256::with_last_byte(1))
    );
}
