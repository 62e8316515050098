"""examples/shop end to end: the README walk-through against a real `keel up`.

One `keel up -f examples/shop/keel.yaml --listen 127.0.0.1:0` serves the
whole module; the port is read from its "listening on http://" log line.
Keel's log goes to a file (never a pipe). The modules are the ones
`make guests` builds into $KEEL_BUILD/shop/: with the default build folder
the manifest is used as it is; with another one (build-asan) the test runs
a copy whose paths point at that folder.

Every `curl` line of examples/shop/README.md is in STEPS (and
test_readme_curl_lines_are_all_tested fails when the two drift apart). A
small curl stand-in turns each line into a urllib request: the flags the
README uses (-i -s -X -H --json -d --data-binary @-), $TOKEN, a shell
producer piped into curl (`seq 5000 | curl ...`), and `VAR=$(curl ... |
sed ...)`, whose sed really runs. The last test stops keel with SIGTERM
and requires exit status 0.
"""
import hashlib
import hmac
import json
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

SHOP = ROOT / "examples" / "shop"
MANIFEST = SHOP / "keel.yaml"
README = SHOP / "README.md"
MODULES = ("gateway", "catalog", "cart", "auth", "legacy")
README_ADDR = "127.0.0.1:8080"
LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
START_TIMEOUT = 120.0     # the first start compiles five modules (fast tier)
STOP_TIMEOUT = 20.0       # the drain gives up after 10 s
HTTP_TIMEOUT = 30.0       # generous: the suite shares a 2-core box

SECRET = b"demo-secret-change-me-0123456789"   # auth's config in keel.yaml
ALICE_TOKEN = "alice." + hmac.new(SECRET, b"shop-token:alice", hashlib.sha256).hexdigest()
JSON = "application/json"


# ------------------------------------------------------------------ server

