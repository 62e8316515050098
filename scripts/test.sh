#!/usr/bin/env bash
# test.sh — the whole test suite (the README's second command, and CI's):
# installs missing Debian packages, builds, runs unit, integration and
# spec conformance tests, then the unit and integration tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Each run ends with a line
# saying how many passed and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make test
make asan
