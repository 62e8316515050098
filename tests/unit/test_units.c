/* test_units.c — size and duration parsing (src/config/units.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/units.h"

static void sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(keel_parse_size("64MiB", &v), 0);
    assert_int_equal(v, 64ull << 20);
    assert_int_equal(keel_parse_size("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(keel_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(keel_parse_size("3KB", &v), 0);
    assert_int_equal(v, 3000);
    assert_int_equal(keel_parse_size("12XB", &v), -1);
    assert_int_equal(keel_parse_size("", &v), -1);
    assert_int_equal(keel_parse_size("-1", &v), -1);
    assert_int_equal(keel_parse_size("MiB", &v), -1);
    assert_int_equal(keel_parse_size("99999999999999999999", &v), -1);
    assert_int_equal(keel_parse_size("17179869184TiB", &v), -1);
}

static void durations(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(keel_parse_duration("500ms", &v), 0);
    assert_int_equal(v, 500000000ull);
    assert_int_equal(keel_parse_duration("2s", &v), 0);
    assert_int_equal(v, 2000000000ull);
    assert_int_equal(keel_parse_duration("1.5s", &v), 0);
    assert_int_equal(v, 1500000000ull);
    assert_int_equal(keel_parse_duration("3m", &v), 0);
    assert_int_equal(v, 180000000000ull);
    assert_int_equal(keel_parse_duration("10", &v), -1);
    assert_int_equal(keel_parse_duration("1.s", &v), -1);
    assert_int_equal(keel_parse_duration("fast", &v), -1);
    assert_int_equal(keel_parse_duration("5 s", &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),
        cmocka_unit_test(durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
