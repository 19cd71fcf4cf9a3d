//! The Autonet node: the `autonet` binary's library.
//!
//! This crate owns the operator's command line over the chain — configuration
//! ([`config`]: flag > environment > TOML > default, secrets from the environment or an
//! encrypted keystore), encrypted key files ([`keystore`]), ATN amounts ([`amount`]), plain-words
//! times ([`format`]), the command list and its dispatch ([`cli`]) and the commands themselves
//! ([`commands`]: each owns its arguments and its `run`: deploy, key, stake, unstake, withdraw,
//! project, status, run, serve, infer, claim, gov, integrity) and the development network
//! ([`devnet`]: a whole local network of agent processes, the paid inference check and the leak
//! check; not production code, outside the code fingerprint). It must
//! not hold protocol rules (those live in `autonet-protocol` and the contracts) or raw chain
//! plumbing (that is `autonet-chain`).

#![warn(missing_docs)]

pub mod amount;
pub mod cli;
pub mod commands;
pub mod config;
pub mod devnet;
pub mod format;
pub mod keystore;
