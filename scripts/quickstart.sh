#!/usr/bin/env bash
# quickstart.sh — the README's first command: installs missing Debian
# packages (make included), builds keel and runs the example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make demo
