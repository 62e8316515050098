#!/usr/bin/env bash
# run.sh — the soak and load run (not a CI test): SOAK_MINUTES (default 30)
# of mixed traffic against examples/shop with a trapping component beside
# it and a hot swap every SWAP_EVERY_S seconds (default 60). Prints a line
# per sample and a summary table; writes build/soak/soak.csv, summary.md,
# keel.log and, when python3-matplotlib is installed, soak.png. Every
# setting is described at the top of soak.py. Example:
#   SOAK_MINUTES=5 SWAP_EVERY_S=30 bash bench/soak/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "soak: wrk is not installed (Debian package wrk)" >&2; exit 1; }
make --no-print-directory all >/dev/null
make --no-print-directory build/shop/gateway.wasm build/shop/catalog.wasm build/shop/cart.wasm \
    build/shop/auth.wasm build/shop/legacy.wasm build/shop/reviews.wasm \
    build/components/trap.wasm >/dev/null
exec /usr/bin/python3 bench/soak/soak.py
