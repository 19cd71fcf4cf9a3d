#!/usr/bin/env bash
# Loads a node's status page in headless Chromium and checks that its loss chart rendered the
# expected number of points.
#
#   script/check-status-page.sh <url> <expected_points> [<min_psi_points>]
#
# Exit 0 when the page loaded its data (body data-state="ok") and the chart `#loss-chart` carries
# data-points="<expected_points>" with as many <circle> points (plus a line when there are 2 or
# more, or the text "no rounds yet" when there are none); non-zero with a message otherwise. It
# prints the chart's x axis (data-axis: "time" when every round's proposal time is known, else
# "round") with its number of ticks, and the page's cards ("value (full value on hover) label").
# The colony-health chart `#psi-chart` must be there too, with at least <min_psi_points> points
# (default 0); its points and the Ψ table's rows are printed.
# Chromium: $CHROMIUM, else /usr/bin/chromium (Debian: `make setup-browser`).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 || ! $2 =~ ^[0-9]+$ || ! ${3:-0} =~ ^[0-9]+$ ]]; then
    echo "usage: $0 <url> <expected_points> [<min_psi_points>]" >&2
    exit 2
fi
url=$1
expected=$2
min_psi=${3:-0}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    echo "check-status-page: no Chromium at $chromium: run \`make setup-browser\` (apt-get install -y chromium)" >&2
    exit 3
fi

profile=$(mktemp -d)
dom=$(mktemp)
trap 'rm -rf "$profile" "$dom"' EXIT

# --virtual-time-budget lets the page's fetch and render finish before the DOM is dumped.
if ! timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=10000 --dump-dom "$url" >"$dom" 2>"$profile/stderr"; then
    echo "check-status-page: chromium failed on $url:" >&2
    tail -n 20 "$profile/stderr" >&2
    exit 1
fi

flat=$(tr -d '\n' <"$dom")
fail() {
    echo "check-status-page: $url: $*" >&2
    exit 1
}

[[ -n $flat ]] || fail "chromium dumped an empty DOM"
state=$(grep -o '<body[^>]*data-state="[a-z]*"' <<<"$flat" | grep -o '"[a-z]*"$' | tr -d '"' || true)
if [[ $state != ok ]]; then
    err=$(grep -o '<div id="error"[^>]*>[^<]*' <<<"$flat" | sed 's/<[^>]*>//' || true)
    fail "the page did not load its data (state '${state:-missing}')${err:+: $err}"
fi

open_tag=$(grep -o '<svg[^>]*id="loss-chart"[^>]*>' <<<"$flat" || true)
[[ -n $open_tag ]] || fail "no <svg id=\"loss-chart\"> in the page"
points=$(grep -o 'data-points="[0-9]*"' <<<"$open_tag" | grep -o '[0-9]\+' || true)
axis=$(grep -o 'data-axis="[a-z]*"' <<<"$open_tag" | grep -o '"[a-z]*"$' | tr -d '"' || true)
# The chart's content: from its opening tag to the first </svg> after it.
chart=${flat#*"$open_tag"}
chart=${chart%%</svg>*}
circles=$({ grep -o '<circle' <<<"$chart" || true; } | wc -l | tr -d ' ')

[[ $points == "$expected" ]] ||
    fail "loss chart has data-points=\"${points:-missing}\", expected $expected"
[[ $circles == "$expected" ]] ||
    fail "loss chart draws $circles <circle> points, expected $expected"
if ((expected >= 2)) && ! grep -q '<polyline\|<path' <<<"$chart"; then
    fail "loss chart has $expected points but no line"
fi
if ((expected == 0)) && ! grep -q 'no rounds yet' <<<"$chart"; then
    fail "empty loss chart does not say \"no rounds yet\""
fi
ticks=$({ grep -o 'class="x-tick"' <<<"$chart" || true; } | wc -l | tr -d ' ')
# The cards, as "value (hover text) label" lines: amounts are rounded for people, full on hover.
cards=$(grep -o '<div class="card"><b[^>]*>[^<]*</b><span[^>]*>[^<]*</span>' <<<"$flat" |
    sed -E 's/<div class="card"><b( title="([^"]*)")?>([^<]*)<\/b><span[^>]*>([^<]*)<\/span>/\3 (\2) \4/' || true)
psi_tag=$(grep -o '<svg[^>]*id="psi-chart"[^>]*>' <<<"$flat" || true)
[[ -n $psi_tag ]] || fail "no <svg id=\"psi-chart\"> in the page"
psi_points=$(grep -o 'data-points="[0-9]*"' <<<"$psi_tag" | grep -o '[0-9]\+' || true)
((${psi_points:-0} >= min_psi)) ||
    fail "the colony-health chart has ${psi_points:-no} points, expected at least $min_psi"
psi_chart=${flat#*"$psi_tag"}
psi_chart=${psi_chart%%</svg>*}
psi_circles=$({ grep -o '<circle' <<<"$psi_chart" || true; } | wc -l | tr -d ' ')
[[ $psi_circles == "${psi_points:-0}" ]] ||
    fail "the colony-health chart draws $psi_circles points, data-points says ${psi_points:-missing}"
# The Ψ table: "round Ψ intelligence sync diversity velocity" per row, newest first.
psi_rows=$(grep -o '<div id="psi">.*' <<<"$flat" | sed 's/<\/table>.*//' | grep -o '<tr><td>[^/]*</td>\(<td>[^<]*</td>\)*</tr>' |
    sed -E 's/<\/td><td>/ /g; s/<[^>]*>//g' || true)
echo "check-status-page: $url: loss chart with $expected points (x axis: ${axis:-missing}, $ticks x ticks); colony-health chart with ${psi_points:-0} points"
[[ -z $psi_rows ]] || sed 's/^/  Ψ round: /' <<<"$psi_rows"
[[ -z $cards ]] || sed 's/^/  card: /' <<<"$cards"
