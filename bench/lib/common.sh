# common.sh — shared by bench/*.sh: paths, tool checks, building the
# benchmark programs natively and as wasm32-wasi. Source it from the
# repository root (the scripts cd there first).

BENCH_DIR=bench
OUT=${BENCH_OUT:-build/bench}
KEEL=${KEEL:-build/keel}
NODE=${NODE:-node}
export KEEL_CACHE=${KEEL_CACHE:-$OUT/cache}

NATIVE_CC=${NATIVE_CC:-gcc}
NATIVE_CFLAGS=${NATIVE_CFLAGS:--O2 -Wall -Wextra -Werror}
WASM_CC=${WASM_CC:-clang --target=wasm32-wasi --sysroot=/usr}
WASM_CFLAGS=${WASM_CFLAGS:--O2 -Wall -Wextra -Werror}
WASM_LDFLAGS=${WASM_LDFLAGS:--Wl,--strip-debug}  # libc.a carries DWARF; keep sizes honest

bench_die() { echo "bench: $*" >&2; exit 1; }
bench_note() { echo "bench: $*" >&2; }

# The programs to run: every bench/programs/*.c, or those named in
# BENCH_PROGRAMS (space-separated, without .c).
bench_programs() {
    if [ -n "${BENCH_PROGRAMS:-}" ]; then
        echo "$BENCH_PROGRAMS"
    else
        local f
        for f in "$BENCH_DIR"/programs/*.c; do basename "$f" .c; done
    fi
}

# True when the keel binary exists; otherwise keel columns are skipped with
# a note (the native and node columns still run).
keel_available() { [ -x "$KEEL" ]; }

# Builds $OUT/native/P and $OUT/wasm/P.wasm for each program P given.
bench_build() {
    mkdir -p "$OUT/native" "$OUT/wasm"
    local p src
    for p in "$@"; do
        src=$BENCH_DIR/programs/$p.c
        [ -f "$src" ] || bench_die "no program $src"
        if [ ! "$OUT/native/$p" -nt "$src" ] || [ "$BENCH_DIR/programs/bench.h" -nt "$OUT/native/$p" ]; then
            $NATIVE_CC $NATIVE_CFLAGS "$src" -o "$OUT/native/$p" -lm ||
                bench_die "native build of $src failed"
        fi
        if [ ! "$OUT/wasm/$p.wasm" -nt "$src" ] || [ "$BENCH_DIR/programs/bench.h" -nt "$OUT/wasm/$p.wasm" ]; then
            $WASM_CC $WASM_CFLAGS $WASM_LDFLAGS "$src" -o "$OUT/wasm/$p.wasm" -lm ||
                bench_die "wasm build of $src failed (needs packages wasi-libc, lld, libclang-rt-14-dev-wasm32)"
        fi
    done
}

# Nanoseconds since the epoch.
now_ns() { date +%s%N; }
