//! Embeds the node's code fingerprint (see `autonet-integrity` and `integrity-sources.txt`), and
//! records where libtorch was found so the installed `autonet` runs without `LD_LIBRARY_PATH`.

use std::path::Path;

const LIST: &str = "crates/node/integrity-sources.txt";

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let entries = std::fs::read_to_string(root.join(LIST))
        .map_err(|e| e.to_string())
        .and_then(|t| autonet_integrity::parse_list(&t).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{LIST}: {e}"));
    let (fingerprint, files) = autonet_integrity::fingerprint_from_list(&root, LIST)
        .unwrap_or_else(|e| panic!("computing the code fingerprint: {e}"));
    for entry in entries.iter().filter(|e| !e.starts_with('!')) {
        // A directory makes cargo rerun on any change below it, added files included.
        println!(
            "cargo:rerun-if-changed={}",
            root.join(entry.trim_end_matches('/')).display()
        );
    }
    println!("cargo:rustc-env=AUTONET_CODE_FINGERPRINT={fingerprint}");
    println!("cargo:rustc-env=AUTONET_CODE_FILES={}", files.len());

    // torch-sys links libtorch from `$LIBTORCH/lib` (`make` exports it). An RPATH (not RUNPATH:
    // `--disable-new-dtags`, so libtorch's own dependencies resolve through it too) lets the
    // binary start from any directory with a bare environment (`make install`).
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = Path::new(&libtorch).join("lib");
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--disable-new-dtags,-rpath,{}",
            lib.display()
        );
    }
}
