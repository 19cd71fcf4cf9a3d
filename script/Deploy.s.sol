// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Script, console} from "forge-std/Script.sol";
import {DeployLib} from "./DeployLib.sol";

/// @title Deploy
/// @notice Deploys every Autonet contract, hands admin to the Timelock and writes
/// `deployments/<chainId>.json` (addresses, deploy block, version, commit).
/// @dev Key from the command line (`--private-key`, `--account`); parameters from the environment:
///   AUTONET_PROFILE      `devnet` (default on chain 31337) or `network` (default elsewhere)
///   INITIAL_SUPPLY       ATN in wei minted to the deployer
///   TIMELOCK_DELAY       seconds
///   VOTING_DELAY         blocks
///   VOTING_PERIOD        blocks
///   PROPOSAL_THRESHOLD   ATN in wei
///   QUORUM_PERCENT       percent of the total supply
///   GIT_COMMIT           recorded in the deployments file (the Makefile sets it)
///   DEPLOYMENTS_DIR      where `<chainId>.json` goes, relative to the repository (default
///                        `deployments`; rehearsals use a directory under `.devnet/`)
contract Deploy is Script {
    /// @notice Protocol version recorded in the deployments file.
    string public constant VERSION = "0.1.0";

    function run() external returns (DeployLib.Deployment memory d) {
        DeployLib.Config memory c = config();
        uint256 deployBlock = block.number;
        vm.startBroadcast();
        (, address deployer,) = vm.readCallers();
        d = DeployLib.deployAll(deployer, c);
        vm.stopBroadcast();
        _write(d, deployBlock);
    }

    /// @notice The configuration for this chain, with environment overrides applied.
    function config() public view returns (DeployLib.Config memory c) {
        string memory profile =
            vm.envOr("AUTONET_PROFILE", block.chainid == 31337 ? string("devnet") : string("network"));
        c = keccak256(bytes(profile)) == keccak256("devnet")
            ? DeployLib.devnetConfig()
            : DeployLib.networkConfig();
        c.initialSupply = vm.envOr("INITIAL_SUPPLY", c.initialSupply);
        c.timelockDelay = vm.envOr("TIMELOCK_DELAY", c.timelockDelay);
        c.votingDelay = uint48(vm.envOr("VOTING_DELAY", uint256(c.votingDelay)));
        c.votingPeriod = uint32(vm.envOr("VOTING_PERIOD", uint256(c.votingPeriod)));
        c.proposalThreshold = vm.envOr("PROPOSAL_THRESHOLD", c.proposalThreshold);
        c.quorumNumerator = vm.envOr("QUORUM_PERCENT", c.quorumNumerator);
    }

    function _write(DeployLib.Deployment memory d, uint256 deployBlock) internal {
        string memory c = "contracts";
        vm.serializeAddress(c, "ATNToken", address(d.token));
        vm.serializeAddress(c, "Registry", address(d.registry));
        vm.serializeAddress(c, "TimelockController", address(d.timelock));
        vm.serializeAddress(c, "AutonetGovernor", address(d.governor));
        vm.serializeAddress(c, "ParticipantStaking", address(d.staking));
        vm.serializeAddress(c, "AgentIdentity", address(d.identity));
        vm.serializeAddress(c, "Project", address(d.project));
        vm.serializeAddress(c, "InferenceMarket", address(d.market));
        vm.serializeAddress(c, "Rewards", address(d.rewards));
        vm.serializeAddress(c, "TaskManager", address(d.taskManager));
        vm.serializeAddress(c, "BlsSignerRegistry", address(d.blsSigners));
        vm.serializeAddress(c, "ModelShardRegistry", address(d.shardRegistry));
        vm.serializeAddress(c, "BatchSettlement", address(d.batchSettlement));
        vm.serializeAddress(c, "Erc3009DepositCollector", address(d.depositCollector));
        string memory contractsJson = vm.serializeAddress(c, "ShardProviders", address(d.shardProviders));

        string memory o = "deployment";
        vm.serializeUint(o, "chainId", block.chainid);
        vm.serializeUint(o, "deployBlock", deployBlock);
        vm.serializeString(o, "version", VERSION);
        vm.serializeString(o, "commit", vm.envOr("GIT_COMMIT", string("unknown")));
        string memory json = vm.serializeString(o, "contracts", contractsJson);
        string memory dir =
            string.concat(vm.projectRoot(), "/", vm.envOr("DEPLOYMENTS_DIR", string("deployments")));
        vm.createDir(dir, true);
        string memory path = string.concat(dir, "/", vm.toString(block.chainid), ".json");
        vm.writeJson(json, path);
        console.log("Deployment written to", path);
        console.log("Registry:", address(d.registry));
        console.log("Timelock (admin + treasury):", address(d.timelock));
    }
}