class Shop:
    def __init__(self, proc, log_path: Path, manifest: Path):
        self.proc = proc
        self.log_path = log_path
        self.manifest = manifest
        self.port = 0
        self.vars = {}   # shell variables the walk-through sets (TOKEN)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, n=60) -> str:
        return "--- keel log (tail) ---\n" + "\n".join(self.log().splitlines()[-n:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"keel did not exit within {STOP_TIMEOUT}s of SIGTERM\n{self.tail()}")


def shop_manifest(build: Path, tmp: Path) -> Path:
    """examples/shop/keel.yaml when the modules are in ROOT/build, else a
    copy whose wasm and files paths are absolute."""
    mods = [build / "shop" / f"{m}.wasm" for m in MODULES]
    missing = [str(p) for p in mods if not p.is_file()]
    if missing:
        pytest.fail("shop modules missing (built by `make guests`): " + ", ".join(missing))
    if build.resolve() == (ROOT / "build").resolve():
        return MANIFEST
    text = MANIFEST.read_text().replace("../../build/shop/", f"{(build / 'shop').resolve()}/")
    text = text.replace("host: ./data", f"host: {SHOP / 'data'}")
    out = tmp / "keel.yaml"
    out.write_text(text)
    return out


@pytest.fixture(scope="module")
def shop(built_guests, keel_bin, base_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shop")
    manifest = shop_manifest(built_guests, tmp)
    log_path = tmp / "keel.log"
    argv = [str(keel_bin), "up", "-f", str(manifest), "--listen", "127.0.0.1:0",
            "--admin-listen", "127.0.0.1:0"]
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(argv, cwd=ROOT, env=base_env, stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf)
    s = Shop(proc, log_path, manifest)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            m = LISTEN_RE.search(s.log())
            if m:
                s.port = int(m.group(2))
                break
            if proc.poll() is not None:
                pytest.fail(f"keel up exited with {proc.returncode} before listening\n{s.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"keel up did not log 'listening on' within {START_TIMEOUT}s\n"
                            f"{s.tail()}")
            time.sleep(0.05)
        yield s
    finally:
        if proc.poll() is None:   # test_sigterm_exits_0 did not run or failed
            s.stop()


# ------------------------------------------------------------ curl stand-in

@dataclass
class Resp:
    status: int
    headers: dict        # lowercased names
    body: bytes
    printed: str = ""    # what a VAR=$(...) assignment captured

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        assert self.headers.get("content-type") == JSON, self
        return json.loads(self.body)

    def __repr__(self):
        return f"Resp({self.status}, {self.headers!r}, {self.body[:400]!r})"


def http(shop: Shop, method: str, target: str, headers: dict, data) -> Resp:
    req = urllib.request.Request(f"http://127.0.0.1:{shop.port}{target}", data=data,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def sh(cmd: str, stdin: bytes = b"") -> bytes:
    p = subprocess.run(["bash", "-c", cmd], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, f"{cmd!r} failed: {p.stderr!r}"
    return p.stdout


def curl(shop: Shop, line: str) -> Resp:
    """Runs one README line: [VAR=$(][PRODUCER | ]curl ARGS[ | FILTER][)]."""
    var = None
    m = re.fullmatch(r"(\w+)=\$\((.*)\)", line)
    if m:
        var, line = m.group(1), m.group(2)
    for name, value in shop.vars.items():
        line = line.replace(f"${name}", value)
    stages = line.split(" | ")
    at = next(i for i, st in enumerate(stages) if st.startswith("curl "))
    stdin = sh(" | ".join(stages[:at])) if at else b""

    args = shlex.split(stages[at])[1:]
    method, headers, data, target = None, {}, None, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-i", "-s"):
            pass
        elif a == "-X":
            i += 1
            method = args[i]
        elif a == "-H":
            i += 1
            k, _, v = args[i].partition(":")
            headers[k.strip()] = v.strip()
        elif a == "--json":
            i += 1
            data = args[i].encode()
            headers.setdefault("Content-Type", JSON)
            headers.setdefault("Accept", JSON)
        elif a == "-d":
            i += 1
            data = args[i].encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif a == "--data-binary":
            i += 1
            assert args[i] == "@-", f"curl stand-in: only --data-binary @- ({line!r})"
            data = stdin
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif not a.startswith("-") and target is None:
            assert a.startswith(README_ADDR + "/"), f"README curl to {a!r}, not {README_ADDR}"
            target = a[len(README_ADDR):]
        else:
            raise AssertionError(f"curl stand-in does not know {a!r} in {line!r}")
        i += 1
    assert target is not None, line
    r = http(shop, method or ("POST" if data is not None else "GET"), target, headers, data)
    if var:
        filt = " | ".join(stages[at + 1:])
        r.printed = (sh(filt, r.body) if filt else r.body).decode().rstrip("\n")
        shop.vars[var] = r.printed
    return r


# ------------------------------------------------------------ the walk-through

def json_is(status, expected, **headers):
    """The answer has this status, Content-Type JSON, exactly this body and
    these headers."""
    def check(r: Resp):
        assert r.status == status, r
        assert r.json() == expected, r
        for k, v in headers.items():
            assert r.headers.get(k.replace("_", "-").lower()) == v, r
    return check


def json_error(status, starts, **headers):
    def check(r: Resp):
        assert r.status == status, r
        body = r.json()
        assert list(body) == ["error"] and body["error"].startswith(starts), r
        for k, v in headers.items():
            assert r.headers.get(k.replace("_", "-").lower()) == v, r
    return check


def keel_plain(status, text):
    """One of Keel's own answers: text/plain naming the request id."""
    def check(r: Resp):
        assert r.status == status, r
        assert r.headers.get("content-type", "").startswith("text/plain"), r
        rid = r.headers.get("x-request-id")
        assert rid and r.text.strip() == f"{text} (request id {rid})", r
    return check


def check_index(r: Resp):
    assert r.status == 200, r
    assert r.json() == {
        "service": "keel shop", "greeting": "Welcome to the Keel tea shop",
        "endpoints": ["GET /api/products", "GET /api/products/ID", "POST /api/login",
                      "GET /api/cart", "POST /api/cart"]}


def product(id_, name, cents, in_stock=True):
    return {"id": id_, "name": name, "price_cents": cents, "currency": "EUR",
            "in_stock": in_stock}


PRODUCTS = [product("kettle", "Stovetop kettle", 3900),
            product("teapot", "Cast-iron teapot", 5400),
            product("mug", "Stoneware mug", 1200),
            product("sencha", "Sencha green tea, 100 g", 850, False)]


def check_token_var(r: Resp):
    assert r.status == 200, r
    assert r.printed == ALICE_TOKEN, r   # sed extracted it; HMAC-SHA256 is right


def check_denied(error):
    def check(r: Resp):
        assert r.status == 405, r
        allow = set(r.headers.get("allow", "").replace(" ", "").split(","))
        assert allow == {"GET", "HEAD", "POST"}, r
        keel_plain(405, error)(r)
    return check


def check_legacy_status(r: Resp):
    assert r.status == 200, r
    assert r.headers.get("content-type") == "text/plain; charset=utf-8", r
    assert r.headers.get("x-legacy") == "cgi", r
    lines = r.text.splitlines()
    rid = r.headers.get("x-request-id")
    assert lines == [
        "Keel tea shop status: ok",
        lines[1],
        "request: GET /legacy/status?verbose=1",
        "query: verbose=1",
        "timezone: UTC",
        f"request id: {rid}",
        "notice: Orders placed before noon ship the same day.",
    ], r
    assert re.fullmatch(r"server: keel/\S+ \(CGI/1\.1\)", lines[1]), r


def check_legacy_404(r: Resp):
    assert r.status == 404, r
    assert r.headers.get("content-type") == "text/plain; charset=utf-8", r
    assert r.text == "no such page: /legacy/orders\n", r


AUTH = 'Bearer realm="shop"'
BAD_TOKEN = 'Bearer realm="shop", error="invalid_token"'
NOT_STORED = {"user": "alice", "items": [], "total_cents": 0, "persisted": False}
PRICED = {"user": "alice", "items": [
    {"id": "mug", "name": "Stoneware mug", "qty": 3, "price_cents": 1200, "line_cents": 3600},
    {"id": "kettle", "name": "Stovetop kettle", "qty": 1, "price_cents": 3900,
     "line_cents": 3900}], "total_cents": 7500, "persisted": False}

# (README line, check), in README order.
STEPS = [
    ("curl -i 127.0.0.1:8080/api", check_index),
    ("curl 127.0.0.1:8080/api/products", json_is(200, {"currency": "EUR", "products": PRODUCTS})),
    ("curl 127.0.0.1:8080/api/products/mug", json_is(200, PRODUCTS[2])),
    ("curl -i 127.0.0.1:8080/api/products/spoon", json_is(404, {"error": "no such product"})),
    ("""curl -i --json '{"user":"alice","password":"wonderland"}' 127.0.0.1:8080/api/login""",
     json_is(200, {"user": "alice", "token": ALICE_TOKEN}, cache_control="no-store")),
    ("""curl -i --json '{"user":"alice","password":"guess"}' 127.0.0.1:8080/api/login""",
     json_is(401, {"error": "wrong user or password"})),
    ("""curl -i --json '{"user":"alice"' 127.0.0.1:8080/api/login""",
     json_error(400, "expected a JSON object")),
    ("""TOKEN=$(curl -s --json '{"user":"alice","password":"wonderland"}' 127.0.0.1:8080/api/login"""
     """ | sed -E 's/.*"token":"([^"]+)".*/\\1/')""", check_token_var),
    ("""curl -i --json '{"items":[{"id":"mug","qty":2}]}' 127.0.0.1:8080/api/cart""",
     json_error(401, "missing bearer token", www_authenticate=AUTH)),
    ("""curl -i -H 'Authorization: Bearer alice.0000' --json '{"items":[{"id":"mug","qty":2}]}'"""
     """ 127.0.0.1:8080/api/cart""",
     json_is(401, {"error": "invalid token"}, www_authenticate=BAD_TOKEN)),
    ("""curl -i -H "Authorization: Bearer $TOKEN" --json '{"items":[{"id":"mug","qty":2},"""
     """{"id":"kettle","qty":1},{"id":"mug","qty":1}]}' 127.0.0.1:8080/api/cart""",
     json_is(200, PRICED, cache_control="no-store")),
    ("""curl -H "Authorization: Bearer $TOKEN" 127.0.0.1:8080/api/cart""",
     json_is(200, NOT_STORED, cache_control="no-store")),
    ("""curl -i -H "Authorization: Bearer $TOKEN" --json '{"items":[{"id":"spoon","qty":1}]}'"""
     """ 127.0.0.1:8080/api/cart""",
     json_is(400, {"error": 'unknown product "spoon"'})),
    ("""curl -i -H "Authorization: Bearer $TOKEN" --json '{"items":[{"id":"mug","qty":0}]}'"""
     """ 127.0.0.1:8080/api/cart""",
     json_error(400, 'expected {"items":')),
    ("""curl -i -H "Authorization: Bearer $TOKEN" --json '{"items":[{"id":"sencha","qty":1}]}'"""
     """ 127.0.0.1:8080/api/cart""",
     json_is(409, {"error": '"sencha" is out of stock'})),
    ("curl -i -X DELETE 127.0.0.1:8080/api/cart", check_denied("method not allowed")),
    ("seq 5000 | curl -i --data-binary @- 127.0.0.1:8080/api/login",
     keel_plain(413, "request body too large")),
    ("curl -i 127.0.0.1:8080/shop", keel_plain(404, "no route")),
    ("curl -i '127.0.0.1:8080/legacy/status?verbose=1'", check_legacy_status),
    ("curl -i 127.0.0.1:8080/legacy/orders", check_legacy_404),
]


def readme_curl_lines():
    """Lines of the README's ```sh blocks that run curl."""
    lines, in_sh = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and re.search(r"(^|[|(]\s*)curl ", line.strip()):
            lines.append(line.strip())
    return lines


def test_readme_curl_lines_are_all_tested():
    readme = readme_curl_lines()
    steps = [line for line, _ in STEPS]
    assert readme == steps, (
        "examples/shop/README.md and STEPS differ\n"
        f"only in README: {[x for x in readme if x not in steps]}\n"
        f"only in STEPS:  {[x for x in steps if x not in readme]}")


def test_keel_check(keel, built_guests, tmp_path):
    manifest = shop_manifest(built_guests, tmp_path)
    shown = manifest.relative_to(ROOT) if manifest == MANIFEST else manifest
    r = keel("check", "-f", str(shown), cwd=ROOT)
    assert r.returncode == 0, r.describe()
    assert r.out == f"{shown}: ok (5 components)\n", r.describe()


@pytest.mark.parametrize("line,check", STEPS, ids=[f"{i:02d}" for i in range(len(STEPS))])
def test_walkthrough(shop, line, check):
    if "$TOKEN" in line and "TOKEN" not in shop.vars:   # run alone: log in first
        curl(shop, next(ln for ln, _ in STEPS if ln.startswith("TOKEN=")))
    check(curl(shop, line))


# ------------------------------------------------------------ beyond the README

def test_gateway_edges(shop):
    """The gateway's own 404/405/400 answers, all JSON."""
    r = http(shop, "GET", "/api/nothing", {}, None)
    json_error(404, "no such endpoint")(r)
    r = http(shop, "POST", "/api/products", {}, b"")
    json_is(405, {"error": "method not allowed"}, allow="GET, HEAD")(r)
    r = http(shop, "GET", "/api/login", {}, None)
    json_is(405, {"error": "method not allowed"}, allow="POST")(r)
    r = http(shop, "HEAD", "/api/products/mug", {}, None)   # Keel: GET routes answer HEAD
    assert r.status == 200 and r.headers["content-type"] == JSON and r.body == b"", r
    r = http(shop, "GET", "/api/products/Mug%20", {}, None)
    json_is(404, {"error": "no such product"})(r)
    r = http(shop, "GET", "/api/products?sort=price", {}, None)   # the query is ignored
    json_is(200, {"currency": "EUR", "products": PRODUCTS})(r)
    for body in (b"", b"not json", b'{"items":[]}', b'{"items":[{"id":"mug"}]}',
                 b'{"items":[{"id":"mug","qty":1}],"x":1}', b'{"items":[{"id":"mug","qty":1}]}x',
                 b'{"items":[{"id":"mug","qty":100}]}', b'{"items":[{"id":"mug","qty":1,}]}'):
        r = http(shop, "POST", "/api/cart", {"Authorization": f"Bearer {ALICE_TOKEN}"}, body)
        json_error(400, 'expected {"items":')(r)


def test_tokens_are_per_user(shop):
    """bob logs in; his token names him; alice's name with bob's MAC fails."""
    r = http(shop, "POST", "/api/login", {"Content-Type": JSON},
             b'{"password":"builder","user":"bob"}')
    token = r.json()["token"]
    assert r.status == 200 and token.startswith("bob."), r
    r = http(shop, "GET", "/api/cart", {"Authorization": f"Bearer {token}"}, None)
    json_is(200, dict(NOT_STORED, user="bob"))(r)
    forged = "alice." + token.split(".", 1)[1]
    r = http(shop, "GET", "/api/cart", {"Authorization": f"Bearer {forged}"}, None)
    json_is(401, {"error": "invalid token"}, www_authenticate=BAD_TOKEN)(r)
    r = http(shop, "POST", "/api/login", {}, b'{"user":"mallory","password":"builder"}')
    json_is(401, {"error": "wrong user or password"})(r)


def test_sigterm_exits_0(shop):
    """Last: no guest failed or trapped along the way, and SIGTERM is a
    clean stop."""
    assert shop.proc.poll() is None, f"keel died during the walk-through\n{shop.tail()}"
    rc = shop.stop()
    log = shop.log()
    assert rc == 0, f"keel exited {rc} on SIGTERM\n{shop.tail()}"
    assert re.search(r'"level":"info","msg":"stopped"\}$', log, re.M), shop.tail()
    bad = [ln for ln in log.splitlines()
           if re.search(r'"level":"(warn|error)"', ln) or "trap" in ln]
    assert not bad, "unexpected log lines:\n" + "\n".join(bad)
