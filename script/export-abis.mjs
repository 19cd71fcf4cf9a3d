#!/usr/bin/env node
// Writes abis/<Contract>.json (the ABI array, pretty-printed) for every deployable contract,
// from the artifacts of `forge build`. Usage: node script/export-abis.mjs [outDir] [abiDir]
// The Rust bindings (`alloy::sol!`) read these committed files; `make check-abis` regenerates
// them into a temporary directory and fails when they differ from the committed ones.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { join, basename } from "node:path";

const outDir = process.argv[2] ?? "out";
const abiDir = process.argv[3] ?? "abis";
// Deployable contracts are the top-level files of contracts/ (one contract per file, same name),
// plus OpenZeppelin's TimelockController, which the protocol deploys unchanged.
const names = readdirSync("contracts")
  .filter((f) => f.endsWith(".sol"))
  .map((f) => basename(f, ".sol"))
  .concat(["TimelockController"])
  .sort();

mkdirSync(abiDir, { recursive: true });
for (const name of names) {
  const artifact = join(outDir, `${name}.sol`, `${name}.json`);
  if (!existsSync(artifact)) {
    console.error(`export-abis: ${artifact} not found; run 'forge build' first`);
    process.exit(1);
  }
  const { abi } = JSON.parse(readFileSync(artifact, "utf8"));
  writeFileSync(join(abiDir, `${name}.json`), JSON.stringify(abi, null, 2) + "\n");
}
console.log(`export-abis: wrote ${names.length} ABIs to ${abiDir}/`);
