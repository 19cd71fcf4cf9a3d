//! The code fingerprint of an Autonet node.
//!
//! A node is allowed to take a staked role only when the fingerprint of its protocol-critical
//! sources equals the `node.code.hash.<version>` the DAO published in the Registry
//! (`docs/protocol.md` §8.2).
//! This crate owns the one definition of that fingerprint:
//!
//! - the list of sources lives in one file (`crates/node/integrity-sources.txt`): one
//!   repository-relative path per line, `#` starts a comment, a path ending in `/` stands for
//!   every file below that directory;
//! - the fingerprint is `SHA-256( concat over the files in sorted path order of
//!   path ‖ u64be(len) ‖ bytes )`, where `path` is the repository-relative path with `/`
//!   separators (UTF-8) and `len` the byte length of the file.
//!
//! The node's build script computes it at build time and embeds it; `autonet integrity show`
//! prints it. Anyone can recompute it from a checkout with [`fingerprint_from_list`] (or with
//! the shell recipe in `docs/governance.md`) to check what a published hash stands for.
//! This crate must not read the chain.

#![deny(missing_docs)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// `0x`-prefixed lowercase hex.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(66);
        s.push_str("0x");
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses `0x`-prefixed (or bare) 64-digit hex.
    pub fn from_hex(s: &str) -> Result<Self, IntegrityError> {
        let h = s.strip_prefix("0x").unwrap_or(s);
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IntegrityError::BadHex(s.to_string()));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16)
                .map_err(|_| IntegrityError::BadHex(s.to_string()))?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a fingerprint could not be computed.
#[derive(Debug)]
pub enum IntegrityError {
    /// A listed path or the list itself could not be read.
    Io(PathBuf, io::Error),
    /// A listed path does not exist.
    Missing(String),
    /// A listed path is absolute, climbs out of the repository or is not UTF-8.
    BadPath(String),
    /// The list names no file at all.
    Empty,
    /// Not a 32-byte hex string.
    BadHex(String),
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(p, e) => write!(f, "reading {}: {e}", p.display()),
            Self::Missing(p) => write!(
                f,
                "`{p}` is listed as a protocol-critical source but does not exist (fix the sources list)"
            ),
            Self::BadPath(p) => write!(
                f,
                "`{p}`: sources must be relative paths inside the repository without `..`"
            ),
            Self::Empty => write!(f, "the sources list names no file"),
            Self::BadHex(s) => write!(f, "`{s}` is not a 32-byte hex value (0x + 64 hex digits)"),
        }
    }
}

impl std::error::Error for IntegrityError {}

/// The entries of a sources list (comments and blank lines dropped). An entry starting with `!`
/// excludes a file or directory that an earlier entry includes (code that is not production
/// code, such as the development network's harness).
pub fn parse_list(text: &str) -> Result<Vec<String>, IntegrityError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let path = entry.strip_prefix('!').unwrap_or(entry);
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c == ".")
        {
            return Err(IntegrityError::BadPath(entry.to_string()));
        }
        out.push(entry.to_string());
    }
    Ok(out)
}

