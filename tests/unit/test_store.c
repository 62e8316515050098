/* test_store.c — the store layer on a real SQLite file (src/store/):
 * argument checks, bytewise key order and prefixes ending in 0xff, counter
 * range, delete, manifest parsing of stores/kv/residency, and backup +
 * restore round trips including refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/manifest.h"
#include "store/store.h"

static char dir[] = "/tmp/keel-test-store-XXXXXX";

/* Writes keel.yaml in dir with the given stores section and loads it. */
static keel_manifest *manifest(const char *stores)
{
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/keel.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\ncomponents:\n  c:\n    wasm: keel.yaml\n    kv: [s]\n", stores);
    fclose(f);
    keel_manifest *m;
    int rc = keel_manifest_load(path, &m, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    return m;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void ops(void **state)
{
    (void)state;
    keel_manifest *m = manifest("stores:\n  s: { path: ops/s.db, max_value: 8B }");
    char err[512];
    keel_stores *ss;
    assert_int_equal(keel_stores_open(m, NULL, &ss, err, sizeof err), 0);
    keel_store *st = keel_stores_find(ss, "s", 1);
    assert_non_null(st);
    assert_null(keel_stores_find(ss, "t", 1));
    keel_kv_bytes v;
    assert_int_equal(keel_store_get(st, "a", 1, &v), KEEL_KV_ABSENT);
    assert_int_equal(keel_store_set(st, "a", 1, "12345678", 8), 0);
    assert_int_equal(keel_store_set(st, "a", 1, "123456789", 9), KEEL_KV_ETOOBIG);
    assert_int_equal(keel_store_get(st, "a", 1, &v), 0);
    assert_int_equal(v.len, 8);
    assert_memory_equal(v.data, "12345678", 8);
    free(v.data);
    assert_int_equal(keel_store_set(st, "", 0, "x", 1), KEEL_KV_EINVAL);
    assert_int_equal(keel_store_set(st, "a\0b", 3, "x", 1), KEEL_KV_EINVAL);
    char big[KEEL_KV_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    assert_int_equal(keel_store_set(st, big, sizeof big, "x", 1), KEEL_KV_ETOOBIG);
    assert_int_equal(keel_store_set(st, big, sizeof big - 1, "x", 1), 0);
    /* bytewise order, prefixes ending in 0xff */
    const char *keys[] = { "p\xff\xff" "a", "p\xff", "p\xfe", "q", "p" };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(keel_store_set(st, keys[i], strlen(keys[i]), "1", 1), 0);
    assert_int_equal(keel_store_keys(st, "p\xff", 2, &v), 0);
    assert_int_equal(v.len, 8);
    assert_memory_equal(v.data, "p\xff\0p\xff\xff" "a\0", 8);
    free(v.data);
    assert_int_equal(keel_store_keys(st, "p", 1, &v), 0);
    assert_int_equal(v.len, 2 + 3 + 3 + 5);
    free(v.data);
    /* counters */
    int64_t n;
    assert_int_equal(keel_store_incr(st, "n", 1, 5, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(keel_store_incr(st, "n", 1, -10, &n), 0);
    assert_int_equal(n, -5);
    assert_int_equal(keel_store_incr(st, "n", 1, INT64_MIN, &n), KEEL_KV_ERANGE);
    assert_int_equal(keel_store_set(st, "w", 1, "abc", 3), 0);
    assert_int_equal(keel_store_incr(st, "w", 1, 1, &n), KEEL_KV_ENOTNUM);
    assert_int_equal(keel_store_set(st, "m", 1, "9223372036854775807", 19), KEEL_KV_ETOOBIG);
    assert_int_equal(keel_store_incr(st, "m", 1, INT64_MAX, &n), 0);
    assert_int_equal(keel_store_incr(st, "m", 1, 1, &n), KEEL_KV_ERANGE);
    assert_int_equal(keel_store_get(st, "m", 1, &v), 0);
    assert_int_equal(v.len, 19);   /* unchanged */
    free(v.data);
    /* delete */
    assert_int_equal(keel_store_delete(st, "n", 1), 0);
    assert_int_equal(keel_store_delete(st, "n", 1), KEEL_KV_ABSENT);
    char why[256];
    assert_true(keel_stores_ready(ss, why, sizeof why));
    keel_stores_close(ss);
    keel_manifest_free(m);
}

static void backup_restore(void **state)
{
    (void)state;
    keel_manifest *m = manifest("stores:\n  s: { path: br/s.db }");
    char err[1024], hex[65], out[300], sum[320];
    keel_stores *ss;
    assert_int_equal(keel_stores_open(m, NULL, &ss, err, sizeof err), 0);
    keel_store *st = keel_stores_find(ss, "s", 1);
    assert_int_equal(keel_store_set(st, "k", 1, "old", 3), 0);
    snprintf(out, sizeof out, "%s/b.db", dir);
    uint64_t bytes;
    assert_int_equal(keel_store_backup(st, out, &bytes, hex, err, sizeof err), 0);
    assert_true(bytes > 0);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(keel_store_set(st, "k", 1, "new", 3), 0);
    assert_int_equal(keel_store_restore(&m->stores[0], out, err, sizeof err), 0);
    keel_kv_bytes v;
    assert_int_equal(keel_store_get(st, "k", 1, &v), 0);
    assert_memory_equal(v.data, "old", 3);
    free(v.data);
    /* a wrong checksum is refused and changes nothing */
    assert_int_equal(keel_store_set(st, "k", 1, "newer", 5), 0);
    snprintf(sum, sizeof sum, "%s.sha256", out);
    FILE *f = fopen(sum, "w");
    fprintf(f, "%064d  b.db\n", 0);
    fclose(f);
    assert_int_not_equal(keel_store_restore(&m->stores[0], out, err, sizeof err), 0);
    assert_non_null(strstr(err, "checksum mismatch"));
    assert_int_equal(keel_store_get(st, "k", 1, &v), 0);
    assert_memory_equal(v.data, "newer", 5);
    free(v.data);
    keel_stores_close(ss);
    keel_manifest_free(m);
}

static void residency_model(void **state)
{
    (void)state;
    keel_manifest *m = manifest("region: eu-west\nstores:\n  s:\n    path: r/s.db\n"
                                "    regions: [eu-west, eu-central]\n    max_value: 2KiB");
    assert_string_equal(m->region, "eu-west");
    assert_int_equal(m->nstores, 1);
    assert_int_equal(m->stores[0].nregions, 2);
    assert_int_equal(m->stores[0].max_value, 2048);
    assert_int_equal(m->components[0].nkv, 1);
    assert_string_equal(m->components[0].kv[0], "s");
    keel_manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops),
        cmocka_unit_test(backup_restore),
        cmocka_unit_test(residency_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
