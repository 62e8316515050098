/* test_rt.c — Keel's wasm-rt runtime through the engine API, on both tiers:
 * each trap kind ends the call with its kind and the process goes on; a
 * spinning guest stops within 50 ms of its deadline; memory.grow fails at
 * the instance limit; memories go back to the OS; guests run on many
 * threads at once. Modules are written in the text format and assembled
 * with wat2wasm (Debian wabt). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/engine.h"

static char tmpdir[] = "/tmp/keel-test-rt-XXXXXX";

static const char wat[] =
    "(module\n"
    "  (memory (export \"memory\") 1)\n"
    "  (table 2 funcref)\n"
    "  (elem (i32.const 0) $add)\n"
    "  (type $t (func (param i32 i32) (result i32)))\n"
    "  (type $u (func (result i32)))\n"
    "  (func $add (export \"add\") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))\n"
    "  (func (export \"div\") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"trunc\") (param f32) (result i32) (i32.trunc_f32_s (local.get 0)))\n"
    "  (func (export \"unreach\") unreachable)\n"
    "  (func (export \"icall\") (param i32) (result i32) (call_indirect (type $u) (local.get 0)))\n"
    "  (func $rec (export \"rec\") (param i32) (result i32) (i32.add (i32.const 1) (call $rec (local.get 0))))\n"
    "  (func (export \"spin\") (loop (br 0)))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    "  (func (export \"sum\") (param i32) (result i64) (local i64)\n"
    "    (block (loop (br_if 1 (i32.eqz (local.get 0)))\n"
    "      (local.set 1 (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))\n"
    "      (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0))) (local.get 1))\n"
    ")\n";

static keel_module *mods[2];   /* [0] fast, [1] opt */

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    char cmd[512], path[256];
    snprintf(path, sizeof path, "%s/m.wat", tmpdir);
    FILE *f = fopen(path, "w");
    fputs(wat, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "wat2wasm %s/m.wat -o %s/m.wasm", tmpdir, tmpdir);
    if (system(cmd) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/m.wasm", tmpdir);
    char err[512];
    for (int t = 0; t < 2; t++) {
        keel_engine_opts o = { .tier = t ? KEEL_TIER_OPT : KEEL_TIER_FAST, .cache_dir = tmpdir };
        if (keel_module_load(path, &o, &mods[t], err, sizeof err)) {
            fprintf(stderr, "load: %s\n", err);
            return -1;
        }
        if (keel_module_link_host(mods[t], NULL, 0, err, sizeof err))
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keel_module_free(mods[0]);
    keel_module_free(mods[1]);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static keel_instance *new_instance(keel_module *m, uint32_t limit_pages)
{
    /* cmocka installs its own SIGSEGV handler around each test */
    assert_int_equal(keel_rt_install_signal_handlers(), 0);
    keel_instance *in;
    keel_rt_outcome o;
    char err[256];
    assert_int_equal(keel_instance_new(m, NULL, limit_pages, &in, &o, err, sizeof err), 0);
    return in;
}

static keel_rt_outcome call(keel_instance *in, const char *name, uint64_t *v, size_t n,
                            uint64_t deadline_ns)
{
    keel_rt_outcome o;
    keel_rt_limits lim = { deadline_ns };
    char err[256];
    assert_int_equal(keel_instance_call(in, name, v, n, &lim, &o, err, sizeof err), 0);
    return o;
}

static void traps_have_kinds(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        keel_instance *in = new_instance(mods[t], 0);
        uint64_t v[2] = { 2, 3 };
        keel_rt_outcome o = call(in, "add", v, 2, 0);
        assert_int_equal(o.end, KEEL_RT_RETURNED);
        assert_int_equal(v[0], 5);

        v[0] = 1; v[1] = 0;
        o = call(in, "div", v, 2, 0);
        assert_int_equal(o.trap, KEEL_TRAP_DIV_BY_ZERO);
        v[0] = 0x80000000u; v[1] = 0xffffffffu;
        o = call(in, "div", v, 2, 0);
        assert_int_equal(o.trap, KEEL_TRAP_INT_OVERFLOW);
        v[0] = 65535;
        o = call(in, "load", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_OOB);
        v[0] = 0xfffffff0u;
        o = call(in, "load", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_OOB);
        v[0] = 0x7fc00000u;   /* NaN */
        o = call(in, "trunc", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_INVALID_CONVERSION);
        o = call(in, "unreach", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_UNREACHABLE);
        v[0] = 0;             /* $add has another type */
        o = call(in, "icall", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_CALL_INDIRECT);
        v[0] = 1;             /* null entry */
        o = call(in, "icall", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_CALL_INDIRECT);
        o = call(in, "rec", v, 1, 0);
        assert_int_equal(o.trap, KEEL_TRAP_EXHAUSTION);
        /* and the instance still works after all that */
        v[0] = 40; v[1] = 2;
        o = call(in, "add", v, 2, 0);
        assert_int_equal(o.end, KEEL_RT_RETURNED);
        assert_int_equal(v[0], 42);
        keel_instance_free(in);
    }
}

static void deadline_stops_spin_within_50ms(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        keel_instance *in = new_instance(mods[t], 0);
        uint64_t v[1];
        uint64_t start = keel_rt_now_ns(), deadline = start + 100000000ull;
        keel_rt_outcome o = call(in, "spin", v, 1, deadline);
        uint64_t late = keel_rt_now_ns() - deadline;
        assert_int_equal(o.trap, KEEL_TRAP_DEADLINE);
        assert_true(keel_rt_now_ns() >= deadline);
        assert_true(late < 50000000ull);
        keel_instance_free(in);
    }
}

