// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Script, console} from "forge-std/Script.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {Project} from "../contracts/Project.sol";
import {TaskManager} from "../contracts/TaskManager.sol";
import {Rewards} from "../contracts/Rewards.sol";
import {ModelShardRegistry} from "../contracts/ModelShardRegistry.sol";
import {Role} from "../contracts/interfaces/IParticipantStaking.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {IModelShardRegistry, ModelStatus} from "../contracts/interfaces/IModelShardRegistry.sol";

/// @title DevnetRound
/// @notice Drives one protocol round on a live local chain (anvil) with anvil's well-known
/// development keys: 1 proposer, 3 solvers, 3 coordinators, 1 aggregator. Each phase is one
/// `forge script --sig "<phase>()" --broadcast` call; `script/devnet.sh` reads the task's deadlines
/// from the chain, mines the blocks between phases (the windows are block based) and sums the gas
/// of every receipt.
/// @dev The deltas, evaluation set and model root are fixed hashes standing in for the real
/// artefacts that the Rust agents produce; every contract call is the real one. Never use these
/// keys outside a local chain.
contract DevnetRound is Script {
    string internal constant MNEMONIC = "test test test test test test test test test test test junk";
    uint256 internal constant REWARD = 1000 ether;
    bytes32 internal constant EVAL_SPEC = keccak256("devnet eval spec");
    uint32 internal constant WINDOW = 8;

    ATNToken internal token;
    ParticipantStaking internal staking;
    Project internal project;
    TaskManager internal tasks;
    Rewards internal rewards;
    ModelShardRegistry internal shards;

    function _load() internal {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/deployments/", vm.toString(block.chainid), ".json"));
        token = ATNToken(vm.parseJsonAddress(json, ".contracts.ATNToken"));
        staking = ParticipantStaking(vm.parseJsonAddress(json, ".contracts.ParticipantStaking"));
        project = Project(vm.parseJsonAddress(json, ".contracts.Project"));
        tasks = TaskManager(vm.parseJsonAddress(json, ".contracts.TaskManager"));
        rewards = Rewards(vm.parseJsonAddress(json, ".contracts.Rewards"));
        shards = ModelShardRegistry(vm.parseJsonAddress(json, ".contracts.ModelShardRegistry"));
    }

    function _key(uint32 i) internal pure returns (uint256) {
        return vm.deriveKey(MNEMONIC, i);
    }

    function _addr(uint32 i) internal pure returns (address) {
        return vm.addr(_key(i));
    }

    // Actors by mnemonic index: 0 deployer, 1 proposer, 2-4 solvers, 5-7 coordinators, 8 aggregator.
    function _solver(uint256 i) internal pure returns (uint32) {
        return uint32(2 + i);
    }

    function _coordinator(uint256 i) internal pure returns (uint32) {
        return uint32(5 + i);
    }

    function _salt(address who, uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("devnet salt", who, taskId));
    }

    function _delta(address solver, uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("devnet delta", solver, taskId));
    }

    function _manifest(address solver, uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("devnet delta manifest", solver, taskId));
    }

    /// @dev Absolute scores (65535 = the task's target improvement): solver 0 reached it, so the whole solver
    ///      pool is earned and split by the consensus incentive.
    function _scores() internal pure returns (uint16[] memory s) {
        s = new uint16[](3);
        (s[0], s[1], s[2]) = (65_535, 43_690, 33_941);
    }


    function _task() internal view returns (uint256 taskId, ITaskManager.TaskView memory t) {
        taskId = tasks.taskCount();
        t = tasks.getTask(taskId);
    }

    /// @notice Funds and stakes every actor, creates and funds a project.
    function setup() external {
        _load();
        address deployer = _addr(0);
        vm.startBroadcast(_key(0));
        uint256[9] memory amounts = [uint256(0), 100 ether, 50 ether, 50 ether, 50 ether, 500 ether, 500 ether, 500 ether, 1000 ether];
        for (uint32 i = 1; i <= 8; i++) {
            token.transfer(_addr(i), amounts[i]);
        }
        IProject.CreateProjectParams memory p;
        p.modelSpecHash = keccak256("devnet model spec");
        p.modelURI = "autonet://devnet/model";
        p.datasetRoot = keccak256("devnet dataset");
        p.initialModelRoot = keccak256("devnet genesis model");
        p.inferencePrice = 1 ether;
        p.split = IProject.RewardSplit(7000, 1500, 500, 1000);
        p.windows = IProject.Windows(WINDOW, WINDOW, WINDOW, WINDOW, WINDOW, 200);
        p.maxSolvers = 16;
        p.minVotes = 2;
        uint256 projectId = project.createProject(p);
        project.setProposerCap(projectId, _addr(1), REWARD);
        token.approve(address(project), 100_000 ether);
        project.fund(projectId, 100_000 ether);
        vm.stopBroadcast();

        Role[9] memory roles = [
            Role.None, Role.Proposer, Role.Solver, Role.Solver, Role.Solver,
            Role.Coordinator, Role.Coordinator, Role.Coordinator, Role.Aggregator
        ];
        for (uint32 i = 1; i <= 8; i++) {
            vm.startBroadcast(_key(i));
            token.approve(address(staking), amounts[i]);
            staking.stake(roles[i], amounts[i]);
            vm.stopBroadcast();
        }
        console.log("project", projectId, "funded by", deployer);
    }

    /// @notice The proposer proposes a task; three solvers commit.
    function propose() external {
        _load();
        uint256 projectId = project.projectCount();
        address proposer = _addr(1);
        uint256 taskId = tasks.taskCount() + 1;
        bytes32 gt = keccak256(abi.encode(proposer, projectId, EVAL_SPEC, _salt(proposer, taskId)));
        vm.broadcast(_key(1));
        tasks.proposeTask(projectId, keccak256(abi.encode("devnet task spec", taskId)), gt, REWARD);
        for (uint256 i; i < 3; i++) {
            address s = _addr(_solver(i));
            bytes32 c = keccak256(abi.encode(taskId, s, _delta(s, taskId), _manifest(s, taskId), _salt(s, taskId)));
            vm.broadcast(_key(_solver(i)));
            tasks.commitSolution(taskId, c);
        }
        console.log("task", taskId, "proposed and committed");
    }

    /// @notice The solvers reveal their deltas (before anyone but the proposer knows the evaluation set).
    function revealSolutions() external {
        _load();
        (uint256 taskId,) = _task();
        for (uint256 i; i < 3; i++) {
            address s = _addr(_solver(i));
            vm.broadcast(_key(_solver(i)));
            tasks.revealSolution(taskId, _delta(s, taskId), _manifest(s, taskId), _salt(s, taskId));
        }
    }

    /// @notice The proposer reveals the evaluation set.
    function revealGroundTruth() external {
        _load();
        (uint256 taskId,) = _task();
        vm.broadcast(_key(1));
        tasks.revealGroundTruth(taskId, EVAL_SPEC, _salt(_addr(1), taskId));
    }

    /// @notice Three coordinators commit their score vectors.
    function voteCommit() external {
        _load();
        (uint256 taskId,) = _task();
        for (uint256 i; i < 3; i++) {
            address c = _addr(_coordinator(i));
            vm.broadcast(_key(_coordinator(i)));
            tasks.commitVote(taskId, keccak256(abi.encode(taskId, c, _scores(), _salt(c, taskId))));
        }
    }

    /// @notice Three coordinators reveal their score vectors.
    function voteReveal() external {
        _load();
        (uint256 taskId,) = _task();
        for (uint256 i; i < 3; i++) {
            address c = _addr(_coordinator(i));
            vm.broadcast(_key(_coordinator(i)));
            tasks.revealVote(taskId, _scores(), _salt(c, taskId));
        }
    }

    /// @notice Anyone finalizes; the aggregator publishes the next model; coordinators attest until
    /// it is accepted; prints what every actor can claim.
    function finalizeAndPublish() external {
        _load();
        (uint256 taskId, ITaskManager.TaskView memory t) = _task();
        vm.broadcast(_key(0));
        tasks.finalize(taskId);

        bytes32 parent = project.modelRoot(t.projectId);
        bytes32 root = keccak256(abi.encode("devnet model", taskId));
        IModelShardRegistry.ModelManifest memory m = IModelShardRegistry.ModelManifest({
            projectId: t.projectId,
            root: root,
            manifestHash: keccak256(abi.encode("devnet manifest", taskId)),
            parentRoot: parent,
            totalSize: 3_400_000,
            shardSize: 850_000,
            dataShards: 4,
            parityShards: 2
        });
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        vm.broadcast(_key(8));
        shards.publishModel(m, ids);
        for (uint256 i; i < 3 && shards.modelStatus(root) == ModelStatus.Pending; i++) {
            vm.broadcast(_key(_coordinator(i)));
            shards.attestModel(root, m.manifestHash, _addr(8));
        }
        require(project.modelRoot(t.projectId) == root, "model not accepted");

        console.log("task", taskId, "finalized; model accepted");
        string[9] memory names =
            ["deployer", "proposer", "solver 1", "solver 2", "solver 3", "coordinator 1", "coordinator 2", "coordinator 3", "aggregator"];
        for (uint32 i = 1; i <= 8; i++) {
            console.log(string.concat("  claimable ", names[i], ": ", vm.toString(rewards.claimable(_addr(i))), " wei ATN"));
        }
    }
}
