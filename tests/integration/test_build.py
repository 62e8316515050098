"""`keel build`: the shop example as one executable, run where there is
nothing else.

The app is built from a copy of examples/shop/keel.yaml (wasm paths made
absolute, `files: host: ./data` left relative) and copied alone into an
empty folder holding only the shop's data/ folder. It runs with PATH=/nonexistent
(no cc, gcc, clang, tcc or wasm2c reachable), HOME and KEEL_CACHE pointing at
empty folders, and must answer a handful of the shop's requests with the
same status and body as `keel up` on the same manifest, answer /readyz and
/metrics on its admin listener, keep the cache empty, and create its store
relative to its folder. A payload with one byte flipped must refuse to
start. `keel build` errors (missing manifest, broken component) write
nothing.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

SHOP = ROOT / "examples" / "shop"
MODULES = ("gateway", "catalog", "cart", "auth", "legacy", "reviews")
LISTEN_RE = re.compile(r"listening on http://[\d.]+:(\d+)")
ADMIN_RE = re.compile(r"admin endpoints at http://[\d.]+:(\d+)")
START_TIMEOUT = 120.0
HTTP_TIMEOUT = 30.0
TRAILER = 64          # bytes; src/engine/bundle.h

ALICE = json.dumps({"user": "alice", "password": "wonderland"}).encode()
# (method, path, body): statuses and bodies must match keel up's. The cart
# steps use the token the login returned (same secret: same token).
REQUESTS = [
    ("GET", "/api", None),
    ("GET", "/api/products", None),
    ("GET", "/api/products/mug", None),
    ("GET", "/api/products/spoon", None),
    ("POST", "/api/login", json.dumps({"user": "alice", "password": "guess"}).encode()),
    ("POST", "/api/login", ALICE),
    ("POST", "/api/cart", json.dumps({"items": [{"id": "mug", "qty": 2}]}).encode()),
    ("GET", "/api/cart", None),
    ("GET", "/api/reviews/mug", None),
    ("GET", "/legacy/orders", None),
    ("GET", "/nowhere", None),
]


class Server:
    def __init__(self, argv, cwd, env, log: Path):
        self.log_path = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        self.started = time.monotonic()
        deadline = self.started + START_TIMEOUT
        while True:
            text = self.log()
            m, a = LISTEN_RE.search(text), ADMIN_RE.search(text)
            if m and a:
                self.port, self.admin = int(m.group(1)), int(a.group(1))
                return
            if self.proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited with {self.proc.returncode}\n{text}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{argv[0]} did not start within {START_TIMEOUT}s\n{text}")
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def fetch(port, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers=dict(headers or {}))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def walk(port):
    """The REQUESTS against a server: [(method, path, status, body)]."""
    out, token = [], None
    for method, path, body in REQUESTS:
        headers = {"Authorization": f"Bearer {token}"} if token and "cart" in path else {}
        status, got = fetch(port, method, path, body, headers)
        if path == "/api/login" and status == 200:
            token = json.loads(got)["token"]
        # Keel's own 404 names the request id, which differs per process
        out.append((method, path, status, re.sub(rb"request id [0-9a-f]+", b"request id -", got)))
    return out


@pytest.fixture(scope="module")
def shop_app(built_guests, keel, tmp_path_factory):
    """(tmp, manifest, app): the shop built into tmp/out/app."""
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    src.mkdir()
    for m in MODULES:
        if not (built_guests / "shop" / f"{m}.wasm").is_file():
            pytest.fail(f"shop module {m} missing (built by `make guests`)")
    text = (SHOP / "keel.yaml").read_text().replace(
        "../../build/shop/", f"{(built_guests / 'shop').resolve()}/")
    assert "host: ./data" in text
    manifest = src / "keel.yaml"
    manifest.write_text(text)
    shutil.copytree(SHOP / "data", src / "data")
    (tmp / "out").mkdir()
    app = tmp / "out" / "app"
    r = keel("build", "-f", manifest, "-o", app)
    assert r.returncode == 0, r.describe()
    assert f"{app}: 6 components" in r.out, r.describe()
    assert os.access(app, os.X_OK)
    return tmp, manifest, app


def bare_env(tmp: Path):
    """No compiler, no wabt, an empty cache and home."""
    for d in ("emptycache", "home"):
        (tmp / d).mkdir(exist_ok=True)
    return {"PATH": "/nonexistent", "KEEL_CACHE": str(tmp / "emptycache"),
            "HOME": str(tmp / "home")}


def run_dir(tmp: Path, app: Path, name: str) -> Path:
    """A folder with a copy of the app and the shop's data only."""
    d = tmp / name
    d.mkdir()
    shutil.copy2(app, d / "app")
    shutil.copytree(SHOP / "data", d / "data")
    return d


