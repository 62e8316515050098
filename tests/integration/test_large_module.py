"""Large modules: the optimized tier splits the generated C into several
translation units compiled in parallel, and a module over the compile
budget stays on the fast tier with a message. Correctness is checked by the
exit status the module computes (gen_large_module.py gives the expected
value)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, os.environ.get("KEEL_BUILD", "build"))
KEEL = os.path.join(BUILD, "keel")


def make_module(tmp_path, n):
    wat = tmp_path / "big.wat"
    wasm = tmp_path / "big.wasm"
    out = subprocess.run([sys.executable, os.path.join(HERE, "gen_large_module.py"), str(n), str(wat)],
                         check=True, capture_output=True, text=True)
    subprocess.run(["wat2wasm", str(wat), "-o", str(wasm)], check=True)
    return wasm, int(out.stdout)


def run(args, env):
    return subprocess.run([KEEL] + args, env=env, capture_output=True, text=True, timeout=600)


def test_split_build_runs_correctly(tmp_path):
    wasm, expected = make_module(tmp_path, 500)
    env = dict(os.environ, KEEL_CACHE=str(tmp_path / "cache"), KEEL_OPT_UNIT="32KiB")
    c = run(["compile", "--tier", "opt", str(wasm)], env)
    assert c.returncode == 0, c.stderr
    assert "opt tier" in c.stdout
    units = c.stdout.split("opt tier, ")[1].split(" units")[0]
    assert int(units) > 4, c.stdout   # the build was really split
    r = run(["run", "--tier", "opt", str(wasm)], env)
    assert r.returncode == expected, r.stderr
    assert r.stderr == ""
    f = run(["run", "--tier", "fast", str(wasm)], env)
    assert f.returncode == expected, f.stderr


def test_over_budget_stays_on_fast_tier(tmp_path):
    wasm, expected = make_module(tmp_path, 300)
    env = dict(os.environ, KEEL_CACHE=str(tmp_path / "cache"), KEEL_OPT_MEMORY="40MiB")
    r = run(["run", "--tier", "opt", str(wasm)], env)
    assert r.returncode == expected, r.stderr
    assert "over budget" in r.stderr and "fast tier" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # the verdict is remembered: no second attempt, same answer
    r2 = run(["run", "--tier", "opt", str(wasm)], env)
    assert r2.returncode == expected
    assert "budget" in r2.stderr
