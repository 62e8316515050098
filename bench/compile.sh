#!/usr/bin/env bash
# compile.sh — compile time of both tiers per KiB of wasm, for every
# benchmark program and for a large generated module (bench/gen_big.py,
# ~1 MiB of wasm, thousands of functions).
#   opt:  `keel compile --tier opt X.wasm` into an empty cache (wasm2c + cc -O2)
#   fast: `keel compile --tier fast X.wasm` (wasm2c + libtcc in process) into
#         an empty cache each run: a module seen for the first time. When keel
#         has no such command, `keel run --tier fast` of the big module, whose
#         _start returns at once (programs are then skipped for fast).
#   fast_warm: the same with the translated C already cached (keel caches the
#         fast tier's wasm2c output, not its code): libtcc only.
#   wasm2c: wasm2c alone, for reference (the part both tiers share).
# Target: the fast tier compiles the 1 MiB module in under 1 s.
#
# Environment: BENCH_COMPILE_RUNS=3 (median of fast and wasm2c runs; opt runs
# once), BENCH_BIG_KIB=1024, BENCH_SKIP_OPT=1 (skip the opt tier: gcc -O2 of
# the big module takes minutes), BENCH_PROGRAMS, KEEL, BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=${BENCH_COMPILE_RUNS:-3}
BIG_KIB=${BENCH_BIG_KIB:-1024}
PROGRAMS=$(bench_programs)
bench_build $PROGRAMS

big=$OUT/wasm/big$BIG_KIB.wasm
if [ ! -f "$big" ] || [ "$BENCH_DIR/gen_big.py" -nt "$big" ]; then
    python3 "$BENCH_DIR/gen_big.py" --kib "$BIG_KIB" >"$OUT/wasm/big$BIG_KIB.wat"
    wat2wasm "$OUT/wasm/big$BIG_KIB.wat" -o "$big"
fi
MODULES="$(for p in $PROGRAMS; do echo "$OUT/wasm/$p.wasm"; done) $big"

have_keel=1
keel_available || { have_keel=0; bench_note "$KEEL not found: only wasm2c is timed"; }
fast_mode=compile
if [ $have_keel = 1 ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    if ! KEEL_CACHE=$scratch "$KEEL" compile --tier fast "$OUT/wasm/$(set -- $PROGRAMS; echo "$1").wasm" >/dev/null 2>&1; then
        fast_mode=run
        bench_note "'keel compile --tier fast' failed; timing 'keel run --tier fast' of the big module only"
    fi
else
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
fi

# Seconds taken by the command "$@" (stdout discarded); dies if it fails.
time_cmd() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null 2>"$scratch/err" || {
        echo "bench: failed: $*" >&2; sed 's/^/  /' "$scratch/err" | head -5 >&2; return 1; }
    t1=$(now_ns)
    awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.4f\n", d / 1e9 }'
}

# Median of the times of RUNS runs of "$@". With FRESH_CACHE=1, KEEL_CACHE
# is a new empty directory for every run.
median_of() {
    for _ in $(seq "$RUNS"); do
        if [ "${FRESH_CACHE:-0}" = 1 ]; then
            rm -rf "$scratch/cache-fresh"; mkdir -p "$scratch/cache-fresh"
            KEEL_CACHE=$scratch/cache-fresh time_cmd "$@" || return 1
        else
            time_cmd "$@" || return 1
        fi
    done |
        sort -n | awk '{ t[NR] = $1 } END { print (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2 }'
}

opt_one() {   # opt compile of $1 into a fresh, empty cache
    local c=$scratch/cache-opt
    rm -rf "$c"; mkdir -p "$c"
    KEEL_CACHE=$c time_cmd "$KEEL" compile --tier opt "$1"
}

# fast_one MODULE cold|warm
fast_one() {
    local fresh=1 cmd
    if [ "$2" = warm ]; then
        fresh=0
        rm -rf "$scratch/cache-warm"; mkdir -p "$scratch/cache-warm"
        KEEL_CACHE=$scratch/cache-warm time_cmd "$KEEL" compile --tier fast "$1" >/dev/null || return 1
    fi
    if [ "$fast_mode" = compile ]; then
        cmd=compile
    elif [ "$1" = "$big" ]; then
        cmd=run
    else
        echo "-"; return 0
    fi
    if [ $fresh = 1 ]; then
        FRESH_CACHE=1 median_of "$KEEL" $cmd --tier fast "$1"
    else
        KEEL_CACHE=$scratch/cache-warm median_of "$KEEL" $cmd --tier fast "$1"
    fi
}

RESULTS=$OUT/compile.tsv
printf 'module\tKiB\twasm2c_s\topt_s\tfast_s\tfast_warm_s\n' >"$RESULTS"
printf '%-12s %8s %9s %9s %10s %9s %11s %11s\n' module KiB wasm2c_s opt_s opt_ms/KiB fast_s fast_ms/KiB fast_warm_s
status=0
for m in $MODULES; do
    name=$(basename "$m" .wasm)
    kib=$(awk -v b="$(stat -c %s "$m")" 'BEGIN { printf "%.1f", b / 1024 }')
    w2c=$(median_of wasm2c "$m" -o "$scratch/w2c.c") || w2c=-
    opt=-; fast=-; warm=-
    if [ $have_keel = 1 ]; then
        [ "${BENCH_SKIP_OPT:-0}" = 1 ] || opt=$(opt_one "$m") || { opt=FAIL; status=1; }
        fast=$(fast_one "$m" cold) || { fast=FAIL; status=1; }
        warm=$(fast_one "$m" warm) || { warm=FAIL; status=1; }
    fi
    per() { case $1 in -|FAIL) echo "$1" ;; *) awk -v s="$1" -v k="$kib" 'BEGIN { printf "%.3f", s * 1000 / k }' ;; esac; }
    printf '%-12s %8s %9s %9s %10s %9s %11s %11s\n' "$name" "$kib" "$w2c" "$opt" "$(per "$opt")" "$fast" "$(per "$fast")" "$warm"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kib" "$w2c" "$opt" "$fast" "$warm" >>"$RESULTS"
done

echo
big_fast=$(awk -F'\t' -v n="$(basename "$big" .wasm)" '$1 == n { print $5 }' "$RESULTS")
case $big_fast in
    -|FAIL|"") echo "target  fast tier of the $BIG_KIB KiB module < 1 s: not measured" ;;
    *) if awk -v s="$big_fast" 'BEGIN { exit !(s < 1.0) }'; then
           echo "target  PASS  fast tier of the $BIG_KIB KiB module < 1 s: ${big_fast} s ($fast_mode)"
       else
           echo "target  MISS  fast tier of the $BIG_KIB KiB module < 1 s: ${big_fast} s ($fast_mode)"
       fi ;;
esac
exit $status
