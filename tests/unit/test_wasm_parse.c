/* test_wasm_parse.c — the outer-structure reader (src/engine/wasm_parse.c):
 * good modules give their imports and exports with signatures; every
 * truncation of a good module, and random bytes, fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/errors.h"
#include "engine/wasm_parse.h"

/* (module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
 *         (memory (export "memory") 1) (global (export "g") (mut i64) (i64.const 7))
 *         (func (export "_start") (param f32 f64) (result i64 i32) unreachable)) */
static const uint8_t mod[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    /* type: 2 types */
    0x01, 0x10, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f,
    0x60, 0x02, 0x7d, 0x7c, 0x02, 0x7e, 0x7f,
    /* import */
    0x02, 0x23, 0x01, 0x16, 'w', 'a', 's', 'i', '_', 's', 'n', 'a', 'p', 's', 'h', 'o',
    't', '_', 'p', 'r', 'e', 'v', 'i', 'e', 'w', '1', 0x08, 'f', 'd', '_', 'w', 'r',
    'i', 't', 'e', 0x00, 0x00,
    /* function */
    0x03, 0x02, 0x01, 0x01,
    /* memory */
    0x05, 0x03, 0x01, 0x00, 0x01,
    /* global */
    0x06, 0x06, 0x01, 0x7e, 0x01, 0x42, 0x07, 0x0b,
    /* export */
    0x07, 0x17, 0x03, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00,
    0x01, 'g', 0x03, 0x00, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01,
    /* code */
    0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
};

static void parses_good_module(void **state)
{
    (void)state;
    wasm_info info;
    char err[256];
    assert_int_equal(wasm_parse(mod, sizeof mod, &info, err, sizeof err), 0);
    assert_int_equal(info.nimports, 1);
    assert_string_equal(info.imports[0].module, "wasi_snapshot_preview1");
    assert_string_equal(info.imports[0].name, "fd_write");
    assert_string_equal(info.imports[0].sig, "iiii:i");
    assert_int_equal(info.nexports, 3);
    assert_string_equal(info.exports[1].name, "g");
    assert_string_equal(info.exports[1].sig, "mI");
    assert_string_equal(info.exports[2].name, "_start");
    assert_string_equal(info.exports[2].sig, "fF:Ii");
    assert_false(info.uses_simd);
    wasm_info_free(&info);
}

static void every_truncation_fails(void **state)
{
    (void)state;
    /* Cutting inside the final code section body is still well-formed at
     * this level only if the cut falls on a section boundary. */
    for (size_t n = 0; n < sizeof mod; n++) {
        wasm_info info;
        char err[256] = "";
        int rc = wasm_parse(mod, n, &info, err, sizeof err);
        static const size_t ends[] = { 8, 26, 63, 67, 72, 80, 105 };  /* section ends */
        int boundary = 0;
        for (size_t k = 0; k < sizeof ends / sizeof *ends; k++)
            boundary |= n == ends[k];
        if (boundary) {
            if (rc == 0)
                wasm_info_free(&info);
            continue;
        }
        assert_int_not_equal(rc, 0);
        assert_true(strlen(err) > 0);
    }
}

static void rejects_garbage(void **state)
{
    (void)state;
    wasm_info info;
    char err[256];
    assert_int_equal(wasm_parse((const uint8_t *)"", 0, &info, err, sizeof err), KEEL_EINVAL);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(wasm_parse((const uint8_t *)"hello world", 11, &info, err, sizeof err),
                     KEEL_EINVAL);
    assert_non_null(strstr(err, "not a WebAssembly module"));
    uint8_t v2[8] = { 0, 'a', 's', 'm', 2, 0, 0, 0 };
    assert_int_equal(wasm_parse(v2, 8, &info, err, sizeof err), KEEL_EINVAL);
    assert_non_null(strstr(err, "version"));
    /* two type sections (each "1 type: () -> ()"): refused, and under
     * ASan nothing of the first leaks (found by tests/fuzz) */
    static const uint8_t twice[] = { 0, 'a', 's', 'm', 1, 0, 0, 0,
                                     1, 4, 1, 0x60, 0, 0, 1, 4, 1, 0x60, 0, 0 };
    assert_int_equal(wasm_parse(twice, sizeof twice, &info, err, sizeof err), KEEL_EINVAL);
    assert_non_null(strstr(err, "out of order or repeated"));
    srand(42);
    uint8_t buf[512];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        memcpy(buf, mod, 8);
        for (size_t i = 8; i < n; i++)
            buf[i] = (uint8_t)rand();
        if (wasm_parse(buf, n, &info, err, sizeof err) == 0)
            wasm_info_free(&info);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_good_module),
        cmocka_unit_test(every_truncation_fails),
        cmocka_unit_test(rejects_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
