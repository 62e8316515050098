"""`keel up`: components served over real HTTP on 127.0.0.1.

Each test writes a keel.yaml into its tmp_path (wasm paths point at the
modules `make guests` built under $KEEL_BUILD/components), starts
`keel up -f keel.yaml --listen 127.0.0.1:0`, reads the port from the
"listening on http://ADDR" log line, and talks HTTP to it with http.client
or raw sockets. Keel's log (stderr) goes to a file, never a pipe, so a
chatty server cannot block on a full pipe.

Every server is stopped with SIGTERM at the end of its test; the fixture
fails the test if keel died during it or does not exit 0 on SIGTERM.

Guests: tests/components/{hello,caller,trap,cgi_env,bad_cgi,up_probe}.c.
"""
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
START_TIMEOUT = 120.0     # first start compiles every module (fast tier)
STOP_TIMEOUT = 40.0       # shutdown.grace is 30 s by default
SLACK = 1.5               # seconds allowed past a deadline on a 2-core box


# ------------------------------------------------------------------ helpers

@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return (f"Resp({self.status}, headers={dict(self.headers.items())!r}, "
                f"body={self.body[:300]!r}, elapsed={self.elapsed:.3f})")


class KeelServer:
    """One `keel up` process. request() opens a new connection per call;
    connection() gives a keep-alive http.client connection."""

    def __init__(self, proc, log_path: Path, host: str, port: int):
        self.proc = proc
        self.log_path = log_path
        self.host = host
        self.port = port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def connection(self, timeout=30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30.0, conn=None,
                encode_chunked=False) -> Resp:
        own = conn is None
        c = conn or self.connection(timeout)
        t0 = time.monotonic()
        try:
            c.request(method, path, body=body, headers=headers or {},
                      encode_chunked=encode_chunked)
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, r.headers, data, time.monotonic() - t0)
        finally:
            if own:
                c.close()

    def get(self, path, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path, body=b"", **kw) -> Resp:
        return self.request("POST", path, body=body, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT) -> int:
        self.expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"keel did not exit within {timeout}s of signal {sig}\n{self.tail()}")

    def tail(self, n=60) -> str:
        lines = self.log().splitlines()
        return "--- keel log (tail) ---\n" + "\n".join(lines[-n:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cgi_vars(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


UP_COMPONENTS = ("hello", "caller", "trap", "cgi_env", "bad_cgi", "up_probe", "up_cgi", "obs_probe")


@pytest.fixture(scope="session")
def warm_cache(keel_bin, base_env, built_guests):
    """Fills the session's KEEL_CACHE with the optimized build of every
    component the tests serve, two at a time. Without it each `keel up`
    starts on the fast tier and spawns a detached `cc -O2` build per
    component (one per component even when several share a module), which
    on a 2-core machine costs more than all the tests."""
    pending = list(UP_COMPONENTS)
    running = []
    while pending or running:
        while pending and len(running) < 2:
            m = built_guests / "components" / f"{pending.pop(0)}.wasm"
            running.append((m, subprocess.Popen([str(keel_bin), "compile", "--quiet", "--tier",
                                                 "opt", str(m)], env=base_env,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)))
        m, p = running.pop(0)
        _, err = p.communicate(timeout=600)
        if p.returncode != 0:
            pytest.fail(f"keel compile --tier opt {m} failed: {err.decode(errors='replace')}")
    return True


@pytest.fixture
def comp(built_guests):
    """comp(name) -> absolute path of $KEEL_BUILD/components/NAME.wasm."""
    def path(name):
        p = built_guests / "components" / f"{name}.wasm"
        if not p.is_file():
            pytest.fail(f"missing test component {p}")
        return str(p)
    return path


@pytest.fixture
def start_keel(tmp_path, keel_bin, base_env, comp, warm_cache):
    """start_keel(yaml, listen="127.0.0.1:0", args=(), wait=True, env=None) -> KeelServer.

    yaml may use {NAME} for the path of components/NAME.wasm. With wait,
    blocks until the listening line appears (failing if keel exits first).
    At teardown: fails if keel died during the test, else sends SIGTERM
    and requires exit status 0."""
    servers = []

    def start(yaml, listen="127.0.0.1:0", args=(), wait=True, name="keel.yaml", env=None):
        names = set(re.findall(r"\{(\w+)\}", yaml))
        text = yaml.format(**{n: comp(n) for n in names})
        (tmp_path / name).write_text(text)
        log_path = tmp_path / f"keel-{len(servers)}.log"
        argv = [str(keel_bin), "up", "-f", name]
        if listen is not None:
            argv += ["--listen", listen]
        if "--admin-listen" not in args and "admin:" not in text:
            argv += ["--admin-listen", "127.0.0.1:0"]   # never the shared default 9090
        argv += list(args)
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(argv, cwd=tmp_path, env={**base_env, **(env or {})},
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        srv = KeelServer(proc, log_path, "", 0)
        srv.expected_exit = False
        servers.append(srv)
        if not wait:
            return srv
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = LISTEN_RE.search(srv.log())
            if m:
                srv.host, srv.port = m.group(1), int(m.group(2))
                return srv
            if proc.poll() is not None:
                pytest.fail(f"keel up exited with {proc.returncode} before listening\n"
                            f"{srv.tail()}")
            time.sleep(0.02)
        pytest.fail(f"keel up did not log 'listening on' within {START_TIMEOUT}s\n{srv.tail()}")

    yield start

    problems = []
    for srv in servers:
        if srv.proc.poll() is not None:
            if getattr(srv, "expected_exit", False):
                continue
            problems.append(f"keel (pid {srv.pid}) exited on its own with "
                            f"{srv.proc.returncode} during the test\n{srv.tail()}")
            continue
        rc = srv.stop()
        if rc != 0:
            problems.append(f"keel exited {rc} on SIGTERM (expected 0)\n{srv.tail()}")
    if problems:
        pytest.fail("\n\n".join(problems))


def assert_generic_error(r: Resp, status: int, prefix: str):
    """Keel's own failure body: one line naming the request id, which the
    response also carries as X-Request-Id: "<what> (request id ID)"."""
    assert r.status == status, r
    rid = r.header("X-Request-Id")
    assert rid and re.fullmatch(r"[0-9A-Za-z._-]{1,64}", rid), r
    assert r.text.strip() == f"{prefix} (request id {rid})", r


# ------------------------------------------------------------------ routes

ROUTES_YAML = """
components:
  a:
    wasm: {up_probe}
    config: {{ who: a }}
    routes:
      - path: /exact
        operation: env
      - path: /both
        operation: env
  b:
    wasm: {up_probe}
    config: {{ who: b }}
    routes:
      - path: /p/*
        operation: env
      - path: /both/*
        operation: env
  c:
    wasm: {up_probe}
    config: {{ who: c }}
    routes:
      - path: /both/deeper/*
        operation: env
  m:
    wasm: {up_probe}
    config: {{ who: m }}
    routes:
      - path: /m
        methods: [GET, POST]
        operation: env
      - path: /split/*
        methods: [GET]
        operation: env
  n:
    wasm: {up_probe}
    config: {{ who: n }}
    routes:
      - path: /split/*
        methods: [POST, DELETE]
        operation: env
"""


def who(srv, path, method="POST"):
    """Which component answered: the env op answers who=NAME for body 'who'."""
    r = srv.request(method, path, body=b"who")
    if r.status != 200:
        return r.status
    assert r.text.startswith("who="), r
    return r.text[4:]


def test_exact_route(start_keel):
    srv = start_keel(ROUTES_YAML)
    assert who(srv, "/exact") == "a"
    assert who(srv, "/exact?x=1&y") == "a"
    for p in ("/exact/", "/exact/x", "/exactly", "/exac", "/", "/EXACT"):
        assert who(srv, p) == 404, p


def test_prefix_route_matches_bare_slash_and_below(start_keel):
    srv = start_keel(ROUTES_YAML)
    for p in ("/p", "/p/", "/p/y", "/p/y/z/", "/p?q=1", "/p/?q", "/p/a%20b"):
        assert who(srv, p) == "b", p
    for p in ("/pq", "/pq/x", "/P/x", "/", "/x/p/"):
        assert who(srv, p) == 404, p


def test_exact_beats_prefix_and_longest_prefix_wins(start_keel):
    srv = start_keel(ROUTES_YAML)
    assert who(srv, "/both") == "a"            # exact beats /both/*
    assert who(srv, "/both/") == "b"
    assert who(srv, "/both/x") == "b"
    assert who(srv, "/both/deeper") == "c"     # /both/deeper/* is longer
    assert who(srv, "/both/deeper/") == "c"
    assert who(srv, "/both/deeper/x/y") == "c"
    assert who(srv, "/both/deeperx") == "b"    # segment boundary


def test_methods_list_and_405(start_keel):
    srv = start_keel(ROUTES_YAML)
    assert who(srv, "/m", "GET") == "m"
    assert who(srv, "/m", "POST") == "m"
    r = srv.request("HEAD", "/m")              # GET routes answer HEAD
    assert r.status == 200 and r.body == b"", r
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        r = srv.request(method, "/m", body=b"who")
        assert_generic_error(r, 405, "method not allowed")
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        assert {"GET", "POST"} <= allow, r
        assert method not in allow, r
    # One path split by method across two components.
    assert who(srv, "/split/x", "GET") == "m"
    assert who(srv, "/split/x", "POST") == "n"
    assert who(srv, "/split", "DELETE") == "n"
    r = srv.request("PUT", "/split/x", body=b"who")
    assert r.status == 405, r
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    assert {"GET", "POST", "DELETE"} <= allow, r


def test_unmatched_is_404_with_request_id(start_keel):
    srv = start_keel(ROUTES_YAML)
    r = srv.get("/nowhere")
    assert_generic_error(r, 404, "no route")
    # A well-formed incoming X-Request-Id is kept and echoed.
    r = srv.get("/nowhere", headers={"X-Request-Id": "abc-123.XYZ_9"})
    assert r.status == 404 and r.header("X-Request-Id") == "abc-123.XYZ_9", r
    r = srv.request("POST", "/exact", body=b"who", headers={"X-Request-Id": "trace-42"})
    assert r.status == 200 and r.header("X-Request-Id") == "trace-42", r


def test_request_id_and_header_limits(start_keel):
    srv = start_keel(ROUTES_YAML)
    # Malformed incoming ids (too long, bad characters) are replaced.
    for bad in ("x" * 65, "has space", "semi;colon"):
        r = srv.request("POST", "/exact", body=b"who", headers={"X-Request-Id": bad})
        assert r.status == 200, r
        rid = r.header("X-Request-Id")
        assert rid and rid != bad and re.fullmatch(r"[0-9A-Za-z._-]{1,64}", rid), (bad, r)
    # Request headers over 16 KiB: 431, and the guest does not run.
    r = srv.request("POST", "/exact", body=b"who", headers={"X-Big": "h" * (17 * 1024)})
    assert_generic_error(r, 431, "request header fields too large")
    assert srv.request("POST", "/exact", body=b"who").status == 200


# ------------------------------------------------------------------ wagi

WAGI_YAML = """
components:
  cgi:
    wasm: {cgi_env}
    abi: wagi
    env: {{ APP_ENV: production, SCRIPT_NAME: /evil, HTTP_X_TEST: from-env }}
    config: {{ greeting: hi }}
    routes:
      - path: /cgi/*
      - path: /cgi-exact
  bad:
    wasm: {bad_cgi}
    abi: wagi
    limits: {{ timeout: 500ms }}
    routes:
      - path: /bad
"""


def test_wagi_cgi_meta_variables(start_keel):
    srv = start_keel(WAGI_YAML)
    cases = [
        # path, SCRIPT_NAME, PATH_INFO
        ("/cgi", "/cgi", ""),
        ("/cgi/", "/cgi", "/"),
        ("/cgi/a/b", "/cgi", "/a/b"),
        ("/cgi/a%20b/c%2Fd", "/cgi", "/a b/c/d"),
        ("/cgi-exact", "/cgi-exact", ""),
    ]
    for path, script, info in cases:
        r = srv.get(path + "?a=1&b=%20x&c")
        assert r.status == 200, (path, r)
        v = cgi_vars(r.text)
        assert v["SCRIPT_NAME"] == script, (path, r.text)
        assert v["PATH_INFO"] == info, (path, r.text)
        assert v["QUERY_STRING"] == "a=1&b=%20x&c", (path, r.text)
    r = srv.get("/cgi/x")
    assert cgi_vars(r.text)["QUERY_STRING"] == "", r.text


def test_wagi_request_headers_and_body_via_stdin(start_keel):
    srv = start_keel(WAGI_YAML)
    c = srv.connection()
    body = b"name=keel&x=" + b"y" * 1000
    c.putrequest("POST", "/cgi/form?z=9", skip_accept_encoding=True)
    for k, v in [("X-Test", "hello there"), ("User-Agent", "up-test/1"),
                 ("X-Multi", "one"), ("X-Multi", "two"), ("X_Under_Score", "sneaky"),
                 ("Proxy", "http://evil:1"), ("Content-Type", "application/x-www-form-urlencoded"),
                 ("Content-Length", str(len(body)))]:
        c.putheader(k, v)
    c.endheaders(body)
    raw = c.getresponse()
    r = Resp(raw.status, raw.headers, raw.read(), 0)
    c.close()
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain", r
    assert r.header("X-Cgi") == "yes", r
    v = cgi_vars(r.text)
    assert v["REQUEST_METHOD"] == "POST"
    assert v["HTTP_X_TEST"] == "hello there"           # request wins over env:
    assert v["SCRIPT_NAME"] == "/cgi"                  # request wins over env:
    assert v["PATH_INFO"] == "/form"
    assert v["QUERY_STRING"] == "z=9"
    assert v["HTTP_USER_AGENT"] == "up-test/1"
    assert v["HTTP_X_MULTI"] == "one, two"
    assert v["HTTP_X_UNDER_SCORE"] == "(unset)"
    assert v["HTTP_PROXY"] == "(unset)"
    assert v["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert v["CONTENT_LENGTH"] == str(len(body))
    assert v["SERVER_NAME"] == "127.0.0.1"
    assert v["SERVER_PORT"] == str(srv.port)
    assert v["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert v["REMOTE_ADDR"] == "127.0.0.1"
    assert v["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert v["APP_ENV"] == "production"
    assert v["greeting"] == "hi"
    assert v["KEEL_REQUEST_ID"] == r.header("X-Request-Id")
    # cgi_env reads up to 4 KiB of stdin and prints it.
    assert v["BODY"] == body.decode(), r.text
    # Its stderr line went to keel's log, tagged with the component.
    assert re.search(r'"msg":"request \S+: stderr: cgi_env served z=9","component":"cgi"',
                     srv.log()), srv.tail()


def test_wagi_status_and_location_headers(start_keel):
    srv = start_keel(WAGI_YAML)
    r = srv.get("/cgi/x?status")
    assert r.status == 404 and r.body == b"nope\n", r
    assert r.header("Status") is None, r
    r = srv.get("/cgi/x?redirect")
    assert r.status == 302 and r.header("Location") == "/elsewhere", r


def test_wagi_failures(start_keel):
    srv = start_keel(WAGI_YAML)
    for q in ("nohdr", "nonl", "badstatus", "exit", "big"):
        assert_generic_error(srv.get(f"/bad?{q}"), 502, "bad gateway")
    assert_generic_error(srv.get("/bad?trap"), 500, "internal error")
    r = srv.get("/bad?exit_valid")
    assert r.status == 200 and r.body == b"partial\n", r
    r = srv.get("/bad?spin")
    assert_generic_error(r, 504, "deadline exceeded")
    assert 0.4 <= r.elapsed <= 0.5 + SLACK, r
    assert srv.get("/bad").status == 200


UPCGI_YAML = """
components:
  u:
    wasm: {up_cgi}
    abi: wagi
    env: {{ SCRIPT_NAME: /evil, MYVAR: mine }}
    config: {{ cfgkey: cfgval }}
    limits: {{ timeout: 700ms, memory: 16MiB, body: 4MiB }}
    routes:
      - path: /u/*
  probe:
    wasm: {up_probe}
    routes:
      - path: /p/*
        operation: echo
"""


def raw_request(port, target, extra=b"", body=b"", method=b"GET") -> bytes:
    """Sends one request with the target exactly as given (http.client
    would not let some of these through) and returns the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
                  (b"Content-Length: %d\r\n" % len(body) if body else b"") + extra + b"\r\n" +
                  body)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                return data
            data += d


def raw_env(port, target) -> dict:
    data = raw_request(port, target)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:500]
    return cgi_vars(body.decode("utf-8", "replace"))


def test_wagi_whole_body_via_stdin(start_keel):
    srv = start_keel(UPCGI_YAML)
    body = bytes(range(256)) * 4096          # 1 MiB, every byte value
    r = srv.post("/u/?echo", body)
    assert r.status == 200, r
    assert r.header("X-Len") == str(len(body)), r
    assert r.body == body
    r = srv.post("/u/?echo", b"")
    assert r.status == 200 and r.header("X-Len") == "0" and r.body == b"", r


def test_wagi_framing_headers_dropped(start_keel):
    srv = start_keel(UPCGI_YAML)
    r = srv.get("/u/?framing")
    assert r.status == 201 and r.body == b"abc", r
    assert r.header("Content-Length") == "3", r
    assert r.header("Transfer-Encoding") is None and r.header("Upgrade") is None, r
    assert r.header("Keep-Alive") is None, r
    assert r.header("X-Ok") == "1" and r.header("Status") is None, r


def test_wagi_keel_api_status_and_headers(start_keel):
    srv = start_keel(UPCGI_YAML)
    r = srv.get("/u/?keel")
    assert r.status == 202 and r.body == b"keel\n" and r.header("X-From-Keel") == "1", r
    r = srv.get("/u/?keelstatus")          # a CGI Status: wins over keel.http_set_status
    assert r.status == 203 and r.body == b"x", r


def test_wagi_limits(start_keel):
    srv = start_keel(UPCGI_YAML)
    assert_generic_error(srv.get("/u/?lines"), 502, "bad gateway")      # 101 header lines
    assert_generic_error(srv.get("/u/?bomb"), 500, "internal error")    # memory limit
    assert "memory limit" in srv.log(), srv.tail()
    r = srv.get("/u/?sleep")                                             # blocked in poll_oneoff
    assert_generic_error(r, 504, "deadline exceeded")
    assert r.elapsed <= 0.7 + SLACK, r
    assert srv.get("/u/").body == b"up_cgi\n"


def test_wagi_environment_precedence(start_keel):
    srv = start_keel(UPCGI_YAML)
    v = raw_env(srv.port, b"/u/a/b?env")
    assert v["SCRIPT_NAME"] == "/u" and v["PATH_INFO"] == "/a/b", v
    assert v["MYVAR"] == "mine" and v["cfgkey"] == "cfgval", v
    assert v["SERVER_SOFTWARE"].startswith("keel/"), v
    assert v["REQUEST_URI"] == "/u/a/b?env", v


# Percent-encoding. docs/abi.md: PATH_INFO is "the rest of the path,
# percent-decoded ... %00 stays encoded"; REQUEST_URI and keel.http_uri are
# the path plus ?query "as received"; src/http/server.c routes on the path
# with "dot segments resolved, unreserved %XX decoded".

def test_wagi_path_info_is_decoded_once(start_keel):
    srv = start_keel(UPCGI_YAML)
    # %2541 is "%41" once decoded; decoding twice gives "A".
    assert raw_env(srv.port, b"/u/a%2541?env")["PATH_INFO"] == "/a%41"
    # %252e%252e is "%2e%2e" once decoded; twice gives a ".." segment the
    # router never saw.
    assert raw_env(srv.port, b"/u/%252e%252e/secret?env")["PATH_INFO"] == "/%2e%2e/secret"


def test_wagi_path_info_keeps_nul_encoded(start_keel):
    srv = start_keel(UPCGI_YAML)
    assert raw_env(srv.port, b"/u/a%00b?env")["PATH_INFO"] == "/a%00b"


def test_request_uri_is_as_received(start_keel):
    srv = start_keel(UPCGI_YAML)
    assert raw_env(srv.port, b"/u/x%2541?env")["REQUEST_URI"] == "/u/x%2541?env"
    data = raw_request(srv.port, b"/p/a%2541?x=%2541")
    assert b"\r\nX-Uri: /p/a%2541?x=%2541\r\n" in data, data[:400]


def test_routing_does_not_decode_reserved_slash(start_keel):
    """%2F is reserved: '/u/%2e%2e%2fp/x' is a path under /u/ (segment
    '..%2fp'), not '/p/x' after decoding and resolving '..'."""
    srv = start_keel(UPCGI_YAML)
    data = raw_request(srv.port, b"/u/%2e%2e%2fp/x?env")
    assert b"X-Uri:" not in data, "request under /u/ was routed to /p/*:\n" + \
        data[:400].decode(errors="replace")
    data = raw_request(srv.port, b"/p%2Fx")
    assert data.startswith(b"HTTP/1.1 404"), data[:400]


# ------------------------------------------------------------------ wapc

WAPC_YAML = """
components:
  hello:
    wasm: {hello}
    config: {{ greeting: bonjour }}
    routes:
      - path: /hello
        operation: hello
      - path: /status
        operation: status
      - path: /meta/*
        operation: meta
      - path: /fail
        operation: fail
      - path: /headers
        operation: headers
      - path: /default
  probe:
    wasm: {up_probe}
    routes:
      - path: /echo/*
        operation: echo
      - path: /big
        operation: big
"""


def test_wapc_status_headers_body_round_trip(start_keel):
    srv = start_keel(WAPC_YAML)
    body = bytes(range(256)) * 400       # every byte value, 100 KiB
    r = srv.post("/echo/x/y?k=v&k2", body, headers={"X-Echo": "round trip \t ok",
                                                      "Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    assert r.body == body
    assert r.header("X-Echo-Back") == "round trip \t ok", r
    assert r.header("X-Method") == "POST", r
    assert r.header("X-Uri") == "/echo/x/y?k=v&k2", r
    assert r.header("X-Body-Len") == str(len(body)), r
    assert r.header("Content-Length") == str(len(body)), r
    for code in (200, 201, 202, 301, 404, 418, 451, 503, 599):
        r = srv.post("/echo/s", b"payload", headers={"X-Status": str(code)})
        assert r.status == code and r.body == b"payload", (code, r)
    # 204/304 carry no body even when the guest answered one.
    for code in (204, 304):
        r = srv.post("/echo/s", b"payload", headers={"X-Status": str(code)})
        assert r.status == code and r.body == b"", (code, r)
    # Out-of-range codes are ignored (logged): the default 200 stays.
    for code in (0, 99, 600, 1000, -1):
        r = srv.post("/echo/s", b"p", headers={"X-Status": str(code)})
        assert r.status == 200, (code, r)
    # Empty body, GET.
    r = srv.get("/echo/")
    assert r.status == 200 and r.body == b"" and r.header("X-Method") == "GET", r
    # HEAD: same headers, no body.
    r = srv.request("HEAD", "/echo/h")
    assert r.status == 200 and r.body == b"" and r.header("X-Method") == "HEAD", r


def test_wapc_large_response_and_response_cap(start_keel):
    srv = start_keel(WAPC_YAML)
    n = 8 << 20
    r = srv.post("/big", str(n).encode())
    assert r.status == 200 and len(r.body) == n and r.body == b"b" * n, (r.status, len(r.body))
    # Beyond 16 MiB the call fails: 500.
    r = srv.post("/big", str((16 << 20) + 1).encode())
    assert_generic_error(r, 500, "internal error")


def test_wapc_hello_host_api(start_keel):
    srv = start_keel(WAPC_YAML)
    r = srv.get("/hello")
    assert r.status == 200 and r.body == b"hello from keel\n" and r.header("x-hello") == "yes", r
    r = srv.get("/status")
    assert r.status == 201 and r.body == b"created\n", r
    assert r.header("Content-Type") == "text/plain", r
    r = srv.request("PUT", "/meta/a?b=c", body=b"", headers={"X-Test": "value-1"})
    assert r.status == 200, r
    assert r.text == ("method=PUT(3) uri=/meta/a?b=c(11) x-test=value-1(7) missing=-1 "
                      "config=bonjour(7) nocfg=-1 short=11"), r
    r = srv.get("/headers")
    assert r.text == "bad_name=-1 bad_value=-1 reserved=-1 empty=-1 ok=0", r
    assert r.header("x-ok") == "fine", r
    assert r.header("Content-Length") == str(len(r.body)), r
    # Guest failure: generic 500; the text stays in the log.
    r = srv.get("/fail")
    assert_generic_error(r, 500, "internal error")
    assert b"4711" not in r.body
    assert "secret failure detail 4711" in srv.log(), srv.tail()
    # Route without operation: "handle", which hello does not register.
    assert_generic_error(srv.get("/default"), 500, "internal error")


# ------------------------------------------------------------------ calls

CALLS_YAML = """
components:
  a:
    wasm: {caller}
    calls: [b, t, cgi, h, n]
    routes:
      - path: /a
        operation: call
  b:
    wasm: {caller}
    calls: [c]
    routes:
      - path: /b
        operation: call
  c:
    wasm: {hello}
  h:
    wasm: {hello}
  n:
    wasm: {caller}
  t:
    wasm: {trap}
    limits: {{ timeout: 60s }}
  cgi:
    wasm: {cgi_env}
    abi: wagi
  slow:
    wasm: {caller}
    calls: [t]
    limits: {{ timeout: 700ms }}
    routes:
      - path: /slow
        operation: call
  probe:
    wasm: {up_probe}
    calls: [c]
    routes:
      - path: /binding
        operation: binding
  d1:
    wasm: {up_probe}
    calls: [d2]
    config: {{ peer: d2 }}
    routes:
      - path: /depth
        operation: depth
  d2:
    wasm: {up_probe}
    calls: [d1]
    config: {{ peer: d1 }}
"""


def test_three_hop_call_chain(start_keel):
    srv = start_keel(CALLS_YAML)
    r = srv.post("/a", b"b/call/c/echo/payload through three hops")
    assert r.status == 200 and r.body == b"payload through three hops", r
    # Binary payload survives both copies.
    blob = bytes(range(1, 256)) * 100
    r = srv.post("/a", b"b/call/c/echo/" + blob)
    assert r.status == 200 and r.body == blob, r
    # Inside a nested call the http_* functions answer -1 and the setters do nothing.
    r = srv.post("/a", b"b/call/h/nested/", headers={"X-Test": "t"})
    assert r.status == 200, r
    assert r.text == "error: component b may not call h (not in its calls list)", r
    r = srv.post("/a", b"n/nested/", headers={"X-Test": "t"})
    assert r.status == 200, r    # the callee's 418 does not leak
    assert r.text == "method=-1 uri=-1 header=-1 set_header=-1", r
    assert r.header("x-nested") is None, r


@pytest.mark.parametrize("payload,expect", [
    (b"c/echo/x", "error: component a may not call c (not in its calls list)"),
    (b"ghost/echo/x", 'error: no component named "ghost"'),
    (b"t/trap/", "error: component t trapped: unreachable"),
    (b"t/oob/", "error: component t trapped: out of bounds"),
    (b"cgi/x/", "error: component cgi is a wagi component"),
    (b"h/fail/", 'error: component h: operation "fail" failed: secret failure detail 4711'),
    (b"h/nosuchop/", 'error: component h: operation "nosuchop" failed: unknown operation'),
])
def test_host_call_failure_modes(start_keel, payload, expect):
    srv = start_keel(CALLS_YAML)
    r = srv.post("/a", payload)
    # caller.c answers the error text with a 200: the caller carries on.
    assert r.status == 200, r
    assert r.text.startswith(expect), r
    # Logged (warn) under the caller's name.
    assert re.search(r'"level":"warn","msg":"[^\n]*","component":"a"', srv.log()), srv.tail()
    # The server is fine afterwards.
    assert srv.post("/a", b"b/call/c/echo/ok").body == b"ok"


def test_host_call_unknown_binding(start_keel):
    srv = start_keel(CALLS_YAML)
    r = srv.post("/binding", b"")
    assert r.status == 200, r
    assert r.text.startswith('0:unknown binding "nokeel"'), r


def test_host_call_failure_two_hops_down(start_keel):
    """c fails inside a -> b -> c: b sees the error, answers it, a relays it."""
    srv = start_keel(CALLS_YAML)
    r = srv.post("/a", b"b/call/c/nosuch/")
    assert r.status == 200, r
    assert r.text == 'error: component c: operation "nosuch" failed: unknown operation "nosuch"', r
    assert srv.post("/a", b"b/call/c/echo/fine").body == b"fine"


def test_host_call_deadline_exceeded_is_504(start_keel):
    """The callee spins; the request's deadline (the HTTP component's 700ms,
    not the callee's 60s) stops it and the request ends 504 even though
    the caller carries on and answers."""
    srv = start_keel(CALLS_YAML)
    r = srv.post("/slow", b"t/spin/")
    assert_generic_error(r, 504, "deadline exceeded")
    assert 0.6 <= r.elapsed <= 0.7 + SLACK, r
    assert srv.post("/a", b"b/call/c/echo/alive").body == b"alive"


def test_call_depth_limit_is_16(start_keel):
    """d1 and d2 call each other with a counter; the HTTP request's
    component is depth 0, so calls reach depth 16 and the 17th nesting is
    refused at depth 16."""
    srv = start_keel(CALLS_YAML)
    r = srv.post("/depth", b"0")
    assert r.status == 200, r
    assert r.text.startswith("16:call depth limit of 16 nested calls exceeded"), r


# ------------------------------------------------------------------ limits

LIMITS_YAML = """
components:
  small:
    wasm: {up_probe}
    limits: {{ body: 1KiB }}
    routes:
      - path: /small
        operation: echo
  none:
    wasm: {up_probe}
    limits: {{ body: 0 }}
    routes:
      - path: /none
        operation: echo
  one:
    wasm: {up_probe}
    limits: {{ concurrency: 1, timeout: 5s }}
    routes:
      - path: /one/sleep
        operation: sleep
      - path: /one/trap
        operation: trap
      - path: /one/spin
        operation: spin
  quick:
    wasm: {up_probe}
    limits: {{ timeout: 500ms }}
    routes:
      - path: /quick/spin
        operation: spin
      - path: /quick/sleep
        operation: sleep
  mem:
    wasm: {up_probe}
    limits: {{ memory: 1MiB }}
    routes:
      - path: /mem/pages
        operation: pages
      - path: /mem/bomb
        operation: bomb
  tiny:
    wasm: {up_probe}
    limits: {{ memory: 64KiB }}
    routes:
      - path: /tiny
        operation: echo
  bombs:
    wasm: {up_probe}
    limits: {{ timeout: 30s }}
    routes:
      - path: /bomb
        operation: bomb
  healthy:
    wasm: {hello}
    routes:
      - path: /healthy
        operation: hello
"""


def test_body_limit_413(start_keel):
    srv = start_keel(LIMITS_YAML)
    r = srv.post("/small", b"x" * 1024)
    assert r.status == 200 and r.body == b"x" * 1024, r
    r = srv.post("/small", b"x" * 1025)
    assert_generic_error(r, 413, "request body too large")
    assert srv.post("/none", b"").status == 200
    assert_generic_error(srv.post("/none", b"x"), 413, "request body too large")


def test_body_limit_413_chunked(start_keel):
    srv = start_keel(LIMITS_YAML)
    ok = srv.request("POST", "/small", body=iter([b"a" * 500, b"b" * 500]),
                     encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert ok.status == 200 and ok.body == b"a" * 500 + b"b" * 500, ok
    r = srv.request("POST", "/small", body=iter([b"a" * 1000, b"b" * 1000]),
                    encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert_generic_error(r, 413, "request body too large")


def test_concurrency_limit_503_with_retry_after(start_keel):
    srv = start_keel(LIMITS_YAML)
    first = {}

    def slow():
        first["r"] = srv.get("/one/sleep", headers={"X-Sleep-Ms": "1500"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    r = srv.get("/one/sleep", headers={"X-Sleep-Ms": "1"})
    assert_generic_error(r, 503, "component busy")
    assert r.header("Retry-After") is not None and r.header("Retry-After").isdigit(), r
    # Another component is not affected.
    assert srv.get("/healthy").status == 200
    t.join(10)
    assert first["r"].status == 200 and first["r"].body == b"slept", first
    # The slot is back; and traps and deadlines give it back too.
    assert srv.get("/one/sleep", headers={"X-Sleep-Ms": "1"}).status == 200
    for _ in range(5):
        assert_generic_error(srv.get("/one/trap"), 500, "internal error")
    assert srv.get("/one/sleep", headers={"X-Sleep-Ms": "1"}).status == 200


def test_timeout_504_while1(start_keel):
    srv = start_keel(LIMITS_YAML)
    r = srv.get("/quick/spin")
    assert_generic_error(r, 504, "deadline exceeded")
    assert 0.45 <= r.elapsed <= 0.5 + SLACK, r
    assert "deadline exceeded" in srv.log(), srv.tail()
    # More spinning requests than worker threads at once: all stopped.
    results = []

    def spin():
        results.append(srv.get("/quick/spin"))

    threads = [threading.Thread(target=spin) for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    took = time.monotonic() - t0
    assert [r.status for r in results] == [504] * 6, results
    assert took <= 2 * 0.5 + 2 * SLACK, took
    assert srv.get("/healthy").status == 200


def test_timeout_504_while_sleeping(start_keel):
    """A guest blocked in poll_oneoff (nanosleep) past its deadline is
    stopped too: 504 within timeout + slack, not after the sleep."""
    srv = start_keel(LIMITS_YAML)
    r = srv.get("/quick/sleep", headers={"X-Sleep-Ms": "8000"})
    assert_generic_error(r, 504, "deadline exceeded")
    assert r.elapsed <= 0.5 + SLACK, r


def test_memory_limit(start_keel):
    srv = start_keel(LIMITS_YAML)
    # memory.grow is refused exactly at the limit: 1 MiB = 16 pages.
    r = srv.get("/mem/pages")
    assert r.status == 200 and r.text == "pages=16", r
    # malloc fails at the limit; the guest traps: 500.
    assert_generic_error(srv.get("/mem/bomb"), 500, "internal error")
    # Initial memory above the limit: the request fails with 500.
    r = srv.post("/tiny", b"x")
    assert_generic_error(r, 500, "internal error")
    assert "memory limit" in srv.log(), srv.tail()
    assert srv.get("/healthy").status == 200


def test_memory_bomb_process_survives(start_keel):
    """Four concurrent bombs, each filling the default 64 MiB: 500 each,
    keel stays up, its RSS returns near where it was."""
    srv = start_keel(LIMITS_YAML)
    assert srv.get("/healthy").status == 200
    rss0 = vm_rss_kib(srv.pid)
    results = []

    def bomb():
        results.append(srv.get("/bomb"))

    threads = [threading.Thread(target=bomb) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    for r in results:
        assert_generic_error(r, 500, "internal error")
    assert srv.alive()
    assert srv.get("/healthy").status == 200
    # Instance memories are reset right after their response is sent (not
    # before): allow the serving threads a moment to finish that.
    deadline = time.monotonic() + 5
    while True:
        rss1 = vm_rss_kib(srv.pid)
        if rss1 - rss0 < 32 * 1024 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert rss1 - rss0 < 32 * 1024, f"RSS {rss0} KiB -> {rss1} KiB after 4 x 64 MiB bombs"


# ------------------------------------------------------- trap next to healthy

NEIGHBOURS_YAML = """
components:
  bad:
    wasm: {trap}
    limits: {{ timeout: 300ms }}
    routes:
      - path: /trap
        operation: trap
      - path: /spin
        operation: spin
      - path: /grow
        operation: grow
      - path: /oob
        operation: oob
  good:
    wasm: {hello}
    routes:
      - path: /hello
        operation: hello
"""


def test_trapping_component_next_to_healthy_one(start_keel):
    srv = start_keel(NEIGHBOURS_YAML)
    stop = threading.Event()
    bad_status = {}
    errors = []

    def hammer(path):
        c = srv.connection()
        while not stop.is_set():
            try:
                r = srv.request("GET", path, conn=c)
                bad_status[r.status] = bad_status.get(r.status, 0) + 1
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append(f"{path}: {e!r}")
                c.close()
                c = srv.connection()
        c.close()

    threads = [threading.Thread(target=hammer, args=(p,)) for p in ("/trap", "/spin", "/oob", "/grow")]
    for t in threads:
        t.start()
    healthy = []
    c = srv.connection()
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:
        healthy.append(srv.request("GET", "/hello", conn=c))
    c.close()
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert healthy and all(r.status == 200 and r.body == b"hello from keel\n" for r in healthy), \
        [r for r in healthy if r.status != 200][:3]
    worst = max(r.elapsed for r in healthy)
    assert worst < 2.0, f"a healthy request took {worst:.2f}s while the neighbour trapped"
    assert set(bad_status) <= {500, 504}, bad_status
    assert srv.get("/hello").status == 200
    assert srv.alive()


# ------------------------------------------------------------ config errors

BAD_CONFIGS = [
    # (yaml, expected "keel.yaml:L:C: ..." prefix of the error line)
    ("listen: 127.0.0.1:1\ncomponents:\n  a:\n    wasm: {hello}\ndatabases: {{}}\n",
     "keel.yaml:5:1: unknown top-level key 'databases'"),
    ("components:\n  a:\n    wasm: {hello}\n    abi: grpc\n",
     "keel.yaml:4:10: component a: unknown abi 'grpc'"),
    ("components:\n  a:\n    wasm: {hello}\n    calls: [cart]\n",
     "keel.yaml:4:13: component a: calls: no component named 'cart'"),
    ("components:\n  a:\n    wasm: {hello}\n    limits: {{ timeout: 5 }}\n",
     "keel.yaml:4:24: component a: limits: timeout '5' is not a duration"),
    ("components:\n  a:\n    wasm: nothere.wasm\n",
     "keel.yaml:3:11: component a: wasm file 'nothere.wasm' not found"),
    ("components:\n  a:\n    wasm: {hello}\n    routes:\n      - path: /api/*\n"
     "  b:\n    wasm: {hello}\n    routes:\n      - path: /api/*\n        methods: [GET]\n",
     "keel.yaml:9:15: component b: route '/api/*' (GET) is already claimed by component a at line 5"),
    ("components:\n  Gateway:\n    wasm: {hello}\n",
     "keel.yaml:2:3: invalid component name 'Gateway'"),
    ("components:\n  a:\n    wasm: {hello}\n    abi: wapc\n    abi: wapc\n",
     "keel.yaml:5:5: duplicate key 'abi' (first at line 4)"),
    ("components:\n  a:\n    wasm: {hello}\n    routes: [ {{ path: /x }}\n",
     "keel.yaml:"),
    ("components:\n  a:\n    wasm: {cgi_env}\n    abi: wagi\n    routes:\n      - path: /x\n"
     "        operation: handle\n",
     "keel.yaml:7:9: component a: routes[0]: 'operation' applies only to abi wapc"),
    # Module problems point at the wasm: line.
    ("components:\n  a:\n    wasm: {hello}\n    abi: wagi\n",
     "keel.yaml:3:11: component a:"),
    ("components:\n  a:\n    wasm: {cgi_env}\n    abi: wapc\n",
     "keel.yaml:3:11: component a:"),
]


@pytest.mark.parametrize("yaml,expect", BAD_CONFIGS, ids=[e for _, e in BAD_CONFIGS])
def test_config_error_exit_1_without_listening(start_keel, yaml, expect):
    port = free_port()
    srv = start_keel(yaml, listen=f"127.0.0.1:{port}", wait=False)
    srv.expected_exit = True
    try:
        rc = srv.proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"keel up kept running on a bad manifest\n{srv.tail()}")
    log = srv.log()
    assert rc == 1, f"exit {rc}\n{log}"
    assert "listening" not in log, log
    assert not port_open(port)
    m = re.search(r"keel\.yaml:(\d+):(\d+): ", log)
    assert m, log
    assert expect in log, f"expected {expect!r} in:\n{log}"


def test_missing_manifest_and_port_in_use(start_keel, tmp_path, keel_bin, base_env):
    r = subprocess.run([str(keel_bin), "up", "-f", "absent.yaml", "--listen", "127.0.0.1:0"],
                       cwd=tmp_path, env=base_env, capture_output=True, timeout=60)
    assert r.returncode == 1 and b"absent.yaml" in r.stderr, r
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        srv = start_keel("components:\n  a:\n    wasm: {hello}\n", listen=f"127.0.0.1:{port}",
                         wait=False)
        srv.expected_exit = True
        rc = srv.proc.wait(60)
        assert rc == 1, srv.tail()
        assert "listening on" not in srv.log(), srv.tail()


def test_listen_from_manifest_and_override(start_keel):
    port = free_port()
    yaml = f"listen: 127.0.0.1:{port}\ncomponents:\n  a:\n    wasm: {{hello}}\n" \
           "    routes:\n      - path: /hello\n        operation: hello\n"
    srv = start_keel(yaml, listen=None)
    assert srv.port == port
    assert srv.get("/hello").status == 200
    assert srv.stop() == 0
    other = free_port()
    srv2 = start_keel(yaml, listen=f"127.0.0.1:{other}", name="keel2.yaml")
    assert srv2.port == other
    assert srv2.get("/hello").body == b"hello from keel\n"
    assert not port_open(port)


# ------------------------------------------------------------------ signals

SIGNAL_YAML = """
components:
  probe:
    wasm: {up_probe}
    routes:
      - path: /sleep
        operation: sleep
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_clean_exit_0(start_keel, sig):
    srv = start_keel(SIGNAL_YAML)
    assert srv.get("/sleep", headers={"X-Sleep-Ms": "1"}).status == 200
    # An idle keep-alive connection must not hold up the exit.
    c = srv.connection()
    assert srv.request("GET", "/sleep", headers={"X-Sleep-Ms": "1"}, conn=c).status == 200
    t0 = time.monotonic()
    rc = srv.stop(sig)
    took = time.monotonic() - t0
    c.close()
    assert rc == 0, srv.tail()
    assert took < 5, f"exit took {took:.1f}s"
    assert "stopped" in srv.log(), srv.tail()
    assert not port_open(srv.port)


def test_sigterm_drains_request_in_flight(start_keel):
    srv = start_keel(SIGNAL_YAML)
    got = {}

    def slow():
        got["r"] = srv.get("/sleep", headers={"X-Sleep-Ms": "1200"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    srv.proc.send_signal(signal.SIGTERM)
    t.join(20)
    rc = srv.stop()
    assert "r" in got and got["r"].status == 200 and got["r"].body == b"slept", got
    assert rc == 0, srv.tail()


# ------------------------------------------------------------------ tier-up

def test_optimized_code_swapped_in_without_dropping_a_request(start_keel, tmp_path):
    """With an empty cache keel up serves on the fast tier at once, builds
    the optimized code in the background and swaps it in while requests
    keep coming: every request of a client hammering the route throughout
    gets its 200, and the log says the swap happened."""
    srv = start_keel("""
components:
  hello:
    wasm: {hello}
    abi: wapc
    routes:
      - path: /hello
        operation: hello
""", env={"KEEL_CACHE": str(tmp_path / "cold-cache")})
    assert "tier fast" in srv.log(), srv.tail()
    statuses = []
    stop = threading.Event()

    def hammer():
        conn = srv.connection()
        while not stop.is_set():
            r = srv.request("GET", "/hello", conn=conn)
            statuses.append((r.status, r.body))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        deadline = time.monotonic() + 240
        while "optimized code swapped in" not in srv.log():
            assert time.monotonic() < deadline, srv.tail()
            assert t.is_alive(), "the client thread died"
            time.sleep(0.1)
        n = len(statuses)
        while len(statuses) < n + 50:      # and after the swap
            assert time.monotonic() < deadline, srv.tail()
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(30)
    assert statuses, "no request was made"
    bad = [s for s in statuses if s[0] != 200]
    assert not bad, f"{len(bad)} of {len(statuses)} requests failed: {bad[:3]}"
    assert "(opt tier)" in srv.log(), srv.tail()


def test_host_function_through_the_table(start_keel, built_guests):
    """A component calling keel.log through call_indirect: a log line and a
    200, request after request (instances come from the image, whose table
    entry is rebound to each instance's host context)."""
    srv = start_keel(f"""
components:
  tbl:
    wasm: {built_guests / "wat" / "table_keel_log.wasm"}
    abi: wapc
    routes:
      - path: /tbl
""")
    for _ in range(3):
        r = srv.get("/tbl")
        assert r.status == 200 and r.body == b"", (r, srv.tail())
    assert srv.alive()
    assert srv.log().count("hi") >= 3, srv.tail()


def test_nothing_survives_a_request(start_keel):
    """Every request starts from the component's initialized state: a
    counter in the data segment, a static buffer, and 4 MiB of memory grown
    past the image, which each request dirties, are back to their
    initial values in the next, whichever thread serves it and however the
    memory was reset (written pages copied back from the image, grown pages
    dropped)."""
    srv = start_keel("""
components:
  h:
    wasm: {hello}
    routes:
      - path: /state
        operation: state
""")
    answers = []

    def hit():
        conn = srv.connection()
        for _ in range(50):
            answers.append(srv.request("GET", "/state", conn=conn))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 200
    for r in answers:
        assert r.status == 200 and r.body == b"counter=7 stash=0 grown=0\n", (r, srv.tail())
    assert "copy-on-write image" in srv.log(), srv.tail()