/// Every file the entries stand for, as sorted, deduplicated repository-relative paths.
pub fn expand(root: &Path, entries: &[String]) -> Result<Vec<String>, IntegrityError> {
    let mut files = Vec::new();
    let mut excluded = Vec::new();
    for entry in entries {
        if let Some(ex) = entry.strip_prefix('!') {
            if fs::metadata(root.join(ex.trim_end_matches('/'))).is_err() {
                return Err(IntegrityError::Missing(entry.clone()));
            }
            excluded.push(ex.trim_end_matches('/').to_string());
            continue;
        }
        let path = root.join(entry.trim_end_matches('/'));
        let meta = fs::metadata(&path).map_err(|_| IntegrityError::Missing(entry.clone()))?;
        if meta.is_dir() {
            walk(root, &path, &mut files)?;
        } else {
            files.push(entry.trim_end_matches('/').to_string());
        }
    }
    files.retain(|f| {
        !excluded.iter().any(|ex| {
            f == ex
                || f.strip_prefix(ex.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    });
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(IntegrityError::Empty);
    }
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), IntegrityError> {
    let rd = fs::read_dir(dir).map_err(|e| IntegrityError::Io(dir.to_path_buf(), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| IntegrityError::Io(dir.to_path_buf(), e))?;
        let path = entry.path();
        let ty = entry
            .file_type()
            .map_err(|e| IntegrityError::Io(path.clone(), e))?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .ok_or_else(|| IntegrityError::BadPath(path.display().to_string()))?;
            out.push(rel.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(())
}

/// The fingerprint of `files` (repository-relative, any order) under `root`.
pub fn fingerprint(root: &Path, files: &[String]) -> Result<Fingerprint, IntegrityError> {
    let mut sorted: Vec<&String> = files.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut h = Sha256::new();
    for rel in sorted {
        let path = root.join(rel);
        let bytes = fs::read(&path).map_err(|e| IntegrityError::Io(path, e))?;
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    Ok(Fingerprint(h.finalize().into()))
}

/// Reads the sources list at `root/list`, expands it and fingerprints the files; returns the
/// fingerprint and the files it covers.
pub fn fingerprint_from_list(
    root: &Path,
    list: &str,
) -> Result<(Fingerprint, Vec<String>), IntegrityError> {
    let path = root.join(list);
    let text = fs::read_to_string(&path).map_err(|e| IntegrityError::Io(path, e))?;
    let files = expand(root, &parse_list(&text)?)?;
    Ok((fingerprint(root, &files)?, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src/inner")).unwrap();
        fs::write(dir.path().join("src/a.rs"), b"fn a() {}").unwrap();
        fs::write(dir.path().join("src/inner/b.rs"), b"fn b() {}").unwrap();
        fs::write(dir.path().join("Cargo.lock"), b"lock").unwrap();
        fs::write(
            dir.path().join("list.txt"),
            "# protocol sources\nsrc/\nCargo.lock  # deps\n\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn matches_the_documented_encoding() {
        let dir = repo();
        let (fp, files) = fingerprint_from_list(dir.path(), "list.txt").unwrap();
        assert_eq!(files, ["Cargo.lock", "src/a.rs", "src/inner/b.rs"]);
        // Recompute the documented encoding by hand.
        let mut h = Sha256::new();
        for (p, b) in [
            ("Cargo.lock", &b"lock"[..]),
            ("src/a.rs", b"fn a() {}"),
            ("src/inner/b.rs", b"fn b() {}"),
        ] {
            h.update(p.as_bytes());
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
        assert_eq!(fp.0, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn any_change_a_rename_or_a_new_file_changes_it() {
        let dir = repo();
        let (base, _) = fingerprint_from_list(dir.path(), "list.txt").unwrap();
        fs::write(dir.path().join("src/a.rs"), b"fn a() { }").unwrap();
        let (edited, _) = fingerprint_from_list(dir.path(), "list.txt").unwrap();
        assert_ne!(base, edited);
        fs::write(dir.path().join("src/a.rs"), b"fn a() {}").unwrap();
        assert_eq!(
            fingerprint_from_list(dir.path(), "list.txt").unwrap().0,
            base
        );
        fs::write(dir.path().join("src/inner/c.rs"), b"").unwrap();
        assert_ne!(
            fingerprint_from_list(dir.path(), "list.txt").unwrap().0,
            base
        );
        fs::remove_file(dir.path().join("src/inner/c.rs")).unwrap();
        fs::rename(dir.path().join("src/a.rs"), dir.path().join("src/z.rs")).unwrap();
        assert_ne!(
            fingerprint_from_list(dir.path(), "list.txt").unwrap().0,
            base
        );
    }

    #[test]
    fn the_length_prefix_separates_files() {
        // Moving bytes from one file to the next must change the fingerprint.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"xy").unwrap();
        fs::write(dir.path().join("b"), b"z").unwrap();
        let files = vec!["a".to_string(), "b".to_string()];
        let one = fingerprint(dir.path(), &files).unwrap();
        fs::write(dir.path().join("a"), b"x").unwrap();
        fs::write(dir.path().join("b"), b"yz").unwrap();
        assert_ne!(one, fingerprint(dir.path(), &files).unwrap());
    }

    #[test]
    fn bad_lists_are_refused_with_the_entry_named() {
        let dir = repo();
        let err = expand(dir.path(), &["nope.rs".into()]).unwrap_err();
        assert!(err.to_string().contains("nope.rs"), "{err}");
        assert!(matches!(
            parse_list("../etc/passwd").unwrap_err(),
            IntegrityError::BadPath(_)
        ));
        assert!(matches!(
            parse_list("/etc/passwd").unwrap_err(),
            IntegrityError::BadPath(_)
        ));
        assert!(matches!(
            expand(dir.path(), &[]).unwrap_err(),
            IntegrityError::Empty
        ));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(Fingerprint::from_hex(&fp.to_hex()).unwrap(), fp);
        assert!(Fingerprint::from_hex("0x12").is_err());
        assert!(Fingerprint::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn an_excluded_path_leaves_the_fingerprint() {
        let dir = repo();
        fs::create_dir_all(dir.path().join("src/harness")).unwrap();
        fs::write(dir.path().join("src/harness/net.rs"), b"fn net() {}").unwrap();
        fs::write(dir.path().join("src/harness.rs"), b"fn h() {}").unwrap();
        let with = expand(dir.path(), &parse_list("src/\n").unwrap()).unwrap();
        assert!(with.contains(&"src/harness/net.rs".to_string()));
        let without = expand(
            dir.path(),
            &parse_list("src/\n!src/harness/  # not production code\n").unwrap(),
        )
        .unwrap();
        assert!(!without.iter().any(|f| f.starts_with("src/harness/")));
        // A sibling whose name only starts like the excluded directory stays.
        assert!(without.contains(&"src/harness.rs".to_string()));
        assert!(without.contains(&"src/a.rs".to_string()));
        assert!(matches!(
            expand(dir.path(), &parse_list("src/\n!src/nothing/\n").unwrap()),
            Err(IntegrityError::Missing(_))
        ));
        assert!(matches!(
            parse_list("!/etc\n"),
            Err(IntegrityError::BadPath(_))
        ));
        assert!(matches!(parse_list("!\n"), Err(IntegrityError::BadPath(_))));
    }
}
