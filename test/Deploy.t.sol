// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {World} from "./utils/World.sol";
import {Deploy} from "../script/Deploy.s.sol";
import {DeployLib} from "../script/DeployLib.sol";
import {X402Canonical} from "../contracts/libraries/X402Canonical.sol";

/// @notice The deployment (DeployLib, shared by script/Deploy.s.sol and the World fixture) wires
///         every role, fills the Registry and leaves the deployer with nothing.
contract DeployTest is World {
    bytes32 internal constant ADMIN = 0x00;

    function _adminContracts() internal view returns (IAccessControl[10] memory) {
        return [
            IAccessControl(address(token)),
            IAccessControl(address(registry)),
            IAccessControl(address(staking)),
            IAccessControl(address(project)),
            IAccessControl(address(market)),
            IAccessControl(address(rewards)),
            IAccessControl(address(tasks)),
            IAccessControl(address(shards)),
            IAccessControl(address(shardProviders)),
            IAccessControl(address(timelock))
        ];
    }

    function test_deployAll_timelockHoldsEveryAdminRole() public view {
        IAccessControl[10] memory owned = _adminContracts();
        for (uint256 i; i < owned.length; ++i) {
            assertTrue(owned[i].hasRole(ADMIN, address(timelock)), "timelock is admin");
            assertFalse(owned[i].hasRole(ADMIN, deployer), "deployer renounced admin");
        }
        assertTrue(token.hasRole(token.MINTER_ROLE(), address(timelock)));
        assertFalse(token.hasRole(token.MINTER_ROLE(), deployer));
    }

    function test_deployAll_governorDrivesTheTimelock() public view {
        assertTrue(timelock.hasRole(timelock.PROPOSER_ROLE(), address(governor)));
        assertTrue(timelock.hasRole(timelock.CANCELLER_ROLE(), address(governor)));
        assertTrue(
            timelock.hasRole(timelock.EXECUTOR_ROLE(), address(0)), "anyone executes a ready operation"
        );
        assertFalse(timelock.hasRole(timelock.PROPOSER_ROLE(), deployer));
        assertEq(address(governor.timelock()), address(timelock));
        assertEq(address(governor.token()), address(token));
    }

    function test_deployAll_protocolRolesWired() public view {
        assertTrue(staking.hasRole(staking.SLASHER_ROLE(), address(tasks)));
        assertTrue(staking.hasRole(staking.SLASHER_ROLE(), address(shards)));
        assertTrue(staking.hasRole(staking.SLASHER_ROLE(), address(shardProviders)));
        assertTrue(project.hasRole(project.SPENDER_ROLE(), address(tasks)));
        assertTrue(project.hasRole(project.SPENDER_ROLE(), address(rewards)));
        assertTrue(project.hasRole(project.MODEL_PUBLISHER_ROLE(), address(shards)));
        assertTrue(rewards.hasRole(rewards.TASK_MANAGER_ROLE(), address(tasks)));
        assertTrue(rewards.hasRole(rewards.MODEL_REGISTRY_ROLE(), address(shards)));
        assertTrue(market.hasRole(market.CONTRIBUTION_RECORDER_ROLE(), address(rewards)));
        assertEq(
            address(staking.stakeObserver()), address(blsSigners), "stake changes reach the BLS aggregate"
        );
        assertEq(address(shards.blsSigners()), address(blsSigners));
        assertEq(address(shardProviders.models()), address(shards));
        assertEq(staking.stakeLockers().length, 1, "one stake locker");
        assertEq(
            address(staking.stakeLockers()[0]), address(shardProviders), "shard providers lock their stake"
        );
        assertEq(blsSigners.staking(), address(staking));
        // Nothing else may spend project budgets or slash.
        assertFalse(project.hasRole(project.SPENDER_ROLE(), address(shards)));
        assertFalse(staking.hasRole(staking.SLASHER_ROLE(), address(rewards)));
    }

    function test_deployAll_registryDiscoversEveryContract() public view {
        assertEq(registry.getAddress("contract.ATNToken"), address(token));
        assertEq(registry.getAddress("contract.Registry"), address(registry));
        assertEq(registry.getAddress("contract.TimelockController"), address(timelock));
        assertEq(registry.getAddress("contract.AutonetGovernor"), address(governor));
        assertEq(registry.getAddress("contract.ParticipantStaking"), address(staking));
        assertEq(registry.getAddress("contract.AgentIdentity"), address(identity));
        assertEq(registry.getAddress("contract.Project"), address(project));
        assertEq(registry.getAddress("contract.InferenceMarket"), address(market));
        assertEq(registry.getAddress("contract.Rewards"), address(rewards));
        assertEq(registry.getAddress("contract.TaskManager"), address(tasks));
        assertEq(registry.getAddress("contract.BlsSignerRegistry"), address(blsSigners));
        assertEq(registry.getAddress("contract.ModelShardRegistry"), address(shards));
        assertEq(registry.getAddress("contract.ShardProviders"), address(shardProviders));
        assertEq(registry.getAddress("treasury"), address(timelock));
        assertEq(staking.treasury(), address(timelock));
    }

    /// @dev The x402 batch-settlement pair comes last (every other address is what it was without them), has no
    ///      admin and no Registry entry, and the collector serves the canonical settlement address, where dev chains
    ///      copy the settlement's runtime code.
    function test_deployAll_x402BatchSettlementLast() public {
        DeployLib.Config memory c = DeployLib.devnetConfig();
        uint64 first = vm.getNonce(deployer);
        DeployLib.Deployment memory d = DeployLib.deployAll(deployer, c);
        uint64 next = vm.getNonce(deployer);
        assertEq(address(d.token), vm.computeCreateAddress(deployer, first), "the token is still the first");
        assertEq(address(d.batchSettlement), vm.computeCreateAddress(deployer, next - 2));
        assertEq(address(d.depositCollector), vm.computeCreateAddress(deployer, next - 1));
        assertEq(d.depositCollector.settlement(), X402Canonical.BATCH_SETTLEMENT);
        assertEq(d.batchSettlement.MIN_WITHDRAW_DELAY(), 900);
        (, string memory name,,, address verifyingContract,,) = d.batchSettlement.eip712Domain();
        assertEq(name, "x402 Batch Settlement");
        assertEq(verifyingContract, address(d.batchSettlement));
        assertFalse(d.registry.isSet("contract.BatchSettlement"));
        assertFalse(d.registry.isSet("contract.Erc3009DepositCollector"));
    }

    function test_config_devnetOnLocalChainNetworkElsewhere() public {
        Deploy script = new Deploy();
        vm.chainId(31337);
        assertEq(script.config().timelockDelay, DeployLib.devnetConfig().timelockDelay);
        vm.chainId(421614);
        assertEq(script.config().timelockDelay, DeployLib.networkConfig().timelockDelay);
        assertEq(script.config().votingPeriod, DeployLib.networkConfig().votingPeriod);
        vm.setEnv("VOTING_PERIOD", "777");
        assertEq(script.config().votingPeriod, 777);
    }
}
