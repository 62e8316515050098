#!/usr/bin/env bash
# bench/swap/run.sh — what a hot swap costs the traffic of the component
# being swapped: wrk hammers one route of a running `keel up` while the
# component is redeployed every SWAP_EVERY_S seconds, alternating two
# releases, with ?tier=fast (compiled in process, optimized code swapped in
# later) or the default optimized tier (a cache hit after the first time).
# Prints wrk's totals (non-2xx and socket errors must be 0), each deploy's
# answer time, and requests/s against a run without swaps in the same
# session.
#
#   bash bench/swap/run.sh                 # 20 s, a swap every 2 s
#   SWAP_SECONDS=30 SWAP_EVERY_S=1 SWAP_TIER=opt bash bench/swap/run.sh
#
# Needs wrk, curl, python3 and the guests built (make guests).
set -euo pipefail
cd "$(dirname "$0")/../.."
KEEL=${KEEL:-build/keel}
SECONDS_RUN=${SWAP_SECONDS:-20}
EVERY=${SWAP_EVERY_S:-2}
TIER=${SWAP_TIER:-fast}
A=build/components/release.wasm B=build/components/release_v2.wasm
for f in "$KEEL" "$A" "$B"; do [ -e "$f" ] || { echo "missing $f (make && make guests)" >&2; exit 1; }; done
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib/loopback.sh
port=$(free_port); aport=$(free_port)
echo "bench $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/admin.token"
cat >"$work/keel.yaml" <<YAML
admin: { token_file: admin.token }
observability: { access_log: false }
components:
  rel:
    wasm: $PWD/$A
    routes:
      - { path: /v, operation: version }
YAML
"$KEEL" compile --quiet --tier opt "$A" >/dev/null
"$KEEL" compile --quiet --tier opt "$B" >/dev/null
"$KEEL" up -f "$work/keel.yaml" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$aport" \
    >"$work/keel.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "listening on http" "$work/keel.log" && break; sleep 0.1; done
url="http://127.0.0.1:$port/v"
wrk -t1 -c4 -d2s "$url" >/dev/null
base=$(wrk -t2 -c32 -d"${SECONDS_RUN}s" "$url" | awk '/Requests\/sec/ {print $2}')
export KEEL_ADMIN="http://127.0.0.1:$aport" KEEL_TOKEN_FILE="$work/admin.token"
wrk -t2 -c32 -d"${SECONDS_RUN}s" "$url" >"$work/wrk.txt" &
wrk_pid=$!
n=0
end=$((SECONDS + SECONDS_RUN - 1))
while [ $SECONDS -lt $end ]; do
  sleep "$EVERY"
  f=$A; [ $((n % 2)) -eq 0 ] && f=$B
  t0=$(date +%s.%N)
  "$KEEL" ctl deploy rel "$f" --tier "$TIER" >/dev/null
  echo "deploy $n: $(python3 -c "print(f'{($(date +%s.%N)-$t0)*1000:.0f} ms')")"
  n=$((n + 1))
done
wait $wrk_pid
cat "$work/wrk.txt" | grep -E "requests in|Non-2xx|Socket errors|Requests/sec|Latency " || true
swap=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
echo "deploys: $n (tier $TIER); without swaps: $base req/s; with: $swap req/s"
grep -q "Non-2xx\|Socket errors" "$work/wrk.txt" && { echo "FAILED REQUESTS"; exit 1; }
exit 0
