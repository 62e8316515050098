#!/usr/bin/env bash
# bench/obs/run.sh — what operability costs: hello-world requests/s through
# `keel up` with metrics + access log + tracing (sample 1.0, exported to a
# local OTLP receiver) ON, against the same with all three OFF
# (KEEL_METRICS=0, access_log: false, no otlp_endpoint), in one run.
# Each round runs OFF and ON back to back (ABBA order), and the report
# gives every round, the medians, and the median of the rounds' own costs.
#
#   KEEL=build/keel bash bench/obs/run.sh
#   BENCH_OBS_ROUNDS=40 BENCH_OBS_DURATION=1 BENCH_OBS_CONNS=32 BENCH_OBS_THREADS=2
#   BENCH_OBS_SINK=c|nginx|python (the OTLP collector stand-in; default c)
#   BENCH_OBS_SAMPLE=0.1          (trace_sample when tracing is on; default 1.0)
#
# Needs wrk, python3, curl, a C compiler (or nginx, or a Python collector)
# and the guests built (make guests).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
KEEL=$(realpath "${KEEL:-$root/build/keel}")
BUILD=$(dirname "$KEEL")
# What "on" turns on (comma-separated subset of metrics,access,trace), to
# find which part costs what. The default is all three.
ON=${BENCH_OBS_ON:-metrics,access,trace}
SAMPLE=${BENCH_OBS_SAMPLE:-1.0}     # trace_sample when tracing is on
ROUNDS=${BENCH_OBS_ROUNDS:-40}
DUR=${BENCH_OBS_DURATION:-1}
CONNS=${BENCH_OBS_CONNS:-32}
THREADS=${BENCH_OBS_THREADS:-2}
HELLO=$BUILD/components/hello.wasm
[ -f "$HELLO" ] || make -C "$root" --no-print-directory BUILD="$(basename "$BUILD")" guests >/dev/null
command -v wrk >/dev/null || { echo "bench/obs: wrk is not installed" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  # start() runs in $(...), a subshell: its keel PIDs come back as files.
  for f in "$work"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$root/bench/lib/loopback.sh"

# The OTLP/HTTP collector: a sink that reads each batch and answers 200
# (what a collector does with it is not Keel's cost, and in production it
# runs elsewhere; here it shares the two vCPUs, so the cheapest sink is the
# fairest). bench/obs/sink.c by default: it reads each header and drops
# each body in the kernel with MSG_TRUNC (0.19 us of CPU per hello request
# in a 5 s run, against 0.26 us when it read the body 1 MiB at a time).
# BENCH_OBS_SINK=nginx (one worker, `return 200`, which discards a body
# 4 KiB at a time: 0.57 us) or python.
SINK=${BENCH_OBS_SINK:-c}
otlp_port=$(free_port)
if [ "$SINK" = c ]; then
  cc -O2 -o "$work/sink" "$root/bench/obs/sink.c"
  "$work/sink" "$otlp_port" >"$work/sink.out" &
elif [ "$SINK" = nginx ]; then
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  server { listen 127.0.0.1:$otlp_port; location / { return 200 "{}"; } }
}
NGINX
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
else
  python3 - "$otlp_port" >"$work/otlp.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
fi
pids+=($!)
sink_pid=$!

manifest() {   # $1 = on|off
  local obs
  if [ "$1" = on ]; then
    local access=false trace=""
    [[ ,$ON, == *,access,* ]] && access=true
    [[ ,$ON, == *,trace,* ]] && trace=", otlp_endpoint: 'http://127.0.0.1:$otlp_port', trace_sample: $SAMPLE"
    obs="observability: { access_log: $access$trace }"
  else
    obs="observability: { access_log: false }"
  fi
  cat >"$work/keel-$1.yaml" <<YAML
$obs
components:
  hello:
    wasm: $HELLO
    routes:
      - path: /hello
        operation: hello
YAML
}

start() {   # $1 = on|off; prints "port admin_port"
  local port aport env=()
  port=$(free_port); aport=$(free_port)
  if [ "$1" = off ] || [[ ,$ON, != *,metrics,* ]]; then env=(KEEL_METRICS=0); fi
  manifest "$1"
  env "${env[@]+"${env[@]}"}" "$KEEL" up -f "$work/keel-$1.yaml" --listen "127.0.0.1:$port" \
      --admin-listen "127.0.0.1:$aport" >"$work/keel-$1.log" 2>&1 &
  echo $! >"$work/keel-$1.pid"
  for _ in $(seq 1 600); do
    grep -q "listening on http" "$work/keel-$1.log" && break
    sleep 0.1
  done
  echo "$port $aport"
}

