/* test_image.c — copy-on-write instance images (src/engine/image.c), on
 * both tiers: an instance made from an image has the template's state
 * (globals, memory, tables whose functions act on the new instance, not the
 * template); what one instance writes (memory, globals, grown pages) is
 * never seen by the next or by one alive at the same time; reused memory is
 * back to the image's size with guard pages behind it; instances from one
 * image run on many threads at once; memories freed together are reset
 * together, each to the image; the instance memory limit applies;
 * a 1 MiB data segment comes through intact, also when every instance
 * writes all of it; a system call writes guest memory once the range is
 * prepared, and the next instance does not see it; modules an image cannot
 * reproduce (funcref globals) are refused. */
#include <errno.h>
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

#include "base/errors.h"
#include "engine/engine.h"
#include "engine/host_abi.h"

static char tmpdir[] = "/tmp/keel-test-image-XXXXXX";

static const char wat[] =
    "(module\n"
    "  (memory (export \"memory\") 2 100)\n"
    "  (global $g (mut i32) (i32.const 7))\n"
    "  (table 2 funcref)\n"
    "  (elem (i32.const 0) $get $size)\n"
    "  (type $u (func (result i32)))\n"
    "  (data (i32.const 1024) \"\\2a\\00\\00\\00\")\n"
    "  (func $get (result i32) (global.get $g))\n"
    "  (func $size (result i32) (memory.size))\n"
    "  (func (export \"set\") (param i32) (global.set $g (local.get 0)))\n"
    "  (func (export \"icall\") (param i32) (result i32) (call_indirect (type $u) (local.get 0)))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load (local.get 0)))\n"
    "  (func (export \"store\") (param i32 i32) (i32.store (local.get 0) (local.get 1)))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0)))\n"
    ")\n";

static const char wat_funcref_global[] =
    "(module\n"
    "  (memory 1)\n"
    "  (func $f)\n"
    "  (elem declare func $f)\n"
    "  (global $r (mut funcref) (ref.func $f))\n"
    "  (func (export \"f\"))\n"
    ")\n";

static keel_module *mods[2];   /* [0] fast, [1] opt */
static keel_module *refused, *big;
#define BIG_BYTES (1u << 20)

static int assemble(const char *name, const char *text, char *path, size_t len)
{
    char src[256], cmd[700];
    snprintf(src, sizeof src, "%s/%s.wat", tmpdir, name);
    snprintf(path, len, "%s/%s.wasm", tmpdir, name);
    FILE *f = fopen(src, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "wat2wasm %s -o %s", src, path);
    return system(cmd) == 0 ? 0 : -1;
}

