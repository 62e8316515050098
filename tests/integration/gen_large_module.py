#!/usr/bin/env python3
"""gen_large_module.py N OUT.wat — writes a WASI command module with N
chained functions (f_i(x) = rotl(x * (2i+1), i % 31) ^ (x >> 3) + i) and a
_start that runs the chain from 1 and exits with the low 7 bits. Prints the
expected exit status. Used to exercise the optimized tier's split build."""
import sys


def expected(n):
    x = 1
    for i in range(n):
        y = (x * (2 * i + 1)) & 0xFFFFFFFF
        r = i % 31
        y = ((y << r) | (y >> (32 - r))) & 0xFFFFFFFF if r else y
        x = ((y ^ (x >> 3)) + i) & 0xFFFFFFFF
    return x & 0x7F


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w") as f:
        f.write('(module\n')
        f.write('  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))\n')
        f.write('  (memory (export "memory") 1)\n')
        for i in range(n):
            f.write(f'  (func $f{i} (param $x i32) (result i32)\n'
                    f'    (i32.add (i32.xor (i32.rotl (i32.mul (local.get $x) (i32.const {2 * i + 1}))'
                    f' (i32.const {i % 31})) (i32.shr_u (local.get $x) (i32.const 3))) (i32.const {i})))\n')
        f.write('  (func (export "_start") (local $x i32)\n    (local.set $x (i32.const 1))\n')
        for i in range(n):
            f.write(f'    (local.set $x (call $f{i} (local.get $x)))\n')
        f.write('    (call $exit (i32.and (local.get $x) (i32.const 127))))\n)\n')
    print(expected(n))


if __name__ == "__main__":
    main()
