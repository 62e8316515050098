#!/usr/bin/env python3
"""run_spec.py — the WebAssembly core spec suite through Keel's engine.

For each .wast file (default: ../shared/spec-core, the 90 non-SIMD files):
wast2json splits it into modules and a command list under
BUILD/spec/<name>/; this script turns the JSON into a line-based script
(script.txt) and runs it with spec_runner (tests/spec/spec_runner.c, built
here with spec_host.c against BUILD/libkeel.a) once per tier: fast (libtcc) and opt (cc -O2,
cached in BUILD/spec/cache). Every command is a check; the closing line is
"N passed, M failed" and the exit status is non-zero on any failure.

Script format (one command a line; LINE is the .wast line; names, ids and
export fields are hex of their UTF-8 bytes, "-" for none/current module):
  TI INDEX table ELEM MIN MAX|-      limits of import INDEX of the next module
  TI INDEX memory MIN MAX|-
  TE NAMEHEX table ELEM MIN MAX|-    declared limits of an export of it
  TE NAMEHEX memory MIN MAX|-
  M LINE PATH IDHEX                  module: load, link, instantiate
  R LINE ASHEX IDHEX                 register
  A LINE return|action|trap|exhaust MODHEX FIELDHEX NARGS ARG.. NEXP EXP.. [TEXT]
  G LINE MODHEX FIELDHEX 1 EXP       assert_return of a global get
  V LINE PATH                        assert_invalid (binary): load must fail
  B LINE PATH                        assert_malformed (binary): load must fail
  U LINE PATH unknown|incompatible   assert_unlinkable
  X LINE PATH TEXT                   assert_uninstantiable
Values: i32:N i64:N f32:BITS f64:BITS f32:nan:canonical f64:nan:arithmetic
externref:N externref:null funcref:null (N unsigned decimal).

assert_malformed on the text format (.wat) is not checked: those are parser
tests of wast2json itself, and Keel only loads binaries. They are counted and
shown as "text-skipped".
"""

import argparse
import concurrent.futures
import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_DIR = os.path.join(ROOT, "tests", "spec")
RUNNER_SRCS = [os.path.join(SPEC_DIR, f) for f in ("spec_runner.c", "spec_host.c")]
RUNNER_HDRS = [os.path.join(SPEC_DIR, "spec_host.h")]
CFLAGS = ["-std=c17", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
          "-fvisibility=hidden", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "src")]
LIBS = ["-lh2o-evloop", "-lfyaml", "-ltcc", "-lsqlite3", "-lhiredis", "-ldl", "-lpthread", "-lm"]
FILE_TIMEOUT_S = 1200          # one runner process (one file, one tier)
TIERS = ("fast", "opt")


# ---------------------------------------------------------------- wasm types

def _leb(b, i):
    r = shift = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return r, i


def _name(b, i):
    n, i = _leb(b, i)
    return b[i:i + n], i + n


def _limits(b, i):
    flags = b[i]
    i += 1
    mn, i = _leb(b, i)
    mx = None
    if flags & 1:
        mx, i = _leb(b, i)
    return (mn, mx), i


ELEM = {0x70: "funcref", 0x6F: "externref"}


