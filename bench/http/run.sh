#!/usr/bin/env bash
# bench/http/run.sh — Keel over HTTP against nginx, in one run: builds the
# benchmark guests (bench/http/guests/), warms Keel's optimized-tier cache,
# starts nginx (private prefix in a temporary folder) and `keel up`
# processes on 127.0.0.1, runs wrk against them (bounded durations), stops
# everything and prints one table; also build/bench/http.tsv. What each
# number means: bench/http/README.md.
#
#   bash bench/http/run.sh                          # everything, ~7 minutes
#   BENCH_HTTP_SECTIONS="hello hop" bash bench/http/run.sh
#
# Needs: wrk, nginx (nginx-light is enough), clang + wasi-libc, curl,
# python3, and build/keel (`make all`).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

KEEL=${KEEL:-build/keel}
OUT=${BENCH_OUT:-build/bench}
export KEEL_CACHE=${KEEL_CACHE:-$OUT/cache}
DUR=${BENCH_HTTP_DURATION:-10}             # seconds per measured wrk run
WARM=${BENCH_HTTP_WARMUP:-2}               # seconds of unmeasured load first
THREADS=${BENCH_HTTP_THREADS:-2}           # wrk -t for throughput runs
CONNS=${BENCH_HTTP_CONNS:-64}              # wrk -c for throughput runs
SECTIONS=${BENCH_HTTP_SECTIONS:-"hello hop scale hol"}
SCALE_COUNTS=${BENCH_HTTP_SCALE:-"1 10 100"}
HOL_SLOW_CONNS=${BENCH_HTTP_HOL_SLOW_CONNS:-64}   # = the spinner's concurrency limit
HOL_PROBE_CONNS=${BENCH_HTTP_HOL_PROBE_CONNS:-4}
SPIN_MS=${BENCH_HTTP_SPIN_MS:-50}
ROUNDS=${BENCH_HTTP_ROUNDS:-5}             # hello: rounds of nginx, Keel, Keel, ... in turn
NGINX=${NGINX:-nginx}
NGINX_WORKERS=${BENCH_HTTP_NGINX_WORKERS:-$(nproc)}

die() { echo "bench/http: $*" >&2; exit 1; }
note() { echo "bench/http: $*" >&2; }

