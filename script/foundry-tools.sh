# Sourced by the shell scripts that run Foundry (needs `root`, the repository root).
# `native TOOL` prints the path of Foundry's native TOOL binary where npm installed it
# (node_modules/@foundry-rs/TOOL-<os>-<arch>/bin/TOOL), else the npm launcher in
# node_modules/.bin: the launchers do not pass a tool's exit status on, so a failing forge run
# through them would look like success.
native() {
  local f
  for f in "$root"/node_modules/@foundry-rs/"$1"-*/bin/"$1"; do
    [[ -x "$f" ]] && { echo "$f"; return; }
  done
  echo "$root/node_modules/.bin/$1"
}
