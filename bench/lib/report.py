#!/usr/bin/env python3
"""report.py — turns bench/run.sh's results.tsv into the tables it prints.

Per program: median, min and max wall time of each runner, its ratio to
native, and the median CPU time (user + system); then one summary table with the ratios opt/native, fast/native,
node/native and opt/node per program and their geometric means; then the
speed targets from bench/README.md, each PASS or MISS. Exit status 0 when
every target that could be checked passed, 3 otherwise."""
import csv
import math
import sys

LABEL = {"native": "native", "opt": "keel opt", "fast": "keel fast", "node": "node"}
RATIOS = [("opt", "native"), ("fast", "native"), ("node", "native"), ("opt", "node")]
OPT_NATIVE_MAX = 1.15   # geomean of opt/native
FAST_NATIVE_MAX = 6.0   # geomean of fast/native


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def main(path):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    progs, t = [], {}
    for r in rows:
        if r["program"] not in progs:
            progs.append(r["program"])
        t[(r["program"], r["runner"])] = r
    runners = [k for k in LABEL if any((p, k) in t for p in progs)]

    for p in progs:
        print(f"\n{p}")
        print(f"  {'runner':<10} {'median s':>9} {'min s':>8} {'max s':>8} {'x native':>9}"
              f" {'cpu s':>8} {'cpu x nat':>9}")
        base = t.get((p, "native"))
        for k in runners:
            r = t.get((p, k))
            if r is None:
                print(f"  {LABEL[k]:<10} {'failed':>9}")
                continue
            ratio = (f"{float(r['median_s']) / float(base['median_s']):9.2f}"
                     if base else f"{'-':>9}")
            cratio = (f"{float(r['cpu_median_s']) / float(base['cpu_median_s']):9.2f}"
                      if base else f"{'-':>9}")
            print(f"  {LABEL[k]:<10} {float(r['median_s']):9.3f} {float(r['min_s']):8.3f}"
                  f" {float(r['max_s']):8.3f} {ratio} {float(r['cpu_median_s']):8.3f} {cratio}")

    cols = [(a, b) for a, b in RATIOS if a in runners and b in runners]
    ratio = {}
    for p in progs:
        for a, b in cols:
            if (p, a) in t and (p, b) in t:
                ratio[(p, a, b)] = float(t[(p, a)]["median_s"]) / float(t[(p, b)]["median_s"])
    print("\nsummary (median wall seconds; ratios of medians)")
    head = f"  {'program':<9}" + "".join(f" {LABEL[k]:>9}" for k in runners)
    head += "".join(f" {a + '/' + b:>11}" for a, b in cols)
    print(head)
    for p in progs:
        line = f"  {p:<9}"
        for k in runners:
            line += f" {float(t[(p, k)]['median_s']):9.3f}" if (p, k) in t else f" {'-':>9}"
        for a, b in cols:
            line += f" {ratio[(p, a, b)]:11.2f}" if (p, a, b) in ratio else f" {'-':>11}"
        print(line)
    gm = {}
    line = f"  {'geomean':<9}" + " " * (10 * len(runners))
    for a, b in cols:
        gm[(a, b)] = geomean([ratio[(p, a, b)] for p in progs if (p, a, b) in ratio])
        line += f" {gm[(a, b)]:11.2f}" if gm[(a, b)] else f" {'-':>11}"
    print(line)

    # The same ratios from CPU time: steadier when the machine is busy.
    cline = f"  {'cpu geomean':<13}"
    for a, b in cols:
        g = geomean([float(t[(p, a)]["cpu_median_s"]) / float(t[(p, b)]["cpu_median_s"])
                     for p in progs if (p, a) in t and (p, b) in t])
        cline += f" {a + '/' + b} {g:.2f}" if g else ""
    print(cline)

    print("\ntargets (wall time)")
    ok = True

    def check(name, passed, detail):
        nonlocal ok
        ok = ok and passed
        print(f"  {'PASS' if passed else 'MISS'}  {name}: {detail}")

    if gm.get(("opt", "native")):
        g = gm[("opt", "native")]
        check(f"opt <= {OPT_NATIVE_MAX}x native (geomean)", g <= OPT_NATIVE_MAX, f"{g:.2f}x")
    if ("opt", "node") in cols:
        slower = [p for p in progs if ratio.get((p, "opt", "node"), 0) >= 1.0]
        check("opt faster than node on every program", not slower,
              "slower on " + ", ".join(slower) if slower else "all faster")
    if gm.get(("fast", "native")):
        g = gm[("fast", "native")]
        worst = max((ratio[(p, "fast", "native")], p) for p in progs
                    if (p, "fast", "native") in ratio)
        check(f"fast <= {FAST_NATIVE_MAX}x native (geomean)", g <= FAST_NATIVE_MAX,
              f"{g:.2f}x (worst {worst[1]} {worst[0]:.2f}x)")
    if not any(k in runners for k in ("opt", "fast")):
        print("  (keel not measured: no keel targets checked)")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
