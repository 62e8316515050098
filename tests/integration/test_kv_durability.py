"""SQLite stores under failure: kill -9 during a write load (every write
answered 2xx survives, the database is intact), a backup taken during a
write load restores to a consistent prefix, restore refuses bad files and
never half-restores, and the runbook of docs/operations.md step by step.

Writers use the kv component (tests/components/kv.c) over real HTTP; the
databases are checked with Python's sqlite3 module, which reads them the
way any SQLite tool would.
"""
import hashlib
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from kvlib import Client, keel_up, kill9, kv_wasm, kv_yaml, sqlite_store  # noqa: F401

RUNBOOK = ROOT / "docs" / "operations.md"


def db_rows(path: Path) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {bytes(k).decode(): bytes(v) for k, v in con.execute("SELECT k, v FROM kv")}
    finally:
        con.close()


def integrity(path: Path) -> str:
    con = sqlite3.connect(str(path))
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


class Writers:
    """n threads writing distinct keys until stopped; acked holds every key
    whose PUT was answered 200, with its value."""

    def __init__(self, port, n=6, prefix="w"):
        self.port, self.n, self.prefix = port, n, prefix
        self.acked = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]

    def run(self, i):
        c = Client(self.port, timeout=10)
        seq = 0
        while not self.stop.is_set():
            key = f"{self.prefix}{i}-{seq:06d}"
            val = f"value of {key}".encode()
            try:
                st, _ = c.req("PUT", f"/kv/main/{key}", val)
            except OSError:
                return      # the server was killed
            if st == 200:
                with self.lock:
                    self.acked[key] = val
            seq += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_kill9_during_writes_loses_no_acknowledged_write(kv_wasm, keel_up, tmp_path):
    yaml = kv_yaml(kv_wasm, sqlite_store())
    db = tmp_path / "data" / "main.db"
    acked = {}
    for rnd in range(4):
        srv = keel_up(yaml)
        with Writers(srv.port, prefix=f"r{rnd}w") as w:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline or len(w.acked) < 20:
                time.sleep(0.05)
            kill9(srv)      # mid-write: requests are in flight
        acked.update(w.acked)
        # the next start opens the database cleanly (WAL recovery) ...
        srv = keel_up(yaml)
        c = Client(srv.port)
        # ... and every acknowledged write is there, through Keel
        for key in list(w.acked)[:: max(1, len(w.acked) // 50)]:
            assert c.req("GET", f"/kv/main/{key}") == (200, w.acked[key]), key
        kill9(srv)
        rows = db_rows(db)
        missing = [k for k in acked if rows.get(k) != acked[k]]
        assert not missing, f"round {rnd}: {len(missing)} acknowledged writes lost: {missing[:5]}"
        assert integrity(db) == "ok"
    assert len(acked) > 100


def test_backup_during_load_is_a_consistent_prefix(kv_wasm, keel_up, keel, tmp_path):
    """One writer writes seq-000000, seq-000001, ... in order, each after
    the previous was acknowledged; a backup taken meanwhile must hold
    exactly seq-0..seq-N for some N, at least every write acknowledged
    before the backup started."""
    yaml = kv_yaml(kv_wasm, sqlite_store())
    srv = keel_up(yaml)
    stop = threading.Event()
    acked = []

    def writer():
        c = Client(srv.port)
        i = 0
        while not stop.is_set():
            st, _ = c.req("PUT", f"/kv/main/seq-{i:06d}", str(i).encode())
            assert st == 200
            acked.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(acked) < 30:
            time.sleep(0.02)
        before = len(acked)
        res = keel("backup", "-f", "keel.yaml", "--store", "main", "-o", "snap.db",
                   cwd=tmp_path)
        while len(acked) < before + 30:
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(30)
    assert res.returncode == 0, res.describe()
    assert re.search(r"backed up store main .* to snap\.db: \d+ bytes, sha256 [0-9a-f]{64}",
                     res.out), res.out
    snap = tmp_path / "snap.db"
    assert integrity(snap) == "ok"
    keys = sorted(db_rows(snap))
    n = len(keys)
    assert keys == [f"seq-{i:06d}" for i in range(n)], "not a prefix of the writes"
    assert n >= before
    want = (tmp_path / "snap.db.sha256").read_text().split()[0]
    assert want == hashlib.sha256(snap.read_bytes()).hexdigest()


def test_restore_refuses_bad_files_and_replaces_atomically(kv_wasm, keel_up, keel, tmp_path):
    yaml = kv_yaml(kv_wasm, sqlite_store())
    srv = keel_up(yaml)
    c = Client(srv.port)
    for i in range(20):
        assert c.req("PUT", f"/kv/main/old{i}", b"old")[0] == 200
    res = keel("backup", "--store", "main", "-o", "b.db", cwd=tmp_path)
    assert res.returncode == 0, res.describe()
    for i in range(20):
        assert c.req("PUT", f"/kv/main/new{i}", b"new")[0] == 200
    live = tmp_path / "data" / "main.db"
    good = (tmp_path / "b.db").read_bytes()

    def restore(name):
        return keel("restore", "--store", "main", name, cwd=tmp_path)

    def unchanged():
        assert c.req("GET", "/kv/main/new7") == (200, b"new")
        assert len(db_rows(live)) == 40

    # one flipped byte: the checksum does not match
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "flip.db").write_bytes(bad)
    (tmp_path / "flip.db.sha256").write_text((tmp_path / "b.db.sha256").read_text())
    r = restore("flip.db")
    assert r.returncode == 1 and "checksum mismatch" in r.err and "refusing" in r.err, r.err
    unchanged()
    # no checksum file at all
    (tmp_path / "nosum.db").write_bytes(good)
    r = restore("nosum.db")
    assert r.returncode == 1 and "nosum.db.sha256" in r.err, r.err
    unchanged()
    # a checksum that matches a corrupt database: integrity_check refuses
    corrupt = bytearray(good)
    for off in range(4096 + 100, min(len(corrupt), 4096 * 3), 7):
        corrupt[off] ^= 0x5A
    (tmp_path / "corrupt.db").write_bytes(corrupt)
    (tmp_path / "corrupt.db.sha256").write_text(
        hashlib.sha256(corrupt).hexdigest() + "  corrupt.db\n")
    r = restore("corrupt.db")
    assert r.returncode == 1 and "refusing to restore" in r.err, r.err
    unchanged()
    # not a database at all
    (tmp_path / "junk.db").write_bytes(b"junk" * 1000)
    (tmp_path / "junk.db.sha256").write_text(hashlib.sha256(b"junk" * 1000).hexdigest() + "\n")
    r = restore("junk.db")
    assert r.returncode == 1 and "refusing to restore" in r.err, r.err
    unchanged()
    assert integrity(live) == "ok"
    # the good one, while keel serves: old data back, new data gone
    r = restore("b.db")
    assert r.returncode == 0, r.describe()
    assert "restored store main" in r.out
    assert c.req("GET", "/kv/main/old3") == (200, b"old")
    assert c.req("GET", "/kv/main/new7")[0] == 404
    assert c.req("PUT", "/kv/main/after", b"x")[0] == 200    # and it keeps working
    assert integrity(live) == "ok"


def runbook_commands() -> list:
    """The command lines of the SQLite runbook in docs/operations.md."""
    text = RUNBOOK.read_text()
    m = re.search(r"<!-- runbook:sqlite -->(.*?)<!-- /runbook:sqlite -->", text, re.S)
    assert m, "docs/operations.md has no <!-- runbook:sqlite --> section"
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", m.group(1), re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds


def test_runbook_sqlite_backup_and_disaster_recovery(kv_wasm, keel_up, keel_bin, base_env,
                                                     tmp_path):
    """Walks the runbook's steps in order, as an operator would type them
    (keel is build/keel, the manifest is keel.yaml in the current folder):
    back up while serving, verify, lose the machine's data, restore on a
    fresh folder, start, and find the data."""
    cmds = runbook_commands()
    assert any(c.startswith("keel backup") for c in cmds)
    assert any(c.startswith("keel restore") for c in cmds)
    yaml = kv_yaml(kv_wasm, sqlite_store("carts", "data/carts.db"), kv=("carts",))
    srv = keel_up(yaml)
    c = Client(srv.port)
    for i in range(10):
        assert c.req("PUT", f"/kv/carts/cart{i}", f"items {i}".encode())[0] == 200
    env = dict(base_env)
    env["PATH"] = f"{keel_bin.parent}:{env.get('PATH', '')}"
    ran = []
    for cmd in cmds:
        if cmd.startswith("systemctl stop keel"):
            srv.stop()              # what the unit does: SIGTERM
            ran.append(cmd)
            continue
        if cmd.startswith("systemctl start keel"):
            srv = keel_up(yaml)
            ran.append(cmd)
            continue
        p = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        assert p.returncode == 0, f"runbook step failed: {cmd}\n{p.stdout.decode()}"
        ran.append(cmd)
    assert any("rm" in c and "data/carts.db" in c for c in ran), "no disaster simulated"
    c = Client(srv.port)
    for i in range(10):
        assert c.req("GET", f"/kv/carts/cart{i}") == (200, f"items {i}".encode())
    assert integrity(tmp_path / "data" / "carts.db") == "ok"


def test_backup_through_the_admin_api(kv_wasm, keel_up, keel, tmp_path):
    """POST /admin/stores/main/backup on the admin listener: refused without
    the bearer token (401) and with a wrong one (403); with the token, a
    consistent snapshot beside the manifest (backups/) whose checksum file
    matches and which `keel restore` accepts."""
    import json
    from test_obs import admin_post as post
    (tmp_path / "admin.token").write_text("s3cret-token\n")
    srv = keel_up(kv_yaml(kv_wasm, sqlite_store(), top="admin:\n  token_file: admin.token\n"))
    c = Client(srv.port)
    for i in range(20):
        assert c.req("PUT", f"/kv/main/k{i}", b"v%d" % i)[0] == 200

    assert post(srv, "/admin/stores/main/backup")[0] == 401
    assert post(srv, "/admin/stores/main/backup", "wrong")[0] == 403
    assert post(srv, "/admin/stores/nope/backup", "s3cret-token")[0] == 404
    st, body = post(srv, "/admin/stores/main/backup", "s3cret-token")
    assert st == 200, (body, srv.tail())
    info = json.loads(body)
    snap = Path(info["file"])
    assert snap.parent == tmp_path / "backups" and snap.is_file(), info
    assert info["sha256"] == hashlib.sha256(snap.read_bytes()).hexdigest()
    assert (Path(str(snap) + ".sha256")).read_text().split()[0] == info["sha256"]
    assert integrity(snap) == "ok"
    assert sorted(db_rows(snap)) == sorted(f"k{i}" for i in range(20))
    assert "backup of store main refused (401)" in srv.log()
    assert "backup of store main refused (403)" in srv.log()
    res = keel("restore", "-f", "keel.yaml", "--store", "main", str(snap), cwd=tmp_path)
    assert res.returncode == 0, res.describe()
