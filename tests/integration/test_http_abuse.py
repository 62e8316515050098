"""HTTP abuse against a real `keel up` on 127.0.0.1, over raw sockets:
oversized request lines and headers, 10,000 headers, invalid chunked
encoding, request smuggling (Content-Length with Transfer-Encoding),
pipelining, clients that vanish mid-request or mid-response, and many idle
keep-alive connections (memory per idle connection measured). After each,
the server still answers a normal request. Slowloris and the header timeout
are in tests/unit/test_http.c (slowloris_cut), with a fake host."""
import re
import socket
import time

import pytest

from test_up import comp, start_keel, vm_rss_kib, warm_cache  # noqa: F401  (fixtures)

YAML = """
components:
  echo:
    wasm: {up_probe}
    routes:
      - path: /echo
        operation: echo
"""


def raw(srv, data: bytes, read_timeout=5.0, responses=None) -> bytes:
    """Sends data on a fresh connection and returns all bytes the server
    sent until it closed, read_timeout passed or, with responses=N, N
    responses arrived (without it the client half-closes after sending)."""
    s = socket.create_connection((srv.host, srv.port), timeout=read_timeout)
    try:
        s.sendall(data)
        if responses is None:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        out = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            if responses is not None and out.count(b"HTTP/1.1 ") >= responses \
                    and out.endswith(b"\r\n\r\n%d" % ((responses - 1) % 10)):
                break
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def statuses(resp: bytes) -> list:
    """Status codes of every response in resp, in order (a status line may
    follow the previous body directly)."""
    return [int(c) for c in re.findall(rb"HTTP/1\.[01] (\d{3}) ", resp)]


def still_serves(srv):
    r = srv.post("/echo", b"ok")
    assert r.status == 200 and r.body == b"ok", (r, srv.tail())


@pytest.fixture
def srv(start_keel):
    return start_keel(YAML)


def test_oversized_request_line(srv):
    resp = raw(srv, b"GET /echo?" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    codes = statuses(resp)
    assert codes == [] or codes[0] in (400, 413, 414, 431), resp[:200]
    still_serves(srv)


def test_ten_thousand_headers(srv):
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
    resp = raw(srv, b"GET /echo HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    codes = statuses(resp)
    assert codes == [] or codes[0] in (400, 431), resp[:200]
    still_serves(srv)


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",                 # not hex
    b"5\r\nhelloXX0\r\n\r\n",                     # missing CRLF after data
    b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n",     # size overflows
    b"-1\r\nx\r\n0\r\n\r\n",                      # negative
])
def test_invalid_chunked_encoding(srv, body):
    resp = raw(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + body)
    codes = statuses(resp)
    # Rejected (4xx) or the connection closed; never a 2xx echoing garbage.
    assert all(400 <= c < 500 for c in codes), resp[:300]
    still_serves(srv)


def test_smuggling_content_length_and_chunked(srv):
    """CL + TE: either refused, or the body is taken as chunked (RFC 9112
    6.3) — the bytes after the chunked body must never be read as a second
    request (that would be a smuggled GET)."""
    smuggled = b"GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n0\r\n\r\n" + smuggled)
    resp = raw(srv, req)
    codes = statuses(resp)
    assert codes, resp[:300]
    if codes[0] == 200:
        # chunked won: the echo is "abc", and the next request is a plain
        # one on the same connection — h2o closes a CL+TE connection, so at
        # most one response. Either way no response echoes a smuggled body.
        assert b"abc" in resp and len(codes) <= 2, resp[:500]
        assert resp.count(b"HTTP/1.1 200") <= 2
    else:
        assert 400 <= codes[0] < 500, resp[:300]
    still_serves(srv)


def test_pipelined_requests_answer_in_order(srv):
    reqs = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d"
                    % (i % 10) for i in range(20))
    resp = raw(srv, reqs, responses=20)
    codes = statuses(resp)
    assert codes == [200] * 20, resp[:300]
    bodies = [part.split(b"\r\n\r\n", 1)[1][:1] for part in resp.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"%d" % (i % 10) for i in range(20)], bodies


def test_client_vanishes_mid_request_and_mid_response(srv):
    # Half a body, then gone.
    s = socket.create_connection((srv.host, srv.port))
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    s.close()
    # A large response the client never reads.
    for _ in range(5):
        s = socket.create_connection((srv.host, srv.port))
        body = b"b" * 900000
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()   # RST while the server writes
    time.sleep(0.3)
    assert srv.alive()
    still_serves(srv)


def test_many_idle_keepalive_connections(srv):
    """2,000 idle keep-alive connections (each made one request first):
    others are still served, and the memory each costs is measured and
    bounded."""
    n = 2000
    rss0 = vm_rss_kib(srv.pid)
    socks = []
    try:
        for _ in range(n):   # one request each, in turn (not a burst: 503s)
            s = socket.create_connection((srv.host, srv.port))
            socks.append(s)
            s.settimeout(10)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nk")
            got = b""
            while b"\r\n\r\nk" not in got:
                b = s.recv(4096)
                assert b, f"server closed the connection: {got[:100]!r}"
                got += b
        time.sleep(0.5)
        for s in socks[:: n // 20]:   # still open: a request still works
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nk")
            got = b""
            while b"\r\n\r\nk" not in got:
                b = s.recv(4096)
                assert b, "server closed an idle keep-alive connection early"
                got += b
        rss1 = vm_rss_kib(srv.pid)
        t0 = time.monotonic()
        still_serves(srv)
        assert time.monotonic() - t0 < 2.0
        per_conn = (rss1 - rss0) * 1024 / n
        print(f"idle keep-alive connections: {n}, RSS {rss0} -> {rss1} KiB, "
              f"{per_conn:.0f} bytes each")
        assert per_conn < 64 * 1024, f"{per_conn:.0f} bytes per idle connection"
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    still_serves(srv)
