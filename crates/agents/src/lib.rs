//! Autonet's role agents.
//!
//! This crate owns the behaviour of the four staked roles — proposer, solver, coordinator,
//! aggregator — as long-running services: they follow the chain's events into an embedded SQLite
//! database, decide from the chain's state what to do next, and store every secret before the
//! transaction that needs it, so a restart at any moment neither loses a reveal nor submits twice.
//! Protocol math lives in `autonet-protocol`, the training spec and model loading in
//! `autonet-spec`, training in `autonet-ml`, shards in `autonet-storage`, chain access in
//! `autonet-chain`, the ERC-8004 registration in `autonet-identity`; the `autonet` binary wires
//! this crate to its command line.

#![warn(missing_docs)]

pub mod agent;
pub mod bls;
pub mod db;
pub mod events;
pub mod integrity;
pub mod kind;
pub mod roles;
pub mod run;
pub mod serve;
pub mod spec;
pub mod status;
pub mod witness;

pub use autonet_identity as identity;

pub use agent::{Agent, AgentError, AgentOptions, Faults, Role};
pub use integrity::{CodeCheck, CodeIdentity, IntegrityPolicy, check_code};
pub use run::{READY_FILE, run};
pub use spec::{Dataset, TrainingSpec};
