#!/usr/bin/env bash
# bench/kv/run.sh — kv_set and kv_get throughput and latency through HTTP,
# for an SQLite store and a Redis store, with redis-benchmark on the same
# Redis as the reference, in one run. Starts a private redis-server on a
# free loopback port (no persistence: memory speed, the best case for
# Redis) and one `keel up` serving tests/components/kv.c with both stores,
# runs wrk (bench/kv/kv.lua) against /kv/STORE/KEY, prints one table and
# writes build/bench/kv.tsv.
#
#   bash bench/kv/run.sh                  # ~1.5 minutes
#   BENCH_KV_DURATION=5 bash bench/kv/run.sh
#
# Needs: wrk, redis-server, redis-benchmark (Debian redis-server,
# redis-tools), build/keel and build/components/kv.wasm (`make all guests`).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
KEEL=${KEEL:-build/keel}
WASM=${KV_WASM:-build/components/kv.wasm}
OUT=${BENCH_OUT:-build/bench}
export KEEL_CACHE=${KEEL_CACHE:-$ROOT/$OUT/cache}
DUR=${BENCH_KV_DURATION:-10}
WARM=${BENCH_KV_WARMUP:-2}
THREADS=${BENCH_KV_THREADS:-2}
CONNS=${BENCH_KV_CONNS:-32}
NKEYS=${BENCH_KV_KEYS:-1000}
REDIS_N=${BENCH_KV_REDIS_N:-200000}

die() { echo "bench/kv: $*" >&2; exit 1; }
for tool in wrk redis-server redis-benchmark redis-cli curl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh)"
done
[ -x "$KEEL" ] || die "$KEEL not found: run make all"
[ -f "$WASM" ] || die "$WASM not found: run make guests"
KEEL=$(realpath "$KEEL"); WASM=$(realpath "$WASM")
mkdir -p "$OUT" "$KEEL_CACHE"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-kv.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

. bench/lib/loopback.sh

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" \
    >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$RPORT" ping >/dev/null || die "redis-server did not start"

"$KEEL" compile --quiet --tier opt "$WASM" >/dev/null
cat >"$TMP/keel.yaml" <<YAML
stores:
  lite:
    backend: sqlite
    path: $TMP/lite.db
  red:
    backend: redis
    url: redis://127.0.0.1:$RPORT/0
    prefix: "bench:"
components:
  kv:
    wasm: $WASM
    routes:
      - path: /kv/*
        operation: kv
    kv: [lite, red]
    limits: { concurrency: 1024 }
YAML
"$KEEL" up -f "$TMP/keel.yaml" --listen 127.0.0.1:0 >"$TMP/keel.log" 2>&1 &
PIDS+=($!)
PORT=
for _ in $(seq 600); do
    PORT=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$TMP/keel.log" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { cat "$TMP/keel.log" >&2; die "keel up did not start"; }
URL=http://127.0.0.1:$PORT

# the keys the get runs read: k0..k(NKEYS-1), 64 bytes each, in both stores
python3 - "$PORT" "$NKEYS" <<'PY' || die "cannot fill the stores"
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for store in ("lite", "red"):
    for i in range(n):
        c.request("PUT", f"/kv/{store}/k{i}", body=b"v" * 64)
        r = c.getresponse()
        r.read()
        assert r.status == 200, (store, i, r.status)
    c.request("GET", f"/kv/{store}/k7")
    r = c.getresponse()
    assert r.read() == b"v" * 64, store
PY

TSV=$OUT/kv.tsv
printf 'backend\top\treq_per_s\tp50_ms\tp99_ms\terrors\tcommand\n' >"$TSV"
run_wrk() {   # run_wrk BACKEND OP STORE
    local backend=$1 op=$2 store=$3 line
    wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s bench/kv/kv.lua "$URL" -- "$op" "$store" "$NKEYS" >/dev/null 2>&1
    local cmd="wrk -t$THREADS -c$CONNS -d${DUR}s --latency -s bench/kv/kv.lua URL -- $op $store $NKEYS"
    line=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s --latency -s bench/kv/kv.lua "$URL" -- "$op" "$store" "$NKEYS" | grep '^WRK') \
        || die "wrk failed ($backend $op)"
    python3 - "$backend" "$op" "$line" "$cmd" >>"$TSV" <<'PY'
import sys
b, op, line, cmd = sys.argv[1:]
f = line.split("\t")
req, dur_us, p50, p99, errs, status = int(f[1]), int(f[2]), int(f[4]), int(f[5]), int(f[7]), int(f[8])
print(f"{b}\tkv_{op} via HTTP\t{req / (dur_us / 1e6):.0f}\t{p50 / 1000:.2f}\t{p99 / 1000:.2f}\t{errs + status}\t{cmd}")
PY
}
run_wrk sqlite set lite
run_wrk sqlite get lite
run_wrk redis set red
run_wrk redis get red

# the reference: redis-benchmark on the same Redis, same client count, 64-byte values
redis-benchmark -p "$RPORT" -t set,get -n "$REDIS_N" -c "$CONNS" -d 64 --csv 2>/dev/null \
    >"$TMP/redis-benchmark.csv" || die "redis-benchmark failed"
python3 - "$CONNS" "$REDIS_N" "$TMP/redis-benchmark.csv" >>"$TSV" <<'PY'
import csv, sys
conns, n, path = sys.argv[1:]
rows = list(csv.reader(open(path)))
head = rows[0]
for r in rows[1:]:
    d = dict(zip(head, r))
    cmd = f"redis-benchmark -t set,get -n {n} -c {conns} -d 64"
    print("\t".join(["redis-benchmark", d["test"] + " (RESP, no HTTP)",
                     "%.0f" % float(d["rps"]), d["p50_latency_ms"], d["p99_latency_ms"],
                     "0", cmd]))
PY

echo
echo "kv through HTTP: wrk -t$THREADS -c$CONNS, ${DUR}s per run (${WARM}s warm-up), 64-byte values, $(nproc) CPUs"
column -t -s $'\t' "$TSV" | cut -c1-110
echo
echo "(also in $TSV)"
