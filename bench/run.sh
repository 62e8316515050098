#!/usr/bin/env bash
# run.sh — CPU benchmarks: each program in bench/programs/ natively (gcc -O2),
# under `keel run --tier opt` (cache warmed first), `keel run --tier fast`,
# and under node's WASI (bench/node_wasi.mjs). Every run's stdout must be
# identical to the native one. Prints a table per program (median wall time of
# BENCH_RUNS runs, and median CPU time, which a busy machine disturbs less)
# and the geometric mean of each ratio, then checks the targets (on wall
# time). `make bench` builds build/keel and calls this. See bench/README.md.
#
# Environment:
#   BENCH_RUNS=5         timed runs per program and runner (median is reported)
#   BENCH_FAST_RUNS=N    timed runs of the fast tier only (default BENCH_RUNS;
#                        it is ~10x native and takes most of the time)
#   BENCH_WARMUP=1       untimed runs first (0 to skip)
#   BENCH_PROGRAMS="..." subset of programs (names without .c)
#   BENCH_RUNNERS="..."  subset of: native opt fast node
#   BENCH_ARGS_<prog>=N  size argument for one program (default: its own)
#   BENCH_STRICT=1       exit 1 when a speed target is missed
#   KEEL=build/keel  KEEL_CACHE=build/bench/cache  NODE=node  BENCH_OUT=build/bench
# Results are also written to $BENCH_OUT/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=${BENCH_RUNS:-5}
WARMUP=${BENCH_WARMUP:-1}
RUNNERS=${BENCH_RUNNERS:-native opt fast node}
FAST_RUNS=${BENCH_FAST_RUNS:-$RUNS}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_RUNS must be a positive integer"
[[ "$FAST_RUNS" =~ ^[1-9][0-9]*$ ]] || bench_die "BENCH_FAST_RUNS must be a positive integer"

if ! keel_available; then
    bench_note "$KEEL not found: keel columns skipped (run 'make BUILD=build all' first)"
    RUNNERS=$(echo " $RUNNERS " | sed 's/ opt / /; s/ fast / /')
fi
command -v "$NODE" >/dev/null || bench_die "node not found (package nodejs)"

PROGRAMS=$(bench_programs)
bench_build $PROGRAMS

# Argument list of runner $1 for program $2 (size argument appended).
cmd_for() {
    local runner=$1 p=$2 argvar="BENCH_ARGS_$2" args
    args=${!argvar:-}
    case $runner in
        native) echo "$OUT/native/$p $args" ;;
        opt)    echo "$KEEL run --tier opt $OUT/wasm/$p.wasm $args" ;;
        fast)   echo "$KEEL run --tier fast $OUT/wasm/$p.wasm $args" ;;
        node)   echo "$NODE --no-warnings $BENCH_DIR/node_wasi.mjs $OUT/wasm/$p.wasm $args" ;;
    esac
}

if [[ " $RUNNERS " == *" opt "* ]]; then
    mkdir -p "$KEEL_CACHE"
    for p in $PROGRAMS; do
        "$KEEL" compile --tier opt "$OUT/wasm/$p.wasm" >/dev/null ||
            bench_die "keel compile --tier opt $OUT/wasm/$p.wasm failed"
    done
fi

RESULTS=$OUT/results.tsv
WORK=$OUT/work
mkdir -p "$WORK"
printf 'program\trunner\tmedian_s\tmin_s\tmax_s\tcpu_median_s\truns\n' >"$RESULTS"
failed=0

# Runs runner $1 on program $2 once; when $3 is 1, appends "wall cpu"
# seconds to $WORK/$2.$1.times. The output must match $WORK/$2.expected (the
# first output seen, native's unless BENCH_RUNNERS says otherwise).
run_once() {
    local runner=$1 p=$2 timed=$3 wall cpu rc
    local out=$WORK/$p.$runner.out err=$WORK/$p.$runner.err
    # shellcheck disable=SC2046
    read -r wall cpu rc < <(python3 "$BENCH_DIR/lib/measure.py" "$out" "$err" $(cmd_for "$runner" "$p"))
    if [ "$rc" != 0 ]; then
        echo "  FAIL $runner: exit $rc: $(cmd_for "$runner" "$p")" >&2
        sed 's/^/    /' "$err" | head -5 >&2
        return 1
    fi
    if [ ! -f "$WORK/$p.expected" ]; then
        cp "$out" "$WORK/$p.expected"
    elif ! cmp -s "$out" "$WORK/$p.expected"; then
        echo "  FAIL $runner: output differs from the reference" >&2
        diff "$WORK/$p.expected" "$out" | head -6 | sed 's/^/    /' >&2
        return 1
    fi
    if [ "$timed" = 1 ]; then
        echo "$wall $cpu" >>"$WORK/$p.$runner.times"
    fi
}

# "median min max count" of the numbers on stdin, one a line.
med() {
    sort -n | awk '{ t[NR] = $1 } END { printf "%.4f %.4f %.4f %d\n",
        (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2, t[1], t[NR], NR }'
}

for p in $PROGRAMS; do
    rm -f "$WORK/$p".*
    echo "== $p: $(cmd_for native "$p")" >&2
    ok_runners=""
    # Native first: its output is the reference.
    for r in $RUNNERS; do
        if [ "$WARMUP" -gt 0 ]; then
            for _ in $(seq "$WARMUP"); do
                run_once "$r" "$p" 0 || { failed=1; continue 2; }
            done
        fi
        ok_runners="$ok_runners $r"
    done
    # Timed runs interleaved across runners, so drift hits all alike.
    for i in $(seq "$(( RUNS > FAST_RUNS ? RUNS : FAST_RUNS ))"); do
        for r in $ok_runners; do
            if [ "$r" = fast ] && [ "$i" -gt "$FAST_RUNS" ]; then continue; fi
            if [ "$r" != fast ] && [ "$i" -gt "$RUNS" ]; then continue; fi
            if ! run_once "$r" "$p" 1; then
                failed=1
                ok_runners=$(echo " $ok_runners " | sed "s/ $r / /")
            fi
        done
    done
    for r in $ok_runners; do
        read -r wmed wmin wmax n < <(cut -d' ' -f1 "$WORK/$p.$r.times" | med)
        read -r cmed _ < <(cut -d' ' -f2 "$WORK/$p.$r.times" | med)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$r" "$wmed" "$wmin" "$wmax" "$cmed" "$n" >>"$RESULTS"
    done
    echo "   $(cat "$WORK/$p.expected" 2>/dev/null)" >&2
done

status=0
python3 "$BENCH_DIR/lib/report.py" "$RESULTS" || status=$?
if [ "$failed" -ne 0 ]; then
    echo "bench: some runs failed or produced different output (see above)" >&2
    exit 1
fi
if [ "$status" -ne 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then
    exit 1
fi
exit 0
