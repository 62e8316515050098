"""Safe change on a running `keel up`: hot swap, canary with automatic
rollback, promote and rollback by hand, refusals that leave the running
version alone, and reloads of keel.yaml (SIGHUP, POST /admin/reload) —
the swaps under load from client threads, which must see zero failed
requests.

Components: tests/components/release.c built as release.wasm ("release
1"), release_v2.wasm ("release 2"), release_bad.wasm (every request
fails) and release_slow.wasm (40 ms per answer)."""
import http.client
import json
import re
import signal
import subprocess
import threading
import time

import pytest

LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
ADMIN_RE = re.compile(r"admin endpoints at http://[^:]+:(\d+)")
TOKEN = "deploy-test-token"
RELEASES = ("release", "release_v2", "release_bad", "release_slow")
ADMIN_YAML = "admin: { listen: 127.0.0.1:0, token_file: admin.token, audit_log: audit.jsonl }\n"


@pytest.fixture(scope="module")
def releases(built_guests, keel_bin, base_env):
    """Paths of the release builds, with their optimized code in the
    session's cache (so default deploys, which compile with the optimized
    tier, take a cache hit)."""
    paths = {}
    for name in RELEASES:
        p = built_guests / "components" / f"{name}.wasm"
        assert p.is_file(), f"missing {p}"
        paths[name] = p
    procs = [subprocess.Popen([str(keel_bin), "compile", "--quiet", "--tier", "opt", str(p)],
                              env=base_env) for p in paths.values()]
    for p in procs:
        assert p.wait(timeout=600) == 0
    return paths


