"""Key-value stores through real `keel up` processes: one behavioural suite
run against both backends (SQLite file, real redis-server), exact counts
under concurrent kv_incr, limits and bad input (errors, traps, never a
partial write), a full SQLite store, Redis restarts and two Keel
processes sharing one Redis.

The guest is tests/components/kv.c: /kv/STORE/KEY maps HTTP methods onto
kv_get/kv_set/kv_delete/kv_keys/kv_incr; /bad makes the calls a hostile
guest would. Helpers: kvlib.py.
"""
import re
import threading
import time

import pytest

from test_obs import admin_get
from kvlib import (Client, keel_up, kill9, kv_code, kv_wasm, kv_yaml, redis,  # noqa: F401
                   redis_store, sqlite_store)

BACKENDS = ("sqlite", "redis")


@pytest.fixture(params=BACKENDS)
def server(request, kv_wasm, keel_up, tmp_path):
    """A keel serving the kv component with store "main" on the backend
    under test (max_value 1KiB), plus an ungranted store "secret"."""
    if request.param == "sqlite":
        stores = sqlite_store(extra="    max_value: 1KiB\n")
    else:
        r = request.getfixturevalue("redis")
        stores = redis_store(r.port, extra="    max_value: 1KiB\n")
    stores += sqlite_store("secret", "data/secret.db")
    return keel_up(kv_yaml(kv_wasm, stores))


def test_set_get_delete_keys(server):
    c = Client(server.port)
    assert c.req("GET", "/kv/main/a") == (404, b"absent\n")
    assert c.req("PUT", "/kv/main/a", b"hello") == (200, b"ok\n")
    assert c.req("GET", "/kv/main/a") == (200, b"hello")
    assert c.req("PUT", "/kv/main/a", b"again") == (200, b"ok\n")
    assert c.req("GET", "/kv/main/a") == (200, b"again")
    binary = bytes(range(256))
    assert c.req("PUT", "/kv/main/bin", binary)[0] == 200
    assert c.req("GET", "/kv/main/bin") == (200, binary)
    assert c.req("PUT", "/kv/main/empty", b"") == (200, b"ok\n")
    assert c.req("GET", "/kv/main/empty") == (200, b"")
    for k in ("user:2", "user:10", "user:1", "other"):
        assert c.req("PUT", f"/kv/main/{k}", k.encode())[0] == 200
    assert c.req("GET", "/kv/main/?keys=user:") == (200, b"user:1\nuser:10\nuser:2\n")
    assert c.req("GET", "/kv/main/?keys=nope") == (200, b"")
    st, body = c.req("GET", "/kv/main/?keys=")
    assert body.split(b"\n")[:-1] == sorted(
        [b"a", b"bin", b"empty", b"user:2", b"user:10", b"user:1", b"other"])
    assert c.req("DELETE", "/kv/main/a") == (200, b"deleted\n")
    assert c.req("DELETE", "/kv/main/a") == (404, b"absent\n")
    assert c.req("GET", "/kv/main/a") == (404, b"absent\n")


def test_incr_semantics(server):
    c = Client(server.port)
    assert c.req("POST", "/kv/main/n?incr=5") == (200, b"5")
    assert c.req("POST", "/kv/main/n?incr=-7") == (200, b"-2")
    assert c.req("GET", "/kv/main/n") == (200, b"-2")      # a decimal string
    assert c.req("PUT", "/kv/main/n", b"41")[0] == 200
    assert c.req("POST", "/kv/main/n?incr=1") == (200, b"42")
    assert c.req("POST", "/bad", b"notnum") == (200, b"rc -8")
    assert c.req("POST", "/bad", b"range") == (200, b"rc -9")
    assert c.req("GET", "/kv/main/max") == (200, b"9223372036854775807")  # unchanged
    assert c.req("POST", "/bad", b"range-low") == (200, b"rc -9")
    st, body = c.req("GET", "/kv/main/low")
    assert (st, body) in ((404, b"absent\n"), (200, b"0")), body   # nothing reserved kept


def test_limits_and_bad_arguments(server):
    c = Client(server.port)
    assert c.req("PUT", "/kv/main/v", b"x" * 1024) == (200, b"ok\n")     # max_value: 1KiB
    st, body = c.req("PUT", "/kv/main/v", b"y" * 1025)
    assert st == 413 and kv_code(body) == -3, body
    assert c.req("GET", "/kv/main/v") == (200, b"x" * 1024)               # no partial write
    assert c.req("POST", "/bad", b"bigkey") == (200, b"rc -3")
    assert c.req("POST", "/bad", b"nulkey") == (200, b"rc -5")
    assert c.req("POST", "/bad", b"emptykey") == (200, b"rc -5")
    assert c.req("POST", "/bad", b"badutf8") == (200, b"rc -5")
    assert c.req("POST", "/bad", b"denied") == (200, b"rc -2")
    assert c.req("POST", "/bad", b"denied-incr") == (200, b"rc -2")
    st, body = c.req("GET", "/kv/secret/k")
    assert st == 403 and kv_code(body) == -2
    # the JSON log escapes the quotes around the store's name
    assert 'kv access to store \\"secret\\" denied' in server.log(), server.tail()
    # and counted for the operator
    status, text, _ = admin_get(server, "/metrics")
    assert status == 200
    assert re.search(r'^keel_kv_denied_total\{component="kv"\} [1-9]', text, re.M), text


