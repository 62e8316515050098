"""The audit trail (admin.audit_log) end to end: a real `keel up` with
admin.token_file (two labelled tokens) and an audit log; refused admin
requests, backups through the admin API and through `keel backup` /
`keel restore`, the startup config record and residency refusals all
become hash-chained records that `keel audit verify` accepts; editing,
removing or reordering a record makes it fail naming the line; a restart
continues the chain; `keel audit rotate` keeps one chain across files.
"""
import hashlib
import json
from pathlib import Path

from kvlib import Client, keel_up, kv_wasm, kv_yaml, sqlite_store  # noqa: F401
from test_obs import admin_post as post, scrape

TOKENS = """# operators and CI systems, one token each
alice   alice-token-0123456789
ci.deploy@prod   ci-token-9876543210
"""
ADMIN = "admin:\n  token_file: admin.token\n  audit_log: audit/audit.jsonl\n"


def records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verify(keel, *files, cwd):
    return keel("audit", "verify", *[str(f) for f in files], cwd=cwd)


def start(keel_up, kv_wasm, tmp_path):
    (tmp_path / "audit").mkdir(exist_ok=True)
    (tmp_path / "admin.token").write_text(TOKENS)
    return keel_up(kv_yaml(kv_wasm, sqlite_store(), top=ADMIN))


