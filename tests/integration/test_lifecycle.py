"""`keel up` stopping and being replaced, under load: real processes on
127.0.0.1, real HTTP, clients on keep-alive connections.

- SIGTERM: /readyz turns 503 {"reason":"draining"} at once while /healthz
  stays 200 and the app keeps serving for shutdown.drain_delay; a second
  signal cuts the delay short; requests in flight when the listeners close
  finish; exit 0.
- Handover on one host: a new keel joins the old one's port (--handover,
  SO_REUSEPORT), the old one is stopped, and no request of a client load
  fails. With net.ipv4.tcp_migrate_req=1 (set here; we run as root) the
  kernel hands connections waiting in a closing listener's queue to the
  new one.
- Socket activation: the test opens the listening socket itself, as
  systemd would, and passes it as fd 3 (LISTEN_FDS=1, LISTEN_PID); two
  keels share it and the first one stops without a failed request.

The load client's rule (RFC 9112 section 9.3.1, what HTTP client
libraries do): a request is retried only when a reused keep-alive
connection was closed before any byte of the response arrived; anything
else (a refused or reset new connection, a wrong status, a cut response)
counts as failed. Each test prints its counts.

Uses the fixtures of test_up.py (same directory)."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_up import KeelServer, comp, port_open, warm_cache  # noqa: F401

LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
ADMIN_RE = re.compile(r"admin endpoints at http://[^:]+:(\d+)")
START_TIMEOUT = 120.0
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")

YAML = """
shutdown:
  drain_delay: {delay}
  grace: 10s
components:
  hello:
    wasm: {hello}
    routes:
      - path: /hello
        operation: hello
  probe:
    wasm: {up_probe}
    routes:
      - path: /sleep
        operation: sleep
