//! Where the Foundry tools installed from npm live, and the one way Rust deploys the contracts
//! on a development chain (`script/Deploy.s.sol` through `forge script`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use autonet_bindings::{Deployment, DeploymentError};

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

/// Errors of [`forge_deploy`].
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// forge could not be run.
    #[error("running {forge}: {source} (run `make setup`: it installs forge from npm)", forge = .forge.display())]
    Spawn {
        /// The forge binary tried.
        forge: PathBuf,
        /// Why it could not run.
        source: std::io::Error,
    },
    /// The deploy script failed.
    #[error("forge script script/Deploy.s.sol failed ({status}):\n{output}")]
    Failed {
        /// forge's exit status.
        status: ExitStatus,
        /// forge's stdout and stderr.
        output: String,
    },
    /// The deployments file the script wrote is unusable.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
}

/// Deploys every Autonet contract with the repository's `script/Deploy.s.sol` (the `devnet`
/// profile) on the chain at `rpc_url`, signing with `private_key`, and loads the
/// `deployments/<chain_id>.json` it writes. One forge at a time per process, with its build
/// output under `target/forge-test` (so parallel `forge build`s elsewhere do not race it), and one
/// transaction at a time (`--slow`: on a loaded machine batched sends could reach anvil out of
/// nonce order and leave forge waiting for ever).
pub fn forge_deploy(
    repo: &Path,
    rpc_url: &str,
    private_key: &str,
    chain_id: u64,
    git_commit: &str,
) -> Result<Deployment, DeployError> {
    static FORGE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FORGE.lock().unwrap_or_else(|p| p.into_inner());
    let forge = foundry_tool_path(repo, "forge");
    let out = repo.join("target/forge-test");
    let output = Command::new(&forge)
        .current_dir(repo)
        .env("AUTONET_PROFILE", "devnet")
        .env("GIT_COMMIT", git_commit)
        .args(["script", "script/Deploy.s.sol:Deploy", "--broadcast"])
        .args(["--slow", "--timeout", "120"])
        .args(["--rpc-url", rpc_url, "--private-key", private_key])
        .arg("--out")
        .arg(out.join("out"))
        .arg("--cache-path")
        .arg(out.join("cache"))
        .output()
        .map_err(|source| DeployError::Spawn {
            forge: forge.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(DeployError::Failed {
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(Deployment::load_for_chain(
        repo.join("deployments"),
        chain_id,
    )?)
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
