//! The generated bindings, one `sol!` per ABI file in `abis/`, grouped by area.
//!
//! `sol!` reads the copies that `build.rs` places in `OUT_DIR/abis` (the committed files, with
//! file-level enums re-qualified so `sol!` can resolve them; see `build.rs`).
//!
//! Every binding carries `#[sol(rpc)]` (contract instances over any alloy provider) and
//! `all_derives` (so decoded events and errors print with their field names). This module owns
//! only generated code; nothing here may be edited by hand — change the Solidity, run
//! `make abis`, and the build script rebuilds this crate.

#![allow(missing_docs, clippy::too_many_arguments)]

/// The ATN token (ERC20 + Permit + Votes + EIP-3009).
pub mod token {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        ATNToken,
        concat!(env!("OUT_DIR"), "/abis/ATNToken.json")
    );
}

/// The Registry: string keys to addresses, parameters and code hashes.
pub mod registry {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        Registry,
        concat!(env!("OUT_DIR"), "/abis/Registry.json")
    );
}

/// Governance: the OpenZeppelin Governor stack and the Timelock (admin and treasury).
pub mod governance {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        AutonetGovernor,
        concat!(env!("OUT_DIR"), "/abis/AutonetGovernor.json")
    );
    alloy::sol!(
        #[sol(rpc, all_derives)]
        TimelockController,
        concat!(env!("OUT_DIR"), "/abis/TimelockController.json")
    );
}

/// Participant staking: roles, minimum stakes, unbonding, slashing.
pub mod staking {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        ParticipantStaking,
        concat!(env!("OUT_DIR"), "/abis/ParticipantStaking.json")
    );

    /// The variant names of `enum Role` (declared in `contracts/interfaces/IParticipantStaking.sol`).
    /// A JSON ABI carries enums as `uint8` without their names, so `sol!` generates a value type;
    /// these constants restore the names, numbered by [`crate::enums::Role`] (whose test checks
    /// the order against the Solidity source).
    impl IParticipantStaking::Role {
        /// No role (not staked).
        pub const NONE: Self = Self::from_underlying(crate::enums::Role::None as u8);
        /// Proposes tasks.
        pub const PROPOSER: Self = Self::from_underlying(crate::enums::Role::Proposer as u8);
        /// Trains and submits solutions.
        pub const SOLVER: Self = Self::from_underlying(crate::enums::Role::Solver as u8);
        /// Scores solutions and attests models.
        pub const COORDINATOR: Self = Self::from_underlying(crate::enums::Role::Coordinator as u8);
        /// Aggregates deltas into published models.
        pub const AGGREGATOR: Self = Self::from_underlying(crate::enums::Role::Aggregator as u8);
    }
}

/// ERC-8004 agent identities.
pub mod identity {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        AgentIdentity,
        concat!(env!("OUT_DIR"), "/abis/AgentIdentity.json")
    );
}

/// Training projects: budget escrow, model root, price, split, windows.
pub mod project {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        Project,
        concat!(env!("OUT_DIR"), "/abis/Project.json")
    );
}

/// Training rounds (TaskManager) and their settlement (Rewards).
pub mod training {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        TaskManager,
        concat!(env!("OUT_DIR"), "/abis/TaskManager.json")
    );
    alloy::sol!(
        #[sol(rpc, all_derives)]
        Rewards,
        concat!(env!("OUT_DIR"), "/abis/Rewards.json")
    );
}

/// Published models and their attestations (ModelShardRegistry), and the storage providers that
/// serve their shards (ShardProviders).
pub mod shards {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        ModelShardRegistry,
        concat!(env!("OUT_DIR"), "/abis/ModelShardRegistry.json")
    );
    alloy::sol!(
        #[sol(rpc, all_derives)]
        ShardProviders,
        concat!(env!("OUT_DIR"), "/abis/ShardProviders.json")
    );
}

/// Coordinators' BLS keys and the running aggregate that checks aggregate attestations.
pub mod bls {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        BlsSignerRegistry,
        concat!(env!("OUT_DIR"), "/abis/BlsSignerRegistry.json")
    );
}

/// Inference settlement (x402 / EIP-3009).
pub mod market {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        InferenceMarket,
        concat!(env!("OUT_DIR"), "/abis/InferenceMarket.json")
    );
}

pub use bls::BlsSignerRegistry;
pub use governance::{AutonetGovernor, TimelockController};
pub use identity::AgentIdentity;
pub use market::InferenceMarket;
pub use project::Project;
pub use registry::Registry;
pub use shards::{ModelShardRegistry, ShardProviders};
pub use staking::ParticipantStaking;
pub use token::ATNToken;
pub use training::{Rewards, TaskManager};

/// x402 payment channels (`batch-settlement`): the channel contract and its EIP-3009 deposit
/// collector.
pub mod channels {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        BatchSettlement,
        concat!(env!("OUT_DIR"), "/abis/BatchSettlement.json")
    );
    alloy::sol!(
        #[sol(rpc, all_derives)]
        Erc3009DepositCollector,
        concat!(env!("OUT_DIR"), "/abis/Erc3009DepositCollector.json")
    );
}
