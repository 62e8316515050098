#!/usr/bin/env bash
# demo.sh BUILD — the quick start's main job: serves the example shop
# (examples/shop: six components in one process) with `keel up` on
# 127.0.0.1:8080 until Ctrl-C. examples/shop/README.md has the curl
# walk-through.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
"$build/keel" check -f examples/shop/keel.yaml
cat <<'TXT'
Serving the example shop on http://127.0.0.1:8080 (Ctrl-C to stop). Try, from another terminal:
  curl 127.0.0.1:8080/api/products
  curl 127.0.0.1:8080/api/products/kettle
  curl 127.0.0.1:8080/legacy/status
  curl 127.0.0.1:8080/api/reviews/kettle     (a component in AssemblyScript)
More in examples/shop/README.md.
TXT
exec "$build/keel" up -f examples/shop/keel.yaml
