"""Operability, end to end: `keel up` on 127.0.0.1 with its admin listener
on a free port, real HTTP traffic, and the real tools an operator uses —
promtool, a Prometheus server scraping Keel, an Alertmanager, and an OTLP
receiver (http.server, in this file) that checks the exported spans.

Prometheus and Alertmanager are started by the tests as plain processes on
free loopback ports with temporary data directories (never the Debian
system services).
"""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from test_up import comp, free_port, start_keel, warm_cache  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
ADMIN_RE = re.compile(r"admin endpoints at http://[^:]+:(\d+)")

CHAIN_YAML = """
components:
  a:
    wasm: {caller}
    calls: [b]
    routes:
      - path: /a
        operation: call
  b:
    wasm: {caller}
    calls: [c]
  c:
    wasm: {hello}
    routes:
      - path: /hello
        operation: hello
  p:
    wasm: {obs_probe}
    routes:
      - path: /p/*
        operation: ok
      - path: /fail
        operation: fail
      - path: /trap
        operation: trap
      - path: /spam
        operation: spam
    limits: {{ body: 16 }}
"""


def admin_port(srv) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = ADMIN_RE.search(srv.log())
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    pytest.fail("no 'admin endpoints at' line\n" + srv.tail())


def admin_get(srv, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", admin_port(srv), timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read().decode(), r
    finally:
        c.close()


def admin_post(srv, path, token=None):
    """POST path on the admin listener, with a bearer token when given:
    (status, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", admin_port(srv), timeout=30)
    try:
        c.request("POST", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def scrape(srv) -> str:
    status, body, r = admin_get(srv, "/metrics")
    assert status == 200, body
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), r.getheaders()
    return body


def sample(text, name, **labels):
    """Value of the sample name{labels...} (labels: a subset), or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', head))
        if head.split("{")[0] == name and all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def json_lines(srv):
    out = []
    for ln in srv.log().splitlines():
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError:
            pytest.fail(f"log line is not JSON: {ln!r}")
    return out


# ------------------------------------------------------------------ metrics


def test_metrics_exposition_and_labels(start_keel):
    srv = start_keel(CHAIN_YAML)
    for _ in range(3):
        assert srv.post("/a", b"b/call/c/echo/x").body == b"x"
    assert srv.get("/hello").status == 200
    assert srv.get("/trap").status == 500
    assert srv.get("/fail").status == 500
    assert srv.post("/p/x", b"0123456789abcdefXX").status == 413
    text = scrape(srv)
    # promtool agrees it is valid exposition format
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()
    assert sample(text, "keel_requests_total", component="a", route="/a", method="POST",
                  code="200") == 3
    assert sample(text, "keel_requests_total", component="p", route="/trap", code="500") == 1
    assert sample(text, "keel_request_duration_seconds_count", component="a", route="/a") == 3
    assert sample(text, "keel_request_duration_seconds_bucket", component="a", route="/a",
                  le="+Inf") == 3
    assert sample(text, "keel_component_calls_total", caller="a", callee="b",
                  outcome="ok") == 3
    assert sample(text, "keel_component_calls_total", caller="b", callee="c",
                  outcome="ok") == 3
    assert sample(text, "keel_component_call_duration_seconds_count", caller="b",
                  callee="c") == 3
    assert sample(text, "keel_traps_total", component="p", kind="unreachable executed") == 1
    assert sample(text, "keel_rejected_total", component="p", reason="body") == 1
    assert sample(text, "keel_instances_started_total", component="c") == 4
    assert sample(text, "keel_guest_cpu_seconds_total", component="a") > 0
    assert sample(text, "keel_instance_memory_bytes", component="a") == 0   # none live
    assert sample(text, "keel_inflight_requests", component="a") == 0
    info = [ln for ln in text.splitlines() if ln.startswith("keel_component_info{")]
    assert any('component="c"' in ln and re.search(r'version="[0-9a-f]{12}"', ln) and
               re.search(r'tier="(fast|opt)"', ln) for ln in info), info
    assert sample(text, "keel_compile_seconds", component="c") is not None
    assert sample(text, "keel_build_info") == 1
    assert sample(text, "keel_start_time_seconds") > 1e9
    assert re.search(r'^keel_config_digest_info\{digest="[0-9a-f]{16}"\} 1$', text, re.M)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds"):
        assert sample(text, name) > 0, name
    # HELP and TYPE once per family, before its samples
    families = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    assert len(families) == len({f for f, _ in families}), families
    # unknown admin paths and methods
    assert admin_get(srv, "/nope")[0] == 404
    assert admin_get(srv, "/metrics", method="POST")[0] == 405


def test_guest_cpu_is_cpu_not_wall_time(start_keel):
    # keel_guest_cpu_seconds_total counts CPU time in guest code: a
    # component that sleeps is charged next to nothing, one that burns CPU
    # until its deadline about its deadline, and a stream of short requests
    # (most of them charged from their wall time and their component's
    # measured CPU share, src/host/obs.c) less than the time they took
    srv = start_keel("""
components:
  sleeper:
    wasm: {up_probe}
    routes: [{{ path: /sleep, operation: sleep }}]
  burner:
    wasm: {up_probe}
    routes: [{{ path: /spin, operation: spin }}]
    limits: {{ timeout: 150ms }}
  quick:
    wasm: {hello}
    routes: [{{ path: /hello, operation: hello }}]
""")
    for _ in range(4):
        r = srv.request("GET", "/sleep", headers={"X-Sleep-Ms": "100"})
        assert r.status == 200 and r.body == b"slept", r
    for _ in range(3):
        assert srv.get("/spin").status == 504
    t0 = time.monotonic()
    for _ in range(2000):
        assert srv.get("/hello").status == 200
    took = time.monotonic() - t0
    text = scrape(srv)
    slept = sample(text, "keel_guest_cpu_seconds_total", component="sleeper")
    burnt = sample(text, "keel_guest_cpu_seconds_total", component="burner")
    quick = sample(text, "keel_guest_cpu_seconds_total", component="quick")
    assert slept is not None and slept < 0.04, slept        # 0.4 s asleep
    # 3 x 150 ms to the deadline, which also covers getting to the guest
    # (a worker thread at nice 10, an ASan build): well above the sleeper
    assert burnt is not None and 0.1 <= burnt <= 1.5, burnt
    assert quick is not None and 0 < quick < took, (quick, took)


def test_label_values_are_escaped(start_keel, tmp_path):
    # a route path with a quote and a backslash must come out escaped
    yaml_text = CHAIN_YAML + '''
  q:
    wasm: {hello}
    routes:
      - path: '/we"ird\\\\path'
        operation: hello
'''
    srv = start_keel(yaml_text)
    text = scrape(srv)
    assert 'route="/we\\"ird\\\\\\\\path"' in text, [ln for ln in text.splitlines() if "ird" in ln]
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()


# ------------------------------------------------------------------ logs


def test_json_logs_access_log_and_request_ids(start_keel):
    srv = start_keel(CHAIN_YAML)
    r = srv.post("/a", b"b/call/c/log/", headers={"X-Request-Id": "my-req.42"})
    assert r.header("X-Request-Id") == "my-req.42"
    bad = srv.get("/hello", headers={"X-Request-Id": "bad id with spaces"})
    rid = bad.header("X-Request-Id")
    assert rid != "bad id with spaces" and re.fullmatch(r"[0-9a-f]{16}", rid), bad
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    srv.get("/hello", headers={"traceparent": tp})
    time.sleep(0.2)
    lines = json_lines(srv)
    for ln in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ln["ts"]), ln
        assert ln["level"] in ("debug", "info", "warn", "error"), ln
        assert "msg" in ln
    access = [ln for ln in lines if ln["msg"] == "request"]
    a = next(ln for ln in access if ln.get("request_id") == "my-req.42")
    assert a["component"] == "a" and a["route"] == "/a" and a["status"] == 200, a
    assert a["method"] == "POST" and a["path"] == "/a" and a["duration_ms"] >= 0, a
    assert re.fullmatch(r"[0-9a-f]{32}", a["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}",
                                                                          a["span_id"]), a
    # guest output is tagged with its component and the request
    guest = [ln for ln in lines if "console line from hello" in ln["msg"]]
    assert guest and guest[0]["component"] == "c" and guest[0]["request_id"] == "my-req.42", guest
    assert guest[0]["trace_id"] == a["trace_id"], (guest, a)
    stdout = [ln for ln in lines if "stdout line from hello" in ln["msg"]]
    assert stdout and stdout[0]["component"] == "c", lines
    # an incoming trace is continued in the log
    t = next(ln for ln in access if ln.get("trace_id") == "0af7651916cd43dd8448eb211c80319c")
    assert t["component"] == "c"
    assert not any(ln.get("request_id") == "bad id with spaces" for ln in lines)


def test_text_log_format(start_keel):
    srv = start_keel("observability: {{ log_format: text, log_level: info }}\n" + CHAIN_YAML)
    srv.get("/hello", headers={"X-Request-Id": "txt-1"})
    time.sleep(0.2)
    log = srv.log()
    assert re.search(r"^\S+Z info \[c\] request request_id=txt-1 trace_id=[0-9a-f]{32} "
                     r"span_id=[0-9a-f]{16} route=/hello method=GET path=/hello status=200 "
                     r"duration_ms=[0-9.]+$", log, re.M), log
    assert not re.search(r"^\{", log, re.M), log


def test_guest_log_rate_limit(start_keel):
    srv = start_keel("observability: {{ guest_log_rate: 20 }}\n" + CHAIN_YAML)
    r = srv.post("/spam", b"500")
    assert r.status == 200, r
    text = scrape(srv)
    dropped = sample(text, "keel_log_dropped_total", component="p")
    assert dropped >= 400, dropped
    spam = [ln for ln in json_lines(srv) if "spam line" in ln["msg"]]
    assert 0 < len(spam) <= 40, len(spam)
    # a second later the next window reports the drops
    time.sleep(1.1)
    srv.post("/spam", b"1")
    time.sleep(0.2)
    assert any("guest log lines dropped" in ln["msg"] and ln.get("component") == "p"
               for ln in json_lines(srv)), srv.tail()
    # keel's own lines are never rate limited
    assert sum(1 for ln in json_lines(srv) if ln["msg"] == "request") >= 2


@pytest.mark.parametrize("snippet,expect", [
    ("observability: {{ log_level: loud }}\n", "keel.yaml:2:29: observability: unknown log_level 'loud'"),
    ("observability: {{ log_format: xml }}\n", "keel.yaml:2:30: observability: unknown log_format 'xml'"),
    ("observability: {{ trace_sample: 2 }}\n", "keel.yaml:2:32: observability: 'trace_sample' must be a number from 0 to 1"),
    ("observability: {{ otlp_endpoint: 'grpc://x' }}\n", "keel.yaml:2:33: observability: otlp_endpoint 'grpc://x' must be http://HOST:PORT"),
    ("observability: {{ traces: yes }}\n", "keel.yaml:2:18: observability: unknown key 'traces'"),
    ("admin: {{ listen: nowhere }}\n", "keel.yaml:2:18: admin: listen 'nowhere' is not HOST:PORT"),
    ("admin: {{ tokenfile: x }}\n", "keel.yaml:2:10: admin: unknown key 'tokenfile'"),
])
def test_bad_observability_config(start_keel, snippet, expect):
    srv = start_keel("listen: 127.0.0.1:0\n" + snippet + CHAIN_YAML, wait=False)
    srv.expected_exit = True
    assert srv.proc.wait(60) == 1
    assert expect in srv.log(), srv.log()


def test_bad_slo_and_circuit_config(start_keel):
    cases = [
        ("    slo: { availability: 120 }\n", "'availability' must be a number from 50 to 99.999"),
        ("    slo: { latency: { p: 0.99, under: 300ms } }\n", "missing required key 'availability'"),
        ("    slo: { availability: 99.9, latency: { p: 0.99 } }\n", "latency needs both"),
        ("    circuit: { window: 10s }\n", "circuit: missing required key 'error_ratio'"),
        ("    circuit: { error_ratio: 0.5, cooldown: forever }\n", "'cooldown' is not a duration"),
    ]
    for snippet, expect in cases:
        snippet = snippet.replace("{", "{{").replace("}", "}}")
        srv = start_keel("components:\n  x:\n    wasm: {hello}\n" + snippet, wait=False)
        srv.expected_exit = True
        assert srv.proc.wait(60) == 1
        assert re.search(r"keel\.yaml:\d+:\d+: component x: ", srv.log()), srv.log()
        assert expect in srv.log(), srv.log()


# ------------------------------------------------------------------ health


def test_health_endpoints_probe_and_last_trap(start_keel, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    yaml_text = ("observability: {{ health_interval: 200ms, health_timeout: 1s }}\n"
                 "components:\n  p:\n    wasm: {obs_probe}\n"
                 f"    files:\n      - {{{{ host: {state}, guest: /state }}}}\n"
                 "    routes:\n      - path: /ok\n        operation: ok\n"
                 "      - path: /trap\n        operation: trap\n")
    srv = start_keel(yaml_text)
    assert admin_get(srv, "/healthz")[:2] == (200, "ok\n")
    status, body, _ = admin_get(srv, "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True}
    time.sleep(0.6)
    h = json.loads(admin_get(srv, "/health")[1])["components"]["p"]
    assert h["status"] == "ok" and h["health_probe"]["status"] == "ok", h
    assert re.fullmatch(r"[0-9a-f]{12}", h["version"]) and h["tier"] in ("fast", "opt"), h
    assert h["circuit"] == "closed" and h["last_trap"] is None, h
    for _ in range(3):
        srv.get("/ok")
    srv.get("/trap")
    h = json.loads(admin_get(srv, "/health")[1])["components"]["p"]
    assert h["last_trap"]["kind"] == "unreachable executed", h
    assert h["requests_1m"] == 4 and h["errors_1m"] == 1, h
    assert h["status"] == "degraded", h
    # keel_health() says sick: the component is failing
    (state / "sick").write_text("1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        h = json.loads(admin_get(srv, "/health")[1])["components"]["p"]
        if h["status"] == "failing":
            break
        time.sleep(0.1)
    assert h["status"] == "failing" and h["health_probe"] == {"status": "failing", "value": 3}, h
    assert "keel_health() failing" in srv.log()


def test_circuit_breaker_fails_fast_then_recovers(start_keel):
    yaml_text = """
components:
  front:
    wasm: {caller}
    calls: [p]
    routes:
      - path: /front
        operation: call
  p:
    wasm: {obs_probe}
    circuit: {{ error_ratio: 0.5, window: 5s, min_requests: 4, cooldown: 1s }}
    routes:
      - path: /ok
        operation: ok
      - path: /fail
        operation: fail
"""
    srv = start_keel(yaml_text)
    for _ in range(4):
        assert srv.get("/fail").status == 500
    r = srv.get("/ok")
    assert r.status == 503 and r.header("Retry-After") == "1", r
    assert "component p is failing" in r.text
    # calls into it fail fast too, with a __host_call error
    r = srv.post("/front", b"p/ok/")
    assert r.text.startswith("error: component p is failing (circuit open)"), r
    text = scrape(srv)
    assert sample(text, "keel_circuit_state", component="p") == 1
    assert sample(text, "keel_rejected_total", component="p", reason="circuit_open") >= 1
    assert sample(text, "keel_component_calls_total", caller="front", callee="p",
                  outcome="circuit_open") == 1
    h = json.loads(admin_get(srv, "/health")[1])["components"]["p"]
    assert h["status"] == "failing" and h["circuit"] == "open", h
    # after the cool-down one probe goes through; it succeeds and closes the circuit
    time.sleep(1.2)
    assert srv.get("/ok").status == 200
    assert srv.get("/ok").status == 200
    assert sample(scrape(srv), "keel_circuit_state", component="p") == 0
    log = srv.log()
    assert "circuit open" in log and "circuit half-open" in log and "circuit closed" in log


# ------------------------------------------------------------------ traces


class Collector:
    """An OTLP/HTTP JSON receiver on 127.0.0.1:port (POST /v1/traces)."""

    def __init__(self, port, keepalive=False, close_after=0):
        """keepalive: answer HTTP/1.1 and keep connections open;
        close_after: then close each connection after that many POSTs."""
        self.port = port
        self.spans = []
        self.lock = threading.Lock()
        self.server = None
        self.keepalive = keepalive
        self.close_after = close_after
        self.connections = 0
        self.posts = 0
        self.slowest_body = 0.0   # seconds from a POST's head to the end of its body

    def start(self):
        coll = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if coll.keepalive else "HTTP/1.0"

            def setup(self):
                super().setup()
                self.served = 0
                with coll.lock:
                    coll.connections += 1

            def do_POST(self):
                self.served += 1
                with coll.lock:
                    coll.posts += 1
                n = int(self.headers.get("Content-Length", 0))
                t0 = time.monotonic()
                body = self.rfile.read(n)
                took = time.monotonic() - t0
                with coll.lock:
                    coll.slowest_body = max(coll.slowest_body, took)
                ok = self.path == "/v1/traces" and \
                    self.headers.get("Content-Type") == "application/json"
                if ok:
                    doc = json.loads(body)
                    with coll.lock:
                        for rs in doc["resourceSpans"]:
                            for ss in rs["scopeSpans"]:
                                coll.spans.extend(ss["spans"])
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                if coll.close_after and self.served >= coll.close_after:
                    self.close_connection = True   # closed with no warning

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [s for s in self.spans if pred(s)]
            if got:
                return got
            time.sleep(0.05)
        return []


def attrs(span):
    return {a["key"]: list(a["value"].values())[0] for a in span.get("attributes", [])}


def test_traces_three_hop_chain_and_collector_outage(start_keel):
    port = free_port()
    coll = Collector(port)
    coll.start()
    srv = start_keel(f"observability: {{{{ otlp_endpoint: 'http://127.0.0.1:{port}', "
                     f"trace_sample: 1.0 }}}}\n" + CHAIN_YAML)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    r = srv.post("/a", b"b/call/c/echo/hop", headers={
        "traceparent": f"00-{trace}-{parent}-01", "tracestate": 'vendor=x,q="a\\b"'})
    assert r.body == b"hop"
    spans = coll.wait(lambda s: s["traceId"] == trace and attrs(s).get("keel.component") == "c")
    assert spans, "no span for c"
    time.sleep(0.3)
    with coll.lock:
        mine = [s for s in coll.spans if s["traceId"] == trace]
    assert len(mine) == 4, mine
    by_name = {s["name"].split(" ")[0] + ":" + attrs(s).get("keel.component", ""): s for s in mine}
    server = by_name["POST:a"]
    inv_a = by_name["invoke:a"]
    call_b = by_name["call:b"]
    call_c = by_name["call:c"]
    assert server["parentSpanId"] == parent and server["kind"] == 2
    assert attrs(server)["http.response.status_code"] == "200"
    assert server["traceState"] == 'vendor=x,q="a\\b"'  # escaped in the JSON, intact here
    assert inv_a["parentSpanId"] == server["spanId"]
    assert call_b["parentSpanId"] == inv_a["spanId"] and call_b["kind"] == 3
    assert call_c["parentSpanId"] == call_b["spanId"]
    assert attrs(call_b)["keel.caller"] == "a" and attrs(call_c)["keel.caller"] == "b"
    assert attrs(call_c)["keel.operation"] == "echo" and attrs(call_c)["keel.outcome"] == "ok"
    assert attrs(inv_a)["keel.operation"] == "call"
    for s in mine:
        assert s.get("status", {}).get("code", 0) == 0, s   # success: Unset
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0
        assert abs(int(s["startTimeUnixNano"]) / 1e9 - time.time()) < 60, s   # wall-clock time
    for child, par in ((inv_a, server), (call_b, inv_a), (call_c, call_b)):   # nested in time
        assert int(par["startTimeUnixNano"]) <= int(child["startTimeUnixNano"]), (par, child)
        assert int(child["endTimeUnixNano"]) <= int(par["endTimeUnixNano"]), (par, child)
    assert len({s["spanId"] for s in mine}) == 4
    # a trap is an error span with outcome trap
    srv.get("/trap")
    bad = coll.wait(lambda s: attrs(s).get("keel.outcome") == "trap")
    assert bad and bad[0]["status"]["code"] == 2
    # a new trace starts when traceparent is malformed
    srv.get("/hello", headers={"traceparent": "00-XYZ-nonsense-01"})
    assert coll.wait(lambda s: s["name"] == "GET /hello" and "parentSpanId" not in s)

    # collector down: spans are dropped and counted; export resumes after
    coll.stop()
    for _ in range(5):
        srv.get("/hello")
    deadline = time.monotonic() + 15
    dropped = 0
    while time.monotonic() < deadline:
        dropped = sample(scrape(srv), "keel_spans_dropped_total")
        if dropped >= 10:
            break
        time.sleep(0.2)
    assert dropped >= 10, dropped
    assert "cannot export spans" in srv.log()
    coll2 = Collector(port)
    coll2.start()
    try:
        srv.get("/hello", headers={"X-Request-Id": "after-outage"})
        got = coll2.wait(lambda s: attrs(s).get("keel.request_id") == "after-outage")
        assert got, "export did not resume"
        assert sample(scrape(srv), "keel_spans_exported_total") > 4
    finally:
        coll2.stop()


def test_trace_export_keeps_its_connection(start_keel):
    # an HTTP/1.1 collector: batches share one connection; one that the
    # collector closes without a word is replaced, and no span is lost
    port = free_port()
    coll = Collector(port, keepalive=True, close_after=3)
    coll.start()
    try:
        srv = start_keel(f"observability: {{{{ otlp_endpoint: 'http://127.0.0.1:{port}', "
                         f"trace_sample: 1.0 }}}}\n" + CHAIN_YAML)
        sent = 0
        t_end = time.monotonic() + 5.5   # the exporter sends at least once a second
        while time.monotonic() < t_end:
            assert srv.get("/hello", headers={"X-Request-Id": f"ka-{sent}"}).status == 200
            sent += 1
            time.sleep(0.1)
        want = {f"ka-{i}" for i in range(sent)}

        def delivered():
            with coll.lock:
                return {attrs(s).get("keel.request_id") for s in coll.spans} & want

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and delivered() != want:
            time.sleep(0.1)
        assert delivered() == want, sorted(want - delivered())
        with coll.lock:
            posts, conns = coll.posts, coll.connections
        assert posts >= 5, posts
        # 3 POSTs per connection at most, and never a connection per POST
        assert (posts + 2) // 3 <= conns < posts, (posts, conns)
        assert sample(scrape(srv), "keel_spans_dropped_total") == 0
        # a batch leaves whole: its body never waits for the collector's
        # delayed ACK (40 ms or more) on a kept connection
        assert coll.slowest_body < 0.03, coll.slowest_body
    finally:
        coll.stop()


def test_store_calls_are_spans_of_their_invocation(start_keel):
    """Each kv_* call of a traced request is a client span under the
    invocation that made it, naming the store, its backend and the outcome."""
    port = free_port()
    coll = Collector(port)
    coll.start()
    try:
        srv = start_keel(f"observability: {{{{ otlp_endpoint: 'http://127.0.0.1:{port}', "
                         f"trace_sample: 1.0 }}}}\n"
                         "stores:\n  main:\n    backend: sqlite\n    path: data/main.db\n"
                         "components:\n  kv:\n    wasm: {kv}\n    routes:\n"
                         "      - {{ path: /kv/*, operation: kv }}\n    kv: [main]\n")
        trace = "5bf92f3577b34da6a3ce929d0e0e4736"
        r = srv.request("PUT", "/kv/main/k1", body=b"v1",
                        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        assert r.status == 200, r
        r = srv.get("/kv/main/missing", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        assert r.status == 404, r
        got = coll.wait(lambda s: s["traceId"] == trace and s["name"] == "kv get main")
        assert got, "no span for the kv get"
        time.sleep(0.3)
        with coll.lock:
            mine = [s for s in coll.spans if s["traceId"] == trace]
        kv = {s["name"]: s for s in mine if s["name"].startswith("kv ")}
        assert set(kv) == {"kv set main", "kv get main"}, [s["name"] for s in mine]
        invokes = {s["spanId"] for s in mine if s["name"].startswith("invoke ")}
        for s in kv.values():
            a = attrs(s)
            assert s["parentSpanId"] in invokes and s["kind"] == 3, s
            assert a["keel.store"] == "main" and a["db.system"] == "sqlite"
            assert a["keel.component"] == "kv"
            assert s.get("status", {}).get("code", 0) == 0, s
        assert attrs(kv["kv set main"])["keel.outcome"] == "ok"
        assert attrs(kv["kv get main"])["keel.outcome"] == "absent"
    finally:
        coll.stop()


def test_sampling_zero_exports_nothing_but_logs_trace_ids(start_keel):
    port = free_port()
    coll = Collector(port)
    coll.start()
    try:
        srv = start_keel(f"observability: {{{{ otlp_endpoint: 'http://127.0.0.1:{port}', "
                         f"trace_sample: 0 }}}}\n" + CHAIN_YAML)
        srv.get("/hello", headers={"X-Request-Id": "unsampled"})
        # an incoming sampled parent is honoured
        srv.get("/hello", headers={"traceparent":
                                   "00-11111111111111111111111111111111-2222222222222222-01"})
        assert coll.wait(lambda s: s["traceId"] == "1" * 32)
        assert not [s for s in coll.spans if attrs(s).get("keel.request_id") == "unsampled"]
        a = next(ln for ln in json_lines(srv) if ln.get("request_id") == "unsampled")
        assert re.fullmatch(r"[0-9a-f]{32}", a["trace_id"])
    finally:
        coll.stop()
