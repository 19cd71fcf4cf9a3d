// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

import {ATNToken} from "../contracts/ATNToken.sol";
import {Registry} from "../contracts/Registry.sol";
import {AutonetGovernor} from "../contracts/AutonetGovernor.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {AgentIdentity} from "../contracts/AgentIdentity.sol";
import {Project} from "../contracts/Project.sol";
import {InferenceMarket} from "../contracts/InferenceMarket.sol";
import {Rewards} from "../contracts/Rewards.sol";
import {TaskManager} from "../contracts/TaskManager.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {ModelShardRegistry} from "../contracts/ModelShardRegistry.sol";
import {BlsSignerRegistry} from "../contracts/BlsSignerRegistry.sol";
import {ShardProviders} from "../contracts/ShardProviders.sol";
import {BatchSettlement} from "../contracts/BatchSettlement.sol";
import {Erc3009DepositCollector} from "../contracts/Erc3009DepositCollector.sol";
import {X402Canonical} from "../contracts/libraries/X402Canonical.sol";
import {IATNToken} from "../contracts/interfaces/IATNToken.sol";
import {IParticipantStaking} from "../contracts/interfaces/IParticipantStaking.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {IRewards} from "../contracts/interfaces/IRewards.sol";
import {IInferenceMarket} from "../contracts/interfaces/IInferenceMarket.sol";
import {IBlsSignerRegistry} from "../contracts/interfaces/IBlsSignerRegistry.sol";
import {IModelShardRegistry} from "../contracts/interfaces/IModelShardRegistry.sol";
import {IStakeLocker} from "../contracts/interfaces/IStakeLocker.sol";

