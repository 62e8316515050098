#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages Keel needs to build, test
# and benchmark, only those missing, then the npm packages of the shop's
# AssemblyScript component (npm ci, only when its node_modules is missing or
# older than its lock file). Runs apt-get update once, and only when a
# Debian package is missing. Safe to run again; needs root (or sudo) only
# for Debian packages.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(
  make gcc clang lld            # host build, guest build (clang --target=wasm32-wasi)
  wabt                          # wasm2c, wat2wasm, wast2json, wasm-validate
  tcc libtcc-dev                # fast tier: libtcc in process
  libh2o-evloop-dev             # HTTP front end
  libfyaml-dev                  # keel.yaml
  wasi-libc libclang-rt-14-dev-wasm32   # guest C library and builtins
  libcmocka-dev                 # C unit tests
  python3 python3-pytest        # integration tests and spec harness
  nodejs                        # reference WASI runtime in tests and benchmarks
  npm                           # assemblyscript, for examples/shop/reviews
  hyperfine                     # benchmarks
  libsqlite3-dev libhiredis-dev redis-server   # KV stores (SQLite, Redis) and their tests
  wrk                           # HTTP load in bench/kv
  prometheus prometheus-alertmanager   # observability tests: promtool, amtool, real daemons
  yamllint python3-yaml         # deploy/ tests: lint and read the Kubernetes objects
  cppcheck clang-tidy-14        # make lint: static analysis of src/
)

missing=()
for p in "${PACKAGES[@]}"; do
  # node may come from outside Debian (already on PATH): accept it.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -ne 0 ]; then
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# examples/shop/reviews: assemblyscript, pinned by package-lock.json. The
# Makefile runs the same npm ci when needed; doing it here keeps the build
# itself off the network.
reviews=$root/examples/shop/reviews
stamp=$reviews/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$reviews/package-lock.json" -nt "$stamp" ]; then
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    echo "install-deps: assemblyscript wants node 20 or later (found $(node --version 2>/dev/null))" >&2
  fi
  echo "install-deps: npm ci in examples/shop/reviews" >&2
  (cd "$reviews" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
fi
