#!/usr/bin/env bash
# bench/hop/run.sh — the in-process hop cost without HTTP (bench/hop/hop.c):
# builds the chain guest (bench/http/guests/chain.c), a manifest with
# A -> B -> C and C alone, and build/bench-hop, then runs it on the
# optimized tier (cache warmed first).
#
#   bash bench/hop/run.sh [requests]        # default 200000 per route
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
N=${1:-200000}
make -s BUILD="$BUILD" all
OUT=$ROOT/$BUILD/bench/hop
mkdir -p "$OUT"
export KEEL_CACHE=${KEEL_CACHE:-$ROOT/$BUILD/bench/cache}
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -Wl,--strip-debug -Isdk/c \
    -mexec-model=reactor bench/http/guests/chain.c -o "$OUT/chain.wasm"
"$BUILD/keel" compile --tier opt "$OUT/chain.wasm" >/dev/null
cat >"$OUT/keel.yaml" <<YAML
components:
  a:
    wasm: chain.wasm
    abi: wapc
    routes: [{ path: /chain }]
    calls: [b]
    config: { next: b }
  b:
    wasm: chain.wasm
    abi: wapc
    calls: [c]
    config: { next: c }
  c:
    wasm: chain.wasm
    abi: wapc
    routes: [{ path: /single }]
YAML
cc -std=c17 -O2 -D_GNU_SOURCE -Isrc bench/hop/hop.c \
    -Wl,--whole-archive "$BUILD/libkeel.a" -Wl,--no-whole-archive \
    -lh2o-evloop -lfyaml -ltcc -ldl -lpthread -lm -rdynamic -o "$BUILD/bench-hop"
echo "hop: $BUILD/bench-hop $OUT/keel.yaml $N  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$BUILD/bench-hop" "$OUT/keel.yaml" "$N" 2> "$OUT/log.txt" || { cat "$OUT/log.txt" >&2; exit 1; }
