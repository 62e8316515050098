#!/usr/bin/env bash
# demo.sh BUILD — the quick start's main job: builds the example guest and
# runs it under keel (both tiers, then from the warm cache).
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p "$build/examples"
clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror \
    examples/hello/main.c -o "$build/examples/hello.wasm"
echo "== keel run (compiles on first use: fast tier now, optimized in the background)"
"$build/keel" run --dir examples/hello/data::/data --env GREETING=hi \
    "$build/examples/hello.wasm" one two
echo "== keel compile --tier opt, then run from the cache"
"$build/keel" compile --tier opt "$build/examples/hello.wasm"
"$build/keel" run --tier opt --dir examples/hello/data::/data \
    "$build/examples/hello.wasm"
