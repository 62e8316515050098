#!/usr/bin/env python3
"""report.py RAW OUT.tsv — turns the raw lines bench/http/run.sh collects into
the printed table and build/bench/http.tsv (long format: section, case,
metric, value, unit). Run by run.sh; not meant to be run by hand.

RAW lines (tab-separated):
  M case threads conns requests duration_us mean_us p50_us p99_us max_us sock_errors non2xx
    (a case measured in rounds is named CASE@ROUND; its figures are those
    of its median round by req/s, with every round's req/s kept)
  C case command
  R tag rss_kib
  I key value
"""
import sys

HOP_TARGET_US = 2.0
HELLO_TARGET = 0.80


def load(path):
    meas, cmds, rss, info = {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "M":
                name = p[1]
                t, c, req, dur = int(p[2]), int(p[3]), int(p[4]), int(p[5])
                meas[name] = {
                    "threads": t, "conns": c, "requests": req, "duration_us": dur,
                    "rps": req / (dur / 1e6) if dur else 0.0,
                    "mean_us": float(p[6]), "p50_us": int(p[7]), "p99_us": int(p[8]),
                    "max_us": int(p[9]), "sock_errors": int(p[10]), "non2xx": int(p[11]),
                }
            elif p[0] == "C":
                cmds[p[1]] = p[2]
            elif p[0] == "R":
                rss[p[1]] = int(p[2])
            elif p[0] == "I":
                info[p[1]] = p[2]
    rounds = {}
    for name in [n for n in meas if "@" in n]:
        rounds.setdefault(name.split("@")[0], []).append(meas.pop(name))
    for name, ms in rounds.items():
        ms.sort(key=lambda m: m["rps"])
        meas[name] = dict(ms[(len(ms) - 1) // 2], rounds=[m["rps"] for m in ms])
    for name in list(cmds):
        if "@" in name:
            cmds.setdefault(name.split("@")[0], cmds.pop(name))
    return meas, cmds, rss, info


def fmt_us(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def main():
    meas, cmds, rss, info = load(sys.argv[1])
    rows = []   # (section, case, metric, value, unit)

    def emit(section, case, metric, value, unit):
        rows.append((section, case, metric, value, unit))

    out = []
    w = out.append
    w(f"Keel HTTP benchmark: {info.get('cpus', '?')} CPUs ({info.get('cpu', '?')}), "
      f"nginx {info.get('nginx', '?')}, wrk {info.get('wrk', '?')}")
    w(f"  {info.get('params', '')}")
    w(f"  load average before: {info.get('load_before', '?')}, after: {info.get('load_after', '?')}")
    for k in ("cpus", "cpu", "nginx", "wrk", "params", "load_before", "load_after"):
        if k in info:
            emit("info", "-", k, info[k], "")

    for name, m in meas.items():
        sec, case = name.split("/", 1)
        for metric, unit in (("rps", "req/s"), ("p50_us", "us"), ("p99_us", "us"),
                             ("mean_us", "us"), ("max_us", "us"), ("requests", ""),
                             ("sock_errors", ""), ("non2xx", ""), ("conns", ""),
                             ("threads", "")):
            v = m[metric]
            emit(sec, case, metric, f"{v:.1f}" if isinstance(v, float) else v, unit)

    header = f"  {'case':<28} {'req/s':>10} {'p50 us':>9} {'p99 us':>9} {'mean us':>9} {'errors':>7}"

    def line(label, m, extra=""):
        err = m["sock_errors"] + m["non2xx"]
        return (f"  {label:<28} {m['rps']:>10,.0f} {fmt_us(m['p50_us']):>9} "
                f"{fmt_us(m['p99_us']):>9} {fmt_us(m['mean_us']):>9} {err:>7}{extra}")

    bad = []

    # 1. hello
    ng = meas.get("hello/nginx")
    if ng:
        w("")
        nr = len(ng.get("rounds", [0]))
        w(f"1. hello: nginx return 200 \"hello\" vs Keel (wrk -t{ng['threads']} -c{ng['conns']}, "
          f"{ng['duration_us'] / 1e6:.0f} s each, {nr} rounds in turn, median round shown)")
        w(header + f" {'req/s':>7} {'p50':>6} {'p99':>6}   (Keel/nginx)")
        w(line("nginx", ng))
        for case, label in (("keel-wapc", "keel hello (wapc)"),
                            ("keel-wapc-log", "keel hello (wapc), access log"),
                            ("keel-wagi", "keel hello (wagi)")):
            m = meas.get("hello/" + case)
            if not m:
                continue
            r = m["rps"] / ng["rps"]
            r50 = m["p50_us"] / ng["p50_us"] if ng["p50_us"] else float("nan")
            r99 = m["p99_us"] / ng["p99_us"] if ng["p99_us"] else float("nan")
            w(line(label, m, f" {r:>7.2f} {r50:>6.2f} {r99:>6.2f}"))
            emit("hello", case, "rps_vs_nginx", f"{r:.3f}", "ratio")
            emit("hello", case, "p50_vs_nginx", f"{r50:.3f}", "ratio")
            emit("hello", case, "p99_vs_nginx", f"{r99:.3f}", "ratio")
            if case == "keel-wapc":
                verdict = "PASS" if r >= HELLO_TARGET else "MISS"
                w(f"  target: wapc hello >= {HELLO_TARGET:.0%} of nginx req/s: {verdict} ({r:.0%})")
                emit("hello", case, "target_rps_vs_nginx_ge_0.80", verdict, "")
        if len(ng.get("rounds", [])) > 1:
            w("  req/s of every round (sorted):")
            for case in ("nginx", "keel-wapc", "keel-wapc-log", "keel-wagi"):
                m = meas.get("hello/" + case)
                if m:
                    w(f"    {case:<16} " + "  ".join(f"{v:>8,.0f}" for v in m["rounds"]))

    # 2. hop
    ks, kc = meas.get("hop/keel-single"), meas.get("hop/keel-chain")
    if ks and kc:
        w("")
        w("2. cost of a hop: chain A -> B -> C (2 hops) vs C alone (wrk -t1 -c1)")
        w(header)
        for case, label in (("keel-single", "keel C alone"),
                            ("keel-chain", "keel A->B->C (in-process)"),
                            ("nginx-single", "nginx return 200"),
                            ("nginx-chain-keepalive", "nginx 2 proxy hops, keep-alive"),
                            ("nginx-chain-no-keepalive", "nginx 2 proxy hops, no k-a")):
            if "hop/" + case in meas:
                w(line(label, meas["hop/" + case]))
        w(f"  {'per hop = (chain - single) / 2':<40} {'p50 us':>9} {'mean us':>9}")
        for case, single, chain, label in (
                ("keel", "keel-single", "keel-chain", "keel in-process call"),
                ("nginx-keepalive", "nginx-single", "nginx-chain-keepalive", "nginx proxy_pass, keep-alive"),
                ("nginx-no-keepalive", "nginx-single", "nginx-chain-no-keepalive", "nginx proxy_pass, no keep-alive")):
            s, c = meas.get("hop/" + single), meas.get("hop/" + chain)
            if not (s and c):
                continue
            h50 = (c["p50_us"] - s["p50_us"]) / 2
            hmean = (c["mean_us"] - s["mean_us"]) / 2
            w(f"  {label:<40} {h50:>9.1f} {hmean:>9.1f}")
            emit("hop", case, "per_hop_p50_us", f"{h50:.2f}", "us")
            emit("hop", case, "per_hop_mean_us", f"{hmean:.2f}", "us")
            if case == "keel":
                verdict = "PASS" if h50 <= HOP_TARGET_US else "MISS"
                w(f"  target: <= {HOP_TARGET_US:.0f} us per in-process hop (p50): {verdict}")
                emit("hop", case, "target_per_hop_le_2us", verdict, "")

    # 3. scaling
    scale = sorted((int(k.split("/")[1]), v) for k, v in meas.items() if k.startswith("scale/"))
    if scale:
        m0 = scale[0][1]
        w("")
        w(f"3. scaling: the hello module as N components, each routed, requests spread "
          f"round-robin over the N routes (wrk -t{m0['threads']} -c{m0['conns']})")
        w(f"  {'components':<12} {'req/s':>10} {'p50 us':>9} {'p99 us':>9} {'errors':>7} "
          f"{'RSS idle KiB':>13} {'RSS loaded KiB':>15}")
        for n, m in scale:
            idle, loaded = rss.get(f"scale-{n}-idle", 0), rss.get(f"scale-{n}-loaded", 0)
            err = m["sock_errors"] + m["non2xx"]
            w(f"  {n:<12} {m['rps']:>10,.0f} {fmt_us(m['p50_us']):>9} {fmt_us(m['p99_us']):>9} "
              f"{err:>7} {idle:>13,} {loaded:>15,}")
            emit("scale", str(n), "rss_idle_kib", idle, "KiB")
            emit("scale", str(n), "rss_loaded_kib", loaded, "KiB")
        n0, s0 = scale[0]
        for n, m in scale[1:]:
            d_idle = (rss.get(f"scale-{n}-idle", 0) - rss.get(f"scale-{n0}-idle", 0)) / (n - n0)
            d_load = (rss.get(f"scale-{n}-loaded", 0) - rss.get(f"scale-{n0}-loaded", 0)) / (n - n0)
            r = m["rps"] / s0["rps"]
            w(f"  {n0} -> {n}: RSS per extra component {d_idle:.1f} KiB idle, {d_load:.1f} KiB "
              f"after load; req/s {r:.2f}x of {n0} component(s)")
            emit("scale", f"{n0}-{n}", "rss_per_extra_component_idle_kib", f"{d_idle:.1f}", "KiB")
            emit("scale", f"{n0}-{n}", "rss_per_extra_component_loaded_kib", f"{d_load:.1f}", "KiB")
            emit("scale", f"{n0}-{n}", "rps_ratio", f"{r:.3f}", "ratio")

    # 4. head of line
    hu, hl, sl = meas.get("hol/hello-unloaded"), meas.get("hol/hello-loaded"), meas.get("hol/spin-load")
    if hu and hl:
        w("")
        w(f"4. head-of-line: hello (wrk -t1 -c{hu['conns']}) alone, then while a second wrk keeps "
          f"{sl['conns'] if sl else '?'} connections on a {info.get('spin_ms', '?')} ms CPU-bound route")
        w(header)
        w(line("hello, unloaded", hu))
        w(line("hello, spinner loaded", hl))
        if sl:
            w(line("spinner route (the load)", sl))
            w(f"  (spinner route: {sl['non2xx']} non-2xx answers, e.g. 503 over its concurrency limit)")
        if hl["requests"] == 0:
            # wrk reports only completed requests: none finished in the run.
            secs = hl["duration_us"] / 1e6
            w(f"  no hello request completed in {secs:.0f} s under load: p99 > {secs:.0f} s")
            emit("hol", "hello", "p99_loaded_vs_unloaded", "inf", "ratio")
        else:
            r99 = hl["p99_us"] / hu["p99_us"] if hu["p99_us"] else float("nan")
            r50 = hl["p50_us"] / hu["p50_us"] if hu["p50_us"] else float("nan")
            w(f"  hello p99 loaded/unloaded: {r99:,.1f}x   (p50: {r50:,.1f}x)")
            emit("hol", "hello", "p99_loaded_vs_unloaded", f"{r99:.2f}", "ratio")
            emit("hol", "hello", "p50_loaded_vs_unloaded", f"{r50:.2f}", "ratio")

    for tag, v in rss.items():
        if tag == "main":
            emit("rss", "main", "rss_kib", v, "KiB")

    # errors anywhere are worth a line of their own
    for name, m in meas.items():
        if name == "hol/spin-load":
            continue
        if m["sock_errors"] or m["non2xx"]:
            bad.append(f"{name}: {m['sock_errors']} socket errors, {m['non2xx']} non-2xx")
    if bad:
        w("")
        w("ERRORS (the figures above include failed requests):")
        for b in bad:
            w("  " + b)

    w("")
    w("Commands (URLs are per run: ports are picked free each time):")
    for name, c in cmds.items():
        w(f"  {name}: {c}")

    print("\n".join(out))
    with open(sys.argv[2], "w") as f:
        f.write("section\tcase\tmetric\tvalue\tunit\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    print(f"\nresults: {sys.argv[2]}")


if __name__ == "__main__":
    main()
