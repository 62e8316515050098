#!/usr/bin/env bash
# runtime-packages.sh — prints, one a line, the Debian packages holding the
# shared libraries an executable loads (ldd), except the C library, which
# every Debian image has. The Dockerfile's build stage runs it on the app
# so the runtime stage installs exactly those packages and nothing else.
#   deploy/runtime-packages.sh build/keel
# Exit status 1, naming the library, when one is missing or no package
# holds it.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: runtime-packages.sh EXECUTABLE" >&2; exit 2; }
exe=$1
[ -x "$exe" ] || { echo "runtime-packages.sh: $exe is not an executable file" >&2; exit 1; }

libs=$(ldd "$exe") || { echo "runtime-packages.sh: ldd failed on $exe" >&2; exit 1; }
if grep -q 'not found' <<<"$libs"; then
  echo "runtime-packages.sh: $exe needs libraries this system lacks:" >&2
  grep 'not found' <<<"$libs" >&2
  exit 1
fi

# "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)": the path after =>.
# dpkg may record the file under /lib or /usr/lib (merged /usr): try both.
owner() {
  local path=$1 real
  real=$(readlink -f "$path")
  for p in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
    if out=$(dpkg -S "$p" 2>/dev/null); then
      printf '%s\n' "${out%%:*}"
      return 0
    fi
  done
  echo "runtime-packages.sh: no Debian package holds $path" >&2
  return 1
}

awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$libs" |
  while read -r lib; do owner "$lib" || exit 1; done |
  awk '$0 != "libc6"' | sort -u
