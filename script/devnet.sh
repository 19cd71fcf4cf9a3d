#!/usr/bin/env bash
# `make devnet` today: a local chain running the real contracts through complete protocol rounds.
# Starts anvil on a free loopback port, deploys everything (script/Deploy.s.sol), stakes a
# proposer, 3 solvers, 3 coordinators and an aggregator, then drives ROUNDS rounds phase by phase
# (script/DevnetRound.s.sol), mining blocks between the windows, and prints per round the gas of
# every phase (from the transaction receipts) and what each actor can claim.
# Training and the Rust agents are not part of this yet: deltas and models are fixed hashes.
# Environment: ROUNDS (default 3), KEEP_RUNNING=1 leaves anvil up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# `native TOOL`: Foundry's native binaries (the npm launchers drop exit statuses).
# shellcheck source=foundry-tools.sh
source "$root/script/foundry-tools.sh"
rounds="${ROUNDS:-3}"
export STATE_DIR="$root/.devnet"

script/deploy-local.sh
rpc="$(cat "$STATE_DIR/anvil.url")"
if [[ "${KEEP_RUNNING:-0}" != 1 ]]; then trap 'script/deploy-local.sh --stop >/dev/null' EXIT; fi
key0="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# Runs one phase; prints the gas of its transactions.
phase() {
  local sig="$1"
  "$(native forge)" script script/DevnetRound.s.sol:DevnetRound --sig "$sig()" --rpc-url "$rpc" --broadcast \
    --private-key "$key0" --slow --skip-simulation -vv >"$STATE_DIR/$sig.log" 2>&1 \
    || { cat "$STATE_DIR/$sig.log" >&2; echo "devnet: phase $sig failed" >&2; exit 1; }
  node -e '
    const r = require(process.argv[1]);
    const gas = r.receipts.reduce((s, x) => s + Number(BigInt(x.gasUsed)), 0);
    const bad = r.receipts.filter((x) => x.status !== "0x1" && x.status !== 1).length;
    if (bad) { console.error(`devnet: ${bad} failed transaction(s) in ${process.argv[2]}`); process.exit(1); }
    console.log(`${process.argv[2]} ${r.receipts.length} ${gas}`);
  ' "$root/broadcast/DevnetRound.s.sol/31337/$sig-latest.json" "$sig"
}

# Mines past the deadline that closes the phase just run. getTask returns a static struct, so
# its ABI encoding is flat words: 5 commitEnd, 6 solRevealEnd, 7 gtRevealEnd, 8 voteCommitEnd,
# 9 voteRevealEnd.
mine_to_next() {
  local word="$1" tm task raw next now
  tm="$(node -p 'require(process.argv[1]).contracts.TaskManager' "$root/deployments/31337.json")"
  task="$("$(native cast)" call --rpc-url "$rpc" "$tm" 'taskCount()(uint256)')"
  raw="$("$(native cast)" call --rpc-url "$rpc" "$tm" 'getTask(uint256)' "$task")"
  next=$(( 16#${raw:$((2 + 64 * word)):64} + 1 ))
  now="$("$(native cast)" block-number --rpc-url "$rpc")"
  if (( next > now )); then "$(native cast)" rpc --rpc-url "$rpc" anvil_mine "$(printf '0x%x' $((next - now)))" >/dev/null; fi
}

echo "devnet: staking 8 actors and creating a funded project"
phase setup >/dev/null
for r in $(seq 1 "$rounds"); do
  total=0; txs=0
  printf '\nround %s\n' "$r"
  for step in propose:5 revealSolutions:6 revealGroundTruth:7 voteCommit:8 voteReveal:9 finalizeAndPublish:; do
    p="${step%%:*}"; deadline="${step#*:}"
    read -r name n gas < <(phase "$p")
    printf '  %-20s %2s tx  %9s gas\n' "$name" "$n" "$gas"
    total=$((total + gas)); txs=$((txs + n))
    [[ -z "$deadline" ]] || mine_to_next "$deadline"
  done
  printf '  %-20s %2s tx  %9s gas  (3 solvers, 3 coordinators, model published)\n' "round total" "$txs" "$total"
  grep -E 'claimable|finalized' "$STATE_DIR/finalizeAndPublish.log" | sed 's/^ */  /'
done
echo
echo "devnet: $rounds round(s) completed on $rpc"
if [[ "${KEEP_RUNNING:-0}" == 1 ]]; then echo "devnet: anvil keeps running; 'make stop-local' stops it"; fi
