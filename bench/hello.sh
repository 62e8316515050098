#!/usr/bin/env bash
# hello.sh — start-up latency: hyperfine of a hello-world WASI command under
# `keel run` with a warm cache (default tier auto, which takes the cached
# optimized code, and --tier opt), next to the native program and node.
# Target: keel run of hello with a warm cache < 5 ms (mean).
#
# Environment: BENCH_HELLO_RUNS=200, BENCH_HELLO_FAST=1 (also time --tier fast,
# which caches the translated C but runs libtcc every time), KEEL, NODE,
# BENCH_OUT, KEEL_CACHE (default build/bench/cache).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=${BENCH_HELLO_RUNS:-200}
command -v hyperfine >/dev/null || bench_die "hyperfine not found (package hyperfine)"
mkdir -p "$OUT/native" "$OUT/wasm"
$NATIVE_CC $NATIVE_CFLAGS "$BENCH_DIR/hello.c" -o "$OUT/native/hello"
$WASM_CC $WASM_CFLAGS $WASM_LDFLAGS "$BENCH_DIR/hello.c" -o "$OUT/wasm/hello.wasm"
wasm=$OUT/wasm/hello.wasm

cmds=("$OUT/native/hello")
names=("native")
if keel_available; then
    mkdir -p "$KEEL_CACHE"
    "$KEEL" compile --tier opt "$wasm" >/dev/null
    for tier in "" "--tier opt"; do
        out=$("$KEEL" run $tier "$wasm") || bench_die "keel run $tier $wasm failed"
        [ "$out" = "hello, world" ] || bench_die "keel run $tier printed '$out'"
    done
    cmds+=("$KEEL run $wasm" "$KEEL run --tier opt $wasm")
    names+=("keel run (auto, warm)" "keel run --tier opt (warm)")
    if [ "${BENCH_HELLO_FAST:-1}" = 1 ]; then
        cmds+=("$KEEL run --tier fast $wasm")
        names+=("keel run --tier fast")
    fi
else
    bench_note "$KEEL not found: keel not measured"
fi
cmds+=("$NODE --no-warnings $BENCH_DIR/node_wasi.mjs $wasm")
names+=("node")

args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
json=$OUT/hello.json
hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$json" "${args[@]}" >&2

python3 - "$json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
print(f"\n{'command':<28} {'mean ms':>8} {'median ms':>10} {'min ms':>7} {'max ms':>7}")
for r in res:
    print(f"{r['command']:<28} {r['mean']*1e3:8.2f} {r['median']*1e3:10.2f}"
          f" {r['min']*1e3:7.2f} {r['max']*1e3:7.2f}")
keel = [r for r in res if r["command"].startswith("keel run (auto")]
if keel:
    m = keel[0]["mean"] * 1e3
    print(f"\ntarget  {'PASS' if m < 5 else 'MISS'}  keel run hello, warm cache < 5 ms: {m:.2f} ms mean")
PY
