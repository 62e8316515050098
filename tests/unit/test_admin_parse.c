/* test_admin_parse.c — the admin API's JSON member and query parameter
 * readers (src/admin/admin_parse.c), with the two faults fuzz_admin_json
 * found in the reader that lived in components.c: a key of 62 bytes or
 * more overran its pattern buffer, and a string value spelled like the key
 * ({"note": "why", "why": "x"}) was taken for it and refused the body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "admin/admin_parse.h"

#define MEMBER(body, key, out) \
    keel_admin_json_member(body, strlen(body), key, out, sizeof out)

static void json_members(void **state)
{
    (void)state;
    char v[16];
    assert_int_equal(MEMBER("{\"wasm_sha256\": \"abc\", \"weight\": 5}", "weight", v), 1);
    assert_string_equal(v, "5");
    assert_int_equal(MEMBER("{\"wasm_sha256\":\"abc\",\"weight\":5}", "wasm_sha256", v), 1);
    assert_string_equal(v, "abc");
    assert_int_equal(MEMBER("{\"why\":\n\t\"\"}", "why", v), 1);
    assert_string_equal(v, "");
    assert_int_equal(MEMBER("{\"weight\": -1.5}", "weight", v), 1);
    assert_string_equal(v, "-1.5");
    assert_int_equal(MEMBER("{}", "why", v), 0);
    assert_int_equal(MEMBER("", "why", v), 0);
    assert_int_equal(MEMBER("{\"weight\" 5}", "weight", v), -1);
    assert_int_equal(MEMBER("{\"weight\": true}", "weight", v), -1);
    assert_int_equal(MEMBER("{\"why\": \"esc\\\"aped\"}", "why", v), -1);
    assert_int_equal(MEMBER("{\"why\": \"unterminated", "why", v), -1);
    assert_int_equal(MEMBER("{\"why\": \"sixteen bytes long\"}", "why", v), -1);
    char one[1];
    assert_int_equal(MEMBER("{\"why\": \"\"}", "why", one), 1);
    assert_int_equal(one[0], '\0');
}

static void json_value_spelled_like_the_key(void **state)
{
    (void)state;
    char v[16];
    assert_int_equal(MEMBER("{\"note\": \"why\", \"why\": \"x\"}", "why", v), 1);
    assert_string_equal(v, "x");
    assert_int_equal(MEMBER("{\"note\": \"why\"}", "why", v), 0);
}

static void json_long_key(void **state)
{
    (void)state;
    char key[200], body[256], v[8];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(body, sizeof body, "{\"%s\": 7}", key);
    assert_int_equal(MEMBER(body, key, v), 1);
    assert_string_equal(v, "7");
    key[100] = '\0';   /* a prefix of the body's key is another key */
    assert_int_equal(MEMBER(body, key, v), 0);
}

static void query_params(void **state)
{
    (void)state;
    const char *q = "tier=fast&stage=canary&bare&x=";
    char v[8] = "";
    assert_true(keel_admin_query_param(q, strlen(q), "tier", v, sizeof v));
    assert_string_equal(v, "fast");
    assert_true(keel_admin_query_param(q, strlen(q), "stage", v, sizeof v));
    assert_string_equal(v, "canary");
    assert_true(keel_admin_query_param(q, strlen(q), "bare", v, sizeof v));
    assert_string_equal(v, "");
    assert_true(keel_admin_query_param(q, strlen(q), "x", v, sizeof v));
    assert_string_equal(v, "");
    assert_false(keel_admin_query_param(q, strlen(q), "tie", v, sizeof v));
    assert_false(keel_admin_query_param("", 0, "tier", v, sizeof v));
    char three[3];
    assert_true(keel_admin_query_param(q, strlen(q), "stage", three, sizeof three));
    assert_string_equal(three, "ca");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_members),
        cmocka_unit_test(json_value_spelled_like_the_key),
        cmocka_unit_test(json_long_key),
        cmocka_unit_test(query_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
