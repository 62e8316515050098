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
MODULES = ("gateway", "catalog", "cart", "auth", "legacy", "reviews")
README_ADDR = "127.0.0.1:8080"
LISTEN_RE = re.compile(r"listening on http://(\S+?):(\d+)\b")
START_TIMEOUT = 120.0     # the first start compiles six modules (fast tier)
STOP_TIMEOUT = 40.0       # shutdown.grace is 30 s by default
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


def shop_manifest(build: Path, tmp: Path, serve=False) -> Path:
    """examples/shop/keel.yaml when the modules are in ROOT/build (and it is
    only checked, not served), else a copy in tmp whose wasm and files
    paths are absolute, so the carts store (state/carts.db, relative to the
    manifest) is created in tmp, never in the source tree."""
    mods = [build / "shop" / f"{m}.wasm" for m in MODULES]
    missing = [str(p) for p in mods if not p.is_file()]
    if missing:
        pytest.fail("shop modules missing (built by `make guests`): " + ", ".join(missing))
    if build.resolve() == (ROOT / "build").resolve() and not serve:
        return MANIFEST
    text = MANIFEST.read_text().replace("../../build/shop/", f"{(build / 'shop').resolve()}/")
    text = text.replace("host: ./data", f"host: {SHOP / 'data'}")
    out = tmp / "keel.yaml"
    out.write_text(text)
    return out


def start_keel(keel_bin, base_env, manifest: Path, log_path: Path) -> Shop:
    """`keel up -f manifest` on a free port, logging to log_path; returns
    once it logs "listening on" (the caller stops it)."""
    argv = [str(keel_bin), "up", "-f", str(manifest), "--listen", "127.0.0.1:0",
            "--admin-listen", "127.0.0.1:0"]
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(argv, cwd=ROOT, env=base_env, stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf)
    s = Shop(proc, log_path, manifest)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        m = LISTEN_RE.search(s.log())
        if m:
            s.port = int(m.group(2))
            return s
        if proc.poll() is not None:
            pytest.fail(f"keel up exited with {proc.returncode} before listening\n{s.tail()}")
        if time.monotonic() > deadline:
            s.stop()
            pytest.fail(f"keel up did not log 'listening on' within {START_TIMEOUT}s\n"
                        f"{s.tail()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def shop(built_guests, keel_bin, base_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shop")
    s = start_keel(keel_bin, base_env, shop_manifest(built_guests, tmp, serve=True),
                   tmp / "keel.log")
    try:
        yield s
    finally:
        if s.proc.poll() is None:   # test_sigterm_exits_0 did not run or failed
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
EMPTY = {"user": "alice", "items": [], "total_cents": 0, "persisted": True}
PRICED = {"user": "alice", "items": [
    {"id": "mug", "name": "Stoneware mug", "qty": 3, "price_cents": 1200, "line_cents": 3600},
    {"id": "kettle", "name": "Stovetop kettle", "qty": 1, "price_cents": 3900,
     "line_cents": 3900}], "total_cents": 7500, "persisted": True}

# reviews, the AssemblyScript component: the product part comes from the C
# catalog (catalog.get), the rest from reviews itself.
AS = "AssemblyScript"   # its X-Written-In header
REVIEW_SUMMARY = {"products": [{"id": "kettle", "count": 2, "average_stars": 4.5},
                               {"id": "teapot", "count": 1, "average_stars": 5},
                               {"id": "mug", "count": 3, "average_stars": 4}]}
KETTLE_REVIEWS = {"product": PRODUCTS[0], "reviews": [
    {"author": "Mira", "stars": 5, "text": "Boils a litre in four minutes on gas."},
    {"author": "Tomasz", "stars": 4, "text": "The whistle is loud; the handle stays cool."}],
    "count": 2, "average_stars": 4.5}
MUG_REVIEWS = {"product": PRODUCTS[2], "reviews": [
    {"author": "Sam", "stars": 4, "text": "Heavy in the hand, fine in the dishwasher."},
    {"author": "Lee", "stars": 5, "text": 'Holds exactly the "350 ml" it promises.'},
    {"author": "Noor", "stars": 3, "text": "The glaze chipped after a month."}],
    "count": 3, "average_stars": 4}

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
     json_is(200, PRICED, cache_control="no-store")),
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
    ("curl 127.0.0.1:8080/api/reviews", json_is(200, REVIEW_SUMMARY, x_written_in=AS)),
    ("curl -i 127.0.0.1:8080/api/reviews/kettle",
     json_is(200, KETTLE_REVIEWS, x_written_in=AS)),
    ("curl -i 127.0.0.1:8080/api/reviews/spoon",
     json_is(404, {"error": "no such product"}, x_written_in=AS)),
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
    assert r.out == f"{shown}: ok (6 components)\n", r.describe()


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
    json_is(200, dict(EMPTY, user="bob"))(r)
    forged = "alice." + token.split(".", 1)[1]
    r = http(shop, "GET", "/api/cart", {"Authorization": f"Bearer {forged}"}, None)
    json_is(401, {"error": "invalid token"}, www_authenticate=BAD_TOKEN)(r)
    r = http(shop, "POST", "/api/login", {}, b'{"user":"mallory","password":"builder"}')
    json_is(401, {"error": "wrong user or password"})(r)


