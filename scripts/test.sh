#!/usr/bin/env bash
# test.sh — the whole test suite (the README's second command, and CI's):
# installs missing Debian packages, builds, runs static analysis (make
# lint: cppcheck and clang-tidy over src/, clean or fail), unit,
# integration and spec conformance tests, then the unit and integration
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then a
# bounded run of each libFuzzer target (FUZZ_SECONDS each, 20 here). Each
# run ends with a line saying how many passed and failed; fuzzing stops at
# the first crash.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make all
make lint
make test
make asan
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