@pytest.mark.parametrize("case", ["oob-store", "oob-key", "oob-val", "oob-buf",
                                  "oob-keys-buf", "oob-incr"])
def test_bad_pointers_trap(server, case):
    c = Client(server.port)
    st, body = c.req("POST", "/bad", case.encode())
    assert st == 500 and body.startswith(b"internal error (request id "), body
    assert "out of bounds memory access" in server.log()
    assert c.req("GET", "/kv/main/oob")[0] == 404    # oob-val wrote nothing
    assert c.req("PUT", "/kv/main/after", b"fine") == (200, b"ok\n")   # still serving


def test_concurrent_incr_is_exact(server):
    threads, per = 16, 40
    seen, errors = [], []
    lock = threading.Lock()

    def worker():
        c = Client(server.port)
        try:
            for _ in range(per):
                st, body = c.req("POST", "/kv/main/hits?incr=1")
                with lock:
                    (seen if st == 200 else errors).append(body)
        finally:
            c.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    total = threads * per
    assert sorted(int(v) for v in seen) == list(range(1, total + 1))   # each value once
    assert Client(server.port).req("GET", "/kv/main/hits") == (200, str(total).encode())


def test_sqlite_full_store_fails_writes_and_stays_up(kv_wasm, keel_up):
    """max_size caps the database (PRAGMA max_page_count): writes past it
    fail with KEEL_KV_EFULL, earlier data stays readable, the service
    stays up and answers other requests."""
    srv = keel_up(kv_yaml(kv_wasm, sqlite_store(
        extra="    max_size: 64KiB\n    max_value: 4KiB\n")))
    c = Client(srv.port)
    full_at = None
    for i in range(200):
        st, body = c.req("PUT", f"/kv/main/k{i:04d}", bytes([65 + i % 26]) * 4000)
        if st != 200:
            assert st == 507 and kv_code(body) == -7, body
            full_at = i
            break
    assert full_at and full_at > 3, "the store never filled up"
    assert c.req("GET", "/kv/main/k0000") == (200, b"A" * 4000)
    st, body = c.req("GET", f"/kv/main/k{full_at:04d}")
    assert st == 404                                  # the failed write left nothing
    assert c.req("DELETE", "/kv/main/k0001")[0] == 200
    assert "storage full" in srv.log() or "full" in srv.log()
    assert srv.alive()


def test_redis_restart_reconnects_and_down_is_fast(kv_wasm, keel_up, redis):
    srv = keel_up(kv_yaml(kv_wasm, redis_store(redis.port)))
    c = Client(srv.port)
    assert c.req("PUT", "/kv/main/k", b"before")[0] == 200
    redis.stop()
    for _ in range(5):
        t0 = time.monotonic()
        st, body = c.req("GET", "/kv/main/k")
        elapsed = time.monotonic() - t0
        assert st == 503 and kv_code(body) == -4, body
        assert elapsed < 1.0, f"an unavailable Redis took {elapsed:.2f}s to report"
        t0 = time.monotonic()
        st, body = c.req("PUT", "/kv/main/k", b"while-down")
        assert st == 503 and kv_code(body) == -4 and time.monotonic() - t0 < 1.0
    assert "unavailable" in srv.log()
    redis.start()    # same port, empty (no persistence in this test)
    deadline = time.monotonic() + 5
    while True:
        st, body = c.req("PUT", "/kv/main/k", b"after")
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert st == 200, body
    assert c.req("GET", "/kv/main/k") == (200, b"after")
    assert redis.cmd("EXISTS", "t:k") == b":1"
    assert srv.alive()


def test_two_keels_share_one_redis(kv_wasm, keel_up, redis):
    yaml = kv_yaml(kv_wasm, redis_store(redis.port, prefix="shared:"))
    a = keel_up(yaml, name="a.yaml")
    b = keel_up(yaml, name="b.yaml")
    ca, cb = Client(a.port), Client(b.port)
    assert ca.req("PUT", "/kv/main/greeting", b"from a")[0] == 200
    assert cb.req("GET", "/kv/main/greeting") == (200, b"from a")
    assert cb.req("DELETE", "/kv/main/greeting")[0] == 200
    assert ca.req("GET", "/kv/main/greeting")[0] == 404
    errors = []

    def hammer(port):
        c = Client(port)
        for _ in range(50):
            st, body = c.req("POST", "/kv/main/both?incr=1")
            if st != 200:
                errors.append(body)

    ts = [threading.Thread(target=hammer, args=(p,)) for p in (a.port, b.port) * 4]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert ca.req("GET", "/kv/main/both") == (200, b"400")
    assert redis.cmd("GET", "shared:both").startswith(b"$3")
