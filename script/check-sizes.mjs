#!/usr/bin/env node
// Runtime bytecode size of every deployable contract (the top-level files of contracts/, plus
// OpenZeppelin's TimelockController), from `forge build --sizes --json`, against the table in
// docs/contracts.md between the `sizes:begin` / `sizes:end` markers.
//   node script/check-sizes.mjs          fail if the table is stale or a contract is within
//                                        HEADROOM bytes of the EIP-170 limit (24,576 bytes)
//   node script/check-sizes.mjs --write  rewrite the table from the current build
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { execFileSync } from "node:child_process";

const LIMIT = 24_576; // EIP-170
const HEADROOM = 1_024; // a contract must keep at least this much room to grow
const DOC = "docs/contracts.md";
const BEGIN = "<!-- sizes:begin (node script/check-sizes.mjs --write) -->";
const END = "<!-- sizes:end -->";

const forge = new URL("../node_modules/.bin/forge", import.meta.url).pathname;
const out = execFileSync(forge, ["build", "--sizes", "--json"], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
  maxBuffer: 64 << 20,
});
const json = out.split("\n").filter((l) => l.trim().startsWith("{")).pop();
if (!json) {
  console.error("check-sizes: forge printed no size table");
  process.exit(1);
}
const sizes = JSON.parse(json);
const names = readdirSync("contracts")
  .filter((f) => f.endsWith(".sol"))
  .map((f) => basename(f, ".sol"))
  .concat(["TimelockController"])
  .sort();

const fmt = (n) => n.toLocaleString("en-US");
const rows = names.map((name) => {
  const s = sizes[name];
  if (!s) {
    console.error(`check-sizes: forge reported no size for ${name}`);
    process.exit(1);
  }
  return { name, runtime: s.runtime_size, margin: LIMIT - s.runtime_size };
});
const table = [
  "| contract | runtime bytes | room left (of 24,576) |",
  "|---|---:|---:|",
  ...rows.map((r) => `| ${r.name} | ${fmt(r.runtime)} | ${fmt(r.margin)} |`),
].join("\n");

const doc = readFileSync(DOC, "utf8");
const start = doc.indexOf(BEGIN);
const end = doc.indexOf(END);
if (start < 0 || end < start) {
  console.error(`check-sizes: ${DOC} has no size table between the markers`);
  process.exit(1);
}
const current = doc.slice(start + BEGIN.length, end).trim();

if (process.argv.includes("--write")) {
  writeFileSync(DOC, doc.slice(0, start + BEGIN.length) + "\n" + table + "\n" + doc.slice(end));
  console.log(`check-sizes: wrote the size table of ${rows.length} contracts to ${DOC}`);
}

let failures = 0;
for (const r of rows) {
  if (r.margin < HEADROOM) {
    console.error(`check-sizes: ${r.name} is ${fmt(r.runtime)} bytes, within ${fmt(HEADROOM)} of the ${fmt(LIMIT)}-byte limit`);
    failures++;
  }
}
if (!process.argv.includes("--write") && current !== table) {
  console.error(`check-sizes: the size table in ${DOC} is stale; run 'make sizes' and commit. Current sizes:\n${table}`);
  failures++;
}
if (failures) process.exit(1);
console.log(`check-sizes: ${rows.length} contracts, the largest ${fmt(Math.max(...rows.map((r) => r.runtime)))} bytes; table up to date`);