def test_admin_events_form_a_verified_chain(kv_wasm, keel_up, keel, tmp_path):
    log = tmp_path / "audit" / "audit.jsonl"
    srv = start(keel_up, kv_wasm, tmp_path)
    c = Client(srv.port)
    assert c.req("PUT", "/kv/main/k", b"v")[0] == 200
    assert post(srv, "/admin/stores/main/backup")[0] == 401
    assert post(srv, "/admin/stores/main/backup", "alice-token-012345678")[0] == 403
    st, body = post(srv, "/admin/stores/main/backup", "alice-token-0123456789")
    assert st == 200, (body, srv.tail())
    alice_backup = json.loads(body)
    st, body = post(srv, "/admin/stores/main/backup", "ci-token-9876543210")
    assert st == 200, (body, srv.tail())

    recs = records(log)
    assert [r["event"] for r in recs] == ["config.loaded", "admin.auth_failed",
                                          "admin.auth_failed", "store.backup", "store.backup"]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert list(recs[0])[:4] == ["seq", "ts", "event", "who"] and list(recs[0])[-1] == "prev"
    assert recs[0]["prev"] == "0" * 64
    lines = log.read_bytes().split(b"\n")
    for i in range(1, len(recs)):
        assert recs[i]["prev"] == hashlib.sha256(lines[i - 1]).hexdigest()
    # config.loaded: the manifest and each component's code by digest
    cfg = recs[0]
    assert cfg["who"] == "system" and cfg["manifest"] == str(tmp_path / "keel.yaml")
    assert cfg["sha256"] == hashlib.sha256((tmp_path / "keel.yaml").read_bytes()).hexdigest()
    assert cfg["components"]["kv"] == hashlib.sha256(Path(kv_wasm).read_bytes()).hexdigest()
    # refusals: status, remote, method, path, why; never the presented token
    assert recs[1]["status"] == 401 and recs[1]["remote"] == "127.0.0.1"
    assert recs[1]["method"] == "POST" and recs[1]["path"] == "/admin/stores/main/backup"
    assert recs[2]["status"] == 403 and recs[2]["why"] == "wrong token"
    assert "alice-token" not in log.read_text()
    # who = the label of the token used
    assert (recs[3]["who"], recs[4]["who"]) == ("alice", "ci.deploy@prod")
    assert recs[3]["store"] == "main" and recs[3]["outcome"] == "ok"
    assert recs[3]["file"] == alice_backup["file"]
    assert recs[3]["sha256"] == alice_backup["sha256"]

    r = verify(keel, log, cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    assert r.out.strip() == f"{log}: 5 records, chain intact"
    metrics = scrape(srv)
    assert "keel_audit_records_total 5\n" in metrics, metrics
    assert "keel_audit_failures_total 0\n" in metrics, metrics

    # the CLI appends to the same log while keel up runs, as who "cli"
    snap = tmp_path / "cli-backup.db"
    r = keel("backup", "-f", "keel.yaml", "--store", "main", "-o", str(snap), cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    r = keel("restore", "-f", "keel.yaml", "--store", "main", str(snap), cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    (tmp_path / "bad.db").write_bytes(b"not a database")
    (tmp_path / "bad.db.sha256").write_text("0" * 64 + "  bad.db\n")
    r = keel("restore", "-f", "keel.yaml", "--store", "main", str(tmp_path / "bad.db"),
             cwd=tmp_path)
    assert r.returncode == 1, r.describe()
    # and keel up, writing next, chains onto the CLI's records
    assert post(srv, "/admin/stores/main/backup", "nope")[0] == 403
    recs = records(log)
    tail = [(r["event"], r["who"], r.get("outcome")) for r in recs[5:]]
    assert tail == [("store.backup", "cli", "ok"), ("store.restore", "cli", "ok"),
                    ("store.restore", "cli", "refused"), ("admin.auth_failed", "unknown", None)]
    assert recs[5]["sha256"] == hashlib.sha256(snap.read_bytes()).hexdigest()
    assert "checksum" in recs[7]["why"] or "sha256" in recs[7]["why"], recs[7]
    r = verify(keel, log, cwd=tmp_path)
    assert r.returncode == 0 and "9 records, chain intact" in r.out, r.describe()

    # a restart continues the chain
    assert srv.stop() == 0
    srv = start(keel_up, kv_wasm, tmp_path)
    assert post(srv, "/admin/stores/main/backup", "ci-token-9876543210")[0] == 200
    recs = records(log)
    assert [r["seq"] for r in recs[-2:]] == [10, 11]
    assert recs[-2]["event"] == "config.loaded"
    r = verify(keel, log, cwd=tmp_path)
    assert r.returncode == 0 and "11 records, chain intact" in r.out, r.describe()


def write_chain(keel, kv_wasm, tmp_path, n=6) -> Path:
    """An audit log of n records written by `keel backup` runs."""
    (tmp_path / "audit").mkdir(exist_ok=True)
    (tmp_path / "keel.yaml").write_text(
        kv_yaml(kv_wasm, sqlite_store(), top="admin:\n  audit_log: audit/audit.jsonl\n"))
    for i in range(n):
        r = keel("backup", "--store", "main", "-o", f"b{i}.db", cwd=tmp_path)
        assert r.returncode == 0, r.describe()
    log = tmp_path / "audit" / "audit.jsonl"
    assert len(records(log)) == n
    return log


def test_tampering_is_named_by_line(kv_wasm, keel, tmp_path):
    log = write_chain(keel, kv_wasm, tmp_path)
    good = log.read_bytes()
    lines = good.split(b"\n")[:-1]

    def check(data: bytes, want: str):
        log.write_bytes(data)
        r = verify(keel, log, cwd=tmp_path)
        assert r.returncode == 1, r.describe()
        assert r.err.strip().startswith(f"{log}:{want}"), r.describe()
        return r.err

    # one byte of record 3 (still valid JSON): record 4's prev no longer matches
    edited = list(lines)
    edited[2] = edited[2].replace(b'"who":"cli"', b'"who":"clj"')
    err = check(b"\n".join(edited) + b"\n", "4: record 4: prev does not match the SHA-256 "
                                            "of line 3: record 3 was altered")
    # a byte that breaks the JSON is named on its own line
    broken = list(lines)
    broken[1] = broken[1].replace(b'"seq":2', b'"seq":2x')
    check(b"\n".join(broken) + b"\n", "2: record 2: not a valid record")
    # record 3 deleted
    check(b"\n".join(lines[:2] + lines[3:]) + b"\n",
          "3: record 3: seq 4 where 3 was expected (a record before it is missing)")
    # records 4 and 5 swapped
    check(b"\n".join(lines[:3] + [lines[4], lines[3]] + lines[5:]) + b"\n",
          "4: record 4: seq 5 where 4 was expected")
    # the last record cut short by a crash: named, and how to drop it
    err = check(good[:-20], "6: record 6: truncated")
    assert f"truncate -s {len(good) - len(lines[5]) - 1} " in err, err
    # ... and nothing appends to a broken chain
    r = keel("backup", "--store", "main", "-o", "more.db", cwd=tmp_path)
    assert r.returncode == 1, r.describe()
    assert "refusing to append to the audit log, whose chain is broken" in r.err, r.err
    assert not (tmp_path / "more.db").exists()
    # restored, it verifies again
    log.write_bytes(good)
    assert verify(keel, log, cwd=tmp_path).returncode == 0


def test_rotation_keeps_one_chain(kv_wasm, keel, tmp_path):
    log = write_chain(keel, kv_wasm, tmp_path, n=3)
    archive = tmp_path / "audit" / "audit-1.jsonl"
    r = keel("audit", "rotate", str(log), "--to", str(archive), cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    r = keel("backup", "--store", "main", "-o", "after.db", cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    assert len(records(archive)) == 3
    new = records(log)
    assert [(x["seq"], x["event"]) for x in new] == [(4, "audit.rotated"), (5, "store.backup")]
    assert new[0]["prev"] == hashlib.sha256(archive.read_bytes().split(b"\n")[2]).hexdigest()
    r = verify(keel, archive, log, cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    assert f"{archive}: 3 records, chain intact" in r.out
    assert f"{log}: 2 records, chain intact (continues the chain of {archive} from seq 4)" in r.out
    # the wrong order, or a gap between files, is named
    r = verify(keel, log, archive, cwd=tmp_path)
    assert r.returncode == 1 and f"{archive}:1: record 1: seq 1 where 6 was expected" in r.err, \
        r.describe()


def test_residency_refusal_is_recorded(kv_wasm, keel_up, keel, tmp_path):
    (tmp_path / "audit").mkdir()
    yaml = ("region: us-east\nadmin:\n  audit_log: audit/audit.jsonl\n" +
            kv_yaml(kv_wasm, sqlite_store(extra="    regions: [eu-west]\n")))
    srv = keel_up(yaml, wait=False)
    assert srv.proc.wait(60) == 1
    srv.expected_exit = True
    recs = records(tmp_path / "audit" / "audit.jsonl")
    assert [r["event"] for r in recs] == ["config.loaded", "residency.denied"], recs
    d = recs[1]
    assert (d["store"], d["region"], d["who"]) == ("main", "us-east", "system")
    assert "may live only in regions [eu-west]" in d["why"]
    assert verify(keel, tmp_path / "audit" / "audit.jsonl", cwd=tmp_path).returncode == 0


def test_token_file_errors_refuse_and_are_recorded(kv_wasm, keel_up, keel, tmp_path):
    srv = start(keel_up, kv_wasm, tmp_path)
    # a bare token among labelled ones: every request refused, naming the line
    (tmp_path / "admin.token").write_text("alice alice-token-0123456789\nlonely-token\n")
    st, body = post(srv, "/admin/stores/main/backup", "alice-token-0123456789")
    assert st == 403 and "admin.token" in body and ":2: expected LABEL TOKEN" in body, body
    # a single bare token is identity "admin"
    (tmp_path / "admin.token").write_text("  solo-token-123  \n")
    assert post(srv, "/admin/stores/main/backup", "solo-token-123")[0] == 200
    recs = records(tmp_path / "audit" / "audit.jsonl")
    assert recs[-2]["event"] == "admin.auth_failed" and "expected LABEL TOKEN" in recs[-2]["why"]
    assert (recs[-1]["event"], recs[-1]["who"]) == ("store.backup", "admin")


def test_an_event_that_cannot_be_recorded_is_counted(kv_wasm, keel_up, keel, tmp_path):
    """Another writer breaks the file's last record while keel up runs: the
    next event is not chained onto it; it is logged and counted, and the
    admin request is still answered."""
    log = tmp_path / "audit" / "audit.jsonl"
    srv = start(keel_up, kv_wasm, tmp_path)
    with open(log, "ab") as f:
        f.write(b'{"not":"a record"}\n')
    assert post(srv, "/admin/stores/main/backup", "wrong")[0] == 403
    assert "keel_audit_failures_total 1\n" in scrape(srv)
    assert "event admin.auth_failed NOT recorded: its last record is not valid" in srv.log()
    assert len(records(log)) == 2
    r = verify(keel, log, cwd=tmp_path)
    assert r.returncode == 1 and f"{log}:2: record 2: not a valid record" in r.err, r.describe()
