#!/usr/bin/env python3
"""soak.py — long mixed traffic against the example shop, with a trapping
component beside it and hot swaps, sampling the server as it goes.

Run through bench/soak/run.sh (which builds first). Settings come from the
environment (defaults in brackets):

  SOAK_MINUTES [30]      how long to drive traffic
  SWAP_EVERY_S [60]      seconds between hot swaps of SOAK_COMPONENT
  SAMPLE_S [10]          one sample (one CSV row) per this many seconds
  SOAK_COMPONENT [catalog]  the component swapped (called by gateway, cart, reviews)
  SOAK_CANARY_EVERY [4]  every Nth swap is a canary (50 %) + promote instead
  SOAK_CONNECTIONS [8]   wrk connections for the shop mix (one thread)
  SOAK_TRAP_DELAY_MS [50] pause between trapping requests (one connection)
  SOAK_OUT [build/soak]  where soak.csv, soak.png, keel.log and the summary go
  KEEL [build/keel], KEEL_BUILD [build]

What it does: copies examples/shop/keel.yaml into a temporary folder (wasm
and file paths made absolute), adds an admin token file and a `trapper`
component (tests/components/trap.wasm) on /trap and /oob, fills the
compile cache for every module it will serve, starts `keel up`, logs in for
a bearer token, and then runs back-to-back wrk windows of SAMPLE_S seconds:
one wrk drives the shop mix as fast as it can, a second sends trapping
requests at a steady pace. Between windows it hot-swaps SOAK_COMPONENT with
`keel ctl deploy NAME FILE --tier fast`, alternating between the built wasm
and the same wasm with a custom section appended (another sha256, so
another version). Each window becomes a CSV row: requests served, status
classes of both streams, wrk's p50/p99/max, VmRSS and open fds of the
keel process, and the swap done just before it.

The shop's 5xx count is the error ratio; the trapper's 500s are expected
and reported on their own. 4xx are expected too (an unknown product, a
full cart) and counted apart.
"""
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
SOAK_RE = re.compile(r"SOAK (.*)")

# The shop mix: reads, a login, the cart (read and write, through SQLite),
# reviews (AssemblyScript calling C) and the WAGI legacy program. 404 on
# "spoon" is part of the mix on purpose, and POST /api/cart answers 400 once
# alice has 99 mugs (the cart's limit) after still reading the cart from
# SQLite and pricing it.
SHOP_PATHS = [
    "GET /api",
    "GET /api/products",
    "GET /api/products/mug",
    "GET /api/products/kettle",
    "GET /api/products/spoon",
    'POST /api/login {"user":"alice","password":"wonderland"}',
    "GET /api/cart",
    'POST /api/cart {"items":[{"id":"mug","qty":1}]}',
    "GET /api/reviews/kettle",
    "GET /legacy/status",
    "GET /api/products",
    "GET /api/cart",
]
TRAP_PATHS = ["GET /trap", "GET /oob"]

TRAPPER_YAML = """
  # Added by bench/soak: a component that traps on every request.
  trapper:
    wasm: {trap}
    routes: [{{ path: /trap, operation: trap }}, {{ path: /oob, operation: oob }}]
    limits: {{ memory: 4MiB, timeout: 1s }}
"""


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v else default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def with_custom_section(src: Path, dst: Path, name=b"keel-soak", payload=b"variant b"):
    """Writes src plus one custom section: the same code, another sha256."""
    body = bytes([len(name)]) + name + payload
    assert len(body) < 128    # a one-byte LEB128 size
    dst.write_bytes(src.read_bytes() + bytes([0, len(body)]) + body)


def write_manifest(work: Path, build: Path):
    """The shop's keel.yaml with absolute paths, an admin token file and
    the trapper component."""
    shop = ROOT / "examples" / "shop"
    text = (shop / "keel.yaml").read_text()
    text = text.replace("../../build/", f"{build}/")
    text = text.replace("host: ./data", f"host: {shop}/data")
    text = re.sub(r"(?m)^listen: .*$", "listen: 127.0.0.1:0", text)
    text = text.replace("\ncomponents:\n",
                        "\nadmin:\n  token_file: admin.token\n  state_dir: keel-state\n"
                        "\ncomponents:\n", 1)
    text += TRAPPER_YAML.format(trap=build / "components" / "trap.wasm")
    (work / "admin.token").write_text("soak soak-token-0123456789abcdef\n")
    os.chmod(work / "admin.token", 0o600)
    (work / "keel.yaml").write_text(text)
    return [Path(m) for m in re.findall(r"wasm: (\S+)", text)]


