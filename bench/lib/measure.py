#!/usr/bin/env python3
"""measure.py — runs one command and reports its cost, for bench/run.sh.

    python3 bench/lib/measure.py OUT ERR CMD [ARGS...]

Runs CMD with stdin from /dev/null, stdout to OUT and stderr to ERR, and
prints "WALL_S CPU_S EXIT" on stdout: wall-clock seconds (monotonic clock,
around fork and wait only, so Python's own start-up is not counted), user +
system CPU seconds of the child and its descendants (from wait4's rusage,
microsecond resolution), and the exit status (128+N when killed by signal
N). CPU time is the steadier figure on a busy machine: it does not grow when
the process waits for a core."""
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    out_path, err_path, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(out_path, "wb") as out, open(err_path, "wb") as err, \
            open(os.devnull, "rb") as devnull:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=devnull, stdout=out, stderr=err)
        except OSError as e:
            err.write(f"measure: cannot run {cmd[0]}: {e}\n".encode())
            print("0 0 127")
            return 0
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = 0  # reaped here; keep Popen from waiting again
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    print(f"{wall:.6f} {ru.ru_utime + ru.ru_stime:.6f} {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