def test_app_serves_like_keel_up_with_nothing_else_around(shop_app, keel_bin, base_env):
    tmp, manifest, app = shop_app
    d = run_dir(tmp, app, "run")
    env = bare_env(tmp)
    for tool in ("cc", "gcc", "clang", "tcc", "wasm2c"):
        assert shutil.which(tool, path=env["PATH"]) is None
    srv = Server([d / "app", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                 d, env, tmp / "app.log")
    ref = Server([keel_bin, "up", "-f", manifest, "--listen", "127.0.0.1:0",
                  "--admin-listen", "127.0.0.1:0"], tmp / "src", base_env, tmp / "up.log")
    try:
        got, want = walk(srv.port), walk(ref.port)
        statuses = [w[2] for w in want]
        assert 200 in statuses and 404 in statuses and 401 in statuses, want
        for g, w in zip(got, want):
            assert g == w, f"app and keel up differ on {w[0]} {w[1]}:\napp: {g}\nup:  {w}"

        status, body = fetch(srv.admin, "GET", "/readyz")
        assert status == 200, body
        status, body = fetch(srv.admin, "GET", "/metrics")
        assert status == 200
        metrics = body.decode()
        assert re.search(r'component="gateway"', metrics), metrics[:2000]
        log = srv.log()
        for m in MODULES:
            assert re.search(rf"loaded embedded:{m}: abi \w+, tier opt", log), log
    finally:
        assert srv.stop() == 0, srv.log()
        ref.stop()
    # nothing compiled or cached; the store lives relative to the app's folder
    assert list(Path(env["KEEL_CACHE"]).iterdir()) == []
    assert (d / "state" / "carts.db").is_file()
    assert sorted(p.name for p in d.iterdir()) == ["app", "data", "state"]


def test_print_manifest_shows_components_and_manifest(shop_app):
    tmp, manifest, app = shop_app
    d = run_dir(tmp, app, "print")
    other = tmp / "elsewhere"
    other.mkdir()
    r = subprocess.run([d / "app", "--print-manifest", "--dir", other], cwd=d,
                       env=bare_env(tmp), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"resolve against {other}" in out, out
    for m in MODULES:
        assert re.search(rf"^#\s+{m}\s+[0-9a-f]{{64}}\s+wasm", out, re.M), out
    # the manifest as written follows the header
    assert out.endswith(manifest.read_text()), out


def test_print_manifest_digests_are_the_wasm_sha256(shop_app, built_guests):
    tmp, _, app = shop_app
    r = subprocess.run([app, "--print-manifest"], cwd=tmp, env=bare_env(tmp),
                       capture_output=True, timeout=60)
    out = r.stdout.decode()
    for m in MODULES:
        want = hashlib.sha256((built_guests / "shop" / f"{m}.wasm").read_bytes()).hexdigest()
        assert re.search(rf"^#\s+{m}\s+{want}\s", out, re.M), (m, out)


def payload_span(app: Path):
    data = app.read_bytes()
    magic, off, length = struct.unpack_from("<8sQQ", data, len(data) - TRAILER)
    assert magic == b"KEELAPP1"
    assert off + length + TRAILER == len(data)
    return data, off, length


def test_corrupt_app_refuses_to_start(shop_app):
    tmp, _, app = shop_app
    data, off, length = payload_span(app)
    bad = bytearray(data)
    bad[off + length // 2] ^= 0x01
    d = tmp / "corrupt"
    d.mkdir()
    (d / "app").write_bytes(bytes(bad))
    os.chmod(d / "app", 0o755)
    r = subprocess.run([d / "app", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                       cwd=d, env=bare_env(tmp), capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "payload is corrupt" in err and "rebuild it with keel build" in err, err
    assert str(d / "app") in err, err
    assert sorted(p.name for p in d.iterdir()) == ["app"]   # no store created

    # a trailer that does not add up is refused too
    bad = bytearray(data)
    struct.pack_into("<Q", bad, len(bad) - TRAILER + 16, length + 1)
    (d / "app").write_bytes(bytes(bad))
    r = subprocess.run([d / "app", "--print-manifest"], cwd=d, env=bare_env(tmp),
                       capture_output=True, timeout=60)
    assert r.returncode == 1 and "trailer is corrupt" in r.stderr.decode(), r.stderr


def test_app_rejects_manifest_flags(shop_app):
    tmp, _, app = shop_app
    r = subprocess.run([app, "-f", "keel.yaml"], cwd=tmp, env=bare_env(tmp),
                       capture_output=True, timeout=60)
    assert r.returncode == 2
    assert "the manifest is embedded" in r.stderr.decode()


# What an app may still load (docs/operations.md, "Shipping one file"): h2o
# and its dependencies, glibc; the sanitizer runtimes in an ASan build.
SHARED_OK = ("linux-vdso", "libh2o-evloop", "libssl", "libcrypto", "libz.", "libwslay",
             "libm.", "libc.", "/lib64/ld-linux", "libasan", "libubsan", "libstdc++",
             "libgcc_s")


def test_app_needs_only_h2o_and_libc_shared_libraries(shop_app):
    _, _, app = shop_app
    r = subprocess.run(["ldd", app], capture_output=True, timeout=60)
    libs = {line.split()[0] for line in r.stdout.decode().splitlines() if line.strip()}
    assert any(lib.startswith("libh2o-evloop") for lib in libs), libs
    extra = [lib for lib in libs if not lib.startswith(SHARED_OK)]
    assert not extra, f"shared libraries beyond h2o's and glibc: {extra}"


def test_rebuilding_from_an_app_keeps_one_payload(shop_app, keel, base_env):
    """keel build run by an app-less keel copies keel without any payload:
    building twice gives the same size."""
    tmp, manifest, app = shop_app
    again = tmp / "out" / "again"
    r = keel("build", "-f", manifest, "-o", again)
    assert r.returncode == 0, r.describe()
    assert again.stat().st_size == app.stat().st_size


def test_build_errors_write_nothing(keel, built_guests, tmp_path):
    out = tmp_path / "app"
    r = keel("build", "-f", tmp_path / "missing.yaml", "-o", out)
    assert r.returncode == 1
    assert "missing.yaml" in r.err and "cannot read the manifest" in r.err, r.describe()

    r = keel("build", "-f", tmp_path / "missing.yaml")
    assert r.returncode == 2 and "no output given (-o APP)" in r.err, r.describe()

    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0\x01\xff")     # a truncated type section
    (tmp_path / "keel.yaml").write_text(
        "components:\n"
        "  ok:\n"
        f"    wasm: {built_guests / 'shop' / 'catalog.wasm'}\n"
        "  broken:\n"
        "    wasm: bad.wasm\n"
        "    routes: [{path: /x}]\n")
    r = keel("build", "-f", tmp_path / "keel.yaml", "-o", out)
    assert r.returncode == 1, r.describe()
    assert re.search(r"keel\.yaml:5:11: component broken: .*bad\.wasm", r.err), r.describe()
    assert "no app written" in r.err, r.describe()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wasm", "keel.yaml"]


def test_module_shared_by_two_components_is_stored_once_and_loaded_twice(
        keel, built_guests, tmp_path):
    """One wasm behind two components: the payload holds it once, and each
    component gets its own copy of the code (each links on its own)."""
    hello = built_guests / "components" / "hello.wasm"
    if not hello.is_file():
        pytest.fail(f"missing {hello} (built by `make guests`)")
    one = ("components:\n"
           f"  one:\n    wasm: {hello}\n    routes: [{{path: /one, operation: hello}}]\n")
    two = one + f"  two:\n    wasm: {hello}\n    routes: [{{path: /two, operation: status}}]\n"
    sizes = {}
    for name, text in (("one", one), ("two", two)):
        (tmp_path / f"{name}.yaml").write_text(text)
        r = keel("build", "-f", tmp_path / f"{name}.yaml", "-o", tmp_path / f"app-{name}")
        assert r.returncode == 0, r.describe()
        sizes[name] = (tmp_path / f"app-{name}").stat().st_size
    # the second component adds its manifest lines and its COMPONENT record
    # (16 + "two" + digest), no module
    assert sizes["two"] - sizes["one"] == len(two) - len(one) + 16 + 3 + 64

    d = tmp_path / "run"
    d.mkdir()
    shutil.copy2(tmp_path / "app-two", d / "app")
    srv = Server([d / "app", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                 d, bare_env(tmp_path), tmp_path / "two.log")
    try:
        assert fetch(srv.port, "GET", "/one") == (200, b"hello from keel\n")
        assert fetch(srv.port, "GET", "/two") == (201, b"created\n")
    finally:
        assert srv.stop() == 0, srv.log()


def test_app_backs_up_and_restores_its_store(shop_app):
    """`APP backup` / `APP restore` are keel backup / restore on the embedded
    manifest, the store found under --dir."""
    tmp, _, app = shop_app
    d = run_dir(tmp, app, "backup")
    env = bare_env(tmp)
    srv = Server([d / "app", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                 d, env, tmp / "backup-app.log")
    try:
        status, body = fetch(srv.port, "POST", "/api/login", ALICE)
        assert status == 200, body
        token = json.loads(body)["token"]
        cart = json.dumps({"items": [{"id": "mug", "qty": 3}]}).encode()
        auth = {"Authorization": f"Bearer {token}"}
        assert fetch(srv.port, "POST", "/api/cart", cart, auth)[0] == 200
        before = fetch(srv.port, "GET", "/api/cart", None, auth)
    finally:
        assert srv.stop() == 0, srv.log()

    elsewhere = tmp / "backup-cwd"
    elsewhere.mkdir()
    r = subprocess.run([d / "app", "backup", "--store", "carts", "-o", elsewhere / "carts.bak",
                        "--dir", d], cwd=elsewhere, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"({d / 'state' / 'carts.db'})" in r.stdout.decode(), r.stdout
    assert (elsewhere / "carts.bak.sha256").is_file()

    (d / "state" / "carts.db").unlink()   # lose the data
    r = subprocess.run([d / "app", "restore", "--store", "carts", elsewhere / "carts.bak"],
                       cwd=d, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    srv = Server([d / "app", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
                 d, env, tmp / "backup-app2.log")
    try:
        assert fetch(srv.port, "GET", "/api/cart", None, auth) == before
    finally:
        assert srv.stop() == 0, srv.log()

    r = subprocess.run([d / "app", "backup", "-f", "keel.yaml", "--store", "carts", "-o", "x"],
                       cwd=d, env=env, capture_output=True, timeout=60)
    assert r.returncode == 2 and "the manifest is embedded" in r.stderr.decode(), r.stderr
