"""Helpers for the key-value store tests (test_kv*.py, test_residency.py).

Real processes only: `keel up` on 127.0.0.1 with the test component
tests/components/kv.c (HTTP in front of every kv_* host function), real
SQLite files under the test's tmp_path, and a real `redis-server` started
on a free loopback port (a missing redis-server fails the test).
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_up import KeelServer, free_port

LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
START_TIMEOUT = 120.0


def kv_yaml(wasm, stores: str, kv=("main",), extra_component="", top="") -> str:
    """A manifest with the kv component (routes /kv/* and /bad) granted kv."""
    return f"""{top}
stores:
{stores}
components:
  kv:
    wasm: {wasm}
    routes:
      - path: /kv/*
        operation: kv
      - path: /bad
        operation: bad
    kv: [{", ".join(kv)}]
    limits: {{ concurrency: 256, timeout: 20s }}
{extra_component}
"""


def sqlite_store(name="main", path="data/main.db", extra="") -> str:
    return f"  {name}:\n    backend: sqlite\n    path: {path}\n{extra}"


def redis_store(port, name="main", prefix="t:", extra="") -> str:
    return (f"  {name}:\n    backend: redis\n    url: redis://127.0.0.1:{port}/0\n"
            f"    prefix: \"{prefix}\"\n{extra}")


class Redis:
    """One redis-server on a loopback port; restartable on the same port."""

    def __init__(self, workdir: Path):
        exe = shutil.which("redis-server")
        if not exe:
            pytest.fail("redis-server is not installed (scripts/install-deps.sh installs it)")
        self.exe = exe
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.cmd("PING") == b"+PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited: {(self.dir / 'redis.log').read_text()}")
            time.sleep(0.05)
        pytest.fail("redis-server did not answer PING within 10 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cmd(self, *args) -> bytes:
        """One RESP command; the first line of the reply."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(out)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n")[0]


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path / "redis").start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def kv_wasm(keel_bin, base_env, built_guests):
    """Path of the kv component, its optimized code in the session cache
    (so each `keel up` does not start a cc -O2 build of its own)."""
    m = built_guests / "components" / "kv.wasm"
    if not m.is_file():
        pytest.fail(f"missing test component {m}")
    p = subprocess.run([str(keel_bin), "compile", "--quiet", "--tier", "opt", str(m)],
                       env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=600)
    if p.returncode != 0:
        pytest.fail(f"keel compile failed: {p.stderr.decode(errors='replace')}")
    return str(m)


@pytest.fixture
def keel_up(tmp_path, keel_bin, base_env):
    """keel_up(yaml, name="keel.yaml", env=None, wait=True) -> KeelServer in
    tmp_path. At teardown every server still running is stopped (SIGTERM,
    exit 0 required unless the test killed it)."""
    servers = []

    def start(yaml, name="keel.yaml", env=None, wait=True):
        (tmp_path / name).write_text(yaml)
        log_path = tmp_path / f"keel-{len(servers)}.log"
        e = dict(base_env)
        e.update(env or {})
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([str(keel_bin), "up", "-f", name, "--listen",
                                     "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                                    cwd=tmp_path, env=e,
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
        pytest.fail(f"keel up did not listen within {START_TIMEOUT}s\n{srv.tail()}")

    yield start

    problems = []
    for srv in servers:
        if srv.proc.poll() is not None:
            if srv.expected_exit:
                continue
            problems.append(f"keel exited on its own with {srv.proc.returncode}\n{srv.tail()}")
            continue
        rc = srv.stop()
        if rc != 0:
            problems.append(f"keel exited {rc} on SIGTERM\n{srv.tail()}")
    if problems:
        pytest.fail("\n\n".join(problems))


def kill9(srv: KeelServer):
    srv.expected_exit = True
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)


class Client:
    """A keep-alive HTTP client for one server (one per thread)."""

    def __init__(self, port, timeout=30.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def req(self, method, path, body=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn:
            self.conn.close()


def kv_code(body: bytes) -> int:
    """N of a "kv error N: ..." body."""
    m = re.match(rb"kv error (-?\d+):", body)
    assert m, body
    return int(m.group(1))
