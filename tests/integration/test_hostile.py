"""Hostile guests (tests/hostile): sandbox escapes, runaway CPU, memory and
stack, and out-of-bounds pointers handed to WASI. Each must be contained:
the guest gets an error (or keel traps with the right kind), the host
survives and nothing outside the preopen changes.

These run under keel only; node's WASI is documented as not being a
security sandbox, so it is no reference here.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_trap, tree

TIERS = ("fast", "opt")
ENOTCAPABLE = 76
EISDIR = 31
ENOENT = 44
ELOOP = 32
EFAULT = 21


@pytest.fixture(scope="module")
def precompiled(keel, hostile):
    """Compiles the timing-sensitive guests for the opt tier up front, so a
    wall-clock bound measures the run, not cc -O2."""
    done = set()

    def get(name):
        path = hostile(name)
        if name not in done:
            r = keel("compile", path)
            assert r.returncode == 0, r.describe()
            done.add(name)
        return path
    return get


# ------------------------------------------------------------------ escapes

def make_escape_layout(scratch: Path):
    (scratch / "canary.txt").write_bytes(b"canary\n")
    (scratch / "outside").mkdir()
    (scratch / "outside" / "secret.txt").write_bytes(b"secret\n")
    sb = scratch / "sandbox"
    sb.mkdir()
    (sb / "sub").mkdir()
    os.symlink("/", sb / "to_root")
    os.symlink("..", sb / "to_parent")
    os.symlink(str(scratch / "canary.txt"), sb / "to_canary")
    os.symlink("../canary.txt", sb / "rel_canary")
    os.symlink("chain2", sb / "chain1")
    os.symlink("sub/../../canary.txt", sb / "chain2")
    os.symlink("/proc/self/root", sb / "magic")
    return sb


# label -> set of acceptable errnos; every other "LABEL: errno=N" line in the
# output must be ENOTCAPABLE.
ESCAPE_EXCEPTIONS = {
    "open sub (allowed)": {0},
    "mkdir d (allowed)": {0},
    "symlink s -> .. (allowed)": {0},
    # rename(2) of a non-directory over a directory.
    "rename symlink over dir": {EISDIR},
    # d is still the empty directory: nothing to find, nothing escaped.
    "open d/canary.txt (after rename over dir)": {ENOENT},
    "rmdir d (allowed)": {0},
    "rename symlink to d (allowed)": {0},
    # /proc/self/root is reached through an absolute symlink (refused as an
    # escape) and is itself a magic link (ELOOP): either refusal is right.
    "open magic/etc/passwd": {ENOTCAPABLE, ELOOP},
}


@pytest.mark.parametrize("tier", TIERS)
def test_escape_attempts_fail(tier, keel, hostile, tmp_path):
    sb = make_escape_layout(tmp_path)
    canary = tmp_path / "canary.txt"
    before_outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("sandbox")}
    canary_stat = canary.stat()

    r = keel("run", "--tier", tier, "--dir", f"{sb}::/sandbox", hostile("escape"),
             "/sandbox", str(canary))
    assert r.returncode == 0, r.describe()
    assert r.stderr == b"", r.describe()
    assert "LEAKED" not in r.out, r.describe()
    assert r.out.rstrip().endswith("done"), r.describe()

    results = dict(re.findall(r"^(.*): errno=(\d+)$", r.out, re.M))
    assert len(results) >= 45, r.describe()
    wrong = {}
    for label, errno in results.items():
        want = ESCAPE_EXCEPTIONS.get(label, {ENOTCAPABLE})
        if int(errno) not in want:
            wrong[label] = (int(errno), sorted(want))
    assert not wrong, f"unexpected errnos (got, wanted): {wrong}\n{r.describe()}"

    # Nothing outside the sandbox changed, nothing was linked in.
    after_outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("sandbox")}
    assert after_outside == before_outside
    st = canary.stat()
    assert (st.st_mtime_ns, st.st_size, st.st_nlink) == \
        (canary_stat.st_mtime_ns, canary_stat.st_size, canary_stat.st_nlink)
    for name in ("hl1", "hl2", "hl3", "hl5", "stolen", "escaped.txt"):
        assert not (sb / name).exists(), name
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "escaped_dir").exists()
    assert not (tmp_path / "moved").exists()
    assert (sb / "sub").is_dir()


@pytest.mark.parametrize("tier", TIERS)
def test_guest_absolute_symlink_cannot_be_followed(tier, keel, hostile, tmp_path):
    # Whatever the guest could create, following it later from a fresh run
    # (when it is just a symlink on disk) must still be refused.
    sb = make_escape_layout(tmp_path)
    r1 = keel("run", "--tier", tier, "--dir", f"{sb}::/sandbox", hostile("escape"), "/sandbox")
    assert r1.returncode == 0, r1.describe()
    r2 = keel("run", "--tier", tier, "--dir", f"{sb}::/sandbox", hostile("escape"), "/sandbox")
    assert r2.returncode == 0, r2.describe()
    assert "LEAKED" not in r2.out, r2.describe()
    assert "open groot/etc/passwd: errno=76" in r2.out, r2.describe()
    assert "open gup/canary.txt: errno=76" in r2.out, r2.describe()


# --------------------------------------------------------------- deadlines

@pytest.mark.parametrize("tier", TIERS)
def test_infinite_loop_hits_deadline(tier, keel, precompiled):
    mod = precompiled("loop")
    t0 = time.monotonic()
    r = keel("run", "--tier", tier, "--timeout", "200ms", mod, timeout=30)
    wall = time.monotonic() - t0
    assert_trap(r, "deadline exceeded")
    assert r.stdout == b"looping\n", r.describe()
    assert wall >= 0.2, f"ended before the deadline: {wall:.3f}s"
    assert wall < 1.2, f"deadline 200ms but ran {wall:.3f}s"


@pytest.mark.parametrize("tier", TIERS)
def test_timeout_in_seconds_unit(tier, keel, precompiled):
    mod = precompiled("loop")
    t0 = time.monotonic()
    r = keel("run", "--tier", tier, "--timeout", "1s", mod, timeout=30)
    wall = time.monotonic() - t0
    assert_trap(r, "deadline exceeded")
    assert 1.0 <= wall < 2.0, f"--timeout 1s ran {wall:.3f}s"


@pytest.mark.parametrize("tier", TIERS)
def test_deadline_interrupts_sleep(tier, keel, precompiled):
    # A guest blocked in poll_oneoff (nanosleep 60 s) must not outlive the
    # deadline.
    mod = precompiled("sleeper")
    t0 = time.monotonic()
    r = keel("run", "--tier", tier, "--timeout", "300ms", mod, "sleep", timeout=30)
    wall = time.monotonic() - t0
    assert_trap(r, "deadline exceeded")
    assert "woke up" not in r.out
    assert wall < 1.3, f"deadline 300ms but ran {wall:.3f}s"


def test_deadline_interrupts_blocking_stdin_read(keel_bin, base_env, precompiled):
    # stdin is a pipe that stays open with no data: fd_read blocks.
    mod = precompiled("sleeper")
    t0 = time.monotonic()
    p = subprocess.Popen([keel_bin, "run", "--timeout", "300ms", mod, "stdin"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=base_env)
    # Not communicate(): it would close stdin and the read would see EOF.
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail("keel ignored --timeout 300ms while the guest blocked on stdin")
    finally:
        p.stdin.close()
    out, err = p.stdout.read(), p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    wall = time.monotonic() - t0
    assert p.returncode == 134, (p.returncode, out, err)
    assert b"deadline exceeded" in err.lower(), err
    assert wall < 1.3, wall


# ------------------------------------------------------------------ memory

@pytest.mark.parametrize("tier", TIERS)
def test_memory_bomb_sees_null(tier, keel, hostile):
    r = keel("run", "--tier", tier, "--memory-limit", "16MiB", hostile("membomb"), timeout=120)
    assert r.returncode == 0, r.describe()
    assert r.stderr == b"", r.describe()
    assert "malloc(1 GiB): NULL" in r.out, r.describe()
    m = re.search(r"allocated (\d+) KiB before NULL", r.out)
    assert m, r.describe()
    kib = int(m.group(1))
    # Below the limit, but the guest did get most of it.
    assert 8 * 1024 <= kib < 16 * 1024, r.describe()
    assert "memory.grow(65536 pages): -1" in r.out, r.describe()
    size = int(re.search(r"memory size: (\d+) KiB", r.out).group(1))
    assert size <= 16 * 1024, r.describe()
    assert f"blocks={kib // 64} corrupted=0" in r.out, r.describe()


def test_memory_limit_scales(keel, hostile):
    r = keel("run", "--memory-limit", "4MiB", hostile("membomb"), timeout=120)
    assert r.returncode == 0, r.describe()
    kib = int(re.search(r"allocated (\d+) KiB before NULL", r.out).group(1))
    assert 1024 <= kib < 4 * 1024, r.describe()


def test_memory_limit_below_initial_memory(keel, hostile):
    # membomb's initial memory (stack + data) is larger than 64 KiB: it
    # cannot even be instantiated within the limit. Keel must refuse with
    # the "memory limit" trap, not run it over the limit or crash.
    r = keel("run", "--memory-limit", "64KiB", hostile("membomb"), timeout=60)
    assert_trap(r, "memory limit")
    assert r.stdout == b""


# ------------------------------------------------------------------- stack

@pytest.mark.parametrize("tier", TIERS)
def test_recursion_bomb_traps(tier, keel, hostile):
    r = keel("run", "--tier", tier, "--timeout", "20s", hostile("recurse"), timeout=60)
    assert_trap(r, "call stack exhausted")
    assert r.stdout == b"recursing\n", r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_recursion_bomb_twice_in_a_row(tier, keel, hostile):
    # The guard page / depth counter is restored after a trap: a second
    # process behaves the same (and nothing is left corrupted in the cache).
    for _ in range(2):
        r = keel("run", "--tier", tier, "--timeout", "20s", hostile("recurse"), timeout=60)
        assert_trap(r, "call stack exhausted")


# ------------------------------------------------------------------ EFAULT

@pytest.mark.parametrize("tier", TIERS)
def test_out_of_bounds_pointers_get_efault(tier, keel, hostile, tmp_path):
    (tmp_path / "f.txt").write_bytes(b"file\n")
    os.symlink("target", tmp_path / "lnk")
    before = tree(tmp_path)
    r = keel("run", "--tier", tier, "--dir", f"{tmp_path}::/sandbox", "--env", "A=B",
             hostile("efault"), "arg1", stdin=b"some stdin bytes\n")
    assert r.returncode == 0, r.describe()
    assert r.stderr == b"", r.describe()
    lines = r.out.splitlines()
    assert lines[-1] == "survived", r.describe()
    assert lines[0] == "setup open f.txt: errno=0", r.describe()
    ok_lines = {"random_get buf=end len=0 (in bounds): errno=0",
                "f.txt still readable: errno=0",
                "fd_write iovs_len=0x20000000 (8*len wraps): efault_or_einval=1"}
    checked = 0
    for line in lines[1:-1]:
        if line in ok_lines:
            continue
        assert line.endswith(f": errno={EFAULT}"), f"{line!r}\n{r.describe()}"
        checked += 1
    assert checked >= 40, r.describe()
    assert all(l in lines for l in ok_lines), r.describe()
    # No faulting call had a side effect on the preopened dir.
    assert tree(tmp_path) == before
