#!/usr/bin/env node
// Checks a deployments/<chainId>.json against a live chain: every address holds code, answers a
// view call that proves it is the contract named, and the Registry maps `contract.<Name>` to it
// (all but the x402 batch-settlement pair, which has no Registry entry: clients use its canonical
// addresses, where dev chains copy its runtime code);
// wiring that is not a role (ParticipantStaking's stake observer is the BlsSignerRegistry, the model
// registry checks aggregates there, the shard providers read models from the model registry and lock
// provider stake in staking) holds.
// With a deployer address it also checks the hand-over: the deployer holds no admin role and the
// Timelock holds it everywhere.
// Usage: node script/check-deployment.mjs deployments/<chainId>.json <rpcUrl> [deployer]
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const [file, rpc, deployer] = process.argv.slice(2);
const ADMIN = "0x" + "00".repeat(32);
const cast = new URL("../node_modules/.bin/cast", import.meta.url).pathname;
const d = JSON.parse(readFileSync(file, "utf8"));
const call = (...args) => execFileSync(cast, ["call", "--rpc-url", rpc, ...args], { encoding: "utf8" }).trim();
const lower = (a) => a.toLowerCase();
// contracts/libraries/X402Canonical.sol: the settlement address the official x402 client signs for.
const CANONICAL_BATCH_SETTLEMENT = "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003";
// Deployed but not registered (see above).
const unregistered = new Set(["BatchSettlement", "Erc3009DepositCollector"]);

// A view per contract whose answer identifies it.
const probes = {
  ATNToken: ["symbol()(string)", (v) => v === '"ATN"'],
  Registry: null, // checked through the lookups below
  TimelockController: ["getMinDelay()(uint256)", (v) => /^\d+/.test(v)],
  AutonetGovernor: ["name()(string)", (v) => v === '"AutonetGovernor"'],
  ParticipantStaking: ["minStake(uint8)(uint256)", (v) => /^\d+/.test(v) && v !== "0", "3"],
  AgentIdentity: ["symbol()(string)", (v) => v === '"AGENT"'],
  Project: ["exists(uint256)(bool)", (v) => v === "false", "1"],
  InferenceMarket: ["hasRole(bytes32,address)(bool)", (v) => v === "true", "0x0000000000000000000000000000000000000000000000000000000000000000", d.contracts.TimelockController],
  Rewards: ["hasRole(bytes32,address)(bool)", (v) => v === "true", "0x0000000000000000000000000000000000000000000000000000000000000000", d.contracts.TimelockController],
  TaskManager: ["hasRole(bytes32,address)(bool)", (v) => v === "true", "0x0000000000000000000000000000000000000000000000000000000000000000", d.contracts.TimelockController],
  BlsSignerRegistry: ["MAX_BLS_SIGNERS()(uint256)", (v) => v === "256"],
  ModelShardRegistry: ["hasRole(bytes32,address)(bool)", (v) => v === "true", "0x0000000000000000000000000000000000000000000000000000000000000000", d.contracts.TimelockController],
  ShardProviders: ["hasRole(bytes32,address)(bool)", (v) => v === "true", "0x0000000000000000000000000000000000000000000000000000000000000000", d.contracts.TimelockController],
  BatchSettlement: ["MIN_WITHDRAW_DELAY()(uint40)", (v) => v === "900"],
  Erc3009DepositCollector: ["settlement()(address)", (v) => lower(v) === lower(CANONICAL_BATCH_SETTLEMENT)],
};

let failures = 0;
for (const [name, addr] of Object.entries(d.contracts)) {
  const problems = [];
  const code = execFileSync(cast, ["code", "--rpc-url", rpc, addr], { encoding: "utf8" }).trim();
  if (code === "0x") problems.push("no code");
  const probe = probes[name];
  if (probe) {
    const [sig, ok, ...args] = probe;
    const v = call(addr, sig, ...args);
    if (!ok(v)) problems.push(`${sig} answered ${v}`);
  }
  if (name !== "Registry" && !unregistered.has(name)) {
    const reg = call(d.contracts.Registry, "getAddress(string)(address)", `contract.${name}`);
    if (lower(reg) !== lower(addr)) problems.push(`Registry says contract.${name} = ${reg}`);
  }
  if (deployer && true) {
    const admin = ["Registry", "ATNToken", "ParticipantStaking", "Project", "InferenceMarket", "Rewards", "TaskManager", "ModelShardRegistry", "ShardProviders", "TimelockController"];
    if (admin.includes(name)) {
      if (call(addr, "hasRole(bytes32,address)(bool)", ADMIN, deployer) !== "false") problems.push("deployer still admin");
      if (call(addr, "hasRole(bytes32,address)(bool)", ADMIN, d.contracts.TimelockController) !== "true") problems.push("Timelock is not admin");
    }
  }
  console.log(`${problems.length ? "FAIL" : "ok  "} ${name.padEnd(20)} ${addr}${problems.length ? "  " + problems.join("; ") : ""}`);
  failures += problems.length ? 1 : 0;
}
// Wiring between contracts that is not a role: [contract, view, contract it must name].
const wiring = [
  // Stake changes keep the registry's BLS aggregate key and signer stake current (docs/bls.md).
  ["ParticipantStaking", "stakeObserver()(address)", "BlsSignerRegistry"],
  ["ModelShardRegistry", "blsSigners()(address)", "BlsSignerRegistry"],
  ["ShardProviders", "models()(address)", "ModelShardRegistry"],
];
for (const [name, sig, want] of wiring) {
  if (!d.contracts[name] || !d.contracts[want]) continue;
  const v = call(d.contracts[name], sig);
  const ok = lower(v) === lower(d.contracts[want]);
  const view = `${name}.${sig.split("(")[0]}`;
  console.log(`${ok ? "ok  " : "FAIL"} ${view.padEnd(20)} ${v}${ok ? "" : `  expected ${want} ${d.contracts[want]}`}`);
  failures += ok ? 0 : 1;
}
// Stake lockers: ShardProviders keeps the stake of providers announcing shards bonded (docs/storage.md).
if (d.contracts.ParticipantStaking && d.contracts.ShardProviders) {
  const v = call(d.contracts.ParticipantStaking, "stakeLockers()(address[])");
  const ok = lower(v).includes(lower(d.contracts.ShardProviders));
  console.log(`${ok ? "ok  " : "FAIL"} ${"ParticipantStaking.stakeLockers".padEnd(20)} ${v}${ok ? "" : `  expected to include ShardProviders ${d.contracts.ShardProviders}`}`);
  failures += ok ? 0 : 1;
}
if (!Number.isInteger(d.deployBlock) && !/^\d+$/.test(String(d.deployBlock))) {
  console.log(`FAIL deployBlock missing`);
  failures++;
}
console.log(failures ? `check-deployment: ${failures} check(s) failed` : `check-deployment: all ${Object.keys(d.contracts).length} contracts answer`);
process.exit(failures ? 1 : 0);