static int load(const char *path, keel_tier tier, keel_module **out)
{
    char err[512];
    keel_engine_opts o = { .tier = tier, .cache_dir = tmpdir };
    if (keel_module_load(path, &o, out, err, sizeof err) ||
        keel_module_link_host(*out, NULL, 0, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return -1;
    }
    return 0;
}

/* A module whose 1 MiB data segment holds byte i = (i * 7 + 3) & 0xff. */
static char *big_wat(void)
{
    size_t cap = (size_t)BIG_BYTES * 3 + 256, k = 0;
    char *w = malloc(cap);
    k += (size_t)snprintf(w + k, cap - k, "(module (memory (export \"memory\") 17)\n"
                                          "(func (export \"f\"))\n(data (i32.const 0) \"");
    for (uint32_t i = 0; i < BIG_BYTES; i++)
        k += (size_t)snprintf(w + k, cap - k, "\\%02x", (i * 7 + 3) & 0xff);
    snprintf(w + k, cap - k, "\"))\n");
    return w;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    char path[256];
    if (assemble("m", wat, path, sizeof path) || load(path, KEEL_TIER_FAST, &mods[0]) ||
        load(path, KEEL_TIER_OPT, &mods[1]))
        return -1;
    if (assemble("r", wat_funcref_global, path, sizeof path) ||
        load(path, KEEL_TIER_FAST, &refused))
        return -1;
    char *w = big_wat();
    int rc = assemble("big", w, path, sizeof path) || load(path, KEEL_TIER_FAST, &big);
    free(w);
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    keel_module_free(mods[0]);
    keel_module_free(mods[1]);
    keel_module_free(refused);
    keel_module_free(big);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static keel_instance *fresh(keel_module *m)
{
    /* cmocka installs its own SIGSEGV handler around each test */
    assert_int_equal(keel_rt_install_signal_handlers(), 0);
    keel_instance *in;
    keel_rt_outcome o;
    char err[256];
    assert_int_equal(keel_instance_new(m, NULL, 0, &in, &o, err, sizeof err), 0);
    return in;
}

static keel_instance *from(keel_image *img, uint32_t limit)
{
    keel_instance *in;
    char err[256];
    int rc = keel_instance_from_image(img, NULL, limit, &in, err, sizeof err);
    if (rc)
        fprintf(stderr, "from image: %s\n", err);
    assert_int_equal(rc, 0);
    return in;
}

/* Calls name with up to two i32 arguments; returns the i32 result, or -1000
 * - trap kind when it trapped. */
static int64_t call(keel_instance *in, const char *name, uint32_t a, uint32_t b)
{
    uint64_t v[2] = { a, b };
    keel_rt_outcome o;
    char err[256];
    assert_int_equal(keel_instance_call(in, name, v, 2, NULL, &o, err, sizeof err), 0);
    if (o.end == KEEL_RT_TRAPPED)
        return -1000 - (int64_t)o.trap;
    return (int32_t)(uint32_t)v[0];
}

/* The template's state (set after instantiation) is what images give. */
static keel_image *image_of_modified(keel_module *m, keel_instance **tmpl_out)
{
    keel_instance *t = fresh(m);
    call(t, "set", 11, 0);
    call(t, "store", 2048, 99);
    char err[256];
    keel_image *img = keel_image_new(t, err, sizeof err);
    if (!img)
        fprintf(stderr, "image: %s\n", err);
    assert_non_null(img);
    *tmpl_out = t;
    return img;
}

static void clone_has_template_state(void **state)
{
    (void)state;
    for (int tier = 0; tier < 2; tier++) {
        keel_instance *t;
        keel_image *img = image_of_modified(mods[tier], &t);
        /* the template changes after capture: clones must not follow */
        call(t, "set", 500, 0);
        call(t, "store", 1024, 500);
        keel_instance *a = from(img, 0);
        assert_int_equal(call(a, "icall", 0, 0), 11);      /* $get via the table */
        assert_int_equal(call(a, "icall", 1, 0), 2);       /* $size: 2 pages */
        assert_int_equal(call(a, "load", 1024, 0), 42);    /* data segment */
        assert_int_equal(call(a, "load", 2048, 0), 99);    /* written before capture */
        /* the table's functions act on the clone, not the template */
        call(a, "set", 12, 0);
        assert_int_equal(call(a, "icall", 0, 0), 12);
        assert_int_equal(call(t, "icall", 0, 0), 500);
        keel_instance_free(a);
        keel_instance_free(t);
        /* the image outlives its template */
        a = from(img, 0);
        assert_int_equal(call(a, "icall", 0, 0), 11);
        keel_instance_free(a);
        keel_image_free(img);
    }
}

static void writes_never_reach_the_next_instance(void **state)
{
    (void)state;
    for (int tier = 0; tier < 2; tier++) {
        keel_instance *t;
        keel_image *img = image_of_modified(mods[tier], &t);
        keel_instance_free(t);
        for (int round = 0; round < 50; round++) {
            keel_instance *a = from(img, 0), *b = from(img, 0);
            /* a writes; b, alive at the same time, sees the image */
            call(a, "store", 1024, 1000 + (uint32_t)round);
            call(a, "store", 65536 + 4, 7);
            call(a, "set", 77, 0);
            assert_int_equal(call(a, "load", 1024, 0), 1000 + round);
            assert_int_equal(call(b, "load", 1024, 0), 42);
            assert_int_equal(call(b, "load", 65536 + 4, 0), 0);
            assert_int_equal(call(b, "icall", 0, 0), 11);
            /* a grows and writes in the new pages */
            assert_int_equal(call(a, "grow", 3, 0), 2);
            call(a, "store", 4 * 65536, 5);
            keel_instance_free(a);
            /* the next one (likely a's reused reservation) is pristine */
            keel_instance *c = from(img, 0);
            assert_int_equal(call(c, "load", 1024, 0), 42);
            assert_int_equal(call(c, "load", 2048, 0), 99);
            assert_int_equal(call(c, "load", 65536 + 4, 0), 0);
            assert_int_equal(call(c, "icall", 0, 0), 11);
            assert_int_equal(call(c, "icall", 1, 0), 2);
            /* past the image's size is a guard page again */
            assert_int_equal(call(c, "load", 4 * 65536, 0), -1000 - KEEL_TRAP_OOB);
            assert_int_equal(call(c, "load", 2 * 65536, 0), -1000 - KEEL_TRAP_OOB);
            /* growing gives zeroed pages */
            assert_int_equal(call(c, "grow", 3, 0), 2);
            assert_int_equal(call(c, "load", 4 * 65536, 0), 0);
            keel_instance_free(c);
            keel_instance_free(b);
        }
        keel_image_free(img);
    }
}

/* Many memories freed together are reset together (keel_image_tidy): each
 * written page is back to the image's bytes, whatever the others wrote, a
 * grown one among them too. */
static void memories_freed_together_are_reset_together(void **state)
{
    (void)state;
    enum { N = 12 };
    for (int tier = 0; tier < 2; tier++) {
        keel_instance *t;
        keel_image *img = image_of_modified(mods[tier], &t);
        keel_instance_free(t);
        keel_image_tidy();
        for (int round = 0; round < 3; round++) {
            keel_instance *in[N];
            for (int i = 0; i < N; i++)
                in[i] = from(img, 0);
            for (int i = 0; i < N; i++) {
                uint32_t page = (uint32_t)(i + round) % 32;   /* 32 OS pages in 2 wasm pages */
                call(in[i], "store", page * 4096 + 8, 0x5000 + (uint32_t)i);
                call(in[i], "store", 1024, 0x6000 + (uint32_t)i);
                call(in[i], "store", 2048, 0x7000 + (uint32_t)i);
                if (i == N / 2) {   /* one grows: it is reset on its own */
                    assert_int_equal(call(in[i], "grow", 1, 0), 2);
                    call(in[i], "store", 2 * 65536 + 8, 3);
                }
            }
            for (int i = 0; i < N; i++)
                keel_instance_free(in[i]);
            keel_image_tidy();
            for (int i = 0; i < N; i++)
                in[i] = from(img, 0);
            for (int i = 0; i < N; i++) {
                assert_int_equal(call(in[i], "load", 1024, 0), 42);
                assert_int_equal(call(in[i], "load", 2048, 0), 99);
                for (uint32_t page = 0; page < 32; page++)
                    if (page * 4096 + 8 != 1024 && page * 4096 + 8 != 2048)
                        assert_int_equal(call(in[i], "load", page * 4096 + 8, 0), 0);
                assert_int_equal(call(in[i], "load", 2 * 65536 + 8, 0), -1000 - KEEL_TRAP_OOB);
            }
            for (int i = 0; i < N; i++)
                keel_instance_free(in[i]);
        }
        keel_image_tidy();
        keel_image_free(img);
    }
}

static void memory_limit_applies(void **state)
{
    (void)state;
    keel_instance *t;
    keel_image *img = image_of_modified(mods[0], &t);
    keel_instance_free(t);
    keel_instance *in;
    char err[256];
    assert_int_equal(keel_instance_from_image(img, NULL, 1, &in, err, sizeof err), KEEL_ELIMIT);
    assert_null(in);
    in = from(img, 4);
    assert_int_equal(call(in, "grow", 2, 0), 2);
    assert_int_equal(call(in, "grow", 1, 0), -1);    /* 5 pages > limit 4 */
    keel_instance_free(in);
    keel_image_free(img);
}

static void big_data_segment(void **state)
{
    (void)state;
    keel_instance *t = fresh(big);
    char err[256];
    keel_image *img = keel_image_new(t, err, sizeof err);
    assert_non_null(img);
    keel_instance_free(t);
    /* every round writes more than a slot copies back: past the first
     * rounds the image stops tracking writes (image.c), and still each
     * instance starts from the image */
    for (int round = 0; round < 12; round++) {
        keel_instance *in = from(img, 0);
        wasm_rt_memory_t *mem = keel_instance_memory(in, "memory");
        assert_non_null(mem);
        assert_int_equal(mem->size, 17u * 65536);
        for (uint32_t i = 0; i < BIG_BYTES; i++)
            if (mem->data[i] != ((i * 7 + 3) & 0xff))
                fail_msg("byte %u is %u", i, mem->data[i]);
        for (uint32_t i = BIG_BYTES; i < mem->size; i++)
            if (mem->data[i])
                fail_msg("byte %u is %u", i, mem->data[i]);
        memset(mem->data, 0xee, mem->size);   /* dirty every page */
        keel_instance_free(in);
    }
    keel_image_free(img);
}

/* Image pages are read-only until an instance first writes them: code
 * faults its way in, but a system call writing guest memory is refused
 * (EFAULT) unless the range was prepared (keel_guest_prepare_write), as
 * host functions do. What the kernel wrote is gone for the next instance. */
static void system_calls_write_prepared_memory(void **state)
{
    (void)state;
    keel_instance *t;
    keel_image *img = image_of_modified(mods[0], &t);
    keel_instance_free(t);
    keel_image_tidy();
    for (int round = 0; round < 3; round++) {
        keel_instance *in = from(img, 0);
        wasm_rt_memory_t *mem = keel_instance_memory(in, "memory");
        assert_non_null(mem);
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], "0123456789abcdef", 16), 16);
        unsigned char *at = mem->data + 3 * 4096 - 8;   /* spans two pages */
        if (round == 0) {
            errno = 0;
            assert_int_equal(read(p[0], at, 16), -1);
            assert_int_equal(errno, EFAULT);
        }
        keel_guest_prepare_write(at, 16);
        assert_int_equal(read(p[0], at, 16), 16);
        assert_memory_equal(at, "0123456789abcdef", 16);
        assert_int_equal(call(in, "load", 3 * 4096 - 8, 0), 0x33323130);
        close(p[0]);
        close(p[1]);
        keel_instance_free(in);
        keel_image_tidy();
        in = from(img, 0);
        assert_int_equal(call(in, "load", 3 * 4096 - 8, 0), 0);
        assert_int_equal(call(in, "load", 3 * 4096 + 4, 0), 0);
        assert_int_equal(call(in, "load", 1024, 0), 42);
        keel_instance_free(in);
    }
    keel_image_tidy();
    keel_image_free(img);
}