class Server:
    def __init__(self, proc, log_path, port, admin_port, dir):
        self.proc, self.log_path, self.port, self.admin_port, self.dir = (
            proc, log_path, port, admin_port, dir)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def req(self, method, path, body=None, admin=False, token=TOKEN, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port if admin else self.port,
                                       timeout=timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def admin_json(self, path):
        st, data = self.req("GET", path, admin=True, token=None)
        assert st == 200, data
        return json.loads(data)

    def metrics(self):
        st, data = self.req("GET", "/metrics", admin=True, token=None)
        assert st == 200, data
        return data.decode()

    def audit(self):
        """The records of the audit log, oldest first."""
        return [json.loads(l) for l in (self.dir / "audit.jsonl").read_text().splitlines()]

    def deploy(self, wasm, query=""):
        """Uploads wasm (a path) as component rel's new version, query
        added to the URL; the upload must succeed. Returns its answer."""
        st, body = self.req("PUT", "/admin/components/rel" + query, wasm.read_bytes(),
                            admin=True)
        assert st == 200, body
        return json.loads(body)

    def wait_log_line(self, text, what, timeout=60):
        """The first line of the log that contains text, once there is one."""
        wait_for(lambda: text in self.log(), what, timeout=timeout, srv=self)
        return next(l for l in self.log().splitlines() if text in l)

    def ctl(self, keel_bin, env, *args):
        return subprocess.run([str(keel_bin), "ctl", "--admin",
                               f"http://127.0.0.1:{self.admin_port}", "--token-file",
                               str(self.dir / "admin.token"), *args], env=env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture
def serve(tmp_path, keel_bin, base_env, releases):
    servers = []

    def start(components_yaml, extra=""):
        (tmp_path / "admin.token").write_text(f"ci.deploy {TOKEN}\n")
        text = ADMIN_YAML + extra + "components:\n" + components_yaml
        for name, p in releases.items():
            text = text.replace("{" + name + "}", str(p))
        (tmp_path / "keel.yaml").write_text(text)
        log_path = tmp_path / f"keel-{len(servers)}.log"
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([str(keel_bin), "up", "-f", "keel.yaml", "--listen",
                                     "127.0.0.1:0"], cwd=tmp_path, env=base_env,
                                    stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        srv = Server(proc, log_path, 0, 0, tmp_path)
        servers.append(srv)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m, a = LISTEN_RE.search(srv.log()), ADMIN_RE.search(srv.log())
            if m and a:
                srv.port, srv.admin_port = int(m.group(2)), int(a.group(1))
                return srv
            assert proc.poll() is None, srv.tail()
            time.sleep(0.05)
        pytest.fail("keel up did not start\n" + srv.tail())

    yield start
    for srv in servers:
        if srv.proc.poll() is None:
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(60) == 0, srv.tail()


class Load:
    """Client threads, each on one keep-alive connection, sending GET path
    until stopped; every answer is recorded. No retries: a request that
    gets no answer is a failure."""

    def __init__(self, srv, path, threads=3):
        self.srv, self.path = srv, path
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.statuses, self.bodies, self.failures = {}, {}, []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        while not self.stop_flag.is_set():
            try:
                c.request("GET", self.path)
                r = c.getresponse()
                body = r.read().decode(errors="replace")
            except Exception as e:   # noqa: BLE001 - any failure counts
                with self.lock:
                    self.failures.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
                continue
            with self.lock:
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                key = body if r.status == 200 else f"{r.status}"
                self.bodies[key] = self.bodies.get(key, 0) + 1
        c.close()

    def total(self):
        with self.lock:
            return sum(self.statuses.values())

    def wait_more(self, n, what):
        """Waits until more than n answers beyond those recorded so far."""
        base = self.total()
        wait_for(lambda: self.total() > base + n, what, srv=self.srv)

    def stop_all_answered(self):
        """Stops the clients; every request they sent must have had an answer."""
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        assert not self.failures, self.failures[:5]
        return self


def start_load(srv, path, answers):
    """Load on path, returned once it has had more than answers answers."""
    load = Load(srv, path)
    wait_for(lambda: load.total() > answers, "load to start", srv=srv)
    return load


def wait_for(pred, what, timeout=60, srv=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}\n" + (srv.tail() if srv else ""))


REL = ("  rel:\n    wasm: {release}\n    routes:\n"
       "      - { path: /v, operation: version }\n"
       "      - { path: /slow, methods: [POST], operation: slow }\n")


def test_hot_swap_under_load_drops_nothing(serve, releases):
    srv = serve(REL)
    assert srv.req("GET", "/v") == (200, b"release 1\n")
    load = start_load(srv, "/v", 200)
    out = srv.deploy(releases["release_v2"])
    assert out["tier"] == "opt" and out["previous"] and out["sha256"] != out["previous"]
    # the answer comes once new requests run the new version
    assert srv.req("GET", "/v") == (200, b"release 2\n")
    load.wait_more(200, "more load after the swap")
    load.stop_all_answered()
    assert set(load.bodies) == {"release 1\n", "release 2\n"}, load.bodies
    comps = srv.admin_json("/admin/components")["components"]
    assert comps[0]["versions"][0]["sha256"] == out["sha256"]
    assert comps[0]["previous"] == out["previous"]


def test_running_request_finishes_on_the_old_version(serve, releases):
    srv = serve(REL)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=srv.req("POST", "/slow", b"1500")))
    t.start()
    time.sleep(0.4)
    assert srv.deploy(releases["release_v2"], "?tier=fast")["tier"] == "fast"
    assert srv.req("GET", "/v") == (200, b"release 2\n")
    t.join(30)
    assert result["r"] == (200, b"release 1\n")


def test_canary_worse_in_latency_is_rolled_back_by_keel(serve, releases, keel_bin, base_env):
    srv = serve(REL, "rollout: { window: 30s, min_requests: 40, min_p99: 10ms }\n")
    load = start_load(srv, "/v", 100)
    r = srv.ctl(keel_bin, base_env, "deploy", "rel", str(releases["release_slow"]),
                "--tier", "fast", "--canary", "50")
    assert r.returncode == 0, r.stderr
    assert "canary" in r.stdout and "50%" in r.stdout
    line = srv.wait_log_line("rolled back automatically", "the automatic rollback",
                             timeout=90)
    load.wait_more(100, "load after the rollback")
    load.stop_all_answered()
    assert set(load.statuses) == {200}, load.statuses
    assert "release 4\n" in load.bodies, "the canary never served"
    assert "p99 latency" in line, line
    auto = [e for e in srv.audit() if e["event"] == "component.rolled_back"]
    assert len(auto) == 1 and auto[0]["who"] == "keel" and auto[0]["automatic"] is True
    assert "p99 latency" in auto[0]["why"]
    comps = srv.admin_json("/admin/components")["components"]
    assert comps[0]["state"] == "stable" and len(comps[0]["versions"]) == 1
    assert srv.req("GET", "/v") == (200, b"release 1\n")


def test_canary_with_errors_is_rolled_back_and_visible_by_version(serve, releases):
    srv = serve(REL, "rollout: { window: 30s, min_requests: 30 }\n")
    out = srv.deploy(releases["release_bad"], "?stage=canary&tier=fast")
    sha = out["sha256"]
    assert out["staged"] is True
    assert srv.req("GET", "/v") == (200, b"release 1\n")     # staged serves nothing
    st, body = srv.req("POST", "/admin/components/rel/canary",
                       json.dumps({"wasm_sha256": sha[:16], "weight": 40}), admin=True)
    assert st == 200, body
    metrics = srv.metrics()
    assert re.search(rf'keel_component_version_weight{{component="rel",version="{sha[:12]}",'
                     rf'role="canary"}} 40', metrics), metrics[-2000:]
    load = Load(srv, "/v")
    line = srv.wait_log_line("rolled back automatically", "the automatic rollback",
                             timeout=90)
    load.wait_more(100, "load after the rollback")
    load.stop_all_answered()
    # the only failures are the canary's own 500s, a minority, and none after the rollback
    assert 0 < load.statuses.get(500, 0) < load.statuses[200], load.statuses
    assert "error ratio" in line, line
    assert 'keel_component_rollbacks_total{component="rel",automatic="true"} 1' in \
        srv.metrics()
    for _ in range(30):
        assert srv.req("GET", "/v") == (200, b"release 1\n")


def test_promote_rollback_and_roll_forward_by_hand(serve, releases, keel_bin, base_env):
    srv = serve(REL)
    v1 = srv.admin_json("/admin/state")["components"]["rel"]["stable"]
    d1 = srv.admin_json("/admin/state")["deployment_digest"]
    r = srv.ctl(keel_bin, base_env, "deploy", "rel", str(releases["release_v2"]), "--canary",
                "30")
    assert r.returncode == 0, r.stderr
    st = srv.ctl(keel_bin, base_env, "status")
    assert st.returncode == 0 and "canary" in st.stdout, st.stdout
    assert srv.ctl(keel_bin, base_env, "promote", "rel").returncode == 0
    state = srv.admin_json("/admin/state")
    v2 = state["components"]["rel"]["stable"]
    assert v2 != v1 and "canary" not in state["components"]["rel"]
    assert state["deployment_digest"] != d1
    assert f'keel_deployment_info{{digest="{state["deployment_digest"]}"}} 1' in srv.metrics()
    assert srv.req("GET", "/v") == (200, b"release 2\n")
    r = srv.ctl(keel_bin, base_env, "rollback", "rel", "--why", "customer reports")
    assert r.returncode == 0, r.stderr
    assert srv.req("GET", "/v") == (200, b"release 1\n")
    assert srv.admin_json("/admin/state")["deployment_digest"] == d1
    assert srv.ctl(keel_bin, base_env, "rollback", "rel").returncode == 0   # forward again
    assert srv.req("GET", "/v") == (200, b"release 2\n")
    assert "customer reports" in srv.log()
    r = srv.ctl(keel_bin, base_env, "promote", "rel")
    assert r.returncode == 1 and "409" in r.stderr and "no canary" in r.stderr
    # every change is in the audit trail, with who and the sha256s, and the chain holds
    records = srv.audit()
    events = [(r["event"], r["who"]) for r in records if r["event"].startswith("component.")]
    assert events == [("component.staged", "ci.deploy"), ("component.canaried", "ci.deploy"),
                      ("component.promoted", "ci.deploy"),
                      ("component.rolled_back", "ci.deploy"),
                      ("component.rolled_back", "ci.deploy")], events
    promoted = next(r for r in records if r["event"] == "component.promoted")
    assert promoted["old_sha256"] == v1 and promoted["new_sha256"] == v2
    back = [r for r in records if r["event"] == "component.rolled_back"]
    assert back[0]["why"] == "customer reports"
    v = subprocess.run([str(keel_bin), "audit", "verify", str(srv.dir / "audit.jsonl")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


def wat_module(tmp_path, text):
    wat, wasm = tmp_path / "m.wat", tmp_path / "m.wasm"
    wat.write_text(text)
    subprocess.run(["wat2wasm", str(wat), "-o", str(wasm)], check=True)
    return wasm.read_bytes()


def test_refusals_change_nothing(serve, releases, tmp_path):
    srv = serve(REL)
    before = srv.admin_json("/admin/state")
    good = releases["release_v2"].read_bytes()
    assert srv.req("PUT", "/admin/components/rel", good, admin=True, token=None)[0] == 401
    assert srv.req("PUT", "/admin/components/rel", good, admin=True, token="wrong")[0] == 403
    st, body = srv.req("PUT", "/admin/components/rel", b"\0asm garbage", admin=True)
    assert st == 422 and b"rel" in body, body
    # a module without the waPC exports is not a waPC component
    st, body = srv.req("PUT", "/admin/components/rel?tier=fast",
                       wat_module(tmp_path, '(module (memory (export "memory") 1))'), admin=True)
    assert st == 422 and b"__guest_call" in body, body
    # a module importing a host function Keel does not grant
    st, body = srv.req("PUT", "/admin/components/rel?tier=fast", wat_module(
        tmp_path, '(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1)'
                  ' (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'),
        admin=True)
    assert st == 422 and b"launch_missiles" in body, body
    assert srv.req("PUT", "/admin/components/nope", good, admin=True)[0] == 404
    assert srv.req("PUT", "/admin/components/rel?tier=turbo", good, admin=True)[0] == 400
    assert srv.req("POST", "/admin/components/rel/promote", admin=True)[0] == 409
    st, body = srv.req("POST", "/admin/components/rel/canary",
                       json.dumps({"wasm_sha256": "ab" * 32, "weight": 5}), admin=True)
    assert st == 404, body
    st, _ = srv.req("POST", "/admin/components/rel/canary", b'{"weight": 5}', admin=True)
    assert st == 400
    assert srv.req("GET", "/v") == (200, b"release 1\n")
    assert srv.admin_json("/admin/state") == before
    # refused uploads are not kept
    kept = list((srv.dir / "keel-state" / "versions").glob("*.wasm"))
    assert kept == [], kept


def write_yaml(srv, components_yaml):
    text = ADMIN_YAML + "components:\n" + components_yaml
    (srv.dir / "keel.yaml.new").write_text(text)
    (srv.dir / "keel.yaml.new").replace(srv.dir / "keel.yaml")


def test_reload_valid_and_invalid_under_load(serve, releases):
    srv = serve(REL)
    load = start_load(srv, "/v", 100)
    rel2 = REL.replace("{release}", str(releases["release"])) + (
        f"  other:\n    wasm: {releases['release_v2']}\n    routes:\n"
        "      - { path: /other, operation: version }\n")
    write_yaml(srv, rel2)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.req("GET", "/other")[0] == 200, "the new component", srv=srv)
    assert srv.req("GET", "/other") == (200, b"release 2\n")
    load.wait_more(100, "load after the reload")
    # an invalid manifest: refused, the running configuration keeps serving
    (srv.dir / "keel.yaml").write_text((srv.dir / "keel.yaml").read_text() +
                                       "    limits: { memory: lots }\n")
    srv.proc.send_signal(signal.SIGHUP)
    line = srv.wait_log_line("reload refused", "the refusal")
    assert re.search(r"keel\.yaml:\d+:\d+: ", line), line
    st, body = srv.req("POST", "/admin/reload", admin=True)
    assert st == 422 and b"keel.yaml:" in body, body
    assert srv.req("POST", "/admin/reload", admin=True, token="wrong")[0] == 403
    load.wait_more(100, "load after the refusals")
    load.stop_all_answered()
    assert set(load.statuses) == {200}, load.statuses
    assert srv.req("GET", "/other") == (200, b"release 2\n")
    metrics = srv.metrics()
    assert "keel_config_reloads_total 1" in metrics
    assert "keel_config_reload_failures_total 2" in metrics
    events = [r["event"] for r in srv.audit()]
    assert events.count("config.reloaded") == 1 and events.count("config.reload_failed") == 2
    # a component removed by a valid reload stops being routed
    write_yaml(srv, REL.replace("{release}", str(releases["release"])))
    st, body = srv.req("POST", "/admin/reload", admin=True)
    assert st == 200, body
    assert srv.req("GET", "/other")[0] == 404


def test_deployed_version_survives_a_reload_until_the_manifest_changes(serve, releases):
    srv = serve(REL)
    srv.deploy(releases["release_v2"], "?tier=fast")
    assert srv.req("POST", "/admin/reload", admin=True)[0] == 200
    assert srv.req("GET", "/v") == (200, b"release 2\n")
    # the manifest now names another wasm for rel: the manifest wins
    write_yaml(srv, REL.replace("{release}", str(releases["release_slow"])))
    assert srv.req("POST", "/admin/reload", admin=True)[0] == 200
    assert srv.req("GET", "/v") == (200, b"release 4\n")


def with_custom_section(wasm: bytes, text: str) -> bytes:
    """The same module with a custom section appended: new bytes, so a
    new sha256 and a cold compile cache."""
    def leb(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    name = b"keel-test"
    payload = leb(len(name)) + name + text.encode()
    return wasm + b"\x00" + leb(len(payload)) + payload


def test_admin_listener_answers_while_a_deploy_compiles(serve, releases):
    srv = serve(REL)
    wasm = with_custom_section(releases["release_v2"].read_bytes(), f"{time.time()}")
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=srv.req("PUT", "/admin/components/rel", wasm, admin=True)))
    t.start()
    time.sleep(0.2)
    answered = 0
    while t.is_alive():
        t0 = time.monotonic()
        st, _ = srv.req("GET", "/metrics", admin=True, token=None, timeout=5)
        assert st == 200 and time.monotonic() - t0 < 2.0
        answered += 1
        time.sleep(0.05)
    t.join()
    st, body = result["r"]
    assert st == 200 and json.loads(body)["tier"] == "opt", body
    assert answered >= 1, "the deploy finished before any scrape: nothing was shown"
    assert srv.req("GET", "/v") == (200, b"release 2\n")
