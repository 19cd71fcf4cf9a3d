#!/usr/bin/env bash
# Local deployment on anvil.
#   script/deploy-local.sh           start anvil on a free loopback port, deploy, leave it running
#   script/deploy-local.sh --check   the same on a throwaway anvil, then check that every deployed
#                                    address answers `cast call`, and stop it
#   script/deploy-local.sh --stop    stop the anvil started by the first form
# Environment: CHAIN_ID (default 31337), STATE_DIR (default .devnet).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# `native TOOL`: Foundry's native binaries (the npm launchers drop exit statuses).
# shellcheck source=foundry-tools.sh
source "$root/script/foundry-tools.sh"
mode="${1:-run}"
chain_id="${CHAIN_ID:-31337}"
state="${STATE_DIR:-$root/.devnet}"
mkdir -p "$state"

stop_anvil() {
  if [[ -f "$state/anvil.pid" ]]; then
    kill "$(cat "$state/anvil.pid")" 2>/dev/null || true
    rm -f "$state/anvil.pid" "$state/anvil.url"
  fi
}

if [[ "$mode" == "--stop" ]]; then
  stop_anvil
  echo "deploy-local: anvil stopped"
  exit 0
fi

stop_anvil
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
rpc="http://127.0.0.1:$port"
"$(native anvil)" --host 127.0.0.1 --port "$port" --chain-id "$chain_id" --max-persisted-states 0 --silent >"$state/anvil.log" 2>&1 &
echo $! >"$state/anvil.pid"
echo "$rpc" >"$state/anvil.url"
if [[ "$mode" == "--check" ]]; then trap stop_anvil EXIT; fi

for _ in $(seq 1 100); do
  "$(native cast)" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
  sleep 0.1
done
"$(native cast)" chain-id --rpc-url "$rpc" >/dev/null || { echo "deploy-local: anvil did not start; see $state/anvil.log" >&2; exit 1; }

# anvil's first well-known development key; never use it on a real network.
key="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"$(native forge)" script script/Deploy.s.sol:Deploy --rpc-url "$rpc" --broadcast --private-key "$key" --slow -q \
  >"$state/deploy.log" 2>&1 || { cat "$state/deploy.log" >&2; echo "deploy-local: deployment failed" >&2; exit 1; }
file="deployments/$chain_id.json"
[[ -f "$file" ]] || { cat "$state/deploy.log" >&2; echo "deploy-local: the deploy script did not write $file" >&2; exit 1; }
echo "deploy-local: deployed to $rpc (chain $chain_id); addresses in $file"

if [[ "$mode" == "--check" ]]; then
  node script/check-deployment.mjs "$file" "$rpc" 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
else
  echo "deploy-local: anvil keeps running (pid $(cat "$state/anvil.pid")); 'make stop-local' stops it"
fi
