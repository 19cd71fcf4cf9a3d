//! Example cartridge: the byte histogram of its input and its Shannon entropy in bits per byte
//! (floats: wasm specifies them bit for bit, so every machine returns the same bytes). Output:
//! 256 little-endian u32 counts, then the entropy as a little-endian f64. An input starting with
//! `"panic"` panics (a trap, for the host's tests).

fn entropy(input: &[u8]) -> Vec<u8> {
    if input.starts_with(b"panic") {
        panic!("asked to panic");
    }
    let mut counts = [0u32; 256];
    for &b in input {
        counts[b as usize] += 1;
    }
    let n = input.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    let mut out: Vec<u8> = counts.iter().flat_map(|c| c.to_le_bytes()).collect();
    out.extend_from_slice(&bits.to_le_bytes());
    out
}

autonet_cartridge_sdk::cartridge!(entropy);
