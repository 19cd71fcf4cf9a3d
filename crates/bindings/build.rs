//! Copies the committed ABIs (`../../abis/*.json`, written by `make abis`) into `OUT_DIR` for
//! `sol!`, rebuilding whenever one changes.
//!
//! One normalization is applied, because `sol!` cannot resolve it: an enum declared at file level
//! in Solidity (`internalType: "enum ModelStatus"`) but used inside an interface struct
//! (`struct IModelShardRegistry.Model`) is generated in a different Rust module than the struct
//! that names it. Such enums are re-qualified into the interface that owns the file's structs
//! (`enum IModelShardRegistry.ModelStatus`). Only `internalType` strings change; the ABI (types,
//! names, selectors) is untouched.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

fn visit(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v) {
                    ("internalType", Value::String(s)) => f(s),
                    (_, v) => visit(v, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit(v, f)),
        _ => {}
    }
}

fn normalize(abi: &mut Value) {
    // The interface that owns the file's structs, e.g. `IModelShardRegistry`.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    visit(abi, &mut |s| {
        if let Some((owner, _)) = s.strip_prefix("struct ").and_then(|r| r.split_once('.')) {
            *owners.entry(owner.to_owned()).or_default() += 1;
        }
    });
    let Some(owner) = owners.into_iter().max_by_key(|(_, n)| *n).map(|(o, _)| o) else {
        return;
    };
    visit(abi, &mut |s| {
        if let Some(rest) = s.strip_prefix("enum ").filter(|r| !r.contains('.')) {
            *s = format!("enum {owner}.{rest}");
        }
    });
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let abis = Path::new(&manifest).join("../../abis");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("abis");
    std::fs::create_dir_all(&out).expect("creating OUT_DIR/abis");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", abis.display());
    let entries = std::fs::read_dir(&abis)
        .unwrap_or_else(|e| panic!("reading {}: {e} (run `make abis`)", abis.display()));
    for entry in entries {
        let path = entry.expect("listing abis/").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut abi: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        normalize(&mut abi);
        let target = out.join(path.file_name().expect("a file name"));
        std::fs::write(
            &target,
            serde_json::to_string_pretty(&abi).expect("serializing"),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    }
}
