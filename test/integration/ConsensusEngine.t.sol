// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {World} from "../utils/World.sol";
import {YumaConsensus} from "../../contracts/libraries/YumaConsensus.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {IConsensusEngine} from "../../contracts/stylus/consensus-engine/IConsensusEngine.sol";

/// @dev The engine interface served by EVM code: the library behind the same ABI as the Stylus contract
///      (`contracts/stylus/consensus-engine`, checked against the same vectors natively), since forge and anvil
///      cannot run Stylus wasm.
contract EvmConsensusEngine {
    uint256 public calls;

    function compute(
        uint256[] memory stakes,
        uint16[][] memory scores,
        uint256[][] memory prevBonds,
        uint256 kappa,
        uint256 alpha
    ) external pure returns (IConsensusEngine.ConsensusResult memory r) {
        YumaConsensus.Result memory x = YumaConsensus.compute(stakes, scores, prevBonds, kappa, alpha);
        r = IConsensusEngine.ConsensusResult(x.consensus, x.incentive, x.dividends, x.bonds);
    }
}

/// @dev Gives every solver the same incentive (not what the library computes), so a test can tell whose
///      result was used.
contract FlatEngine {
    function compute(uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory, uint256, uint256)
        external
        pure
        returns (IConsensusEngine.ConsensusResult memory r)
    {
        uint256 n = stakes.length;
        uint256 m = scores[0].length;
        r.consensus = new uint256[](m);
        r.incentive = new uint256[](m);
        r.dividends = new uint256[](n);
        r.bonds = new uint256[][](n);
        for (uint256 j; j < m; ++j) {
            r.incentive[j] = 1e18 / m;
        }
        for (uint256 i; i < n; ++i) {
            r.dividends[i] = 1e18 / n;
            r.bonds[i] = new uint256[](m);
        }
    }
}

contract RevertingEngine {
    error EngineDown();

    fallback() external {
        revert EngineDown();
    }
}

contract GarbageEngine {
    fallback() external {
        assembly {
            mstore(0, 0xdeadbeef)
            return(0, 7)
        }
    }
}

/// @dev Right encoding, one solver missing.
contract ShortEngine {
    function compute(uint256[] memory stakes, uint16[][] memory, uint256[][] memory, uint256, uint256)
        external
        pure
        returns (IConsensusEngine.ConsensusResult memory r)
    {
        r.consensus = new uint256[](1);
        r.incentive = new uint256[](1);
        r.dividends = new uint256[](stakes.length);
        r.bonds = new uint256[][](stakes.length);
    }
}

/// @dev Right shape, but promises twice the solver pool.
contract GreedyEngine {
    function compute(uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory, uint256, uint256)
        external
        pure
        returns (IConsensusEngine.ConsensusResult memory r)
    {
        uint256 n = stakes.length;
        uint256 m = scores[0].length;
        r.consensus = new uint256[](m);
        r.incentive = new uint256[](m);
        r.dividends = new uint256[](n);
        r.bonds = new uint256[][](n);
        for (uint256 j; j < m; ++j) {
            r.incentive[j] = 2e18 / m;
        }
        for (uint256 i; i < n; ++i) {
            r.bonds[i] = new uint256[](m);
        }
    }
}

/// @dev The library's answer, with every bond set to 2^255 (review finding L-4).
contract PoisonBondsEngine {
    function compute(
        uint256[] memory stakes,
        uint16[][] memory scores,
        uint256[][] memory prevBonds,
        uint256 kappa,
        uint256 alpha
    ) external pure returns (IConsensusEngine.ConsensusResult memory r) {
        YumaConsensus.Result memory x = YumaConsensus.compute(stakes, scores, prevBonds, kappa, alpha);
        for (uint256 i; i < x.bonds.length; ++i) {
            for (uint256 j; j < x.bonds[i].length; ++j) {
                x.bonds[i][j] = 1 << 255;
            }
        }
        r = IConsensusEngine.ConsensusResult(x.consensus, x.incentive, x.dividends, x.bonds);
    }
}

/// @dev Burns all the gas it is given (review finding L-6).
contract LoopingEngine {
    uint256 public sink;

    fallback() external {
        while (true) {
            sink = sink + 1;
        }
    }
}

/// @dev Answers with 1 MiB of data (review finding L-6).
contract HugeAnswerEngine {
    fallback() external {
        assembly {
            return(0, 1048576)
        }
    }
}

