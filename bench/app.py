#!/usr/bin/env python3
"""app.py — what `keel build` produces for the shop example: the app's size
(and how much of it is the payload), its shared libraries, and its start-up
time to ready (first 200 from /readyz) against `keel up` with a warm cache.

    python3 bench/app.py [RUNS]          (default 20 runs each; after `make guests`)

The app runs from an empty folder holding only itself and the shop's data/,
with PATH=/nonexistent and an empty KEEL_CACHE, as on a machine with no
compiler. `keel up` runs on the same manifest with the cache that
`keel build` just filled (every module cached on the optimized tier).
Environment: KEEL (default build/keel), BENCH_OUT (default build/bench).
"""
import http.client
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEL = Path(os.environ.get("KEEL", ROOT / "build" / "keel")).resolve()
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "build" / "bench")).resolve() / "app"
SHOP = ROOT / "examples" / "shop"
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/readyz")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """CPU time the process's threads have run so far (schedstat, ns)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass   # a thread that just ended
    return total / 1e9


def time_to_ready(argv, cwd, env, cpu: list) -> float:
    """Seconds from spawn to the first 200 from /readyz (appends the CPU
    seconds it used by then to cpu); stops the process."""
    port, admin = free_port(), free_port()
    argv = argv + ["--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while not ready(admin):
            if p.poll() is not None or time.monotonic() - t0 > READY_TIMEOUT:
                sys.exit(f"bench: {argv[0]} did not become ready (exit {p.poll()})")
            time.sleep(0.0005)
        elapsed = time.monotonic() - t0
        cpu.append(cpu_seconds(p.pid))
        return elapsed
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)


def summary(xs) -> str:
    ms = sorted(x * 1000 for x in xs)
    return (f"median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, "
            f"max {ms[-1]:.1f} ms ({len(ms)} runs)")


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if OUT.exists():
        shutil.rmtree(OUT)
    src, run, cache, empty = OUT / "src", OUT / "run", OUT / "cache", OUT / "empty-cache"
    for d in (src, run, empty):
        d.mkdir(parents=True)
    text = (SHOP / "keel.yaml").read_text().replace(
        "../../build/shop/", f"{ROOT / 'build' / 'shop'}/")
    (src / "keel.yaml").write_text(text)
    shutil.copytree(SHOP / "data", src / "data")
    shutil.copytree(SHOP / "data", run / "data")
    env = dict(os.environ, KEEL_CACHE=str(cache))

    t0 = time.monotonic()
    subprocess.run([KEEL, "build", "-f", src / "keel.yaml", "-o", run / "app"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    subprocess.run([KEEL, "build", "-f", src / "keel.yaml", "-o", run / "app"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    warm = time.monotonic() - t0

    app = run / "app"
    data = app.read_bytes()
    _, off, length = struct.unpack_from("<8sQQ", data, len(data) - 64)
    print(f"keel build (shop, 6 components): {cold:.1f} s with an empty cache, "
          f"{warm:.2f} s with a warm one")
    print(f"app: {len(data)} bytes ({len(data) / 2**20:.2f} MiB) = keel {off} + payload "
          f"{length} + trailer 64")
    stripped = OUT / "keel-stripped"
    if shutil.which("strip"):
        subprocess.run(["strip", "-o", stripped, KEEL], check=True)
        subprocess.run([stripped, "build", "-f", src / "keel.yaml", "-o", OUT / "app-stripped"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"app from a stripped keel: {(OUT / 'app-stripped').stat().st_size} bytes "
              f"({(OUT / 'app-stripped').stat().st_size / 2**20:.2f} MiB)")
    ldd = subprocess.run(["ldd", app], capture_output=True, text=True).stdout
    print("ldd:", ", ".join(line.split()[0] for line in ldd.splitlines() if "=>" in line))

    bare = {"PATH": "/nonexistent", "KEEL_CACHE": str(empty), "HOME": str(empty)}
    app_times, up_times, app_cpu, up_cpu = [], [], [], []
    up_argv = [str(KEEL), "up", "-f", str(src / "keel.yaml")]
    for i in range(runs):
        # interleaved, the order swapped each round: the second of a pair
        # starts while the machine still settles from the first one's exit
        pair = [lambda: app_times.append(time_to_ready([str(app)], run, bare, app_cpu)),
                lambda: up_times.append(time_to_ready(up_argv, src, env, up_cpu))]
        for f in pair if i % 2 == 0 else reversed(pair):
            f()
    print(f"start-up to ready, app:                  {summary(app_times)}")
    print(f"start-up to ready, keel up (warm cache): {summary(up_times)}")
    print(f"CPU time to ready, app:                  {summary(app_cpu)}")
    print(f"CPU time to ready, keel up (warm cache): {summary(up_cpu)}")
    if any(empty.iterdir()):
        sys.exit("bench: the app wrote to its (empty) cache")


if __name__ == "__main__":
    main()