static void refuses_funcref_globals(void **state)
{
    (void)state;
    keel_instance *t = fresh(refused);
    char err[256] = "";
    assert_null(keel_image_new(t, err, sizeof err));
    assert_non_null(strstr(err, "no image"));
    keel_instance_free(t);
}

typedef struct worker_arg {
    keel_image *img;
    uint32_t id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    intptr_t bad = 0;
    for (uint32_t i = 0; i < 200; i++) {
        keel_instance *in;
        char err[256];
        if (keel_instance_from_image(w->img, NULL, 0, &in, err, sizeof err))
            return (void *)1000;
        uint64_t v[2] = { 1024, 0 };
        keel_rt_outcome o;
        keel_instance_call(in, "load", v, 2, NULL, &o, err, sizeof err);
        bad += o.end != KEEL_RT_RETURNED || (uint32_t)v[0] != 42;
        v[0] = 1024;
        v[1] = w->id * 1000 + i;
        keel_instance_call(in, "store", v, 2, NULL, &o, err, sizeof err);
        v[0] = w->id;
        keel_instance_call(in, "set", v, 2, NULL, &o, err, sizeof err);
        usleep(i % 7 == 0 ? 100 : 0);   /* let the other threads interleave */
        v[0] = 1024;
        keel_instance_call(in, "load", v, 2, NULL, &o, err, sizeof err);
        bad += (uint32_t)v[0] != w->id * 1000 + i;
        v[0] = 0;
        keel_instance_call(in, "icall", v, 2, NULL, &o, err, sizeof err);
        bad += (uint32_t)v[0] != w->id;
        keel_instance_free(in);
    }
    return (void *)bad;
}

static void threads_share_an_image(void **state)
{
    (void)state;
    for (int tier = 0; tier < 2; tier++) {
        keel_instance *t;
        keel_image *img = image_of_modified(mods[tier], &t);
        keel_instance_free(t);
        pthread_t th[8];
        worker_arg args[8];
        for (uint32_t i = 0; i < 8; i++) {
            args[i] = (worker_arg){ img, i + 1 };
            assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            void *r;
            pthread_join(th[i], &r);
            assert_int_equal((intptr_t)r, 0);
        }
        keel_image_free(img);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clone_has_template_state),
        cmocka_unit_test(writes_never_reach_the_next_instance),
        cmocka_unit_test(memories_freed_together_are_reset_together),
        cmocka_unit_test(memory_limit_applies),
        cmocka_unit_test(system_calls_write_prepared_memory),
        cmocka_unit_test(big_data_segment),
        cmocka_unit_test(refuses_funcref_globals),
        cmocka_unit_test(threads_share_an_image),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
