"""Keel with the tools operators run next to it: a real Prometheus (Debian
`prometheus`) scraping the admin listener, `promtool check rules` and
`promtool test rules` on the output of `keel alerts`, `amtool check-config`
and a real Alertmanager (Debian `prometheus-alertmanager`) showing the
inhibition of callers' pages, and the Grafana dashboard checked against a
real scrape. Every daemon is started here, on a free loopback port with a
temporary data directory, and stopped at the end of its test."""
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from test_obs import CHAIN_YAML, admin_port, scrape
from test_up import comp, free_port, start_keel, warm_cache  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def tool(name):
    p = shutil.which(name)
    if not p:
        pytest.fail(f"{name} not found: run `make deps` (scripts/install-deps.sh)")
    return p


def http_json(url, data=None, timeout=5):
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None
                                 else None, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


class Daemon:
    def __init__(self, argv, log):
        self.log = log
        self.f = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.f, stderr=self.f,
                                     stdin=subprocess.DEVNULL)

    def wait_ready(self, url, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{url} not ready\n{self.log.read_text()}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.f.close()


SLO_YAML = """
components:
  gateway:
    wasm: {caller}
    calls: [cart]
    routes:
      - path: /gw
        operation: call
    slo: {{ availability: 99.9, latency: {{ p: 0.99, under: 300ms }} }}
  cart:
    wasm: {caller}
    calls: [db]
    slo: {{ availability: 99.9 }}
  db:
    wasm: {hello}
    slo: {{ availability: 99.5 }}
  lonely:
    wasm: {hello}
"""


def write_manifest(tmp_path, comp, text, name="keel.yaml"):
    names = set(re.findall(r"\{(\w+)\}", text))
    p = tmp_path / name
    p.write_text(text.format(**{n: comp(n) for n in names}))
    return p


# ------------------------------------------------------------ Prometheus


def test_real_prometheus_scrapes_keel(start_keel, tmp_path):
    srv = start_keel(CHAIN_YAML)
    for _ in range(5):
        assert srv.post("/a", b"b/call/c/echo/x").status == 200
    srv.get("/trap")
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "keel", "static_configs": [
            {"targets": [f"127.0.0.1:{admin_port(srv)}"]}]}],
    }))
    prom = Daemon([tool("prometheus"), f"--config.file={cfg}",
                   f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                  tmp_path / "prometheus.log")
    try:
        prom.wait_ready(f"http://127.0.0.1:{port}/-/ready")

        def query(q):
            u = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            return http_json(u)["data"]["result"]

        deadline = time.monotonic() + 30
        got = []
        while time.monotonic() < deadline:
            got = query('keel_requests_total{component="a"}')
            if got:
                break
            time.sleep(0.5)
        assert got, (prom.log.read_text())
        m = got[0]["metric"]
        assert (m["job"], m["route"], m["method"], m["code"]) == ("keel", "/a", "POST", "200"), m
        assert float(got[0]["value"][1]) == 5
        calls = query('keel_component_calls_total{caller="b",callee="c",outcome="ok"}')
        assert calls and float(calls[0]["value"][1]) == 5, calls
        traps = query('keel_traps_total{component="p"} > 0')
        assert traps and traps[0]["metric"]["kind"] == "unreachable executed", traps
        hist = query('histogram_quantile(0.99, sum by (le) '
                     '(keel_request_duration_seconds_bucket{component="a"}))')
        assert hist and float(hist[0]["value"][1]) > 0, hist
        assert query('up{job="keel"} == 1'), query("up")
        for name in ("keel_build_info", "keel_component_info", "process_resident_memory_bytes",
                     "keel_guest_cpu_seconds_total", "keel_inflight_requests"):
            assert query(name), name
    finally:
        prom.stop()


# ------------------------------------------------------------ rules


def test_alert_rules_check_and_unit_tests(keel, tmp_path, comp):
    manifest = write_manifest(tmp_path, comp, SLO_YAML)
    r = keel("alerts", "-f", manifest)
    assert r.returncode == 0, r.describe()
    rules = tmp_path / "rules.yml"
    rules.write_text(r.out)
    p = subprocess.run([tool("promtool"), "check", "rules", str(rules)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode() + r.out
    assert "SUCCESS" in p.stdout.decode()
    doc = yaml.safe_load(r.out)
    names = {g["name"] for g in doc["groups"]}
    assert "keel-slo-cart-alerts" in names and not any("lonely" in n for n in names), names
    alerts = [rl for g in doc["groups"] for rl in g["rules"] if "alert" in rl]
    cart = {a["labels"]["severity"]: a for a in alerts if a["labels"]["component"] == "cart"}
    assert set(cart) == {"page", "ticket"}
    for a in alerts:
        assert a["annotations"]["runbook_url"].startswith("docs/operations.md#keel"), a
        assert a["annotations"]["summary"]
    # the runbook anchors exist in docs/operations.md
    ops = (ROOT / "docs" / "operations.md").read_text().lower()
    for anchor in ("keelerrorbudgetburn", "keellatencybudgetburn"):
        assert re.search(r"^#+ " + anchor + r"\b", ops, re.M), anchor
    page = "> 0.0144" in cart["page"]["expr"] and "rate1h" in cart["page"]["expr"]  # 14.4 x 0.1%
    assert page and "> 0.006" in cart["page"]["expr"] and "rate30m" in cart["page"]["expr"], cart
    assert "rate3d" in cart["ticket"]["expr"] and "> 0.001" in cart["ticket"]["expr"], cart

    def exp(sev):
        return {"exp_labels": {"severity": sev, "component": "cart"},
                "exp_annotations": cart[sev]["annotations"]}

    ok = "keel_requests_total{component=\"cart\",route=\"-\",method=\"POST\",code=\"200\"}"
    err = "keel_requests_total{component=\"cart\",route=\"-\",method=\"POST\",code=\"500\"}"
    rej = "keel_rejected_total{component=\"cart\",reason=\"concurrency\"}"
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {   # 10 h of clean traffic, then 10% of requests fail for an hour: page
                "interval": "1m",
                "input_series": [
                    {"series": ok, "values": "0+1000x700"},
                    {"series": err, "values": "0x600 111+111x100"},
                    {"series": rej, "values": "0x700"},
                ],
                "alert_rule_test": [
                    {"eval_time": "590m", "alertname": "KeelErrorBudgetBurn", "exp_alerts": []},
                    {"eval_time": "640m", "alertname": "KeelErrorBudgetBurn",
                     "exp_alerts": [exp("page"), exp("ticket")]},
                ],
            },
            {   # the same traffic with a 2-minute blip of 10% errors: nothing fires
                "interval": "1m",
                "input_series": [
                    {"series": ok, "values": "0+1000x700"},
                    {"series": err, "values": "0x600 111 222x99"},
                    {"series": rej, "values": "0x700"},
                ],
                "alert_rule_test": [
                    {"eval_time": t, "alertname": "KeelErrorBudgetBurn", "exp_alerts": []}
                    for t in ("601m", "602m", "603m", "605m", "610m", "630m", "660m", "700m")
                ],
            },
            {   # requests refused for concurrency count against the budget too
                "interval": "1m",
                "input_series": [
                    {"series": ok, "values": "0+1000x700"},
                    {"series": err, "values": "0x700"},
                    {"series": rej, "values": "0x600 200+200x100"},
                ],
                "alert_rule_test": [
                    {"eval_time": "640m", "alertname": "KeelErrorBudgetBurn",
                     "exp_alerts": [exp("page"), exp("ticket")]},
                ],
            },
        ],
    }
    tf = tmp_path / "rules_test.yml"
    tf.write_text(yaml.safe_dump(tests, sort_keys=False))
    p = subprocess.run([tool("promtool"), "test", "rules", str(tf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert p.returncode == 0, p.stdout.decode()


def test_alerts_usage_and_errors(keel, tmp_path, comp):
    r = keel("alerts", "--bogus")
    assert r.returncode == 2 and "keel alerts: unexpected argument --bogus" in r.err
    r = keel("alerts", "-f", tmp_path / "absent.yaml")
    assert r.returncode == 1 and "absent.yaml" in r.err
    manifest = write_manifest(tmp_path, comp, "components:\n  a:\n    wasm: {hello}\n")
    r = keel("alerts", "-f", manifest)
    assert r.returncode == 0 and "groups:\n  []" in r.out, r.describe()
    assert keel("help", "alerts").returncode == 0


# ------------------------------------------------------------ Alertmanager


def test_alertmanager_inhibits_callers_pages(keel, tmp_path, comp):
    manifest = write_manifest(tmp_path, comp, SLO_YAML)
    r = keel("alerts", "--alertmanager", "-f", manifest)
    assert r.returncode == 0, r.describe()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(r.out)
    doc = yaml.safe_load(r.out)
    rules = {tuple(x["source_matchers"]): x["target_matchers"] for x in doc["inhibit_rules"]}
    assert len(rules) == 2, rules      # db (called by cart, gateway) and cart (by gateway)
    p = subprocess.run([tool("amtool"), "check-config", str(cfg)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()

    port = free_port()
    am = Daemon([tool("prometheus-alertmanager"), f"--config.file={cfg}",
                 f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--cluster.listen-address=", "--log.level=warn"], tmp_path / "am.log")
    try:
        base = f"http://127.0.0.1:{port}"
        am.wait_ready(base + "/-/ready")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def page(c, sev="page"):
            return {"labels": {"alertname": "KeelErrorBudgetBurn", "severity": sev,
                               "component": c}, "annotations": {"summary": c},
                    "startsAt": now}

        # the leaf fails: every caller's page fires too
        http_json(base + "/api/v2/alerts", [page("db"), page("cart"), page("gateway"),
                                            page("gateway", "ticket")])
        deadline = time.monotonic() + 20
        state = {}
        while time.monotonic() < deadline:
            got = http_json(base + "/api/v2/alerts")
            state = {(a["labels"]["component"], a["labels"]["severity"]): a["status"]
                     for a in got}
            if len(state) == 4 and state[("gateway", "page")]["state"] == "suppressed" and \
                    state[("cart", "page")]["state"] == "suppressed":
                break
            time.sleep(0.3)
        assert state[("db", "page")]["state"] == "active", state
        assert state[("cart", "page")]["state"] == "suppressed", state
        assert state[("gateway", "page")]["state"] == "suppressed", state
        assert state[("cart", "page")]["inhibitedBy"], state
        assert state[("gateway", "ticket")]["state"] == "active", state   # tickets stay
        pages = http_json(base + "/api/v2/alerts?active=true&inhibited=false&silenced=false"
                          "&filter=severity%3D%22page%22")
        assert [a["labels"]["component"] for a in pages] == ["db"], pages
    finally:
        am.stop()


# ------------------------------------------------------------ dashboard


def test_dashboard_uses_only_exported_metrics(start_keel):
    dash = json.loads((ROOT / "deploy" / "grafana" / "keel.json").read_text())
    exprs = []

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "expr" and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(dash)
    rows = [p["title"].lower() for p in dash["panels"] if p.get("type") == "row"]
    for concern in ("traffic", "errors", "latency", "saturation", "calls", "traps"):
        assert any(concern in r for r in rows), (concern, rows)
    assert len(exprs) >= 12, exprs
    srv = start_keel(CHAIN_YAML)
    srv.post("/a", b"b/call/c/echo/x")
    text = scrape(srv)
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b((?:keel|process)_[a-z0-9_]+)\b", e))
    assert used, exprs
    missing = []
    for name in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in families or (base in families and families[base] == "histogram"):
            continue
        missing.append(name)
    assert not missing, f"dashboard metrics not exported by keel: {missing}"