/// @notice Rewards delegating the consensus to an engine set by governance, and falling back to its own code.
contract ConsensusEngineTest is World {
    function _setEngine(address engine) internal {
        vm.prank(address(timelock));
        rewards.setConsensusEngine(engine);
    }

    function _payouts() internal view returns (uint256[] memory out) {
        out = new uint256[](solvers.length + coords.length + 1);
        for (uint256 i; i < solvers.length; ++i) {
            out[i] = rewards.claimable(solvers[i]);
        }
        for (uint256 i; i < coords.length; ++i) {
            out[solvers.length + i] = rewards.claimable(coords[i]);
        }
        out[out.length - 1] = rewards.claimable(proposer);
    }

    /// @dev Two honest rows (solver 0 at the target, so the whole pool is earned) and one favouring solver 2.
    function _deviatingRows() internal pure returns (uint16[][] memory rows) {
        rows = new uint16[][](3);
        rows[0] = _scores3(65_535, 39_321, 26_214);
        rows[1] = _scores3(65_535, 39_321, 26_214);
        rows[2] = _scores3(0, 0, 65_535);
    }

    /// @dev Two rounds (the second uses the first's bonds) with `engine`, then the same without.
    function _twoRounds(address engine) internal returns (uint256[] memory) {
        uint256 snap = vm.snapshotState();
        _setEngine(engine);
        _fullRound(_deviatingRows());
        _fullRound(_deviatingRows());
        uint256[] memory got = _payouts();
        vm.revertToState(snap);
        return got;
    }

    function test_engine_givesTheSamePayoutsAsTheLibrary() public {
        uint256[] memory viaEngine = _twoRounds(address(new EvmConsensusEngine()));
        _fullRound(_deviatingRows());
        _fullRound(_deviatingRows());
        uint256[] memory local = _payouts();
        assertEq(viaEngine, local);
        assertGt(local[0], local[2], "the rounds must actually pay by consensus");
    }

    function test_engine_resultIsTheOneUsed() public {
        _setEngine(address(new FlatEngine()));
        _fullRound(_deviatingRows());
        uint256 pool = REWARD * 7000 / 10_000;
        for (uint256 i; i < solvers.length; ++i) {
            assertApproxEqAbs(rewards.claimable(solvers[i]), pool / 3, 1e3);
        }
    }

    function _expectFallback(address engine, bytes memory reason) internal {
        _setEngine(engine);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        _voteAll(taskId, _deviatingRows());
        _rollToFinalize(taskId);
        vm.expectEmit(address(rewards));
        emit IRewards.ConsensusEngineFallback(taskId, engine, reason);
        tasks.finalize(taskId);
        // Paid by the library: the deviating coordinator's favourite gets 3/11 of the pool, not 1/3.
        uint256 pool = REWARD * 7000 / 10_000;
        assertApproxEqAbs(rewards.claimable(solvers[2]), pool * 3 / 11, 1e3);
    }

    function test_engine_revertFallsBackToTheLibrary() public {
        _expectFallback(
            address(new RevertingEngine()), abi.encodeWithSelector(RevertingEngine.EngineDown.selector)
        );
    }

    function test_engine_malformedDataFallsBackToTheLibrary() public {
        _expectFallback(address(new GarbageEngine()), "result encoding");
    }

    function test_engine_wrongShapeFallsBackToTheLibrary() public {
        _expectFallback(address(new ShortEngine()), "result shape");
    }

    function test_engine_overpromisingWeightsFallBackToTheLibrary() public {
        _expectFallback(address(new GreedyEngine()), "result shape");
    }

    /// L-4 (fails on dc0035f: unbounded engine bonds were stored, and once the engine was removed the library
    /// overflowed on them, so every later finalize of these pairs reverted): out-of-range bonds are a wrong
    /// shape, nothing of them is stored, and later rounds without the engine settle.
    function test_L4_poisonedBondsAreRefusedAndLaterRoundsSettle() public {
        _expectFallback(address(new PoisonBondsEngine()), "result shape");
        assertLe(rewards.bondOf(projectId, coords[0], solvers[0]), 1e18);
        _setEngine(address(0));
        uint256 taskId = _fullRound(_deviatingRows());
        assertTrue(rewards.settled(taskId));
    }

    /// L-6 (fails on dc0035f: the engine got 63/64 of all gas, so a looping engine made finalize run out of
    /// gas instead of falling back): the engine gets at most ENGINE_GAS and the library pays.
    function test_L6_gasBurningEngineFallsBackToTheLibrary() public {
        _expectFallback(address(new LoopingEngine()), "");
    }

    /// L-6: an answer larger than MAX_ENGINE_RESULT is not copied into memory; the library pays.
    function test_L6_hugeAnswerFallsBackToTheLibrary() public {
        _expectFallback(address(new HugeAnswerEngine()), "result size");
    }

    function test_setConsensusEngine_onlyAdminAndOnlyCode() public {
        address engine = address(new EvmConsensusEngine());
        vm.expectRevert();
        rewards.setConsensusEngine(engine);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsEngineHasNoCode.selector, address(0xBEEF)));
        rewards.setConsensusEngine(address(0xBEEF));
        vm.expectEmit(address(rewards));
        emit IRewards.ConsensusEngineUpdated(engine);
        _setEngine(engine);
        assertEq(rewards.consensusEngine(), engine);
        _setEngine(address(0));
        assertEq(rewards.consensusEngine(), address(0));
    }
}
