#!/usr/bin/env bash
# Rehearses the testnet runbook (script/README.md) against a throwaway anvil that carries
# Arbitrum Sepolia's chain id (421614), with the public-network parameters (2-day timelock,
# 1000 ATN proposal threshold, 4% quorum) except the block-counted voting delay and period, which
# are shortened (VOTING_DELAY, VOTING_PERIOD; public values 7200 and 50,400 blocks) because anvil
# mines empty blocks at only ~200 per second:
#   deploy with `make deploy` → verify every address and the hand-over → delegate → first
#   proposal (this build's code hash) through propose / vote / queue / execute, advancing anvil
#   where a real network would make you wait → `autonet integrity check` passes → stake a role.
# Environment: CHAIN_ID (default 421614), AUTONET (the node binary; default target/release/autonet),
# VOTING_DELAY (default 100 blocks), VOTING_PERIOD (default 300 blocks).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# `native TOOL`: Foundry's native binaries (the npm launchers drop exit statuses).
# shellcheck source=foundry-tools.sh
source "$root/script/foundry-tools.sh"
chain_id="${CHAIN_ID:-421614}"
export VOTING_DELAY="${VOTING_DELAY:-100}" VOTING_PERIOD="${VOTING_PERIOD:-300}"
autonet="${AUTONET:-$root/target/release/autonet}"
state="$root/.devnet/rehearsal"
rm -rf "$state"
mkdir -p "$state"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
rpc="http://127.0.0.1:$port"
"$(native anvil)" --host 127.0.0.1 --port "$port" --chain-id "$chain_id" --max-persisted-states 0 --silent >"$state/anvil.log" 2>&1 &
anvil_pid=$!
trap 'kill $anvil_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$(native cast)" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
  sleep 0.1
done

step() { printf '\n== %s\n' "$*"; }
# anvil's first development key stands in for the operator's deployer key.
export PRIVATE_KEY="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
deployer="$("$(native cast)" wallet address "$PRIVATE_KEY")"

step "1-3. deploy (network profile) with make deploy"
DEPLOYMENTS_DIR=.devnet/rehearsal/deployments make --no-print-directory deploy RPC_URL="$rpc" \
  FORGE_DEPLOY_FLAGS="--slow -q" >"$state/deploy.log" 2>&1 \
  || { cat "$state/deploy.log" >&2; echo "rehearse: make deploy failed" >&2; exit 1; }
file="$state/deployments/$chain_id.json"
test -f "$file" || { echo "rehearse: make deploy did not write $file" >&2; exit 1; }
echo "deployed; addresses in $file"

step "4-5. verify every address and the hand-over to the Timelock"
node script/check-deployment.mjs "$file" "$rpc" "$deployer"

# From here on the node binary, configured like an operator's shell.
export AUTONET_RPC_URL="$rpc" AUTONET_DEPLOYMENT="$file" AUTONET_PRIVATE_KEY="$PRIVATE_KEY" RUST_LOG=warn
step "6. delegate the deployer's votes"
"$autonet" gov delegate
"$autonet" gov advance --blocks 1                       # votes count from the next block

step "7. first proposal: approve this build's code hash"
"$autonet" integrity show
if "$autonet" integrity check >/dev/null 2>&1; then
  echo "rehearse: integrity check passed before governance published the hash" >&2; exit 1
fi
id="$("$autonet" --json gov propose code-hash | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
"$autonet" gov status "$id"
"$autonet" gov advance --blocks $((VOTING_DELAY + 1))     # the voting delay (public: a day of blocks)
"$autonet" gov vote "$id" --support for --reason "rehearsal"
"$autonet" gov advance --blocks $((VOTING_PERIOD + 1))    # the voting period (public: a week of blocks)
"$autonet" gov status "$id"
"$autonet" gov queue "$id"
if "$autonet" gov execute "$id" >"$state/early.log" 2>&1; then
  echo "rehearse: executed before the timelock delay" >&2; exit 1
fi
grep -q "timelock delay has not passed" "$state/early.log" \
  || { cat "$state/early.log" >&2; echo "rehearse: early execute failed for another reason" >&2; exit 1; }
"$autonet" gov advance --seconds 172801                 # the timelock delay (two days)
"$autonet" gov execute "$id"
"$autonet" --json gov status "$id" | python3 -c 'import json,sys; s=json.load(sys.stdin)["state"]; assert s=="Executed", s'

step "8. the node's code is approved; an operator stakes a role"
"$autonet" integrity check
"$autonet" stake --role solver --amount 50
"$autonet" status | head -20
echo
echo "rehearse: the runbook works on chain $chain_id"
