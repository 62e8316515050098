/* test_bundle.c — an app's payload (engine/bundle.h) written and read back
 * on real files: a stand-in "executable" of known bytes, the records
 * keel build writes, the trailer; then what the reader refuses (a flipped
 * payload byte, a trailer that does not add up, another Keel's build id)
 * and, last (the open bundle is process-wide), what it answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/sha256.h"
#include "engine/bundle.h"
#include "engine/engine.h"

#define EXE_BYTES 5000

static char tmpdir[] = "/tmp/keel-test-bundle-XXXXXX";
static char exe[256], app[256];
static const char manifest[] = "components:\n  web:\n    wasm: web.wasm\n";
static const uint8_t wasm[] = { 0, 'a', 's', 'm', 1, 0, 0, 0 };
static const char code[] = "not really a shared object";
static char digest[65];

static void path_in(char *out, const char *name)
{
    snprintf(out, 256, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Writes an app from exe to out with build id `by`. */
static void write_app(const char *from, const char *out, const char *by)
{
    keel_bundle_writer *w = keel_bundle_writer_new();
    keel_bundle_writer_add(w, KEEL_BUNDLE_INFO, "keel", by, strlen(by));
    keel_bundle_writer_add(w, KEEL_BUNDLE_MANIFEST, "keel.yaml", manifest, strlen(manifest));
    assert_false(keel_bundle_writer_has_wasm(w, digest));
    keel_bundle_writer_add(w, KEEL_BUNDLE_WASM, digest, wasm, sizeof wasm);
    assert_true(keel_bundle_writer_has_wasm(w, digest));
    keel_bundle_writer_add(w, KEEL_BUNDLE_CODE, digest, code, strlen(code));
    keel_bundle_writer_add(w, KEEL_BUNDLE_COMPONENT, "web", digest, 64);
    char err[512];
    assert_int_equal(keel_bundle_writer_write(w, from, out, err, sizeof err), 0);
    keel_bundle_writer_free(w);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    uint8_t body[EXE_BYTES];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    path_in(exe, "keel");
    path_in(app, "app");
    write_bytes(exe, body, sizeof body);
    keel_sha256_hex(wasm, sizeof wasm, digest);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void exe_bytes_skip_the_payload(void **state)
{
    (void)state;
    char err[512], again[256];
    assert_int_equal(keel_bundle_exe_bytes(exe, err, sizeof err), EXE_BYTES);
    write_app(exe, app, keel_engine_build_id());
    assert_int_equal(keel_bundle_exe_bytes(app, err, sizeof err), EXE_BYTES);
    /* an app used as the template: its payload is not copied */
    path_in(again, "again");
    write_app(app, again, keel_engine_build_id());
    size_t n1, n2;
    uint8_t *a = read_bytes(app, &n1), *b = read_bytes(again, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_int_equal(n1, EXE_BYTES + 64 + (16 + 4 + strlen(keel_engine_build_id())) +
                     (16 + 9 + strlen(manifest)) + (16 + 64 + sizeof wasm) +
                     (16 + 64 + strlen(code)) + (16 + 3 + 64));
    free(a);
    free(b);
}

static void flipped_payload_byte_is_refused(void **state)
{
    (void)state;
    char bad[256], err[512];
    size_t n;
    uint8_t *b = read_bytes(app, &n);
    b[EXE_BYTES + 40] ^= 0x20;
    path_in(bad, "flipped");
    write_bytes(bad, b, n);
    free(b);
    assert_true(keel_bundle_open(bad, err, sizeof err) < 0);
    assert_non_null(strstr(err, "payload is corrupt"));
    assert_non_null(strstr(err, bad));
    assert_false(keel_bundle_active());
}

static void bad_trailer_is_refused(void **state)
{
    (void)state;
    char bad[256], err[512];
    size_t n;
    uint8_t *b = read_bytes(app, &n);
    b[n - 64 + 8] ^= 0x01;          /* payload offset */
    path_in(bad, "trailer");
    write_bytes(bad, b, n);
    assert_true(keel_bundle_open(bad, err, sizeof err) < 0);
    assert_non_null(strstr(err, "trailer is corrupt"));
    assert_true(keel_bundle_exe_bytes(bad, err, sizeof err) < 0);
    /* no magic at all: a plain executable */
    write_bytes(bad, b, n - 1);
    assert_int_equal(keel_bundle_open(bad, err, sizeof err), 0);
    free(b);
}

static void other_keel_is_refused(void **state)
{
    (void)state;
    char other[256], err[512];
    path_in(other, "other");
    write_app(exe, other, "0.0.1 0123456789abcdef");
    assert_true(keel_bundle_open(other, err, sizeof err) < 0);
    assert_non_null(strstr(err, "built by Keel 0.0.1 0123456789abcdef"));
    assert_false(keel_bundle_active());
}

static void good_app_answers(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(keel_bundle_open(app, err, sizeof err), 1);
    assert_true(keel_bundle_active());
    assert_string_equal(keel_bundle_built_by(), keel_engine_build_id());
    const char *name, *text;
    size_t len;
    keel_bundle_manifest(&name, &text, &len);
    assert_string_equal(name, "keel.yaml");
    assert_int_equal(len, strlen(manifest));
    assert_memory_equal(text, manifest, len);
    assert_int_equal(keel_bundle_component_count(), 1);
    const keel_bundle_component *c = keel_bundle_component_at(0);
    assert_string_equal(c->name, "web");
    assert_string_equal(c->digest, digest);
    assert_int_equal(c->wasm_bytes, sizeof wasm);
    assert_int_equal(c->code_bytes, strlen(code));
    assert_null(keel_bundle_component_at(1));

    char *bytes;
    size_t n;
    assert_int_equal(keel_bundle_wasm(KEEL_BUNDLE_WASM_PREFIX "web", &bytes, &n), 1);
    assert_int_equal(n, sizeof wasm);
    assert_memory_equal(bytes, wasm, n);
    free(bytes);
    assert_int_equal(keel_bundle_wasm(KEEL_BUNDLE_WASM_PREFIX "api", &bytes, &n), 0);
    assert_int_equal(keel_bundle_wasm("/srv/web.wasm", &bytes, &n), 0);
    const void *so;
    assert_int_equal(keel_bundle_code(digest, &so, &n), 1);
    assert_int_equal(n, strlen(code));
    assert_memory_equal(so, code, n);
    assert_int_equal(keel_bundle_code("00", &so, &n), 0);
    assert_true(keel_bundle_open(app, err, sizeof err) < 0);   /* one per process */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exe_bytes_skip_the_payload),
        cmocka_unit_test(flipped_payload_byte_is_refused),
        cmocka_unit_test(bad_trailer_is_refused),
        cmocka_unit_test(other_keel_is_refused),
        cmocka_unit_test(good_app_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