for tool in wrk "$NGINX" clang curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install wrk nginx-light clang wasi-libc curl python3)"
done
[ -x "$KEEL" ] || die "$KEEL not found: run make all first"
KEEL=$(realpath "$KEEL")
case "$KEEL_CACHE" in /*) ;; *) KEEL_CACHE=$ROOT/$KEEL_CACHE ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-http.XXXXXX")
RAW=$TMP/raw.tsv
: >"$RAW"
PIDS=()

stop_pid() {   # stop_pid PID: TERM, wait up to 10 s, then KILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "${BENCH_HTTP_KEEP_TMP:-0}" = 1 ]; then
        note "logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# ---------------------------------------------------------------- guests
GUESTS=$OUT/http
mkdir -p "$GUESTS" "$KEEL_CACHE"
# shellcheck disable=SC2054  # -Wl,--strip-debug is one argument
WASM_CC=(clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -Wl,--strip-debug -Isdk/c)
for g in hello_wapc chain spin; do
    "${WASM_CC[@]}" -mexec-model=reactor "bench/http/guests/$g.c" -o "$GUESTS/$g.wasm"
done
"${WASM_CC[@]}" bench/http/guests/hello_wagi.c -o "$GUESTS/hello_wagi.wasm"   # a WASI command
for g in hello_wapc hello_wagi chain spin; do
    "$KEEL" compile --tier opt "$GUESTS/$g.wasm" >/dev/null
done
note "guests built in $GUESTS, opt tier cached in $KEEL_CACHE"

# ---------------------------------------------------------------- helpers
free_ports() {   # free_ports N: N distinct free loopback ports
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# start_keel TAG MANIFEST: sets KPID, KPORT; fails unless every component
# loaded on the opt tier.
start_keel() {
    local tag=$1 manifest=$2 log=$TMP/keel-$1.log i
    "$KEEL" up -f "$manifest" --listen 127.0.0.1:0 >"$log" 2>&1 &
    KPID=$!
    PIDS+=("$KPID")
    KPORT=
    for i in $(seq 600); do
        KPORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
        [ -n "$KPORT" ] && break
        kill -0 "$KPID" 2>/dev/null || { cat "$log" >&2; die "keel up ($tag) exited"; }
        sleep 0.1
    done
    [ -n "$KPORT" ] || { cat "$log" >&2; die "keel up ($tag) did not start listening in 60 s"; }
    local loaded opt
    # text log ("[name] loaded ...") or JSON log ("msg":"loaded ...")
    loaded=$(grep -cE '(\] |"msg":")loaded ' "$log" || true)
    opt=$(grep -cE '(\] |"msg":")loaded .*tier opt' "$log" || true)
    if [ "$loaded" -eq 0 ] || [ "$loaded" != "$opt" ]; then
        cat "$log" >&2
        die "keel up ($tag): $opt of $loaded components on the opt tier"
    fi
    note "keel up ($tag): pid $KPID, port $KPORT, $loaded components, tier opt"
}

stop_keel() { stop_pid "$1"; forget_pid "$1"; }

check_body() {   # check_body URL EXPECTED
    local got
    got=$(curl -s --max-time 5 -o - -w '|%{http_code}' "$1") || die "curl $1 failed"
    [ "$got" = "$2|200" ] || die "$1 answered '$got', expected '$2' with status 200"
}

# measure CASE THREADS CONNS URL [SCRIPT [ARGS...]]: one wrk run of DUR
# seconds; appends an M line to RAW.
measure() {
    local name=$1 t=$2 c=$3 url=$4 script=${5:-bench/http/stats.lua}
    shift 5 2>/dev/null || shift $#
    local log=$TMP/wrk-${name//\//_}.log line
    local cmd=(wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 10s --latency -s "$script" "$url")
    [ $# -gt 0 ] && cmd+=(-- "$@")
    "${cmd[@]}" >"$log" 2>&1 || { cat "$log" >&2; die "wrk failed ($name)"; }
    line=$(grep '^WRK' "$log" | tail -1)
    [ -n "$line" ] || { cat "$log" >&2; die "no result from wrk ($name)"; }
    printf 'M\t%s\t%s\t%s\t%s\n' "$name" "$t" "$c" "$(cut -f2- <<<"$line")" >>"$RAW"
    local shown="${cmd[*]}"
    [ $# -gt 3 ] && shown="${cmd[*]:0:12} ... ($# paths)"
    printf 'C\t%s\t%s\n' "$name" "$shown" >>"$RAW"
    note "$name: $(awk -F'\t' '{ printf "%.0f req/s, p50 %d us, p99 %d us, mean %.1f us, errors %d, non-2xx %d",
        $2 / ($3 / 1e6), $5, $6, $4, $8, $9 }' <<<"$line")"
}

warm() {   # warm URL [SCRIPT [ARGS...]]: unmeasured load
    local url=$1 script=${2:-bench/http/stats.lua}
    shift 2 2>/dev/null || shift $#
    [ "$WARM" -gt 0 ] || return 0
    if [ $# -gt 0 ]; then
        wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$script" "$url" -- "$@" >/dev/null 2>&1
    else
        wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$script" "$url" >/dev/null 2>&1
    fi
}

has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

printf 'I\tcpus\t%s\n' "$(nproc)" >>"$RAW"
printf 'I\tcpu\t%s\n' "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" >>"$RAW"
printf 'I\tload_before\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"
printf 'I\tnginx\t%s\n' "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" >>"$RAW"
printf 'I\twrk\t%s\n' "$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)" >>"$RAW"
printf 'I\tparams\tduration %ss, warm-up %ss, throughput wrk -t%s -c%s, nginx worker_processes %s\n' \
    "$DUR" "$WARM" "$THREADS" "$CONNS" "$NGINX_WORKERS" >>"$RAW"

# ---------------------------------------------------------------- nginx
NGINX_PID=
if has hello || has hop; then
    read -r P_HELLO P_A_KA P_B_KA P_A_NK P_B_NK < <(free_ports 5)
    NG=$TMP/nginx
    mkdir -p "$NG"
    sed -e "s|@PREFIX@|$NG|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" \
        -e "s|@P_HELLO@|$P_HELLO|g" -e "s|@P_A_KA@|$P_A_KA|g" -e "s|@P_B_KA@|$P_B_KA|g" \
        -e "s|@P_A_NK@|$P_A_NK|g" -e "s|@P_B_NK@|$P_B_NK|g" \
        bench/http/nginx/nginx.conf.in >"$NG/nginx.conf"
    "$NGINX" -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" -t -q >"$TMP/nginx-t.log" 2>&1 ||
        { cat "$TMP/nginx-t.log" >&2; die "nginx -t failed"; }
    "$NGINX" -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" >"$TMP/nginx.out" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    for i in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$P_HELLO/" && break
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$NG/error.log" "$TMP/nginx.out" >&2; die "nginx exited"; }
        sleep 0.1
    done
    for p in "$P_HELLO" "$P_A_KA" "$P_A_NK"; do check_body "http://127.0.0.1:$p/" hello; done
    note "nginx: pid $NGINX_PID, hello on $P_HELLO, chains on $P_A_KA (keep-alive), $P_A_NK (no keep-alive)"
fi

# ---------------------------------------------------------------- keel (main)
KMAIN=
if has hello || has hop || has hol; then
    cp "$GUESTS"/*.wasm "$TMP/"
    # The main manifest turns the access log off, as nginx's config does;
    # section 1 also measures Keel's default (access log on) with a second
    # process serving the same hello.
    cat >"$TMP/log.yaml" <<EOF
# bench/http: Keel's default observability (JSON access log on stderr)
components:
  hello:
    wasm: hello_wapc.wasm
    abi: wapc
    routes: [{ path: /hello }]
EOF
    cat >"$TMP/main.yaml" <<EOF
# bench/http main manifest (written by run.sh)
observability: { access_log: false }
components:
  hello:
    wasm: hello_wapc.wasm
    abi: wapc
    routes: [{ path: /hello }]
  hello-wagi:
    wasm: hello_wagi.wasm
    abi: wagi
    routes: [{ path: /wagi }]
  a:
    wasm: chain.wasm
    routes: [{ path: /chain }]
    calls: [b]
    config: { next: b }
  b:
    wasm: chain.wasm
    calls: [c]
    config: { next: c }
  c:
    wasm: chain.wasm
    routes: [{ path: /single }]
  spin:
    wasm: spin.wasm
    routes: [{ path: /spin }]
    config: { ms: $SPIN_MS }
EOF
    start_keel main "$TMP/main.yaml"
    KMAIN=$KPID
    K=http://127.0.0.1:$KPORT
    KLOG=
    if has hello; then
        start_keel log "$TMP/log.yaml"
        KLOG=$KPID
        KL=http://127.0.0.1:$KPORT
        check_body "$KL/hello" hello
    fi
    for p in hello wagi chain single; do check_body "$K/$p" hello; done
    check_body "$K/spin" spun
fi

# ---------------------------------------------------------------- 1. hello
# ROUNDS rounds, each server in turn: a minute-long change in what the
# machine gives (other VMs, other jobs) then hits every server alike, and
# the report takes each case's median round.
if has hello; then
    for r in $(seq "$ROUNDS"); do
        warm "http://127.0.0.1:$P_HELLO/"
        measure "hello/nginx@$r" "$THREADS" "$CONNS" "http://127.0.0.1:$P_HELLO/"
        warm "$K/hello"
        measure "hello/keel-wapc@$r" "$THREADS" "$CONNS" "$K/hello"
        warm "$KL/hello"
        measure "hello/keel-wapc-log@$r" "$THREADS" "$CONNS" "$KL/hello"
        warm "$K/wagi"
        measure "hello/keel-wagi@$r" "$THREADS" "$CONNS" "$K/wagi"
    done
    stop_keel "$KLOG"
fi

# ---------------------------------------------------------------- 2. hop
if has hop; then
    # One connection, one wrk thread: latency, not throughput.
    warm "$K/chain"
    measure hop/keel-single 1 1 "$K/single"
    measure hop/keel-chain 1 1 "$K/chain"
    warm "http://127.0.0.1:$P_A_KA/"
    measure hop/nginx-single 1 1 "http://127.0.0.1:$P_HELLO/"
    measure hop/nginx-chain-keepalive 1 1 "http://127.0.0.1:$P_A_KA/"
    measure hop/nginx-chain-no-keepalive 1 1 "http://127.0.0.1:$P_A_NK/"
fi

# ---------------------------------------------------------------- 4. head of line
if has hol; then
    measure hol/hello-unloaded 1 "$HOL_PROBE_CONNS" "$K/hello"
    SLOW_LOG=$TMP/wrk-hol-slow.log
    wrk -t1 -c"$HOL_SLOW_CONNS" -d"$((DUR + 4))s" --timeout 10s --latency \
        -s bench/http/stats.lua "$K/spin" >"$SLOW_LOG" 2>&1 &
    SLOW_PID=$!
    PIDS+=("$SLOW_PID")
    sleep 2   # let the slow route fill up
    measure hol/hello-loaded 1 "$HOL_PROBE_CONNS" "$K/hello"
    wait "$SLOW_PID" || true
    forget_pid "$SLOW_PID"
    line=$(grep '^WRK' "$SLOW_LOG" | tail -1) || { cat "$SLOW_LOG" >&2; die "no result from the slow wrk"; }
    printf 'M\t%s\t%s\t%s\t%s\n' hol/spin-load 1 "$HOL_SLOW_CONNS" "$(cut -f2- <<<"$line")" >>"$RAW"
    printf 'C\thol/spin-load\twrk -t1 -c%s -d%ss --timeout 10s --latency -s bench/http/stats.lua %s/spin (started 2 s before the loaded probe)\n' \
        "$HOL_SLOW_CONNS" "$((DUR + 4))" "$K" >>"$RAW"
    printf 'I\tspin_ms\t%s\n' "$SPIN_MS" >>"$RAW"
fi

if [ -n "$KMAIN" ]; then
    printf 'R\tmain\t%s\n' "$(rss_kib "$KMAIN")" >>"$RAW"
    stop_keel "$KMAIN"
fi
if [ -n "$NGINX_PID" ]; then
    stop_pid "$NGINX_PID"
    forget_pid "$NGINX_PID"
fi

# ---------------------------------------------------------------- 3. scaling
if has scale; then
    cp "$GUESTS/hello_wapc.wasm" "$TMP/"
    for n in $SCALE_COUNTS; do
        m=$TMP/scale-$n.yaml
        paths=()
        {
            echo "# bench/http scaling manifest: $n copies of hello_wapc (written by run.sh)"
            echo "components:"
            for i in $(seq 0 $((n - 1))); do
                name=$(printf 'hello%03d' "$i")
                printf '  %s:\n    wasm: hello_wapc.wasm\n    routes: [{ path: /%s }]\n' "$name" "$name"
                paths+=("/$name")
            done
        } >"$m"
        start_keel "scale-$n" "$m"
        printf 'R\tscale-%s-idle\t%s\n' "$n" "$(rss_kib "$KPID")" >>"$RAW"
        for p in "${paths[@]}"; do check_body "http://127.0.0.1:$KPORT$p" hello; done
        warm "http://127.0.0.1:$KPORT/" bench/http/spread.lua "${paths[@]}"
        measure "scale/$n" "$THREADS" "$CONNS" "http://127.0.0.1:$KPORT/" bench/http/spread.lua "${paths[@]}"
        printf 'R\tscale-%s-loaded\t%s\n' "$n" "$(rss_kib "$KPID")" >>"$RAW"
        stop_keel "$KPID"
    done
fi

printf 'I\tload_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"
mkdir -p "$OUT"
python3 bench/http/report.py "$RAW" "$OUT/http.tsv"