"""
HELLO = b"hello from keel\n"

# Exceptions that mean "the connection closed before the response began"
# when they come from sending the request or reading its status line.
CLOSED_BEFORE_RESPONSE = (http.client.RemoteDisconnected, ConnectionResetError,
                          BrokenPipeError, ConnectionAbortedError)


# ------------------------------------------------------------- processes

@pytest.fixture
def launch(tmp_path, keel_bin, base_env, comp, warm_cache):
    """launch(delay="0s", listen="127.0.0.1:0", args=(), inherit=None) ->
    KeelServer with .admin (its admin port). inherit: a listening socket
    passed as fd 3 with LISTEN_FDS=1 and LISTEN_PID of the keel process.
    At teardown every keel still running is stopped and must exit 0."""
    servers = []

    def start(delay="0s", listen="127.0.0.1:0", args=(), inherit=None):
        n = len(servers)
        text = YAML.format(delay=delay, hello=comp("hello"), up_probe=comp("up_probe"))
        yaml = tmp_path / f"keel-{n}.yaml"
        yaml.write_text(text)
        log_path = tmp_path / f"keel-{n}.log"
        argv = [str(keel_bin), "up", "-f", str(yaml), "--admin-listen", "127.0.0.1:0"]
        if listen is not None:
            argv += ["--listen", listen]
        argv += list(args)
        preexec = None
        if inherit is not None:
            fd = inherit.fileno()

            def preexec():
                # The socket becomes fd 3 (dup2 clears close-on-exec).
                if fd == 3:
                    os.set_inheritable(3, True)
                else:
                    os.dup2(fd, 3)
            # $$ is the shell's pid, which exec hands to keel.
            argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', *argv]
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(argv, cwd=tmp_path, env=base_env, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=logf, close_fds=inherit is None,
                                    preexec_fn=preexec)
        srv = KeelServer(proc, log_path, "", 0)
        srv.expected_exit = False
        servers.append(srv)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            log = srv.log()
            m, a = LISTEN_RE.search(log), ADMIN_RE.search(log)
            if m and a:
                srv.host, srv.port, srv.admin = m.group(1), int(m.group(2)), int(a.group(1))
                return srv
            if proc.poll() is not None:
                pytest.fail(f"keel up exited with {proc.returncode} before listening\n"
                            f"{srv.tail()}")
            time.sleep(0.02)
        pytest.fail(f"keel up did not start within {START_TIMEOUT}s\n{srv.tail()}")

    yield start

    problems = []
    for srv in servers:
        if srv.proc.poll() is None:
            rc = srv.stop()
            if rc != 0:
                problems.append(f"keel exited {rc} on SIGTERM\n{srv.tail()}")
        elif not srv.expected_exit:
            problems.append(f"keel exited {srv.proc.returncode} on its own\n{srv.tail()}")
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def migrate_req():
    """set(value): writes net.ipv4.tcp_migrate_req; restored afterwards."""
    if not MIGRATE_REQ.exists():
        pytest.fail("this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+ needed)")
    before = MIGRATE_REQ.read_text().strip()

    def set_value(v):
        MIGRATE_REQ.write_text(f"{v}\n")
        assert MIGRATE_REQ.read_text().strip() == str(v)

    yield set_value
    MIGRATE_REQ.write_text(f"{before}\n")


def admin_get(srv, path):
    c = http.client.HTTPConnection("127.0.0.1", srv.admin, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s


# ------------------------------------------------------------------ load

class Load:
    """Client threads, each on its own keep-alive connection (or, without
    keepalive, a new connection per request), sending GET path until
    stop(), or until gate is set (a load balancer that saw /readyz turn
    503: nothing new is sent, what is in flight finishes)."""

    def __init__(self, port, threads, path="/hello", expect=HELLO, headers=None, gate=None,
                 keepalive=True):
        self.port, self.path, self.expect, self.headers = port, path, expect, headers or {}
        self.gate, self.keepalive = gate, keepalive
        self.ok = self.retried = 0
        self.failed = []
        self.done_at = []           # monotonic time of each success
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a load thread hung"

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        while not self.halt.is_set() and not (self.gate and self.gate.is_set()):
            reused = conn.sock is not None
            try:
                conn.request("GET", self.path, headers=self.headers)
                r = conn.getresponse()
            except CLOSED_BEFORE_RESPONSE as e:
                conn.close()
                with self.lock:
                    if reused:
                        self.retried += 1     # the retry is the next iteration
                    else:
                        self.failed.append(f"new connection: {e!r}")
                continue
            except Exception as e:  # noqa: BLE001 - counted as a failure
                conn.close()
                with self.lock:
                    self.failed.append(f"{'reused' if reused else 'new'} connection: {e!r}")
                continue
            try:
                body = r.read()
            except Exception as e:  # noqa: BLE001 - the response was cut
                conn.close()
                with self.lock:
                    self.failed.append(f"response cut: {e!r}")
                continue
            with self.lock:
                if r.status == 200 and body == self.expect:
                    self.ok += 1
                    self.done_at.append(time.monotonic())
                else:
                    self.failed.append(f"{r.status} {body[:80]!r}")
            if not self.keepalive or r.getheader("Connection", "").lower() == "close":
                conn.close()
        conn.close()

    def report(self, what):
        line = (f"{what}: {self.ok} ok, {self.retried} retried on a closed keep-alive "
                f"connection, {len(self.failed)} failed")
        print("\n" + line)
        return line


class Balancer:
    """What a load balancer does with /readyz: polls it every 50 ms and,
    from the first 503, stops sending new requests (sets gate)."""

    def __init__(self, srv):
        self.srv, self.gate, self.seen = srv, threading.Event(), None
        self.t = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def run(self):
        while not self.gate.is_set():
            try:
                status, body = admin_get(self.srv, "/readyz")
            except OSError:
                status, body = 0, b""
            if status == 503:
                self.seen = (time.monotonic(), json.loads(body))
                self.gate.set()
                return
            time.sleep(0.05)


# ----------------------------------------------------------------- tests

def test_sigterm_readyz_draining_then_second_signal_skips_delay(launch):
    """During the drain delay /readyz answers 503 "draining", /healthz 200
    and the app still takes new connections; a second SIGTERM ends the
    delay at once."""
    srv = launch(delay="30s")
    assert admin_get(srv, "/readyz") == (200, b'{"ready":true}\n')
    srv.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while admin_get(srv, "/readyz")[0] != 503:
        assert time.monotonic() < deadline, srv.tail()
        time.sleep(0.02)
    status, body = admin_get(srv, "/readyz")
    assert status == 503 and json.loads(body) == {"ready": False, "reason": "draining"}, body
    assert admin_get(srv, "/healthz") == (200, b"ok\n")
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    c.request("GET", "/hello")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, HELLO)
    assert r.getheader("Connection", "").lower() != "close"   # serving as usual
    c.close()
    time.sleep(0.3)
    assert srv.alive()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.stop()
    took = time.monotonic() - t0
    assert rc == 0, srv.tail()
    assert took < 5, f"the second SIGTERM did not cut the 30 s delay short ({took:.1f}s)"
    log = srv.log()
    for line in ("stop requested: draining", "second stop signal", "drained", '"stopped"'):
        assert line in log, f"{line!r} missing\n{srv.tail()}"
    assert not port_open(srv.port)


def test_sigterm_under_load_zero_failures(launch):
    """SIGTERM while clients hammer /hello and slow (1.5 s) /sleep requests
    are in flight, behind a 'load balancer' that stops sending on /readyz
    503: not one request fails, the slow requests running when the
    listeners close (drain_delay 0.3 s) finish, and keel exits 0."""
    srv = launch(delay="300ms")
    lb = Balancer(srv).start()
    fast = Load(srv.port, 3, gate=lb.gate).start()
    time.sleep(1.0)
    slow = Load(srv.port, 3, path="/sleep", expect=b"slept", headers={"X-Sleep-Ms": "1500"},
                gate=lb.gate).start()
    time.sleep(0.3)
    sent_at = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(20)
    srv.expected_exit = True
    exited_at = time.monotonic()
    lb.gate.set()
    fast.stop()
    slow.stop()
    report = fast.report("fast") + "; " + slow.report("slow (1.5 s)")
    print(f"exit {exited_at - sent_at:.2f} s after SIGTERM (drain_delay 0.3 s)")
    assert rc == 0, srv.tail()
    assert not fast.failed and not slow.failed, f"{report}\n{fast.failed[:5]} {slow.failed[:5]}"
    assert fast.ok > 100 and slow.ok == 3, report
    assert lb.seen and lb.seen[1] == {"ready": False, "reason": "draining"}, lb.seen
    # Requests still running when the listeners closed (0.3 s after the
    # signal) were answered: some slow ones completed after that.
    late = [t for t in slow.done_at if t > sent_at + 0.35]
    assert late, f"no slow request finished after the listeners closed; {report}"
    assert exited_at - sent_at < 5, f"exit took {exited_at - sent_at:.1f}s"
    log = srv.log()
    assert "drained" in log and "abandon" not in log, srv.tail()
    # The access-log queue was flushed before exit: one line per answer.
    access = log.count('"msg":"request"')
    assert access == fast.ok + slow.ok, f"{access} access lines for {report}"


def handover(old, start_new, tmp_name):
    """Runs a load on old's port, starts the new keel, stops the old one
    mid-load; returns (load, new keel)."""
    load = Load(old.port, 3).start()
    fresh = Load(old.port, 2, keepalive=False).start()   # connections arriving all along
    slow = Load(old.port, 2, path="/sleep", expect=b"slept",
                headers={"X-Sleep-Ms": "200"}).start()
    time.sleep(1.0)
    new = start_new()
    assert new.port == old.port, (new.port, old.port)
    time.sleep(1.0)                # both serve
    old.proc.send_signal(signal.SIGTERM)
    rc = old.proc.wait(20)
    old.expected_exit = True
    assert rc == 0, old.tail()
    time.sleep(1.0)                # the new one alone
    for ld in (load, fresh, slow):
        ld.stop()
    report = "; ".join((load.report(f"{tmp_name}, keep-alive"),
                        fresh.report(f"{tmp_name}, new connection per request"),
                        slow.report(f"{tmp_name}, 200 ms requests")))
    failed = load.failed + fresh.failed + slow.failed
    assert not failed, f"{report}\nfirst failures: {failed[:5]}"
    assert load.ok > 100 and fresh.ok > 50, report
    # The new keel served after the old one was gone.
    c = http.client.HTTPConnection("127.0.0.1", new.port, timeout=5)
    c.request("GET", "/hello")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, HELLO)
    c.close()
    assert new.log().count('"/hello"') > 0 or new.log().count("/hello") > 0, new.tail()
    return load, new


def test_handover_reuseport_zero_failures(launch, migrate_req):
    """Old keel on a port, new keel started beside it with --handover (same
    SO_REUSEPORT group), old keel SIGTERMed: zero failed requests."""
    migrate_req(1)
    old = launch(delay="500ms")
    assert "tcp_migrate_req" not in old.log(), old.tail()
    handover(old, lambda: launch(listen=f"127.0.0.1:{old.port}", args=("--handover",)),
             "reuseport handover")


def test_port_in_use_refused_without_handover(launch, tmp_path, keel_bin, base_env, comp):
    old = launch()
    (tmp_path / "again.yaml").write_text(YAML.format(
        delay="0s", hello=comp("hello"), up_probe=comp("up_probe")))
    p = subprocess.run([str(keel_bin), "up", "-f", "again.yaml", "--listen",
                        f"127.0.0.1:{old.port}", "--admin-listen", "127.0.0.1:0"],
                       cwd=tmp_path, env=base_env, capture_output=True, timeout=120)
    assert p.returncode != 0
    assert f"listen 127.0.0.1:{old.port}: Address already in use" in p.stderr.decode(), p.stderr


def test_warns_when_tcp_migrate_req_is_off(launch, migrate_req):
    migrate_req(0)
    srv = launch()
    assert "net.ipv4.tcp_migrate_req is 0" in srv.log(), srv.tail()


def test_socket_activation_handover_zero_failures(launch, migrate_req):
    """The test holds the listening socket, as systemd does, and passes it
    to two keels in turn (fd 3, LISTEN_FDS=1, LISTEN_PID): while the first
    drains, the second accepts from the same queue. The socket never
    closes, so this holds even with tcp_migrate_req=0."""
    migrate_req(0)
    sock = listening_socket()
    port = sock.getsockname()[1]
    try:
        old = launch(delay="300ms", listen=None, inherit=sock)
        assert old.port == port, old.tail()
        assert "socket activation" in old.log(), old.tail()
        assert "tcp_migrate_req" not in old.log(), old.tail()
        handover(old, lambda: launch(listen=None, inherit=sock), "socket activation")
    finally:
        sock.close()


def test_socket_activation_rejects_what_is_not_a_listening_socket(tmp_path, keel_bin,
                                                                   base_env, comp):
    (tmp_path / "keel.yaml").write_text(YAML.format(
        delay="0s", hello=comp("hello"), up_probe=comp("up_probe")))
    (tmp_path / "plain").write_text("x")
    fd = os.open(tmp_path / "plain", os.O_RDONLY)
    conn = socket.socket()           # a stream socket, not listening
    try:
        for what, want in ((fd, "LISTEN_FDS: descriptor 3: not a socket"),
                           (conn.fileno(), "LISTEN_FDS: descriptor 3 is not a listening "
                                           "stream socket")):
            p = subprocess.run(
                ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', str(keel_bin), "up",
                 "-f", "keel.yaml", "--admin-listen", "127.0.0.1:0"],
                cwd=tmp_path, env=base_env, capture_output=True, timeout=60, close_fds=False,
                preexec_fn=lambda w=what: os.dup2(w, 3))
            assert p.returncode != 0, p.stderr
            assert f"keel: {want}" in p.stderr.decode(), p.stderr
    finally:
        os.close(fd)
        conn.close()


@pytest.mark.parametrize("migrate", [0, 1])
def test_kernel_accept_queue_on_listener_close(migrate_req, migrate):
    """The kernel behaviour the handover relies on, without keel: two
    SO_REUSEPORT listeners share a port, clients connect (nobody accepts),
    then one listener closes. With tcp_migrate_req=0 the connections
    waiting in its queue are reset; with 1 they move to the other
    listener, which accepts every one of them."""
    migrate_req(migrate)
    a, b = socket.socket(), socket.socket()
    clients = []
    try:
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        a.bind(("127.0.0.1", 0))
        b.bind(a.getsockname())
        a.listen(256)
        b.listen(256)
        for _ in range(64):
            c = socket.create_connection(a.getsockname(), timeout=2)
            c.sendall(b"x")
            clients.append(c)
        a.close()
        b.settimeout(0.5)
        accepted = []
        try:
            while True:
                accepted.append(b.accept()[0])
        except (TimeoutError, socket.timeout):
            pass
        time.sleep(0.1)
        reset = 0
        for c in clients:
            c.setblocking(False)
            try:
                c.recv(1)
            except ConnectionResetError:
                reset += 1
            except BlockingIOError:
                pass            # still open, nothing to read
        for s in accepted:
            s.close()
        print(f"\ntcp_migrate_req={migrate}: of 64 connections waiting when a listener "
              f"closed, {len(accepted)} accepted by the other, {reset} reset")
        if migrate:
            assert len(accepted) == 64 and reset == 0, (len(accepted), reset)
        else:
            assert reset > 0 and len(accepted) + reset == 64, (len(accepted), reset)
    finally:
        a.close()
        b.close()
        for c in clients:
            c.close()
