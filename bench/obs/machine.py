#!/usr/bin/env python3
"""bench/obs/machine.py — where a request's CPU goes on the whole machine,
for two servers already running (A and B, e.g. `keel up` with operability
off and on): N rounds, each an A and a B run of `wrk -t2 -c32` in ABBA
order, and per request, in microseconds:

  busy   all CPUs' busy time (/proc/stat: everything but idle, iowait, steal)
  steal  time the hypervisor took
  keel   the server's threads (schedstat)
  wrk    the load generator (its rusage)
  sink   the OTLP collector stand-in, when its pid is given (schedstat)
  rest   busy - keel - wrk - sink (kernel threads, other processes)

then the medians of each and of the rounds' B - A differences.

  python3 bench/obs/machine.py N DUR PORT_A PID_A PORT_B PID_B [SINK_PID]

It showed that on this 2-vCPU machine a request's cost to the machine
moves by ~2-3x what is added to Keel's request path: wrk shares the CPUs
and its own CPU per request grows when Keel is slower (docs/performance.md,
"What 1 us on the request path costs here")."""
import os
import resource
import statistics as st
import subprocess
import sys

if len(sys.argv) not in (7, 8):
    sys.exit(__doc__)
N, DUR = int(sys.argv[1]), sys.argv[2]
SERVERS = {'A': (sys.argv[3], sys.argv[4]), 'B': (sys.argv[5], sys.argv[6])}
SINK = sys.argv[7] if len(sys.argv) == 8 else None
HZ = os.sysconf('SC_CLK_TCK')
FIELDS = ('busy', 'steal', 'keel', 'wrk', 'sink', 'rest')


def machine():
    """Busy and steal clock ticks of all CPUs so far."""
    f = list(map(int, open('/proc/stat').readline().split()[1:]))
    return sum(f) - f[3] - f[4] - f[7], f[7]


def task_us(pid):
    """CPU time of all of pid's threads so far (us); 0 without a pid."""
    total = 0
    for t in os.listdir(f'/proc/{pid}/task') if pid else ():
        try:
            total += int(open(f'/proc/{pid}/task/{t}/schedstat').read().split()[0])
        except OSError:
            pass
    return total / 1e3


def children_us():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1e6


def run(which):
    port, pid = SERVERS[which]
    b0, s0, k0, w0, z0 = *machine(), task_us(pid), children_us(), task_us(SINK)
    out = subprocess.run(['wrk', '-t2', '-c32', f'-d{DUR}s', f'http://127.0.0.1:{port}/hello'],
                         capture_output=True, text=True, check=True).stdout
    b1, s1, k1, w1, z1 = *machine(), task_us(pid), children_us(), task_us(SINK)
    n = int(next(line for line in out.splitlines() if ' requests in ' in line).split()[0])
    r = dict(rps=n / float(DUR), busy=(b1 - b0) / HZ * 1e6 / n, steal=(s1 - s0) / HZ * 1e6 / n,
             keel=(k1 - k0) / n, wrk=(w1 - w0) / n, sink=(z1 - z0) / n)
    r['rest'] = r['busy'] - r['keel'] - r['wrk'] - r['sink']
    return r


res = {'A': [], 'B': []}
for i in range(N):
    for which in ('A', 'B') if i % 2 == 0 else ('B', 'A'):
        res[which].append(run(which))
for which in 'AB':
    print(which, f"{st.median(r['rps'] for r in res[which]):.0f} req/s,",
          '  '.join(f"{f} {st.median(r[f] for r in res[which]):.2f}" for f in FIELDS), 'us/req')
print('B-A per round (median):', f"req/s {st.median(b['rps'] / a['rps'] - 1 for a, b in zip(res['A'], res['B'])) * 100:+.1f}%,",
      '  '.join(f"{f} {st.median(b[f] - a[f] for a, b in zip(res['A'], res['B'])):+.2f}" for f in FIELDS), 'us/req')
