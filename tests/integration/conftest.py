"""Shared fixtures for Keel's end-to-end tests.

Everything runs real processes: the keel binary from $KEEL_BUILD (default
"build", relative to the repository root) and, for the parity tests, node's
built-in WASI through node_wasi.mjs. Guest modules are built by
`make BUILD=$KEEL_BUILD guests`, which this file runs once per session; a
missing binary or module is a test failure, never a silent skip.

Every keel process gets KEEL_CACHE pointing at a per-session temporary
directory, so the suite never touches ~/.cache/keel.
"""
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_RUNNER = Path(__file__).resolve().parent / "node_wasi.mjs"

# Trap kinds as keel names them on its "keel: trap: <kind>" line.
TRAP_KINDS = (
    "out of bounds", "unreachable", "integer divide by zero", "integer overflow",
    "invalid conversion", "indirect call", "call stack exhausted",
    "deadline exceeded", "memory limit",
)

# Generous per-process limit so a hung keel fails a test instead of the run.
# The opt tier runs the system C compiler, hence minutes, not seconds.
PROC_TIMEOUT = float(os.environ.get("KEEL_TEST_PROC_TIMEOUT", "300"))


def build_dir() -> Path:
    b = Path(os.environ.get("KEEL_BUILD", "build"))
    return b if b.is_absolute() else ROOT / b


@dataclass
class Result:
    """Outcome of one process: raw bytes plus decoded conveniences."""
    args: list
    returncode: int
    stdout: bytes
    stderr: bytes
    elapsed: float

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def err_lines(self) -> list:
        return self.err.splitlines()

    def describe(self) -> str:
        def clip(b: bytes) -> str:
            t = b.decode("utf-8", "replace")
            return t if len(t) < 3000 else t[:1500] + "\n...\n" + t[-1500:]
        return (f"command: {self.args!r}\nexit status: {self.returncode}\n"
                f"--- stdout ---\n{clip(self.stdout)}\n--- stderr ---\n{clip(self.stderr)}")


def _run(argv, *, stdin=b"", cwd=None, env=None, timeout=PROC_TIMEOUT) -> Result:
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=cwd, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"process did not finish within {timeout}s: {argv!r}\n"
                    f"stdout so far: {e.stdout!r}\nstderr so far: {e.stderr!r}")
    return Result(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


# ---------------------------------------------------------------- session

@pytest.fixture(scope="session")
def build() -> Path:
    return build_dir()


@pytest.fixture(scope="session")
def built_guests(build):
    """Runs `make BUILD=... guests` once; fails the dependent tests if the
    guest corpus does not build."""
    p = subprocess.run(["make", "--no-print-directory", "-s", f"BUILD={build}", "guests"],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    if p.returncode != 0:
        pytest.fail("`make guests` failed:\n" + p.stdout.decode("utf-8", "replace"))
    return build


@pytest.fixture(scope="session")
def keel_bin(build) -> Path:
    k = build / "keel"
    if not (k.is_file() and os.access(k, os.X_OK)):
        pytest.fail(f"keel binary not found at {k} (run `make BUILD={build.name} all`)")
    return k


@pytest.fixture(scope="session")
def keel_cache(tmp_path_factory) -> Path:
    """Per-session compile cache; never ~/.cache/keel."""
    return tmp_path_factory.mktemp("keel-cache")


@pytest.fixture(scope="session")
def base_env(keel_cache):
    """Environment for keel processes: a minimal PATH-bearing env plus
    KEEL_CACHE. (The guest never sees this: its env is only --env pairs.)"""
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CC",
                    "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    env["KEEL_CACHE"] = str(keel_cache)
    return env


@pytest.fixture(scope="session")
def node_bin() -> str:
    n = shutil.which("node")
    if not n:
        pytest.fail("node is not on PATH; the WASI parity tests need it")
    return n


def _module_fixture(kind):
    def lookup(built_guests):
        def path(name: str) -> Path:
            p = built_guests / kind / f"{name}.wasm"
            if not p.is_file():
                pytest.fail(f"missing module {p}: is tests/{kind}/{name}.* in the corpus?")
            return p
        return path
    return lookup


guest = pytest.fixture(scope="session")(_module_fixture("guests"))
hostile = pytest.fixture(scope="session")(_module_fixture("hostile"))
wat = pytest.fixture(scope="session")(_module_fixture("wat"))


@pytest.fixture(scope="session")
def keel(keel_bin, base_env):
    """keel(*args, stdin=b"", cwd=None, env_extra=None, timeout=...) -> Result.
    Runs `keel ARGS...` with KEEL_CACHE set; env_extra adds variables (a
    value of None removes one)."""
    def run(*args, stdin=b"", cwd=None, env_extra=None, timeout=PROC_TIMEOUT):
        env = dict(base_env)
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return _run([keel_bin, *args], stdin=stdin, cwd=cwd, env=env, timeout=timeout)
    return run


@pytest.fixture(scope="session")
def node_wasi(node_bin):
    """node_wasi(*args, stdin=b"", cwd=None) -> Result: the same command line
    as `keel run` minus keel-only flags, run under node's WASI."""
    def run(*args, stdin=b"", cwd=None, timeout=PROC_TIMEOUT):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
        return _run([node_bin, "--no-warnings", NODE_RUNNER, *args],
                    stdin=stdin, cwd=cwd, env=env, timeout=timeout)
    return run


# ---------------------------------------------------------------- helpers

def trap_line(res: Result) -> str:
    """Asserts keel reported exactly one line on stderr, a trap line, and
    returns it lowercased."""
    lines = res.err_lines
    assert len(lines) == 1, f"expected one stderr line\n{res.describe()}"
    assert lines[0].startswith("keel: trap: "), res.describe()
    return lines[0].lower()


def assert_trap(res: Result, kind: str):
    assert kind in TRAP_KINDS
    assert res.returncode == 134, res.describe()
    line = trap_line(res)
    assert kind in line, f"trap kind {kind!r} not in {line!r}\n{res.describe()}"


def tree(root: Path) -> dict:
    """Snapshot of a directory: relative path -> ("file", bytes) |
    ("dir", None) | ("symlink", target). Symlinks are not followed."""
    snap = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                snap[rel] = ("symlink", os.readlink(p))
            elif p.is_dir():
                snap[rel] = ("dir", None)
            elif p.is_file():
                snap[rel] = ("file", p.read_bytes())
            else:
                snap[rel] = ("other", None)
    return snap