/// @title DeployLib
/// @notice Deploys and wires every Autonet contract, registers their addresses in the Registry
/// and hands every admin role to the Timelock. `script/Deploy.s.sol` broadcasts it; the forge test
/// fixture (`test/utils/World.sol`) runs the same code in-process, so tests exercise exactly the
/// wiring that production gets.
library DeployLib {
    /// @notice Deployment parameters (see `Deploy.s.sol` for the environment variables).
    struct Config {
        uint256 initialSupply; // ATN (18 decimals) minted to the deployer
        uint256 timelockDelay; // seconds
        uint48 votingDelay; // blocks
        uint32 votingPeriod; // blocks
        uint256 proposalThreshold; // ATN (18 decimals)
        uint256 quorumNumerator; // percent of total supply
    }

    /// @notice The deployed contracts.
    struct Deployment {
        ATNToken token;
        Registry registry;
        TimelockController timelock;
        AutonetGovernor governor;
        ParticipantStaking staking;
        AgentIdentity identity;
        Project project;
        InferenceMarket market;
        Rewards rewards;
        TaskManager taskManager;
        BlsSignerRegistry blsSigners;
        ModelShardRegistry shardRegistry;
        ShardProviders shardProviders;
        // x402 `batch-settlement` (no admin, not in the Registry; deployed last, so every address above is the
        // same with or without them).
        BatchSettlement batchSettlement;
        Erc3009DepositCollector depositCollector;
    }

    /// @notice Parameters for a local devnet: governance in seconds and a few blocks.
    function devnetConfig() internal pure returns (Config memory) {
        return Config({
            initialSupply: 100_000_000 ether,
            timelockDelay: 1,
            votingDelay: 1,
            votingPeriod: 20,
            proposalThreshold: 0,
            quorumNumerator: 4
        });
    }

    /// @notice Parameters for a public network: one-day voting delay, one-week vote, two-day timelock
    /// (12-second blocks).
    function networkConfig() internal pure returns (Config memory) {
        return Config({
            initialSupply: 100_000_000 ether,
            timelockDelay: 2 days,
            votingDelay: 7200,
            votingPeriod: 50_400,
            proposalThreshold: 1000 ether,
            quorumNumerator: 4
        });
    }

    /// @notice Deploys everything with `deployer` (the caller's address, i.e. the broadcaster or the
    /// test contract) as the temporary admin, wires roles, fills the Registry and hands over.
    function deployAll(address deployer, Config memory c) internal returns (Deployment memory d) {
        d.token = new ATNToken(deployer, deployer, c.initialSupply);
        d.registry = new Registry(deployer);
        d.timelock = new TimelockController(c.timelockDelay, new address[](0), new address[](0), deployer);
        d.governor = new AutonetGovernor(
            IVotes(address(d.token)),
            d.timelock,
            c.votingDelay,
            c.votingPeriod,
            c.proposalThreshold,
            c.quorumNumerator
        );
        address treasury = address(d.timelock);
        d.staking = new ParticipantStaking(deployer, IERC20(address(d.token)), treasury);
        d.identity = new AgentIdentity();
        d.project = new Project(deployer, IERC20(address(d.token)));
        d.market = new InferenceMarket(
            deployer, IATNToken(address(d.token)), IProject(address(d.project)), treasury
        );
        d.rewards = new Rewards(
            deployer,
            IERC20(address(d.token)),
            IProject(address(d.project)),
            IInferenceMarket(address(d.market)),
            treasury
        );
        d.taskManager = new TaskManager(
            deployer,
            IParticipantStaking(address(d.staking)),
            IProject(address(d.project)),
            IRewards(address(d.rewards)),
            ITaskManager(address(0))
        );
        d.blsSigners = new BlsSignerRegistry(IParticipantStaking(address(d.staking)));
        d.shardRegistry = new ModelShardRegistry(
            deployer,
            IParticipantStaking(address(d.staking)),
            IProject(address(d.project)),
            IRewards(address(d.rewards)),
            IBlsSignerRegistry(address(d.blsSigners))
        );
        d.shardProviders = new ShardProviders(
            deployer,
            IParticipantStaking(address(d.staking)),
            IModelShardRegistry(address(d.shardRegistry)),
            IERC20(address(d.token))
        );

        _wire(d);
        _register(d);
        _handOver(d, deployer);

        // The x402 `batch-settlement` channels. The official client only talks to the canonical addresses
        // (X402Canonical): dev chains copy these two runtime codes there with `anvil_setCode`, which is why the
        // collector is built for the canonical settlement address, not for `d.batchSettlement`.
        d.batchSettlement = new BatchSettlement();
        d.depositCollector = new Erc3009DepositCollector(X402Canonical.BATCH_SETTLEMENT);
    }

    function _wire(Deployment memory d) private {
        // Governance: the Governor proposes and cancels; anyone may execute a ready operation.
        d.timelock.grantRole(d.timelock.PROPOSER_ROLE(), address(d.governor));
        d.timelock.grantRole(d.timelock.CANCELLER_ROLE(), address(d.governor));
        d.timelock.grantRole(d.timelock.EXECUTOR_ROLE(), address(0));

        d.token.grantRole(d.token.MINTER_ROLE(), address(d.timelock));
        d.staking.grantRole(d.staking.SLASHER_ROLE(), address(d.taskManager));
        // Proposals, commitments and votes bind their stake until the task's last window (no unbonding meanwhile).
        d.staking.grantRole(d.staking.BINDER_ROLE(), address(d.taskManager));
        d.staking.grantRole(d.staking.SLASHER_ROLE(), address(d.shardRegistry));
        d.staking.grantRole(d.staking.SLASHER_ROLE(), address(d.shardProviders));
        // A provider announcing shards keeps minProviderStake() bonded (no unbond below it; docs/storage.md).
        d.staking.addStakeLocker(IStakeLocker(address(d.shardProviders)));
        // Stake changes keep the BLS aggregate key and signer stake current (docs/bls.md).
        d.staking.setStakeObserver(d.blsSigners);
        d.project.grantRole(d.project.SPENDER_ROLE(), address(d.taskManager));
        d.project.grantRole(d.project.SPENDER_ROLE(), address(d.rewards));
        d.project.grantRole(d.project.MODEL_PUBLISHER_ROLE(), address(d.shardRegistry));
        d.rewards.grantRole(d.rewards.TASK_MANAGER_ROLE(), address(d.taskManager));
        d.rewards.grantRole(d.rewards.MODEL_REGISTRY_ROLE(), address(d.shardRegistry));
        d.market.grantRole(d.market.CONTRIBUTION_RECORDER_ROLE(), address(d.rewards));
    }

    function _register(Deployment memory d) private {
        string[] memory keys = new string[](13);
        address[] memory values = new address[](13);
        (keys[0], values[0]) = ("contract.ATNToken", address(d.token));
        (keys[1], values[1]) = ("contract.Registry", address(d.registry));
        (keys[2], values[2]) = ("contract.TimelockController", address(d.timelock));
        (keys[3], values[3]) = ("contract.AutonetGovernor", address(d.governor));
        (keys[4], values[4]) = ("contract.ParticipantStaking", address(d.staking));
        (keys[5], values[5]) = ("contract.AgentIdentity", address(d.identity));
        (keys[6], values[6]) = ("contract.Project", address(d.project));
        (keys[7], values[7]) = ("contract.InferenceMarket", address(d.market));
        (keys[8], values[8]) = ("contract.Rewards", address(d.rewards));
        (keys[9], values[9]) = ("contract.TaskManager", address(d.taskManager));
        (keys[10], values[10]) = ("contract.BlsSignerRegistry", address(d.blsSigners));
        (keys[11], values[11]) = ("contract.ModelShardRegistry", address(d.shardRegistry));
        (keys[12], values[12]) = ("contract.ShardProviders", address(d.shardProviders));
        d.registry.setAddresses(keys, values);
        d.registry.setAddress("treasury", address(d.timelock));
    }

    function _handOver(Deployment memory d, address deployer) private {
        // BlsSignerRegistry has no admin: nothing in it is governable.
        IAccessControl[10] memory owned = [
            IAccessControl(address(d.token)),
            IAccessControl(address(d.registry)),
            IAccessControl(address(d.staking)),
            IAccessControl(address(d.project)),
            IAccessControl(address(d.market)),
            IAccessControl(address(d.rewards)),
            IAccessControl(address(d.taskManager)),
            IAccessControl(address(d.shardRegistry)),
            IAccessControl(address(d.shardProviders)),
            IAccessControl(address(d.timelock))
        ];
        bytes32 admin = 0x00; // DEFAULT_ADMIN_ROLE
        for (uint256 i = 0; i < owned.length; i++) {
            if (address(owned[i]) != address(d.timelock)) owned[i].grantRole(admin, address(d.timelock));
            owned[i].renounceRole(admin, deployer);
        }
        d.token.renounceRole(d.token.MINTER_ROLE(), deployer);
    }
}
