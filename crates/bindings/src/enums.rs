//! One Rust enum per on-chain enum. The ABI carries enums as `uint8`, so the generated bindings
//! return numbers; these types name them. Each variant's value is its position in the Solidity
//! declaration, which the tests below read from the contract sources, so a reordered or extended
//! Solidity enum fails `cargo test` instead of being misread.

use std::fmt;

macro_rules! onchain_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($solidity:literal in $file:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// The Solidity enum's name and the source file declaring it (repository-relative).
            pub const SOLIDITY: (&'static str, &'static str) = ($solidity, $file);

            /// The variant of an ABI value; `None` for a value the contract never returns.
            pub fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The name shown to operators.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }

            /// The label of an ABI value, `unknown` for a value outside the enum.
            pub fn label_of(value: u8) -> &'static str {
                Self::from_u8(value).map_or("unknown", Self::label)
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v as u8
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

onchain_enum! {
    /// `ITaskManager.TaskState`.
    TaskState ("TaskState" in "contracts/interfaces/ITaskManager.sol") {
        /// No such task.
        None = 0 => "None",
        /// Commits and solution reveals.
        Open = 1 => "Open",
        /// The eval spec is public: votes.
        GroundTruthRevealed = 2 => "GroundTruthRevealed",
        /// Settled by Rewards.
        Finalized = 3 => "Finalized",
        /// Ended without settlement.
        Closed = 4 => "Closed",
        /// The proposer withheld the eval spec.
        Cancelled = 5 => "Cancelled",
    }
}

onchain_enum! {
    /// `ITaskManager.CloseReason`.
    CloseReason ("CloseReason" in "contracts/interfaces/ITaskManager.sol") {
        /// Nobody committed.
        NoCommits = 0 => "NoCommits",
        /// Nobody revealed a solution.
        NoRevealedSolutions = 1 => "NoRevealedSolutions",
        /// Fewer revealed votes than the project's minimum.
        TooFewVotes = 2 => "TooFewVotes",
        /// The revealed votes held too little of the coordinator stake.
        NoStakeQuorum = 3 => "NoStakeQuorum",
    }
}

onchain_enum! {
    /// `ITaskManager.Phase`: the phases of a task, in order.
    Phase ("Phase" in "contracts/interfaces/ITaskManager.sol") {
        /// Solvers commit.
        Commit = 0 => "commit",
        /// Solvers reveal.
        SolutionReveal = 1 => "solution reveal",
        /// The proposer reveals the eval spec.
        GroundTruthReveal = 2 => "eval spec reveal",
        /// Coordinators commit votes.
        VoteCommit = 3 => "vote commit",
        /// Coordinators reveal votes.
        VoteReveal = 4 => "vote reveal",
    }
}

onchain_enum! {
    /// `ModelStatus` (ModelShardRegistry).
    ModelStatus ("ModelStatus" in "contracts/interfaces/IModelShardRegistry.sol") {
        /// Never published.
        None = 0 => "None",
        /// Published, waiting for attestations.
        Pending = 1 => "Pending",
        /// Accepted as the project's model.
        Accepted = 2 => "Accepted",
        /// The project's model moved on before it was accepted.
        Superseded = 3 => "Superseded",
        /// Not accepted within its expiry.
        Expired = 4 => "Expired",
    }
}

onchain_enum! {
    /// `Role` (ParticipantStaking).
    Role ("Role" in "contracts/interfaces/IParticipantStaking.sol") {
        /// Not staked.
        None = 0 => "none",
        /// Proposes tasks.
        Proposer = 1 => "proposer",
        /// Trains deltas.
        Solver = 2 => "solver",
        /// Evaluates and votes; attests models.
        Coordinator = 3 => "coordinator",
        /// Aggregates and publishes models.
        Aggregator = 4 => "aggregator",
    }
}

onchain_enum! {
    /// OpenZeppelin `IGovernor.ProposalState`.
    ProposalState ("ProposalState" in "node_modules/@openzeppelin/contracts/governance/IGovernor.sol") {
        /// Waiting for the voting delay.
        Pending = 0 => "Pending",
        /// Voting.
        Active = 1 => "Active",
        /// Cancelled by its proposer or a canceller.
        Canceled = 2 => "Canceled",
        /// Did not pass.
        Defeated = 3 => "Defeated",
        /// Passed, not queued yet.
        Succeeded = 4 => "Succeeded",
        /// In the Timelock.
        Queued = 5 => "Queued",
        /// Passed and never executed in time.
        Expired = 6 => "Expired",
        /// Executed.
        Executed = 7 => "Executed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The variant names of `enum <name> { … }` in a Solidity source, in order.
    fn solidity_variants(file: &str, name: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (run `make setup` for node_modules)"));
        let start = text
            .find(&format!("enum {name} {{"))
            .unwrap_or_else(|| panic!("no `enum {name}` in {file}"));
        let body = &text[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.lines()
            .map(|l| l.split("//").next().unwrap())
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    }

    fn check<T: Copy + fmt::Debug + Into<u8>>(all: &[T], solidity: (&str, &str)) {
        let (name, file) = solidity;
        let declared = solidity_variants(file, name);
        let ours: Vec<String> = all.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(ours, declared, "{name} in {file}");
        for (i, v) in all.iter().enumerate() {
            assert_eq!((*v).into(), i as u8, "{name}::{v:?} is not its position");
        }
    }

    #[test]
    fn every_enum_matches_its_solidity_declaration() {
        check(TaskState::ALL, TaskState::SOLIDITY);
        check(CloseReason::ALL, CloseReason::SOLIDITY);
        check(Phase::ALL, Phase::SOLIDITY);
        check(ModelStatus::ALL, ModelStatus::SOLIDITY);
        check(Role::ALL, Role::SOLIDITY);
        check(ProposalState::ALL, ProposalState::SOLIDITY);
    }

    #[test]
    fn values_outside_an_enum_are_none_and_unknown() {
        assert_eq!(TaskState::from_u8(2), Some(TaskState::GroundTruthRevealed));
        assert_eq!(TaskState::from_u8(6), None);
        assert_eq!(ProposalState::label_of(8), "unknown");
        assert_eq!(Role::label_of(3), "coordinator");
        assert_eq!(ModelStatus::Expired.to_string(), "Expired");
    }
}
