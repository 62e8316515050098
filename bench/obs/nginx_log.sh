#!/usr/bin/env bash
# bench/obs/nginx_log.sh — the reference for bench/obs/run.sh: what nginx
# pays for its own access log on the same hello-world load and machine.
# Three nginx (2 workers each, `return 200` of the body Keel's hello
# guest sends): access_log off; on, one write(2) per request (nginx's
# default); and on with `buffer=64k flush=1s` (batched, as Keel's log
# queue is). Each round runs off and one "on" back to back (ABBA order);
# the report gives the median of the rounds' own costs, as run.sh does.
#
#   bash bench/obs/nginx_log.sh
#   BENCH_OBS_ROUNDS=30 BENCH_OBS_DURATION=1 BENCH_OBS_CONNS=32 BENCH_OBS_THREADS=2
#
# Needs nginx and wrk.
set -euo pipefail
ROUNDS=${BENCH_OBS_ROUNDS:-30}
DUR=${BENCH_OBS_DURATION:-1}
CONNS=${BENCH_OBS_CONNS:-32}
THREADS=${BENCH_OBS_THREADS:-2}
for t in nginx wrk; do
  command -v "$t" >/dev/null || { echo "bench/obs: $t is not installed" >&2; exit 1; }
done

work=$(mktemp -d)
cleanup() {
  for f in "$work"/*/nginx.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$(dirname "$0")/../lib/loopback.sh"

start() {   # $1 = name, $2 = access_log directive; prints the port
  local dir=$work/$1 port
  port=$(free_port)
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 1024; }
http {
  $2
  server { listen 127.0.0.1:$port; location /hello { return 200 "hello from keel\n"; } }
}
NGINX
  nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/hello" >/dev/null && break
    sleep 0.1
  done
  echo "$port"
}

port_off=$(start off "access_log off;")
port_each=$(start each "access_log $work/each/logs/access.log combined;")
port_buf=$(start buffered "access_log $work/buffered/logs/access.log combined buffer=64k flush=1s;")

rps() {
  wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$1/hello" |
    awk '/Requests\/sec/ {print $2}'
}
cost() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (a-b)*100/a}'; }

each=(); buf=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    a=$(rps "$port_off"); e=$(rps "$port_each"); b=$(rps "$port_buf"); a2=$(rps "$port_off")
  else
    a2=$(rps "$port_off"); b=$(rps "$port_buf"); e=$(rps "$port_each"); a=$(rps "$port_off")
  fi
  # "each" ran next to the first off run, "buffered" next to the second
  each+=("$(cost "$a" "$e")"); buf+=("$(cost "$a2" "$b")")
  echo "round $r: off $a / $a2 req/s, each write $e (${each[-1]}%), buffered $b (${buf[-1]}%)"
done
echo "median of the rounds' costs: access_log with a write per request $(median "${each[@]}")% req/s, buffered (64k) $(median "${buf[@]}")% req/s"
echo "lines written: $(wc -l <"$work/each/logs/access.log") each, $(wc -l <"$work/buffered/logs/access.log") buffered (the last second's may still be in nginx's buffer)"
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), 2 workers; cpus: $(nproc), wrk -t$THREADS -c$CONNS -d${DUR}s x $ROUNDS rounds, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
