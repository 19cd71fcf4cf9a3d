// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";
import {console} from "forge-std/console.sol";
import {MarketFixture} from "./InferenceMarket.t.sol";

/// @dev Gas of `settle` and `collect`, bounded. `forge test --match-path test/InferenceMarketGas.t.sol --isolate -vv`
///      prints per-transaction figures (net of refunds; docs/x402.md quotes them).
contract InferenceMarketGasTest is MarketFixture {
    function setUp() public {
        _deployMarket();
    }

    function _gas(string memory what, uint256 bound) internal view {
        Vm.Gas memory g = vm.lastCallGas();
        console.log(what, uint256(g.gasTotalUsed));
        console.log("  refunded", uint256(int256(g.gasRefunded)));
        assertLt(g.gasTotalUsed, bound, what);
    }

    function test_gas_settleAndCollect() public {
        address provider2 = makeAddr("provider2");
        _settle(provider, projectId, PRICE, keccak256("g1"));
        _gas("settle, first in the market (deploys the pair's receiver)", 330_000);
        _settle(provider, projectId, PRICE, keccak256("g2"));
        _gas("settle, same pair again", 140_000);
        _settle(provider2, projectId, PRICE, keccak256("g3"));
        _gas("settle, first of another provider (deploys its receiver)", 280_000);
        _settle(provider2, projectId, PRICE, keccak256("g4"));
        _gas("settle, that provider again", 140_000);
        vm.prank(recorder);
        market.recordContribution(projectId, makeAddr("alice"), 1e18);
        _settle(provider, projectId, PRICE, keccak256("g5"));
        _gas("settle, project with contributors", 165_000);

        address payTo = _payTo(projectId, provider);
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, payTo, PRICE, 0, vb, keccak256("g6"));
        token.transferWithAuthorization(payer, payTo, PRICE, 0, vb, keccak256("g6"), sig);
        market.collect(projectId, provider);
        _gas("collect, deployed receiver", 100_000);
    }
}