def http(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_listening(log: Path, proc, timeout=180):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            sys.exit(f"soak: keel up exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        m = LISTEN_RE.search(log.read_text(errors="replace"))
        if m:
            return int(m.group(2))
        time.sleep(0.1)
    sys.exit("soak: keel up did not start listening in time")


def parse_soak(out: str):
    m = SOAK_RE.search(out)
    if not m:
        return None
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def metric_sum(text, name, **labels):
    """Sum of a metric's samples whose labels include all of labels."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Soak:
    def __init__(self):
        self.minutes = float(os.environ.get("SOAK_MINUTES") or 30)
        self.swap_every = env_int("SWAP_EVERY_S", 60)
        self.sample_s = env_int("SAMPLE_S", 10)
        self.component = os.environ.get("SOAK_COMPONENT") or "catalog"
        self.canary_every = env_int("SOAK_CANARY_EVERY", 4)
        self.conns = env_int("SOAK_CONNECTIONS", 8)
        self.trap_delay = env_int("SOAK_TRAP_DELAY_MS", 50)
        self.keel = Path(os.environ.get("KEEL") or ROOT / "build" / "keel").resolve()
        self.build = Path(os.environ.get("KEEL_BUILD") or ROOT / "build").resolve()
        self.out = Path(os.environ.get("SOAK_OUT") or ROOT / "build" / "soak").resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.swaps = []          # (t, kind, outcome)
        self.rows = []

    # ------------------------------------------------------------ set-up

    def prepare(self):
        self.work = Path(tempfile.mkdtemp(prefix="keel-soak-"))
        modules = write_manifest(self.work, self.build)
        a = self.build / "shop" / f"{self.component}.wasm"
        b = self.work / f"{self.component}-b.wasm"
        with_custom_section(a, b)
        self.variants = [b, a]    # the first swap installs b
        for m in modules + [b]:
            if not m.is_file():
                sys.exit(f"soak: missing {m} (run make guests)")
            r = subprocess.run([str(self.keel), "compile", "--quiet", "--tier", "opt", str(m)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"soak: keel compile {m} failed: {r.stderr}")

    def start(self):
        self.admin_port = free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.log = self.out / "keel.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [str(self.keel), "up", "-f", "keel.yaml", "--admin-listen",
             f"127.0.0.1:{self.admin_port}"],
            cwd=self.work, stdout=self.logf, stderr=subprocess.STDOUT)
        self.port = wait_listening(self.log, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"
        st, body = http("POST", self.base + "/api/login",
                        b'{"user":"alice","password":"wonderland"}',
                        {"Content-Type": "application/json"})
        m = re.search(rb'"token":"([^"]+)"', body)
        if st != 200 or not m:
            sys.exit(f"soak: login failed: {st} {body[:200]!r}")
        self.token = m.group(1).decode()

    # ----------------------------------------------------------- traffic

    def wrk(self, paths, conns, delay_ms, seconds):
        env = dict(os.environ, SOAK_PATHS="|".join(paths), SOAK_TOKEN=self.token,
                   SOAK_DELAY_MS=str(delay_ms))
        return subprocess.Popen(
            ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(Path(__file__).with_name("mix.lua")), self.base],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def ctl(self, *args):
        env = dict(os.environ, KEEL_ADMIN=self.admin,
                   KEEL_TOKEN_FILE=str(self.work / "admin.token"))
        t0 = time.monotonic()
        r = subprocess.run([str(self.keel), "ctl", *args], env=env,
                           capture_output=True, text=True, timeout=300)
        return r.returncode, (r.stdout + r.stderr).strip(), time.monotonic() - t0

    def swap(self, n):
        """The n-th swap (from 0): a plain deploy, or every canary_every-th
        time a 50 % canary promoted a moment later."""
        wasm = self.variants[n % 2]
        if self.canary_every and n % self.canary_every == self.canary_every - 1:
            rc, out, took = self.ctl("deploy", self.component, str(wasm), "--tier", "fast",
                                     "--canary", "50")
            if rc == 0:
                time.sleep(2)     # let the canary serve some traffic
                rc, out2, took2 = self.ctl("promote", self.component)
                out += " / " + out2
                took += took2
            kind = "canary+promote"
        else:
            rc, out, took = self.ctl("deploy", self.component, str(wasm), "--tier", "fast")
            kind = "deploy"
        outcome = "ok" if rc == 0 else f"FAILED: {out[-200:]}"
        self.swaps.append((time.monotonic() - self.t0, kind, wasm.name, outcome, took))
        return f"{kind} {wasm.name} {'ok' if rc == 0 else 'FAILED'} ({took*1000:.0f} ms)"

    def scrape(self):
        try:
            return http("GET", self.admin + "/metrics")[1].decode()
        except OSError:
            return ""

    def run(self):
        self.prepare()
        self.start()
        pid = self.proc.pid
        end_at = time.monotonic() + self.minutes * 60
        self.t0 = time.monotonic()
        next_swap = self.t0 + self.swap_every
        rss0, fd0 = vm_rss_kib(pid), fd_count(pid)
        print(f"soak: keel pid {pid}, shop on {self.base}, admin on {self.admin}, "
              f"{self.minutes:g} min, swap every {self.swap_every} s, sample every {self.sample_s} s")
        print(f"soak: before traffic: RSS {rss0} KiB, {fd0} fds")
        fields = ["t_s", "requests", "req_per_s", "s2xx", "s4xx", "s5xx", "sockerr",
                  "error_ratio", "p50_ms", "p99_ms", "max_ms", "trap_requests", "trap_5xx",
                  "trap_other", "rss_kib", "fds", "swap"]
        csv_path = self.out / "soak.csv"
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            n_swaps = 0
            while time.monotonic() < end_at:
                swap_note = ""
                if time.monotonic() >= next_swap:
                    swap_note = self.swap(n_swaps)
                    n_swaps += 1
                    next_swap += self.swap_every
                secs = max(1, min(self.sample_s, int(end_at - time.monotonic() + 0.5)))
                shop = self.wrk(SHOP_PATHS, self.conns, 0, secs)
                trap = self.wrk(TRAP_PATHS, 1, self.trap_delay, secs)
                s_out, _ = shop.communicate(timeout=secs + 60)
                t_out, _ = trap.communicate(timeout=secs + 60)
                if self.proc.poll() is not None:
                    sys.exit(f"soak: keel exited {self.proc.returncode} during the run; log: {self.log}")
                s, t = parse_soak(s_out), parse_soak(t_out)
                if not s or not t:
                    sys.exit(f"soak: wrk printed no SOAK line:\n{s_out}\n{t_out}")
                row = {
                    "t_s": round(time.monotonic() - self.t0, 1),
                    "requests": s["requests"],
                    "req_per_s": round(s["requests"] / secs),
                    "s2xx": s["s2xx"], "s4xx": s["s4xx"], "s5xx": s["s5xx"],
                    "sockerr": s["sockerr"],
                    "error_ratio": round((s["s5xx"] + s["sockerr"]) / max(1, s["requests"]), 6),
                    "p50_ms": s["p50"] / 1000, "p99_ms": s["p99"] / 1000, "max_ms": s["max"] / 1000,
                    "trap_requests": t["requests"], "trap_5xx": t["s5xx"],
                    "trap_other": t["s2xx"] + t["s4xx"] + t["sockerr"],
                    "rss_kib": vm_rss_kib(pid), "fds": fd_count(pid), "swap": swap_note,
                }
                w.writerow(row)
                f.flush()
                self.rows.append(row)
                print(f"  t={row['t_s']:7.1f}s  {row['req_per_s']:6d} req/s  5xx={row['s5xx']}"
                      f"  p99={row['p99_ms']:.2f} ms  trap 500s={row['trap_5xx']}"
                      f"  RSS={row['rss_kib']} KiB  fds={row['fds']}"
                      + (f"  [{swap_note}]" if swap_note else ""), flush=True)
        # Idle a moment so versions replaced by the last swap are released,
        # then take the closing sample without traffic, like the opening one.
        time.sleep(2)
        metrics = self.scrape()
        rss1, fd1 = vm_rss_kib(pid), fd_count(pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        self.summary(rss0, fd0, rss1, fd1, rc, metrics, csv_path)
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ report

    def summary(self, rss0, fd0, rss1, fd1, rc, metrics, csv_path):
        rows = self.rows
        total = sum(r["requests"] for r in rows)
        s5 = sum(r["s5xx"] + r["sockerr"] for r in rows)
        s4 = sum(r["s4xx"] for r in rows)
        trap = sum(r["trap_requests"] for r in rows)
        trap5 = sum(r["trap_5xx"] for r in rows)
        p99s = [r["p99_ms"] for r in rows]
        # Under load: the first window's sample against the last one's.
        warm = rows[0] if rows else {"rss_kib": rss0, "fds": fd0}
        last = rows[-1] if rows else {"rss_kib": rss1, "fds": fd1}
        rss_max = max((r["rss_kib"] for r in rows), default=rss1)
        ok_swaps = sum(1 for s in self.swaps if s[3] == "ok")
        served = metric_sum(metrics, "keel_requests_total")
        lines = [
            "",
            f"soak summary ({len(rows)} samples of {self.sample_s} s, {self.minutes:g} min; CSV: {csv_path})",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| shop requests served (wrk) | {total} ({total / max(1.0, rows[-1]['t_s'] if rows else 1):.0f} per second of the run) |",
            f"| shop 5xx + socket errors | {s5} (error ratio {s5 / max(1, total):.6f}) |",
            f"| shop 4xx (expected: unknown product, full cart) | {s4} |",
            f"| trapping requests / their 500s | {trap} / {trap5} |",
            f"| requests counted by keel (keel_requests_total) | {served:.0f} |",
            f"| p99 per window, min .. max | {min(p99s, default=0):.2f} .. {max(p99s, default=0):.2f} ms |",
            f"| hot swaps done / attempted | {ok_swaps} / {len(self.swaps)} |",
            f"| RSS idle before / after (KiB) | {rss0} / {rss1} ({rss1 - rss0:+d}) |",
            f"| RSS first / last window under load, max (KiB) | {warm['rss_kib']} / {last['rss_kib']} ({last['rss_kib'] - warm['rss_kib']:+d}), max {rss_max} |",
            f"| open fds idle before / after | {fd0} / {fd1} ({fd1 - fd0:+d}) |",
            f"| open fds first / last window | {warm['fds']} / {last['fds']} |",
            f"| keel exit status on SIGTERM | {rc} |",
        ]
        failed = [s for s in self.swaps if s[3] != "ok"]
        for s in failed:
            lines.append(f"swap at {s[0]:.0f} s ({s[1]} {s[2]}) {s[3]}")
        text = "\n".join(lines)
        print(text)
        (self.out / "summary.md").write_text(text + "\n")
        self.plot(csv_path)

    def plot(self, csv_path):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("soak: python3-matplotlib not installed: no PNG (the CSV has everything)")
            return
        rows = self.rows
        t = [r["t_s"] / 60 for r in rows]
        fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
        ax[0].plot(t, [r["req_per_s"] for r in rows]); ax[0].set_ylabel("shop req/s")
        ax[1].plot(t, [r["p99_ms"] for r in rows], label="p99")
        ax[1].plot(t, [r["p50_ms"] for r in rows], label="p50"); ax[1].set_ylabel("ms"); ax[1].legend()
        ax[2].plot(t, [r["rss_kib"] / 1024 for r in rows]); ax[2].set_ylabel("RSS MiB")
        ax[3].plot(t, [r["fds"] for r in rows]); ax[3].set_ylabel("open fds")
        ax[3].set_xlabel("minutes")
        for s in self.swaps:
            for a in ax:
                a.axvline(s[0] / 60, color="grey", lw=0.5, ls=":")
        fig.suptitle("keel soak: shop mix + trapping component, dotted lines = hot swaps")
        fig.tight_layout()
        png = csv_path.with_suffix(".png")
        fig.savefig(png, dpi=80)
        print(f"soak: plot in {png}")


if __name__ == "__main__":
    Soak().run()
