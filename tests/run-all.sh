#!/usr/bin/env bash
# run-all.sh BUILD — runs every test suite against the binaries in BUILD
# (unit tests in C, then the integration suite on real processes) and ends
# with one line: "N passed, M failed". Exit status 0 only when nothing failed.
set -uo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Debian's python3 has python3-pytest; a python3 earlier in PATH may not.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export KEEL_TEST_COMPONENTS="$root/$build/components"

# C unit tests (cmocka): one binary per file.
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" >"$log" 2>&1
  rc=$?
  p=$(grep -aoE '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -aoE '\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
  if [ "$f" -ne 0 ]; then cat "$log"; fi
  echo "unit $(basename "$t"): $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
done

# Integration tests (pytest): real keel processes.
if ls tests/integration/test_*.py >/dev/null 2>&1; then
  KEEL_BUILD="$build" "$PY" -m pytest -q -p no:cacheprovider tests/integration \
      -o junit_family=xunit2 --junitxml="$log.xml" 2>&1 | tail -n 40
  if [ -f "$log.xml" ]; then
    read -r p f < <("$PY" - "$log.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, fl, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(t - fl - e - sk, fl + e)
PY
)
    rm -f "$log.xml"
  else
    p=0; f=1
  fi
  echo "integration: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi

# WebAssembly core spec suite on both tiers (tests/spec/run_spec.py): its
# closing line is "N passed, M failed". Skipped with KEEL_SKIP_SPEC=1 (the
# ASan run: the suite checks generated code, which ASan does not build).
if [ "${KEEL_SKIP_SPEC:-0}" != 1 ]; then
  "$PY" tests/spec/run_spec.py --keel "$build/keel" --build "$build" >"$log.spec" 2>&1
  rc=$?
  tail -n 60 "$log.spec"
  line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log.spec" | tail -n 1)
  p=$(echo "$line" | awk '{print $1+0}')
  f=$(echo "$line" | awk '{print $3+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  rm -f "$log.spec"
  echo "spec: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