def wasm_types(path):
    """Table and memory limits of a binary's imports (by import index) and
    exports (by name): what keel_extern does not carry. Returns a list of
    TI/TE script lines; [] when the binary cannot be parsed."""
    with open(path, "rb") as f:
        b = f.read()
    lines = []
    tables, memories = [], []       # index spaces: imports first
    try:
        if b[:4] != b"\0asm":
            return []
        i = 8
        while i < len(b):
            sid = b[i]
            size, j = _leb(b, i + 1)
            end = j + size
            if sid == 2:
                n, j = _leb(b, j)
                for idx in range(n):
                    _, j = _name(b, j)
                    _, j = _name(b, j)
                    kind = b[j]
                    j += 1
                    if kind == 0:
                        _, j = _leb(b, j)
                    elif kind == 1:
                        et = ELEM.get(b[j], "?")
                        (mn, mx), j = _limits(b, j + 1)
                        tables.append((et, mn, mx))
                        lines.append("TI %d table %s %d %s" % (idx, et, mn, "-" if mx is None else mx))
                    elif kind == 2:
                        (mn, mx), j = _limits(b, j)
                        memories.append((mn, mx))
                        lines.append("TI %d memory %d %s" % (idx, mn, "-" if mx is None else mx))
                    elif kind == 3:
                        j += 2
                    elif kind == 4:
                        j += 1
                        _, j = _leb(b, j)
                    else:
                        return []
            elif sid == 4:
                n, j = _leb(b, j)
                for _ in range(n):
                    et = ELEM.get(b[j], "?")
                    (mn, mx), j = _limits(b, j + 1)
                    tables.append((et, mn, mx))
            elif sid == 5:
                n, j = _leb(b, j)
                for _ in range(n):
                    (mn, mx), j = _limits(b, j)
                    memories.append((mn, mx))
            elif sid == 7:
                n, j = _leb(b, j)
                for _ in range(n):
                    nm, j = _name(b, j)
                    kind = b[j]
                    idx, j = _leb(b, j + 1)
                    if kind == 1 and idx < len(tables):
                        et, mn, mx = tables[idx]
                        lines.append("TE %s table %s %d %s" % (nm.hex() or "-", et, mn, "-" if mx is None else mx))
                    elif kind == 2 and idx < len(memories):
                        mn, mx = memories[idx]
                        lines.append("TE %s memory %d %s" % (nm.hex() or "-", mn, "-" if mx is None else mx))
            i = end
    except IndexError:
        return []
    return lines


# ------------------------------------------------------------ wast -> script

def hexname(s):
    if s is None:
        return "-"
    h = s.encode("utf-8", "surrogatepass").hex()
    return h or "-"


def value(v):
    t = v["type"]
    if t not in ("i32", "i64", "f32", "f64", "funcref", "externref"):
        raise ValueError("unsupported value type %s" % t)
    if "value" not in v:
        return "%s:any" % t
    return "%s:%s" % (t, v["value"])