static void memory_limit_fails_grow(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        keel_instance *in = new_instance(mods[t], 4);   /* 256 KiB */
        uint64_t v[1] = { 3 };
        keel_rt_outcome o = call(in, "grow", v, 1, 0);
        assert_int_equal(o.end, KEEL_RT_RETURNED);
        assert_int_equal(v[0], 1);                      /* old size */
        v[0] = 1;
        o = call(in, "grow", v, 1, 0);
        assert_int_equal(v[0], 0xffffffffu);            /* refused, as the spec says */
        assert_true(o.memory_limit_hit);
        wasm_rt_memory_t *mem = keel_instance_memory(in, "memory");
        assert_int_equal(mem->pages, 4);
        v[0] = 4 * 65536 - 4;
        o = call(in, "load", v, 1, 0);
        assert_int_equal(o.end, KEEL_RT_RETURNED);
        keel_instance_free(in);
    }
}

/* Many instances created and freed: address space and memory come back. */
static void memories_return_to_os(void **state)
{
    (void)state;
    for (int i = 0; i < 300; i++) {
        keel_instance *in = new_instance(mods[i & 1], 0);
        uint64_t v[1] = { 100 };    /* 6.4 MiB, touched below */
        call(in, "grow", v, 1, 0);
        wasm_rt_memory_t *mem = keel_instance_memory(in, "memory");
        memset(mem->data, 1, mem->size);
        keel_instance_free(in);
    }
}

static void *worker(void *arg)
{
    keel_module *m = arg;
    keel_instance *in;
    keel_rt_outcome o;
    char err[256];
    intptr_t bad = 0;
    if (keel_instance_new(m, NULL, 0, &in, &o, err, sizeof err))
        return (void *)1;
    for (int i = 0; i < 200; i++) {
        uint64_t v[2] = { (uint64_t)i, 0 };
        keel_instance_call(in, i % 3 ? "sum" : "div", v, 2, NULL, &o, err, sizeof err);
        if (i % 3 == 0 && o.trap != KEEL_TRAP_DIV_BY_ZERO)
            bad++;
        if (i % 3 && (o.end != KEEL_RT_RETURNED || v[0] != (uint64_t)i * (i + 1) / 2))
            bad++;
    }
    keel_instance_free(in);
    return (void *)bad;
}

static void threads_trap_independently(void **state)
{
    (void)state;
    assert_int_equal(keel_rt_install_signal_handlers(), 0);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, mods[i & 1]), 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_int_equal((intptr_t)r, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traps_have_kinds),
        cmocka_unit_test(deadline_stops_spin_within_50ms),
        cmocka_unit_test(memory_limit_fails_grow),
        cmocka_unit_test(memories_return_to_os),
        cmocka_unit_test(threads_trap_independently),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
