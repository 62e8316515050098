"""`keel check`: manifest validation and import checks without compiling.

Manifests come from tests/manifests/ (each bad_*.yaml starts with a comment
"# error: LINE:COL: message", the one line keel must print after
"keel.yaml:"; {dir} stands for the manifest's resolved folder) or are
written inline. Modules are tiny WAT programs built with wat2wasm into a
per-test folder next to the manifest.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"

# wapc: exports __guest_call, imports nothing (so it links whatever the
# host tables hold).
WAPC_WAT = """(module
  (memory (export "memory") 1)
  (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"""

# wagi: a WASI command that writes with fd_write.
WAGI_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"""


def wat2wasm(text: str, out: Path):
    if not shutil.which("wat2wasm"):
        pytest.fail("wat2wasm is not on PATH (Debian package wabt)")
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".wat")
    src.write_text(text)
    subprocess.run(["wat2wasm", str(src), "-o", str(out)], check=True)


@pytest.fixture
def app(tmp_path):
    """A folder with build/gateway.wasm (wapc), build/catalog.wasm (wagi)
    and static/; returns its path."""
    wat2wasm(WAPC_WAT, tmp_path / "build" / "gateway.wasm")
    wat2wasm(WAGI_WAT, tmp_path / "build" / "catalog.wasm")
    (tmp_path / "static").mkdir()
    return tmp_path


def write_manifest(folder: Path, text: str, name="keel.yaml") -> Path:
    p = folder / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ valid

def test_valid_manifest_default_file(keel, app):
    shutil.copy(MANIFESTS / "valid.yaml", app / "keel.yaml")
    r = keel("check", cwd=app)
    assert r.returncode == 0, r.describe()
    assert r.out == "keel.yaml: ok (2 components)\n", r.describe()
    assert r.err == "", r.describe()


@pytest.mark.parametrize("flag", ["-f", "--file"])
def test_valid_manifest_named_file(keel, app, tmp_path_factory, flag):
    shutil.copy(MANIFESTS / "valid.yaml", app / "prod.yaml")
    elsewhere = tmp_path_factory.mktemp("cwd")
    r = keel("check", flag, app / "prod.yaml", cwd=elsewhere)
    assert r.returncode == 0, r.describe()
    assert r.out == f"{app / 'prod.yaml'}: ok (2 components)\n", r.describe()
    # Relative paths are reported as given, resolved against the manifest.
    r = keel("check", f"{flag}=" + os.path.relpath(app / "prod.yaml", elsewhere),
             cwd=elsewhere)
    assert r.returncode == 0, r.describe()
    assert r.out.endswith("prod.yaml: ok (2 components)\n"), r.describe()


# ---------------------------------------------------------- manifest errors

BAD = sorted(p.name for p in MANIFESTS.glob("bad_*.yaml"))


@pytest.mark.parametrize("name", BAD)
def test_bad_manifest(keel, app, name):
    text = (MANIFESTS / name).read_text()
    first = text.splitlines()[0]
    assert first.startswith("# error: "), f"{name}: first line must be '# error: ...'"
    expected = "keel.yaml:" + first[len("# error: "):].replace("{dir}", str(app.resolve()))
    write_manifest(app, text)
    r = keel("check", cwd=app)
    assert r.returncode == 1, r.describe()
    assert r.out == "", r.describe()
    assert r.err_lines == [expected], r.describe()


def test_missing_manifest(keel, tmp_path):
    r = keel("check", cwd=tmp_path)
    assert r.returncode == 1, r.describe()
    assert r.err_lines == ["keel.yaml: cannot read the manifest: No such file or directory"]


def test_yaml_errors_stay_off_stderr_except_one_line(keel, app):
    write_manifest(app, "components:\n  gateway:\n\twasm: x\n")
    r = keel("check", cwd=app)
    assert r.returncode == 1, r.describe()
    assert len(r.err_lines) == 1, r.describe()
    assert r.err_lines[0].startswith("keel.yaml:3:"), r.describe()
    assert "YAML syntax: " in r.err_lines[0], r.describe()


# ------------------------------------------------------------ module checks

def test_unknown_import_points_at_wasm_line(keel, app):
    wat2wasm("""(module
      (import "keel" "no_such_function" (func (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))""",
             app / "build" / "cart.wasm")
    write_manifest(app, "listen: 127.0.0.1:8080\n"
                        "components:\n"
                        "  cart:\n"
                        "       wasm: build/cart.wasm\n")
    r = keel("check", cwd=app)
    assert r.returncode == 1, r.describe()
    assert r.err_lines == [
        "keel.yaml:4:14: component cart: import keel.no_such_function: unknown import "
        "(Keel provides no such function)"], r.describe()


def test_all_problems_reported_one_per_line(keel, app):
    wat2wasm("""(module
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32)))
      (import "env" "memory" (memory 1))
      (func (export "main")))""", app / "build" / "bad.wasm")
    (app / "build" / "junk.wasm").write_bytes(b"this is not wasm")
    write_manifest(app, "components:\n"
                        "  a:\n"
                        "    wasm: build/bad.wasm\n"
                        "    abi: wagi\n"
                        "  b:\n"
                        "    wasm: build/bad.wasm\n"
                        "  c:\n"
                        "    wasm: build/junk.wasm\n"
                        "  ok:\n"
                        "    wasm: build/catalog.wasm\n"
                        "    abi: wagi\n")
    r = keel("check", cwd=app)
    assert r.returncode == 1, r.describe()
    lines = r.err_lines
    assert lines[:7] == [
        "keel.yaml:3:11: component a: import wasi_snapshot_preview1.fd_write: "
        "signature (ii:i) does not match Keel's (iiii:i)",
        "keel.yaml:3:11: component a: import env.memory: unknown import "
        "(Keel provides no such memory)",
        "keel.yaml:3:11: component a: abi wagi needs a WASI command: an export _start() "
        "with no parameters or results; the module has none",
        "keel.yaml:6:11: component b: import wasi_snapshot_preview1.fd_write: "
        "signature (ii:i) does not match Keel's (iiii:i)",
        "keel.yaml:6:11: component b: import env.memory: unknown import "
        "(Keel provides no such memory)",
        "keel.yaml:6:11: component b: abi wapc needs an export "
        "__guest_call(i32, i32) -> i32; the module has none",
        "keel.yaml:6:11: component b: abi wapc needs an exported memory named 'memory'",
    ], r.describe()
    assert len(lines) == 8, r.describe()
    assert lines[7].startswith(f"keel.yaml:8:11: component c: {app.resolve()}/build/junk.wasm: "), \
        r.describe()
    assert r.out == "", r.describe()


def test_entry_point_signatures(keel, app):
    wat2wasm("""(module (memory (export "memory") 1)
      (func (export "__guest_call") (param i32) (result i32) i32.const 1))""",
             app / "build" / "w.wasm")
    wat2wasm("""(module (func (export "_start") (result i32) i32.const 0))""",
             app / "build" / "c.wasm")
    write_manifest(app, "components:\n  w:\n    wasm: build/w.wasm\n"
                        "  c:\n    abi: wagi\n    wasm: build/c.wasm\n")
    r = keel("check", cwd=app)
    assert r.returncode == 1, r.describe()
    assert r.err_lines == [
        "keel.yaml:3:11: component w: abi wapc needs an export "
        "__guest_call(i32, i32) -> i32; the module has none",
        "keel.yaml:6:11: component c: abi wagi needs a WASI command: an export _start() "
        "with no parameters or results; the module has none"], r.describe()


def test_wapc_host_imports_are_known(keel, app):
    """A waPC guest importing the waPC host functions passes."""
    wat2wasm("""(module
      (import "wapc" "__guest_request" (func (param i32 i32)))
      (import "wapc" "__guest_response" (func (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))""",
             app / "build" / "g.wasm")
    write_manifest(app, "components:\n  g:\n    wasm: build/g.wasm\n")
    r = keel("check", cwd=app)
    assert r.returncode == 0, r.describe()
    assert r.out == "keel.yaml: ok (1 components)\n", r.describe()


def test_check_does_not_compile(keel, app, keel_cache):
    """check parses modules only: nothing lands in the compile cache."""
    shutil.copy(MANIFESTS / "valid.yaml", app / "keel.yaml")
    before = sorted(p.name for p in keel_cache.rglob("*"))
    r = keel("check", cwd=app)
    assert r.returncode == 0, r.describe()
    assert sorted(p.name for p in keel_cache.rglob("*")) == before


# ------------------------------------------------------------------- usage

@pytest.mark.parametrize("args", [["--bogus"], ["-f"], ["stray.yaml"],
                                  ["-f", "a.yaml", "-f", "b.yaml"]])
def test_usage_errors(keel, tmp_path, args):
    r = keel("check", *args, cwd=tmp_path)
    assert r.returncode == 2, r.describe()
    assert r.err_lines[0].startswith("keel check: "), r.describe()


def test_help(keel, tmp_path):
    r = keel("check", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    assert r.out.startswith("usage: keel"), r.describe()