def convert(wast, outdir):
    """wast2json + script.txt. Returns (number of checks, text-skipped,
    error text or None)."""
    name = os.path.splitext(os.path.basename(wast))[0]
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    js = os.path.join(outdir, name + ".json")
    p = subprocess.run(["wast2json", wast, "-o", js], capture_output=True, text=True)
    if p.returncode != 0:
        return 0, 0, "wast2json failed: " + p.stderr.strip()
    with open(js) as f:
        data = json.load(f)
    out, checks, skipped = [], 0, 0

    def action(kind, cmd, text=None, with_expected=True):
        a = cmd["action"]
        if a["type"] == "get":
            exp = cmd.get("expected", [])
            return "G %d %s %s %d %s" % (cmd["line"], hexname(a.get("module")),
                                         hexname(a["field"]), len(exp),
                                         " ".join(value(v) for v in exp))
        args = [value(v) for v in a.get("args", [])]
        exp = [value(v) for v in cmd.get("expected", [])] if with_expected else []
        s = "A %d %s %s %s %d %s %d %s" % (cmd["line"], kind, hexname(a.get("module")),
                                           hexname(a["field"]), len(args), " ".join(args), len(exp),
                                           " ".join(exp))
        if text:
            s += " " + text
        return re.sub(" +", " ", s.strip())

    for cmd in data["commands"]:
        t, line = cmd["type"], cmd["line"]
        path = cmd.get("filename")
        if t in ("module", "assert_unlinkable", "assert_uninstantiable"):
            out.extend(wasm_types(os.path.join(outdir, path)))
        if t == "module":
            out.append("M %d %s %s" % (line, path, hexname(cmd.get("name"))))
        elif t == "register":
            out.append("R %d %s %s" % (line, hexname(cmd["as"]), hexname(cmd.get("name"))))
        elif t == "assert_return":
            out.append(action("return", cmd))
        elif t == "action":
            out.append(action("action", cmd, with_expected=False))
        elif t == "assert_trap":
            out.append(action("trap", cmd, cmd["text"], with_expected=False))
        elif t == "assert_exhaustion":
            out.append(action("exhaust", cmd, cmd["text"], with_expected=False))
        elif t in ("assert_invalid", "assert_malformed"):
            if cmd.get("module_type") != "binary":
                skipped += 1
                continue
            out.append("%s %d %s" % ("V" if t == "assert_invalid" else "B", line, path))
        elif t == "assert_unlinkable":
            why = "unknown" if cmd["text"].startswith("unknown import") else "incompatible"
            out.append("U %d %s %s" % (line, path, why))
        elif t == "assert_uninstantiable":
            out.append("X %d %s %s" % (line, path, cmd["text"]))
        else:
            return 0, 0, "unknown command type %s at line %d" % (t, line)
        if not out[-1].startswith("T"):
            checks += 1
    with open(os.path.join(outdir, "script.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    return checks, skipped, None


# ----------------------------------------------------------------- the runner

def build_runner(build, cc):
    lib = os.path.join(build, "libkeel.a")
    if not os.path.exists(lib):
        r = subprocess.run(["make", "--no-print-directory", "BUILD=" + build, lib], cwd=ROOT)
        if r.returncode != 0 or not os.path.exists(lib):
            sys.exit("run_spec: cannot build %s" % lib)
    exe = os.path.join(build, "spec", "spec_runner")
    deps = RUNNER_SRCS + RUNNER_HDRS + [lib] + [os.path.join(ROOT, "src", "engine", h)
                                for h in ("engine.h", "rt.h", "host_abi.h")]
    if os.path.exists(exe) and all(os.path.getmtime(exe) >= os.path.getmtime(d) for d in deps):
        return exe
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    extra = os.environ.get("SPEC_CFLAGS", "").split()
    cmd = ([cc] + CFLAGS + extra + ["-rdynamic"] + RUNNER_SRCS + ["-Wl,--whole-archive", lib,
                                                              "-Wl,--no-whole-archive"]
           + LIBS + ["-o", exe])
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        sys.exit("run_spec: building the runner failed: " + " ".join(cmd))
    return exe


def run_one(exe, script, tier, cache, expected_lines):
    # expected_lines: the .wast line of every command, in script order
    """Runs one script on one tier. Returns a dict with passed, failures
    [(line, reason)], load times, rejects and wall time."""
    t0 = time.monotonic()
    cmd = [exe, "--tier", tier, "--cache", cache, script]
    crashed = None
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=FILE_TIMEOUT_S)
        stdout, stderr, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        stdout, stderr, rc = e.stdout or b"", e.stderr or b"", None
        crashed = "timed out after %d s" % FILE_TIMEOUT_S
    wall = time.monotonic() - t0
    res = {"passed": 0, "failures": [], "load_ms": 0.0, "loads": 0, "rejects": [],
           "wall": wall, "stderr": stderr.decode("utf-8", "replace"), "status": []}
    done = False
    for raw in stdout.decode("utf-8", "replace").splitlines():
        parts = raw.split(" ", 2)
        if parts[0] == "ok":
            res["passed"] += 1
            res["status"].append(True)
        elif parts[0] == "FAIL":
            res["failures"].append((int(parts[1]), parts[2] if len(parts) > 2 else ""))
            res["status"].append(False)
        elif parts[0] == "time":
            res["load_ms"] += float(parts[2])
            res["loads"] += 1
        elif parts[0] == "reject":
            f = raw.split(" ", 4)
            res["rejects"].append((int(f[1]), int(f[2]), float(f[3]), f[4] if len(f) > 4 else ""))
        elif parts[0] == "done":
            done = True
    if not crashed and (rc != 0 or not done):
        crashed = ("killed by signal %d" % -rc) if rc is not None and rc < 0 else "exit status %s" % rc
    if crashed:
        tail = res["stderr"].strip().splitlines()[-3:]
        k = len(res["status"])     # commands run in order: the rest are lost
        after = expected_lines[k - 1] if k else 0
        why = "runner %s after line %d%s" % (crashed, after,
                                             (": " + " | ".join(tail)) if tail else "")
        for ln in expected_lines[k:]:
            res["failures"].append((ln, why))
            res["status"].append(False)
        res["crash"] = why
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keel", default="build/keel", help="the keel binary (its build dir is used)")
    ap.add_argument("--build", default=None, help="build directory holding libkeel.a")
    ap.add_argument("--spec-dir", default=os.path.join(ROOT, "..", "shared", "spec-core"))
    ap.add_argument("--tier", choices=("fast", "opt", "both"), default="both")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--clean-cache", action="store_true", help="empty the opt-tier cache first")
    ap.add_argument("--max-fail-lines", type=int, default=10, help="failures shown per file and tier")
    ap.add_argument("--convert-only", action="store_true",
                    help="write the scripts and count checks; run nothing")
    ap.add_argument("files", nargs="*", help="wast names or globs (default: all)")
    args = ap.parse_args()

    os.chdir(ROOT)
    build = args.build or os.path.dirname(args.keel) or "build"
    cc = os.environ.get("CC", "cc")
    specdir = os.path.normpath(args.spec_dir)
    wasts = sorted(f for f in os.listdir(specdir) if f.endswith(".wast"))
    if args.files:
        pats = [f if f.endswith(".wast") or "*" in f else f + ".wast" for f in args.files]
        wasts = [w for w in wasts if any(fnmatch.fnmatch(w, p) for p in pats)]
    if not wasts:
        sys.exit("run_spec: no .wast files in %s" % specdir)
    if not shutil.which("wast2json"):
        sys.exit("run_spec: wast2json not found (Debian package wabt; make deps)")

    exe = None if args.convert_only else build_runner(build, cc)
    workdir = os.path.join(build, "spec")
    # One cache for every engine build: the engine's cache keys include
    # KEEL_CODEGEN_ID (a hash of the code-generating sources), so entries of
    # an older engine are never hit; they stay until --clean-cache.
    cache = os.path.abspath(os.path.join(workdir, "cache"))
    if args.clean_cache and os.path.isdir(cache):
        shutil.rmtree(cache)
    if os.path.isdir(cache):                 # per-engine dirs of older harnesses
        for d in os.listdir(cache):
            if re.fullmatch(r"[0-9a-f]{16}", d):
                shutil.rmtree(os.path.join(cache, d), ignore_errors=True)
    os.makedirs(cache, exist_ok=True)
    cached = len(glob.glob(os.path.join(cache, "v1", "*.so")))

    # Convert every file first (fast, and a converter error is a failure).
    t0 = time.monotonic()
    files = []   # (wast, script, checks, text_skipped, error, expected_lines)
    for w in wasts:
        name = w[:-5]
        outdir = os.path.join(workdir, name)
        checks, skipped, err = convert(os.path.join(specdir, w), outdir)
        script = os.path.join(outdir, "script.txt")
        lines, cats = [], []
        if not err:
            with open(script) as f:
                for l in f:
                    if l[:1] not in ("T", "#", "\n"):
                        t = l.split()
                        lines.append(int(t[1]))
                        # The checks the stock-runtime figure (23,764) counts.
                        cats.append(t[0] == "X" or (t[0] in "AG" and
                                    (t[0] == "G" or t[2] in ("return", "trap", "exhaust"))))
        files.append((w, script, checks, skipped, err, lines, cats))
    convert_s = time.monotonic() - t0
    print("converted %d files in %.1f s: %d checks per tier, %d text-format "
          "assert_malformed skipped" % (len(files), convert_s,
                                        sum(f[2] for f in files), sum(f[3] for f in files)))
    if not args.convert_only:
        print("opt-tier cache %s: %d shared objects before this run" % (cache, cached))
    sys.stdout.flush()
    if args.convert_only:
        errs = [f for f in files if f[4]]
        for f in errs:
            print("%s: ERROR %s" % (f[0], f[4]))
        return 1 if errs else 0

    tiers = TIERS if args.tier == "both" else (args.tier,)
    results = {}            # (wast, tier) -> res
    tier_wall = {}
    lock = threading.Lock()
    for tier in tiers:
        t0 = time.monotonic()
        todo = [f for f in files if not f[4]]
        # Biggest scripts first, for balance across workers.
        todo.sort(key=lambda f: -os.path.getsize(f[1]))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futs = {pool.submit(run_one, exe, f[1], tier, cache, f[5]): f for f in todo}
            for fut in concurrent.futures.as_completed(futs):
                f = futs[fut]
                res = fut.result()
                with lock:
                    results[(f[0], tier)] = res
                    print("  [%s] %-28s %5d/%-5d %6.1f s%s" % (
                        tier, f[0], res["passed"], f[2], res["wall"],
                        "  CRASH: " + res["crash"] if "crash" in res else ""))
                    sys.stdout.flush()
        tier_wall[tier] = time.monotonic() - t0

    # Per-file summary.
    print()
    total_pass = total_fail = 0
    per_tier = {t: [0, 0] for t in tiers}
    failure_log = []
    core = {t: [0, 0] for t in tiers}
    for w, script, checks, skipped, err, _, cats in files:
        cols = []
        for tier in tiers:
            if err:
                p, fl = 0, max(checks, 1)
            else:
                r = results[(w, tier)]
                p, fl = r["passed"], len(r["failures"])
                for c, st in zip(cats, r["status"]):
                    if c:
                        core[tier][0 if st else 1] += 1
                if p + fl != checks:       # lost output: count the gap as failed
                    fl = checks - p if checks > p else fl
            per_tier[tier][0] += p
            per_tier[tier][1] += fl
            cols.append("%s %d/%d" % (tier, p, checks))
        extra = ("  (%d text-skipped)" % skipped) if skipped else ""
        print("%s: %s%s%s" % (w, " ".join(cols), extra, ("  ERROR: " + err) if err else ""))
        if err:
            failure_log.append("%s: %s" % (w, err))

    # Failures, grouped per file and tier, each with a reproducer.
    shown_any = False
    for w, script, checks, skipped, err, _, _ in files:
        if err:
            continue
        for tier in tiers:
            r = results[(w, tier)]
            if not r["failures"]:
                continue
            if not shown_any:
                print("\nFailures (full list: %s):" % os.path.join(workdir, "failures.txt"))
                shown_any = True
            fails = sorted(r["failures"])
            repro = "%s --tier %s --cache %s --until %%d -v %s" % (exe, tier, cache, script)
            print("  %s [%s]: %d failed; reproduce: %s" % (w, tier, len(fails), repro % fails[0][0]))
            for ln, why in fails[:args.max_fail_lines]:
                print("    %s:%d [%s] %s" % (w, ln, tier, why))
            if len(fails) > args.max_fail_lines:
                print("    ... %d more" % (len(fails) - args.max_fail_lines))
            for ln, why in fails:
                failure_log.append("%s:%d [%s] %s" % (w, ln, tier, why))
    with open(os.path.join(workdir, "failures.txt"), "w") as f:
        f.write("\n".join(failure_log) + ("\n" if failure_log else ""))

    # Rejections not reported as KEEL_EINVAL (invalid modules must fail in
    # validation, before any C compile) and the slowest rejection.
    for tier in tiers:
        rej = [(w, x) for (w, t), r in results.items() if t == tier for x in r["rejects"]]
        odd = [(w, x) for w, x in rej if x[1] != -1]
        if rej:
            slow = max(rej, key=lambda wx: wx[1][2])
            print("\n[%s] %d invalid/malformed modules rejected; %d not as KEEL_EINVAL; "
                  "slowest %.1f ms (%s:%d)" % (tier, len(rej), len(odd), slow[1][2], slow[0], slow[1][0]))
            for w, x in odd[:5]:
                print("    %s:%d rc %d: %s" % (w, x[0], x[1], x[3]))

    print()
    for tier in tiers:
        loads = sum(r["loads"] for (w, t), r in results.items() if t == tier)
        load_ms = sum(r["load_ms"] for (w, t), r in results.items() if t == tier)
        p, fl = per_tier[tier]
        print("%s tier: %d passed, %d failed; %.1f s wall (-j%d), %d module loads "
              "taking %.1f s; assert_return/trap/exhaustion/uninstantiable: %d/%d" % (
                  tier, p, fl, tier_wall[tier], args.jobs, loads, load_ms / 1000,
                  core[tier][0], sum(core[tier])))
        total_pass += p
        total_fail += fl
    print("%d passed, %d failed" % (total_pass, total_fail))
    return 0 if total_fail == 0 and total_pass > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
