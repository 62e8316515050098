"""The `keel` command line: unloadable modules, usage errors, help and
version, argv/env passthrough, byte-exact stdio, `keel compile` and the
compile cache (concurrent builders, corrupted entries).
"""
import os
import random
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

TIERS = ("fast", "opt")


# ------------------------------------------------------------ bad modules

def _bad_modules(tmp: Path, guest, wat) -> dict:
    d = tmp / "bad dir"   # a space in the path: the error must still name it
    d.mkdir()
    valid = guest("sched").read_bytes()
    files = {
        "empty": b"",
        "magic-only": b"\0asm",
        "wrong-version": b"\0asm\x02\0\0\0",
        "truncated": valid[: len(valid) // 2],
        "truncated-header": valid[:11],
        "random": random.Random(7).randbytes(4096),
        "text": b"#!/bin/sh\necho this is not wasm\n",
        "wat-source": (Path(__file__).parents[1] / "wat" / "proc_exit7.wat").read_bytes(),
    }
    paths = {}
    for name, data in files.items():
        p = d / f"{name}.wasm"
        p.write_bytes(data)
        paths[name] = p
    paths["missing-import"] = wat("missing_import")
    paths["simd"] = wat("simd")
    paths["nonexistent"] = d / "does-not-exist.wasm"
    paths["directory"] = d
    return paths


BAD = ["empty", "magic-only", "wrong-version", "truncated", "truncated-header", "random",
       "text", "wat-source", "missing-import", "simd", "nonexistent", "directory"]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("kind", BAD)
def test_unloadable_module(kind, tier, keel, guest, wat, tmp_path):
    path = _bad_modules(tmp_path, guest, wat)[kind]
    r = keel("run", "--tier", tier, path, "arg")
    assert r.returncode == 1, r.describe()
    assert r.stdout == b"", r.describe()
    assert len(r.err_lines) == 1, f"want exactly one stderr line\n{r.describe()}"
    assert str(path) in r.err_lines[0], f"error line does not name {path}\n{r.describe()}"
    assert "trap" not in r.err.lower(), r.describe()


def test_missing_import_is_named(keel, wat):
    r = keel("run", wat("missing_import"))
    assert r.returncode == 1, r.describe()
    assert "missing_fn" in r.err, r.describe()


def test_unloadable_module_compile(keel, guest, wat, tmp_path):
    path = _bad_modules(tmp_path, guest, wat)["random"]
    r = keel("compile", path)
    assert r.returncode == 1, r.describe()
    assert len(r.err_lines) == 1 and str(path) in r.err, r.describe()


# ------------------------------------------------------------ usage

USAGE_ERRORS = {
    "no-module": ["run"],
    "unknown-flag": ["run", "--bogus", "GUEST"],
    "bad-memory-limit": ["run", "--memory-limit", "12XB", "GUEST"],
    "memory-limit-no-unit-garbage": ["run", "--memory-limit", "lots", "GUEST"],
    "memory-limit-negative": ["run", "--memory-limit", "-1MiB", "GUEST"],
    "bad-timeout": ["run", "--timeout", "5parsecs", "GUEST"],
    "timeout-negative": ["run", "--timeout", "-2s", "GUEST"],
    "bad-tier": ["run", "--tier", "slow", "GUEST"],
    "dir-missing-value": ["run", "--dir"],
    "env-no-equals": ["run", "--env", "NOEQUALS", "GUEST"],
    "unknown-command": ["frobnicate"],
    "no-command": [],
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error(case, keel, guest):
    g = str(guest("sched"))
    args = [g if a == "GUEST" else a for a in USAGE_ERRORS[case]]
    r = keel(*args)
    assert r.returncode == 2, r.describe()
    assert r.stdout == b"", r.describe()
    assert r.err.strip(), r.describe()
    # The guest did not run.
    assert "sched_yield" not in r.out


def test_nonexistent_dir_is_an_error(keel, guest, tmp_path):
    r = keel("run", "--dir", str(tmp_path / "nope"), guest("sched"))
    assert r.returncode in (1, 2), r.describe()
    assert str(tmp_path / "nope") in r.err, r.describe()
    assert r.stdout == b""


def test_version(keel):
    r = keel("--version")
    assert r.returncode == 0, r.describe()
    assert re.search(r"keel \d+\.\d+", r.out), r.describe()
    assert r.stderr == b""


@pytest.mark.parametrize("args", [["help"], ["run", "--help"], ["help", "run"]],
                         ids=lambda a: " ".join(a))
def test_help(args, keel):
    r = keel(*args)
    assert r.returncode == 0, r.describe()
    assert "usage" in r.out.lower(), r.describe()
    if "run" in args:
        for flag in ("--dir", "--env", "--memory-limit", "--timeout", "--tier"):
            assert flag in r.out, f"{flag} missing from help\n{r.describe()}"


# ------------------------------------------------------------ passthrough

def _argv(out: str) -> list:
    return [m for m in re.findall(r"^argv\[\d+\]=(.*)$", out, re.M)]


@pytest.mark.parametrize("tier", TIERS)
def test_argv_passthrough(tier, keel, guest):
    g = guest("args_env")
    args = ["--foo", "-x", "a b", "--tier", "opt", "--dir", "/", "--env", "K=V", "--",
            "--help", ""]
    r = keel("run", "--tier", tier, g, *args)
    assert r.returncode == len(args) + 1, r.describe()
    assert _argv(r.out) == [str(g), *args], r.describe()
    # Flags after the module were not taken by keel.
    assert "environ_sizes_get: errno=0 count=0" in r.out, r.describe()


def test_argv0_is_module_path_as_given(keel, guest, build):
    g = guest("args_env")
    rel = os.path.relpath(g, build.parent)
    r = keel("run", rel, cwd=build.parent)
    assert _argv(r.out) == [rel], r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_env_values(tier, keel, guest):
    r = keel("run", "--tier", tier, "--env", "A=x=y==z", "--env", "NL=one\ntwo",
             "--env", "E=", "--env", "Q=\"'$HOME", "--env", "A2= spaced ",
             guest("args_env"), "getenv:A", "getenv:NL", "getenv:E", "getenv:Q", "getenv:A2")
    assert r.returncode == 6, r.describe()
    assert 'getenv(A)="x=y==z"' in r.out, r.describe()
    assert 'getenv(NL)="one\\x0atwo"' in r.out, r.describe()
    assert 'getenv(E)=""' in r.out, r.describe()
    assert 'getenv(Q)=""\'$HOME"' in r.out, r.describe()
    assert 'getenv(A2)=" spaced "' in r.out, r.describe()
    assert "environ_sizes_get: errno=0 count=5 count_ok=1 buf_ok=1" in r.out, r.describe()


def test_env_later_duplicate(keel, guest):
    # Either last-wins or both visible is defensible; but getenv must see one
    # of the given values and keel must not crash or reject it.
    r = keel("run", "--env", "D=1", "--env", "D=2", guest("args_env"), "getenv:D")
    assert r.returncode == 2, r.describe()
    assert re.search(r'getenv\(D\)="[12]"', r.out), r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_binary_stdin_to_stdout_exact(tier, keel, guest):
    data = bytes(range(256)) * 1024 + b"\r\n\0\x1a" + os.urandom(100_000)
    r = keel("run", "--tier", tier, guest("cat"), stdin=data)
    assert r.returncode == 0, r.describe()
    assert r.stdout == data
    assert r.err_lines == [f"cat: {len(data)} bytes fnv1a={_fnv1a(data):08x}"], r.describe()


def _fnv1a(b: bytes) -> int:
    h = 2166136261
    for c in b:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def test_stdout_to_regular_file(keel_bin, base_env, keel, guest, tmp_path):
    # Same bytes whether stdout/stderr are pipes or regular files.
    r_pipe = keel("run", guest("stdio"))
    assert r_pipe.returncode == 0, r_pipe.describe()
    out, err = tmp_path / "out.bin", tmp_path / "err.bin"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.run([str(keel_bin), "run", str(guest("stdio"))], stdin=subprocess.DEVNULL,
                           stdout=fo, stderr=fe, env=base_env, timeout=120)
    assert p.returncode == 0
    assert out.read_bytes() == r_pipe.stdout
    assert err.read_bytes() == r_pipe.stderr


# ------------------------------------------------------------ compile & cache

def _cache_files(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_size for p in d.rglob("*") if p.is_file()}


def _cached_path(out: str, cache: Path) -> Path:
    m = re.search(re.escape(str(cache)) + r"[^\s,]*", out)
    assert m, f"no path inside {cache} in: {out!r}"
    return Path(m.group(0))


def test_compile_prints_cache_path_then_opt_runs(keel, guest, tmp_path):
    cache = tmp_path / "cache"
    env = {"KEEL_CACHE": str(cache)}
    g = guest("sched")
    r = keel("compile", g, env_extra=env)
    assert r.returncode == 0, r.describe()
    entry = _cached_path(r.out, cache)
    assert entry.is_file(), r.describe()
    mtime = entry.stat().st_mtime_ns
    before = _cache_files(cache)
    r2 = keel("run", "--tier", "opt", g, env_extra=env)
    assert r2.returncode == 0, r2.describe()
    assert r2.out == "sched_yield x1000: failures=0\nraw sched_yield: errno=0\n", r2.describe()
    assert r2.stderr == b""
    # A cached run does not rebuild: the entry is untouched.
    assert entry.stat().st_mtime_ns == mtime
    assert _cache_files(cache) == before


def test_compile_twice_same_path(keel, guest, tmp_path):
    env = {"KEEL_CACHE": str(tmp_path / "c")}
    a = keel("compile", guest("random"), env_extra=env)
    b = keel("compile", guest("random"), env_extra=env)
    assert a.returncode == 0 and b.returncode == 0, a.describe() + b.describe()
    assert _cached_path(a.out, tmp_path / "c") == _cached_path(b.out, tmp_path / "c")


def test_concurrent_compiles_share_one_entry(keel_bin, base_env, keel, guest, tmp_path):
    g = guest("fileio")
    # Reference: what one compile leaves behind.
    ref = tmp_path / "ref"
    r = keel("compile", g, env_extra={"KEEL_CACHE": str(ref)})
    assert r.returncode == 0, r.describe()

    cache = tmp_path / "shared"
    env = dict(base_env, KEEL_CACHE=str(cache))
    results = [None, None]

    def go(i):
        results[i] = subprocess.run([str(keel_bin), "compile", str(g)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    timeout=600)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in results:
        assert p.returncode == 0, (p.stdout, p.stderr)
    paths = {_cached_path(p.stdout.decode(), cache) for p in results}
    assert len(paths) == 1, paths
    # Same files as a lone compile: one entry, no temporaries left behind.
    assert set(_cache_files(cache)) == set(_cache_files(ref))
    r = keel("run", "--tier", "opt", "--dir", f"{tmp_path}::/s", g, "/s",
             env_extra={"KEEL_CACHE": str(cache)})
    # fileio wants input.txt; what matters here is that the cached code loads
    # and runs to the guest's own first line.
    assert r.out.startswith("open input.txt:"), r.describe()


def _corrupt_truncate_zero(p, other):
    p.write_bytes(b"")


def _corrupt_truncate_half(p, other):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _corrupt_random(p, other):
    p.write_bytes(random.Random(3).randbytes(max(p.stat().st_size, 4096)))


def _corrupt_flip_bytes(p, other):
    data = bytearray(p.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def _corrupt_other_module(p, other):
    # A perfectly valid shared object, but of a different module.
    shutil.copyfile(other, p)


CORRUPTIONS = {
    "truncate-zero": _corrupt_truncate_zero,
    "truncate-half": _corrupt_truncate_half,
    "random-bytes": _corrupt_random,
    "flipped-bytes": _corrupt_flip_bytes,
    "other-module": _corrupt_other_module,
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_corrupted_cache_entry_is_rebuilt(how, keel, guest, tmp_path):
    cache = tmp_path / "cache"
    env = {"KEEL_CACHE": str(cache)}
    g = guest("sched")
    other_cache = tmp_path / "other"
    ro = keel("compile", guest("random"), env_extra={"KEEL_CACHE": str(other_cache)})
    assert ro.returncode == 0, ro.describe()
    other = _cached_path(ro.out, other_cache)

    r = keel("compile", g, env_extra=env)
    assert r.returncode == 0, r.describe()
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files, "compile left nothing in the cache"
    for p in files:
        CORRUPTIONS[how](p, other)

    want = "sched_yield x1000: failures=0\nraw sched_yield: errno=0\n"
    r = keel("run", "--tier", "opt", g, env_extra=env, timeout=600)
    assert r.returncode == 0, r.describe()
    assert r.out == want, r.describe()
    # Keel may warn that it rebuilt, but it must not be a trap or crash.
    assert "trap" not in r.err.lower(), r.describe()
    # And the entry is healthy again: the next run is clean.
    r = keel("run", "--tier", "opt", g, env_extra=env)
    assert r.returncode == 0 and r.out == want and r.stderr == b"", r.describe()


def test_default_tier_matches_fast(keel, guest, tmp_path):
    # The default (auto) tier on a cold cache runs the fast tier now and may
    # build the optimized one in the background: same output either way,
    # and keel does not wait for the background build to exit.
    env = {"KEEL_CACHE": str(tmp_path / "c")}
    g = guest("args_env")
    fast = keel("run", "--tier", "fast", g, "x", "--y", env_extra=env)
    auto = keel("run", g, "x", "--y", env_extra=env, timeout=60)
    assert (auto.returncode, auto.stdout, auto.stderr) == \
        (fast.returncode, fast.stdout, fast.stderr), auto.describe()
    again = keel("run", "--tier", "auto", g, "x", "--y", env_extra=env, timeout=60)
    assert again.stdout == fast.stdout and again.returncode == fast.returncode


def test_cache_location(keel, guest, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    g = guest("sched")
    # KEEL_CACHE set: nothing under $HOME.
    r = keel("compile", g, env_extra={"HOME": str(home), "KEEL_CACHE": str(tmp_path / "kc")})
    assert r.returncode == 0, r.describe()
    assert _cache_files(tmp_path / "kc")
    assert not (home / ".cache").exists()
    # KEEL_CACHE unset: the documented default, ~/.cache/keel.
    env = {"HOME": str(home)}
    r = keel("compile", g, env_extra=dict(env, KEEL_CACHE=None))
    assert r.returncode == 0, r.describe()
    assert _cache_files(home / ".cache" / "keel"), r.describe()
