//! `autonet config`: the effective configuration, as the other commands will see it.
//!
//! This module owns the command's arguments ([`ConfigArgs`]) and `run`, which reports the
//! settings after flags, environment and config file. How they are resolved, and that a key shows
//! only as its address, belong to [`crate::config`]. It never talks to the chain.

use serde_json::json;

use super::{CommandError, Report};
use crate::config::EffectiveConfig;

/// `autonet config` arguments (it takes none of its own).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {}

impl ConfigArgs {
    /// Whether the command unlocks the operator's key: yes, to show its address.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet config`: the configuration it is given, as text and as JSON.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        Ok(Report {
            text: format!("{config:#?}"),
            json: json!(config),
        })
    }
}