# warm the optimized tier into the cache so both run the same code
"$KEEL" compile --quiet --tier opt "$HELLO" >/dev/null
read -r port_off admin_off < <(start off)
read -r port_on admin_on < <(start on)
for p in $port_off $port_on; do wrk -t1 -c4 -d2s "http://127.0.0.1:$p/hello" >/dev/null; done

cpu() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^process_cpu_seconds_total/ {print $2}'; }
# One wrk round against port $1 (admin port $2): "REQ_PER_S CPU_US_PER_REQUEST", the
# second from Keel's own process_cpu_seconds_total, which other load on the
# machine disturbs far less than throughput.
round() {
  local c0 c1 out
  c0=$(cpu "$2")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$1/hello")
  c1=$(cpu "$2")
  echo "$out" | awk -v c0="$c0" -v c1="$c1" '
    / requests in / {n=$1} /Requests\/sec/ {r=$2}
    END {printf "%s %.2f\n", r, (c1-c0)*1e6/n}'
}
off=(); on=(); offc=(); onc=(); pair=(); pairc=()
for r in $(seq 1 "$ROUNDS"); do
  # ABBA: odd rounds run off first, even rounds on first, so a machine
  # speeding up or slowing down within a pair favours neither.
  if [ $((r % 2)) = 1 ]; then
    read -r a b < <(round "$port_off" "$admin_off"); read -r c d < <(round "$port_on" "$admin_on")
  else
    read -r c d < <(round "$port_on" "$admin_on"); read -r a b < <(round "$port_off" "$admin_off")
  fi
  off+=("$a"); offc+=("$b"); on+=("$c"); onc+=("$d")
  pair+=("$(awk -v a="$a" -v c="$c" 'BEGIN {printf "%.2f", (a-c)*100/a}')")
  pairc+=("$(awk -v b="$b" -v d="$d" 'BEGIN {printf "%.2f", (d-b)*100/b}')")
  echo "round $r: off $a req/s ($b us CPU/req), on $c req/s ($d us CPU/req): cost ${pair[-1]}% req/s, ${pairc[-1]}% CPU/req"
done
mo=$(median "${off[@]}"); mn=$(median "${on[@]}")
mco=$(median "${offc[@]}"); mcn=$(median "${onc[@]}")
spans=$(curl -s "http://127.0.0.1:$admin_on/metrics" | awk '/^keel_spans_(exported|dropped)_total/ {printf "%s=%s ", $1, $2}')
lines=$(grep -c '"msg":"request"' "$work/keel-on.log" || true)
echo "median: off $mo req/s, on $mn req/s, cost $(awk -v a="$mo" -v b="$mn" 'BEGIN {printf "%.1f%%", (a-b)*100/a}')"
echo "median Keel CPU per request: off $mco us, on $mcn us, cost $(awk -v a="$mco" -v b="$mcn" 'BEGIN {printf "%.1f%%", (b-a)*100/a}')"
# The figure to read: each round pairs an off and an on run made back to
# back, so the median of the rounds' own costs is the least disturbed by
# the machine's slow and fast spells.
echo "median of the rounds' costs: $(median "${pair[@]}")% req/s, $(median "${pairc[@]}")% Keel CPU/req"
echo "on: $spans access log lines=$lines"
dropped=$(curl -s "http://127.0.0.1:$admin_on/metrics" | awk '/^keel_spans_dropped_total/ {print $2}')
if [ -n "$dropped" ] && [ "${dropped%.*}" -gt 0 ]; then
  echo "WARNING: $dropped spans dropped: \"on\" did less work than asked, so its cost is understated"
fi
if [ "$SINK" = c ]; then
  kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
  read -r posts bytes <"$work/sink.out"
  echo "collector: $posts POSTs, $bytes bytes of OTLP JSON"
fi
echo "on = $ON (trace_sample $SAMPLE); collector: $SINK; cpus: $(nproc), wrk -t$THREADS -c$CONNS -d${DUR}s x $ROUNDS rounds, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