# ------------------------------------------------- reviews, in AssemblyScript

def text_log(log: str) -> str:
    """Keel's JSON log lines rendered as " LEVEL [COMPONENT] MSG" (the text
    format's shape), one per line; other lines as they are."""
    out = []
    for ln in log.splitlines():
        try:
            o = json.loads(ln)
        except ValueError:
            out.append(ln)
            continue
        out.append(f"{o.get('ts', '')} {o.get('level', '')} [{o.get('component', '')}] "
                   f"{o.get('msg', '')}")
    return "\n".join(out)


def log_line(shop: Shop, pattern: str) -> str:
    """The keel log line matching pattern (a regex, against text_log's
    rendering), waiting a little."""
    deadline = time.monotonic() + 5
    while True:
        m = re.search(pattern, text_log(shop.log()), re.M)
        if m or time.monotonic() > deadline:
            assert m, f"no log line matches {pattern!r}\n{shop.tail()}"
            return m.group(0)
        time.sleep(0.05)


def test_reviews(shop):
    """reviews' answers and headers, the call into the C catalog it makes,
    its keel.log line, and the paths and methods around its route."""
    r = http(shop, "GET", "/api/reviews/mug", {}, None)
    json_is(200, MUG_REVIEWS, x_written_in=AS)(r)
    rid = re.escape(r.headers["x-request-id"])
    log_line(shop, rf" info \[reviews\] request {rid}: reviews of mug: 3, average 4 stars "
                   rf"\(catalog\.get answered 200\)$")
    r = http(shop, "GET", "/api/reviews/sencha", {}, None)   # in the catalog, not reviewed
    json_is(200, {"product": PRODUCTS[3], "reviews": [], "count": 0, "average_stars": None},
            x_written_in=AS)(r)
    for target in ("/api/reviews/", "/api/reviews?sort=stars"):
        json_is(200, REVIEW_SUMMARY, x_written_in=AS)(http(shop, "GET", target, {}, None))
    r = http(shop, "GET", "/api/reviews/kettle?lang=en", {}, None)   # the query is ignored
    json_is(200, KETTLE_REVIEWS)(r)
    for target in ("/api/reviews/Mug%20", "/api/reviews/mug/x", "/api/reviews/" + "a" * 33,
                   "/api/reviews//mug"):
        r = http(shop, "GET", target, {}, None)
        json_is(404, {"error": "no such product"}, x_written_in=AS)(r)
    r = http(shop, "HEAD", "/api/reviews/mug", {}, None)   # Keel: GET routes answer HEAD
    assert r.status == 200 and r.headers.get("x-written-in") == AS and r.body == b"", r
    r = http(shop, "POST", "/api/reviews/mug", {}, b"{}")   # reviews' own 405
    json_is(405, {"error": "method not allowed"}, allow="GET, HEAD", x_written_in=AS)(r)
    check_denied("method not allowed")(http(shop, "DELETE", "/api/reviews", {}, None))
    # /api/reviews/* is a longer prefix than /api/*; the gateway keeps the rest
    r = http(shop, "GET", "/api/reviewsx", {}, None)
    json_error(404, "no such endpoint")(r)
    assert "x-written-in" not in r.headers, r
    r = http(shop, "GET", "/api/products/mug", {}, None)
    json_is(200, PRODUCTS[2])(r)
    assert "x-written-in" not in r.headers, r


# reviews without `calls: [catalog]`, and a route to an operation it lacks.
BROKEN_REVIEWS = """\
components:
  reviews:
    wasm: {shop}/reviews.wasm
    routes:
      - path: /api/reviews/*
      - path: /nope
        operation: nope
  catalog:
    wasm: {shop}/catalog.wasm
"""


