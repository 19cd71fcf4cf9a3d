//! Where the Foundry tools installed from npm live.

use std::path::{Path, PathBuf};

/// The Foundry `tool` (anvil, forge, cast) installed by `npm ci` under `repo/node_modules`: the
/// native binary `@foundry-rs/<tool>-<os>-<arch>/bin/<tool>` when this platform's package is
/// there, else the `.bin/<tool>` launcher.
///
/// The launcher is a Node script that runs the native binary as its child. Killing the launcher
/// (SIGKILL, as `Child::kill` and alloy's `AnvilInstance` do) cannot reach that child, which is
/// then left running with no parent; a process we stop ourselves must be the native binary.
pub fn foundry_tool_path(repo: &Path, tool: &str) -> PathBuf {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let native = repo
        .join("node_modules/@foundry-rs")
        .join(format!("{tool}-{os}-{arch}"))
        .join("bin")
        .join(tool);
    if native.is_file() {
        native
    } else {
        repo.join("node_modules/.bin").join(tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_native_binary_and_falls_back_to_the_launcher() {
        let dir = std::env::temp_dir().join(format!("autonet-foundry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            foundry_tool_path(&dir, "anvil"),
            dir.join("node_modules/.bin/anvil")
        );
        let arch = if std::env::consts::ARCH == "x86_64" {
            "amd64"
        } else if std::env::consts::ARCH == "aarch64" {
            "arm64"
        } else {
            std::env::consts::ARCH
        };
        let os = if std::env::consts::OS == "macos" {
            "darwin"
        } else {
            std::env::consts::OS
        };
        let native = dir
            .join("node_modules/@foundry-rs")
            .join(format!("anvil-{os}-{arch}/bin"));
        std::fs::create_dir_all(&native).unwrap();
        std::fs::write(native.join("anvil"), b"").unwrap();
        assert_eq!(foundry_tool_path(&dir, "anvil"), native.join("anvil"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
