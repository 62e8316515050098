#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages Keel needs to build, test
# and benchmark, only those missing. Runs apt-get update once, and only when
# something is missing. Safe to run again; needs root (or sudo) only then.
set -euo pipefail

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
  hyperfine                     # benchmarks
  prometheus prometheus-alertmanager   # observability tests: promtool, amtool, real daemons
)

missing=()
for p in "${PACKAGES[@]}"; do
  # node may come from outside Debian (already on PATH): accept it.
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
