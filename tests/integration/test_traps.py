"""Traps: one module per trap kind (tests/wat/trap_*.wat). keel run must
exit 134 with exactly one stderr line "keel: trap: ..." naming the kind,
print nothing on stdout, on both tiers. Plus the non-trap endings of
_start: proc_exit(7) and a plain return.
"""
from pathlib import Path

import pytest

from conftest import assert_trap

TIERS = ("fast", "opt")

TRAPS = {
    "trap_unreachable": "unreachable",
    "trap_oob_load": "out of bounds",
    "trap_oob_load_offset": "out of bounds",
    "trap_oob_store": "out of bounds",
    "trap_oob_grown": "out of bounds",
    "trap_div_zero": "integer divide by zero",
    "trap_rem_zero": "integer divide by zero",
    "trap_int_overflow": "integer overflow",
    "trap_trunc_overflow": "integer overflow",
    "trap_invalid_conversion": "invalid conversion",
    "trap_indirect_type": "indirect call",
    "trap_indirect_null": "indirect call",
    "trap_indirect_range": "indirect call",
    "trap_stack": "call stack exhausted",
}


def test_every_trap_module_is_listed():
    mods = {p.stem for p in (Path(__file__).parents[1] / "wat").glob("trap_*.wat")}
    assert mods == set(TRAPS), mods ^ set(TRAPS)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("module", sorted(TRAPS))
def test_trap_kind(module, tier, keel, wat):
    # --timeout guards against a compiler turning the recursion into a loop:
    # that would show up as "deadline exceeded" instead of hanging the run.
    r = keel("run", "--tier", tier, "--timeout", "30s", wat(module), timeout=120)
    assert_trap(r, TRAPS[module])
    assert r.stdout == b"", r.describe()
    # The line names the kind and nothing of another kind.
    line = r.err.lower()
    others = [k for k in set(TRAPS.values()) if k != TRAPS[module] and k in line]
    assert not others, r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_proc_exit_code(tier, keel, wat):
    r = keel("run", "--tier", tier, wat("proc_exit7"))
    assert r.returncode == 7, r.describe()
    assert r.stdout == b"" and r.stderr == b"", r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_start_returns_zero(tier, keel, wat):
    r = keel("run", "--tier", tier, wat("start_returns"))
    assert r.returncode == 0, r.describe()
    assert r.stdout == b"ok\n" and r.stderr == b"", r.describe()


@pytest.mark.parametrize("tier", TIERS)
def test_same_trap_twice_in_a_row(tier, keel, wat):
    # A trap leaves nothing behind (cache, signal state) that changes the
    # next run.
    for _ in range(2):
        assert_trap(keel("run", "--tier", tier, wat("trap_oob_store")), "out of bounds")


@pytest.mark.parametrize("tier", TIERS)
def test_imported_function_through_the_table(tier, keel, wat):
    # call_indirect to an imported host function gets the same context a
    # direct call gets.
    r = keel("run", "--tier", tier, wat("table_import"))
    assert r.returncode == 0, r.describe()
    assert r.stdout == b"hi\n" and r.stderr == b"", r.describe()