def test_reviews_failures(built_guests, keel_bin, base_env, tmp_path):
    """A failed __host_call and an unknown operation: the client gets
    Keel's generic 500 (no guest headers, no guest text), the log says why."""
    manifest = tmp_path / "keel.yaml"
    manifest.write_text(BROKEN_REVIEWS.format(shop=(built_guests / "shop").resolve()))
    s = start_keel(keel_bin, base_env, manifest, tmp_path / "keel.log")
    try:
        r = http(s, "GET", "/api/reviews/mug", {}, None)
        keel_plain(500, "internal error")(r)
        assert "x-written-in" not in r.headers and b"catalog" not in r.body, r
        rid = re.escape(r.headers["x-request-id"])
        log_line(s, rf" error \[reviews\] request {rid}: catalog\.get failed: component "
                    rf"reviews may not call catalog \(not in its calls list\)$")
        log_line(s, rf" error \[reviews\] request {rid}: operation handle failed .*"
                    rf"the catalog call failed$")
        r = http(s, "GET", "/api/reviews", {}, None)   # no call there: still served
        json_is(200, REVIEW_SUMMARY, x_written_in=AS)(r)
        r = http(s, "GET", "/nope", {}, None)
        keel_plain(500, "internal error")(r)
        rid = re.escape(r.headers["x-request-id"])
        log_line(s, rf" error \[reviews\] request {rid}: operation nope failed .*"
                    rf'unknown operation "nope"$')
    finally:
        rc = s.stop()
    assert rc == 0, s.tail()
    assert "trap" not in s.log(), s.tail()


def wasm_imports_exports(path: Path):
    """(["module.name", ...], {export name: kind}) of a wasm binary; kind 0
    is a function, 2 a memory. Every import must be a function."""
    data = path.read_bytes()
    assert data[:8] == b"\0asm\1\0\0\0", path

    def leb(i):
        v = shift = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v, i

    def name(i):
        n, i = leb(i)
        return data[i:i + n].decode(), i + n

    imports, exports, i = [], {}, 8
    while i < len(data):
        sid, (size, i) = data[i], leb(i + 1)
        j, end = i, i + size
        if sid in (2, 7):
            count, j = leb(j)
            for _ in range(count):
                if sid == 2:
                    mod, j = name(j)
                    field, j = name(j)
                    assert data[j] == 0, f"{mod}.{field}: not a function import"
                    _, j = leb(j + 1)
                    imports.append(f"{mod}.{field}")
                else:
                    field, j = name(j)
                    exports[field] = data[j]
                    _, j = leb(j + 1)
        i = end
    return imports, exports


def test_reviews_module_imports_only_keel(built_guests):
    """The AssemblyScript module imports exactly the waPC and keel functions
    it uses (no env.abort, env.seed or env.trace) and exports what a waPC
    reactor must."""
    imports, exports = wasm_imports_exports(built_guests / "shop" / "reviews.wasm")
    assert sorted(imports) == sorted(
        [f"wapc.{f}" for f in ("__guest_request", "__guest_response", "__guest_error",
                               "__host_call", "__host_response_len", "__host_response",
                               "__host_error_len", "__host_error")] +
        [f"keel.{f}" for f in ("http_method", "http_uri", "http_set_status",
                               "http_set_header", "log")]), imports
    assert exports == {"memory": 2, "__guest_call": 0, "_initialize": 0}, exports


def test_sigterm_exits_0(shop):
    """Last: no guest failed or trapped along the way, and SIGTERM is a
    clean stop."""
    assert shop.proc.poll() is None, f"keel died during the walk-through\n{shop.tail()}"
    rc = shop.stop()
    log = shop.log()
    assert rc == 0, f"keel exited {rc} on SIGTERM\n{shop.tail()}"
    assert re.search(r'"level":"info","msg":"stopped"\}$', log, re.M), shop.tail()
    # The tcp_migrate_req warning is about the host (docs/operations.md),
    # not the shop.
    bad = [ln for ln in log.splitlines()
           if (re.search(r'"level":"(warn|error)"', ln) and "tcp_migrate_req" not in ln)
           or "trap" in ln]
    assert not bad, "unexpected log lines:\n" + "\n".join(bad)


def test_cart_survives_restart(shop, keel_bin, base_env):
    """After the SIGTERM above: a new keel on the same manifest (and so the
    same state/carts.db) answers alice's stored cart, and the store passes
    PRAGMA integrity_check."""
    import sqlite3
    assert shop.proc.poll() is not None
    log_path = shop.log_path.with_name("keel-restart.log")
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([str(keel_bin), "up", "-f", str(shop.manifest), "--listen",
                                 "127.0.0.1:0"], cwd=ROOT, env=base_env,
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    again = Shop(proc, log_path, shop.manifest)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (m := LISTEN_RE.search(again.log())):
            assert proc.poll() is None and time.monotonic() < deadline, again.tail()
            time.sleep(0.05)
        again.port = int(m.group(2))
        r = http(again, "GET", "/api/cart", {"Authorization": f"Bearer {ALICE_TOKEN}"}, None)
        json_is(200, PRICED, cache_control="no-store")(r)
    finally:
        assert again.stop() == 0
    db = shop.manifest.parent / "state" / "carts.db"
    con = sqlite3.connect(str(db))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT v FROM kv WHERE k = ?", (b"cart:alice",)).fetchone()[0] \
            == b"mug 3\nkettle 1\n"
    finally:
        con.close()
